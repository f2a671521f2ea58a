#!/usr/bin/env bash
# The main job end to end on a small synthetic dataset (run by `make demo`):
# synthetic REACT data -> features -> REGNN training and generation -> evaluation,
# then the speech-emotion model on a synthetic RAVDESS corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
DATA=data/demo
RUN=runs/demo
step() { printf '\n=== %s ===\n' "$*"; }

step "1/5 synthetic REACT dataset -> $DATA"
if [ -f "$DATA/.complete" ]; then
  echo "exists, skipped (make clean to rebuild)"
else
  $PY scripts/make_synthetic_react.py --out "$DATA" --pairs 12 --eval-pairs 3 --seed 0
fi

step "2/5 features (tiny random-init Swin video + Wav2Vec2 audio) -> $DATA/<split>/*_features"
bash scripts/extract_features.sh "$DATA" "$DATA" --config configs/features_tiny.yaml

step "3/5 REGNN training (tiny config), then 10 reactions per test clip with the best weights -> $RUN"
$PY train.py --config configs/regnn_tiny.yaml data.root="$DATA" out_dir="$RUN" resume=auto

step "4/5 evaluation of $RUN/pred -> $RUN/metrics.json"
$PY evaluation.py --data-dir "$DATA" --pred-dir "$RUN/pred" --split test --out "$RUN/metrics.json"

step "5/5 speech emotion: synthetic RAVDESS + ser_tiny -> $RUN/ser"
if [ ! -d data/demo_ravdess ]; then
  $PY scripts/make_synthetic_ravdess.py --out data/demo_ravdess
fi
$PY train.py --config configs/ser_tiny.yaml data.root=data/demo_ravdess out_dir="$RUN/ser" resume=auto
WAV=data/demo_ravdess/Actor_05/03-01-05-02-01-01-05.wav  # an angry utterance of a test actor
$PY -m react.ser.predict "$WAV" --checkpoint "$RUN/ser"
$PY -m react.ser.predict "$WAV" --checkpoint "$RUN/ser" --stream --window 1.5 --hop 0.5
$PY -m react.ser.export --checkpoint "$RUN/ser" --out "$RUN/ser/ser.onnx"

step "done"
echo "dataset:      $DATA"
echo "features:     $DATA/<split>/Video_features, Audio_features"
echo "REGNN run:    $RUN (config.yaml, log.txt, tb/, checkpoints/)"
echo "predictions:  $RUN/pred/test/<speaker_path>/result-{0..9}.pth"
echo "metrics:      $RUN/metrics.json"; cat "$RUN/metrics.json"
echo "SER report:   $RUN/ser/test_metrics.json, $RUN/ser/report/ (confusion, ROC, P/R/F1), $RUN/ser/ser.onnx"
