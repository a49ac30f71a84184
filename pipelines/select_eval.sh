#!/usr/bin/env bash
# Selective color evidence (docs/keepcolor.md).
#   bash pipelines/select_eval.sh [clipart]  pasted clip art: pairs, 10/30/100-pair models, held-out scores, mask
#                                            flicker.  Needs apt-get install openclipart-png.  ~40 min on 2 busy cores.
#   bash pipelines/select_eval.sh koro       real frames, Koro the llama in Caminandes 3 (GrabCut masks from
#                                            pipelines/caminandes_koro.json): 10/30/59-pair models, val and SE02 test
#                                            scores, smoothing settings on the val shots, flicker on two SE02 shots.
#                                            ~30 min; POSITIVES=1 adds the models without the Koro-free shots.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
AC=${AC:-.venv/bin/animecolor}
CAM=../shared/data/series/caminandes3

train_eval() {  # PAIRS OUT N SPLIT...: train on the first N pairs of PAIRS/train, score on PAIRS/SPLIT
  local pairs=$1 out=$2 n=$3 split
  shift 3
  mkdir -p "$out"
  $AC select train "$pairs/train" --max-pairs "$n" -o "$out/n$n" --overwrite -q | tee "$out/n$n.train.json"
  for split in "$@"; do
    $AC evaluate --keep-color "$out/n$n/best.safetensors" "$pairs/$split" | tee "$out/n$n.$split.md"
  done
}

clipart() {
  local PAIRS=runs/select_pairs OUT=runs/select
  [ -d "$PAIRS/test" ] || $PY pipelines/make_select_pairs.py -o "$PAIRS"
  for n in ${SIZES:-30 10 100}; do
    train_eval "$PAIRS" "$OUT" "$n" test
  done
  # the 30-pair model with its masks predicted as on B&W video
  $AC evaluate --keep-color "$OUT/n30/best.safetensors" "$PAIRS/test" --keep-color-bw | tee "$OUT/n30.test_bw.md"
  # flicker: a validation shot (training source) to pick the EMA weight, then a held-out shot
  $PY pipelines/select_flicker.py "$OUT/n30/best.safetensors" "$CAM/caminandes_llamigos_E01_SE01_SH03.mp4" | tee "$OUT/flicker_val.md"
  $PY pipelines/select_flicker.py "$OUT/n30/best.safetensors" "$CAM/caminandes_llamigos_E01_SE03_SH02.mp4" | tee "$OUT/flicker_test.md"
}

koro() {
  local PAIRS=runs/cam_pairs OUT=runs/cam
  [ -d "$PAIRS/test" ] || $PY pipelines/make_caminandes_pairs.py -o "$PAIRS"
  for n in ${SIZES:-10 30 59}; do
    train_eval "$PAIRS" "$OUT" "$n" val test
  done
  # settings chosen on the val shots only; the chosen ones then reported on two test shots
  $PY pipelines/select_smoothing.py "$OUT/n30/best.safetensors" "$PAIRS/val" | tee "$OUT/smoothing_val_n30.md"
  for s in SE02_SH01 SE02_SH07; do
    $PY pipelines/select_smoothing.py "$OUT/n30/best.safetensors" "$PAIRS/test" --shot $s --ema 1 0.5 --radius 4 \
      --eps 1e-3 | tee "$OUT/flicker_test_$s.md"
  done
  $PY pipelines/select_figure.py "$OUT/n30/best.safetensors" "$PAIRS/test" --pairs 5 2 0 4 --height 105 \
    -o docs/img/keepcolor_koro.png
  if [ -n "${POSITIVES:-}" ]; then  # tried: without the Koro-free shots
    $PY pipelines/make_caminandes_pairs.py -o runs/cam_pairs_pos --split train --no-empty-shots
    ln -sfn "$PWD/$PAIRS/val" runs/cam_pairs_pos/val
    ln -sfn "$PWD/$PAIRS/test" runs/cam_pairs_pos/test
    for n in 10 30 51; do
      train_eval runs/cam_pairs_pos runs/cam_pos "$n" val test
    done
  fi
}

"${1:-clipart}"
