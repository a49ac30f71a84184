# Two targets do all set-up on a fresh machine:
#   make demo   create .venv if missing, install, colorize the bundled example clip -> out/demo.mp4
#   make test   the test suite (CPU, 2-4 minutes on 2 cores)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH  ?= torch==2.13.0

.PHONY: demo test install clean

$(BIN)/animecolor:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install $(TORCH)
	$(BIN)/python -m pip install -e '.[test,cluster]'

install: $(BIN)/animecolor

demo: $(BIN)/animecolor
	mkdir -p out
	$(BIN)/animecolor episode examples/bbb_gray_clip.mp4 out/demo.mp4 --overwrite
	@echo "wrote out/demo.mp4"

test: $(BIN)/animecolor
	$(BIN)/python -m pytest -q tests

clean:
	rm -rf out .pytest_cache
