#!/usr/bin/env bash
# Trains the shipped spoken-digit model and the leave-one-speaker-out folds,
# and writes every report under docs/results/digits/. Takes about 45 minutes on
# a 2-core machine. Usage: scripts/train_digits.sh [DATA_DIR] [EPOCHS] [LOSO_EPOCHS]
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/fsdd}
EPOCHS=${2:-50}
LOSO_EPOCHS=${3:-30}
CLI=./build/clients/wavepool
OUT=docs/results/digits
mkdir -p "$OUT" build/loso

# The shipped model: the official split (takes 5-49 train, 0-4 test).
$CLI train --spec specs/digits.json --data "$DATA" --split official --epochs "$EPOCHS" \
  --seed 1 --out models/digits/1 | tee "$OUT/train_official.txt"
$CLI eval models/digits/1 --data "$DATA" --split official \
  --confusion-svg "$OUT/confusion_official.svg" | tee "$OUT/eval_official.txt"

# Leave one speaker out: a model per fold that never heard that speaker.
for speaker in george jackson lucas nicolas yweweler; do
  $CLI train --spec specs/digits.json --data "$DATA" --split "speaker:$speaker" \
    --epochs "$LOSO_EPOCHS" --seed 1 --eval-every "$LOSO_EPOCHS" --out "build/loso/$speaker" \
    | tail -2 | tee "$OUT/train_loso_$speaker.txt"
  $CLI eval "build/loso/$speaker" --data "$DATA" --split "speaker:$speaker" \
    | tee "$OUT/eval_loso_$speaker.txt"
done
