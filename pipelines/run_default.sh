#!/usr/bin/env bash
# Reproduce weights/default.safetensors from the raw data (CPU, ~75 min on 2 cores).
# Usage: bash pipelines/run_default.sh [DATA_DIR]   (DATA_DIR defaults to ../shared/data)
set -euo pipefail
DATA=${1:-../shared/data}
python pipelines/prepare_default.py --data "$DATA" -o data/default
python pipelines/fit_lut.py data/default runs/default/lut.npy
python pipelines/heldout_segment.py "$DATA/general/bbb_480p_30s.mp4" data/heldout/bbb_25_30s.mp4
# 1) loss comparison: same budget for each loss
for loss in ce l1 l2; do
  python pipelines/train_default.py --data data/default --out runs/loss_$loss --loss $loss --steps 150 --val-every 150
done
python pipelines/compare_losses.py --data data/default runs/loss_ce/last.safetensors runs/loss_l1/last.safetensors runs/loss_l2/last.safetensors | tee runs/loss_comparison.md
# 2) the default model: the winning loss (ce), continued from its comparison run
mkdir -p runs/default && cp runs/loss_ce/last.safetensors runs/default/last.safetensors
python pipelines/train_default.py --data data/default --out runs/default --loss ce --steps 4000 --val-every 250 --time-budget 3300
cp runs/default/best.safetensors weights/default.safetensors
