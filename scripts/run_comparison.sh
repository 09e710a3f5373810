#!/usr/bin/env bash
# The study's comparison, run for real on LFW: the 7 people with >= 70 images plus an Unknown class
# of 100 other people. Trains the three models on the same saved split, evaluates each on the
# held-out test images, and writes the comparison report.
#
#   bash scripts/run_comparison.sh [PEOPLE_TREE]     # default: ../shared/assets/lfw-deepfunneled,
#                                                    # else LFW is downloaded by scikit-learn
# Env: FACECORE_HOME (workspace, default ./), MAX_PER_PERSON (default 100; 0 = all images),
#      OUT (report folder, default $FACECORE_HOME/reports/lfw7), EPOCHS_SCALE (unset = model defaults).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
HOME_DIR=${FACECORE_HOME:-$PWD}
OUT=${OUT:-$HOME_DIR/reports/lfw7}
SRC=${1:-}
if [ -z "$SRC" ] && [ -d ../shared/assets/lfw-deepfunneled ]; then SRC=../shared/assets/lfw-deepfunneled; fi
SOURCE_ARG=(); [ -n "$SRC" ] && SOURCE_ARG=(--source "$SRC")

$PY -m facecore dataset sample "${SOURCE_ARG[@]}" --name lfw7 --people 7 --min-images 70 --unknown 100 \
  --max-per-person "${MAX_PER_PERSON:-100}" --replace

GROUP=lfw7-$(date +%Y%m%d-%H%M%S)
RUNS=()
for MODEL in resnet50_pretrained resnet50_scratch custom_cnn; do
  if [ "$MODEL" = resnet50_pretrained ] && ! $PY -m facecore weights status --json | grep -q '"available": true'; then
    echo "SKIP $MODEL: the ImageNet weights are not on this machine."
    $PY -m facecore weights status
    continue
  fi
  $PY -m facecore train --dataset lfw7 --model "$MODEL" --run-name "$GROUP-$MODEL" --group "$GROUP"
  RUNS+=("$GROUP-$MODEL")
done
for RUN in "${RUNS[@]}"; do $PY -m facecore evaluate --model "$RUN" --split test; done
$PY -m facecore compare "${RUNS[@]}" --out "$OUT"
echo "Report: $OUT/report.md and $OUT/report.html"
