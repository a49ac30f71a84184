#!/usr/bin/env bash
# Reproduce weights/default.safetensors from the raw data (CPU, ~1 h on 2 cores).
# Usage: bash pipelines/run_default.sh [DATA_DIR]   (DATA_DIR defaults to ../shared/data)
set -euo pipefail
DATA=${1:-../shared/data}
python pipelines/prepare_default.py --data "$DATA" -o data/default
# 1) loss comparison: same budget for each loss
for loss in ce l1 l2; do
  python pipelines/train_default.py --data data/default --out runs/loss_$loss --loss $loss --steps 300 --val-every 100
done
python pipelines/compare_losses.py --data data/default runs/loss_ce/last.safetensors runs/loss_l1/last.safetensors runs/loss_l2/last.safetensors | tee runs/loss_comparison.md
# 2) the default model: the winning loss (ce), continued from its comparison run
mkdir -p runs/default && cp runs/loss_ce/last.safetensors runs/default/last.safetensors
python pipelines/train_default.py --data data/default --out runs/default --loss ce --steps 2400 --val-every 200 --time-budget 2700
cp runs/default/best.safetensors weights/default.safetensors
