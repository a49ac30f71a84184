#!/usr/bin/env bash
# Reference stills and colored keyframes (issue 17): the test-material tables of docs/reference.md.
# Settings were picked beforehand on validation material (pipelines/reference_tune.py); run once.
# CPU, 2 cores: ~45 min in all (each reference set adapts the model to its stills once: ~2-4 min).   Usage: bash pipelines/reference_eval.sh [DATA_DIR]
set -euo pipefail
DATA=${1:-../shared/data}
P="$DATA/series/popeye"
C="$DATA/series/caminandes3"
G="$DATA/general/toasttv_veo"
mkdir -p runs/eval runs/eval16b
# 1. Series palette, Popeye: references sampled from segments 1+2, scored on the unseen segment 3
#    (as the fine-tuning table: every 4th frame at 320 px; fine-tuned v5 scored 8.18 there).
#    --reference-adapt 0 400: matching alone (sessions 9-13) and the default since session 14.
animecolor evaluate "$P/pgs_T02-3.mkv" --reference "$P/pgs_T00-1.mkv" "$P/pgs_T01-2.mkv" --reference-frames 4 16 --reference-adapt 0 400 \
    --stride 4 --max-side 320 --quiet --json runs/eval/ref_popeye.json --markdown runs/eval/ref_popeye.md
# 1b. Caminandes 3: references from sequences SE01 and SE03, scored on SE02's shots
animecolor evaluate "$C"/*SE02_* --reference "$C"/*SE01_* "$C"/*SE03_* --reference-frames 4 16 --reference-adapt 0 400 \
    --stride 2 --max-side 320 --quiet --json runs/eval/ref_caminandes.json --markdown runs/eval/ref_caminandes.md
# 2. Keyframes: every Caminandes 3 shot and the model card's 5 held-out clips, first frame as keyframe
animecolor evaluate "$C" --keyframe-first --stride 2 --max-side 320 --quiet \
    --json runs/eval/kf_caminandes.json --markdown runs/eval/kf_caminandes.md
animecolor evaluate "$DATA/eval" "$G/penny_and_chip_autumn.mp4" "$G/penny_and_chip_retro_gaming.mp4" "$G/penny_and_chip_xmas.mp4" \
    --keyframe-first --stride 2 --max-side 320 --quiet --json runs/eval/kf_heldout.json --markdown runs/eval/kf_heldout.md
# 2b. A keyframe for every shot the cut test finds (animecolor shots, every frame painted); session 16
animecolor evaluate "$C" --keyframe-first --keyframe-shots --stride 2 --max-side 320 --quiet \
    --json runs/eval16b/kfshots_caminandes.json --markdown runs/eval16b/kfshots_caminandes.md
animecolor evaluate "$DATA/eval" "$G/penny_and_chip_autumn.mp4" "$G/penny_and_chip_retro_gaming.mp4" "$G/penny_and_chip_xmas.mp4" \
    --keyframe-first --keyframe-shots --stride 2 --max-side 320 --quiet --json runs/eval16b/kfshots_heldout.json --markdown runs/eval16b/kfshots_heldout.md
