#!/usr/bin/env bash
# Trains the shipped ECG beat model on all of DS1, and five leave-records-out
# folds inside DS1 (no record's beats on both sides) whose pooled held-out
# predictions are the reported figures. Reports go to docs/results/ecg/.
# Usage: scripts/train_ecg.sh [DATA_DIR] [EPOCHS]
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/mitdb-ds1}
EPOCHS=${2:-12}
CLI=./build/clients/wavepool
OUT=docs/results/ecg
mkdir -p "$OUT" build/ecg-folds
# Patient-wise folds: DS1's 22 records in record-number order, dealt into 5 groups.
FOLDS=("101,106,108,109,112" "114,115,116,118" "119,122,124,201" "203,205,207,208" "209,215,220,223,230")
dirs=()
for i in "${!FOLDS[@]}"; do
  $CLI train --spec specs/ecg-beats.json --data "$DATA" --split "records:${FOLDS[$i]}" \
    --epochs "$EPOCHS" --seed 1 --out "build/ecg-folds/$i" | tail -3 | tee "$OUT/train_fold$i.txt"
  dirs+=("build/ecg-folds/$i")
done
$CLI eval "${dirs[@]}" --data "$DATA" --confusion-svg "$OUT/confusion_folds.svg" | tee "$OUT/eval_folds.txt"
# The shipped model: every DS1 record.
$CLI train --spec specs/ecg-beats.json --data "$DATA" --split all --epochs "$EPOCHS" --seed 1 \
  --out models/ecg-beats/1 | tail -3 | tee "$OUT/train_all.txt"
