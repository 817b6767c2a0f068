#!/usr/bin/env bash
# Trains the shipped spoken-digit model and the leave-one-speaker-out folds,
# and writes every report under docs/results/digits/. Takes about 45 minutes on
# a 2-core machine. Usage: scripts/train_digits.sh [DATA_DIR] [EPOCHS] [LOSO_EPOCHS]
# Version 2 (served by default) adds random spectral tilt to training
# (--shelf-prob 0.7); version 1 was made by this script without it, and its
# reports are the files without the _v2 suffix.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/fsdd}
EPOCHS=${2:-50}
LOSO_EPOCHS=${3:-30}
CLI=./build/clients/wavepool
RECIPE=(--seed 1 --shelf-prob 0.7)
OUT=docs/results/digits
mkdir -p "$OUT" build/loso

# The shipped model: the official split (takes 5-49 train, 0-4 test).
# spec.json's version is then set to 2 (the trained spec carries specs/digits.json's 1).
$CLI train --spec specs/digits.json --data "$DATA" --split official --epochs "$EPOCHS" \
  "${RECIPE[@]}" --out models/digits/2 | tee "$OUT/train_official_v2.txt"
sed -i 's/"version": "1"/"version": "2"/' models/digits/2/spec.json
$CLI eval models/digits/2 --data "$DATA" --split official \
  --confusion-svg "$OUT/confusion_official_v2.svg" | tee "$OUT/eval_official_v2.txt"

# Leave one speaker out: a model per fold that never heard that speaker.
for speaker in george jackson lucas nicolas yweweler; do
  $CLI train --spec specs/digits.json --data "$DATA" --split "speaker:$speaker" \
    --epochs "$LOSO_EPOCHS" "${RECIPE[@]}" --eval-every "$LOSO_EPOCHS" --out "build/loso/$speaker" \
    | tail -2 | tee "$OUT/train_loso_${speaker}_v2.txt"
  $CLI eval "build/loso/$speaker" --data "$DATA" --split "speaker:$speaker" \
    | tee "$OUT/eval_loso_${speaker}_v2.txt"
done
