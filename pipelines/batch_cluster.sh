#!/usr/bin/env bash
# The cluster path of `animecolor batch`, on one machine: `ray start --head` (its own temp dir and
# port, stopped by its pid at the end: not `ray stop`, which would stop every Ray on the machine),
# then `animecolor batch --ray-address auto` joins it; a rerun skips both episodes.
# Ray >= 2.59 turns token authentication on for `ray start`: the client needs RAY_AUTH_MODE=token
# too (both read the token from ~/.ray/auth_token).
#   bash pipelines/batch_cluster.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin
WORK=$(mktemp -d)
CLIPS=/work/shared/data/series/caminandes3
mkdir -p "$WORK/in"
cp "$CLIPS"/caminandes_llamigos_E01_SE01_SH06.mp4 "$CLIPS"/caminandes_llamigos_E01_SE01_SH07.mp4 "$WORK/in/"
export RAY_AUTH_MODE=token
"$BIN/ray" start --head --port=6391 --num-cpus=2 --include-dashboard=false --disable-usage-stats \
  --temp-dir="$WORK/ray" --block >"$WORK/head.log" 2>&1 &
HEAD=$!
trap 'kill -TERM $HEAD 2>/dev/null; wait $HEAD 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 120); do grep -q "Ray runtime started" "$WORK/head.log" && break; sleep 1; done
RAY_ADDRESS=127.0.0.1:6391 "$BIN/animecolor" batch "$WORK/in" -o "$WORK/out" --ray-address auto --working-size 256 --preset ultrafast
RAY_ADDRESS=127.0.0.1:6391 "$BIN/animecolor" batch "$WORK/in" -o "$WORK/out" --ray-address auto --working-size 256 --preset ultrafast
ls "$WORK/out"
