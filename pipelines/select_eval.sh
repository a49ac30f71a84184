#!/usr/bin/env bash
# Selective color evidence (docs/keepcolor.md): pairs, 10/30/100-pair models, held-out scores, mask flicker.
# Needs the clip art: apt-get install openclipart-png.  About 40 min on 2 busy shared CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
AC=${AC:-.venv/bin/animecolor}
PAIRS=runs/select_pairs
OUT=runs/select
CAM=../shared/data/series/caminandes3
mkdir -p "$OUT"
[ -d "$PAIRS/test" ] || $PY pipelines/make_select_pairs.py -o "$PAIRS"
for n in ${SIZES:-30 10 100}; do
  $AC select train "$PAIRS/train" --max-pairs "$n" -o "$OUT/n$n" --overwrite -q | tee "$OUT/n$n.train.json"
  echo "== $n training pairs, held-out test pairs (color input)" | tee "$OUT/n$n.test.md"
  $AC evaluate --keep-color "$OUT/n$n/best.safetensors" "$PAIRS/test" | tee -a "$OUT/n$n.test.md"
  if [ "$n" = 30 ]; then
    echo "== $n training pairs, held-out test pairs (masks predicted as on B&W video)" | tee -a "$OUT/n$n.test.md"
    $AC evaluate --keep-color "$OUT/n$n/best.safetensors" "$PAIRS/test" --keep-color-bw | tee -a "$OUT/n$n.test.md"
    # flicker: a validation shot (training source) to pick the EMA weight, then a held-out shot
    $PY pipelines/select_flicker.py "$OUT/n30/best.safetensors" "$CAM/caminandes_llamigos_E01_SE01_SH03.mp4" | tee "$OUT/flicker_val.md"
    $PY pipelines/select_flicker.py "$OUT/n30/best.safetensors" "$CAM/caminandes_llamigos_E01_SE03_SH02.mp4" | tee "$OUT/flicker_test.md"
  fi
done
