#!/usr/bin/env bash
# The main job end to end on small synthetic data (run by `make demo`):
# synthetic REACT data -> the four stages (features -> REGNN training and generation -> ONNX deploy
# folder -> 10 reactions to one raw speaker clip, with plots and a face-sketch video) -> evaluation,
# then the speech-emotion model on a synthetic RAVDESS corpus, then the training tools on
# synthetic Magic XRoom sessions. Every step skips what is already done.
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
  $PY scripts/make_synthetic_react.py --out-dir "$DATA" --pairs 12 --eval-pairs 3 --seed 0
fi

step "2/5 stages: features -> training + 10 reactions per test clip -> deploy -> inference -> $RUN"
$PY -m react.reaction.stages all --config configs/stages/tiny.yaml name=demo data.root="$DATA"

step "3/5 evaluation of $RUN/train/pred -> $RUN/metrics.json"
$PY evaluation.py --data-dir "$DATA" --pred-dir "$RUN/train/pred" --split test --out "$RUN/metrics.json"

step "4/5 speech emotion: synthetic RAVDESS + the README's recommended ser_classic (inductive) -> $RUN/ser"
if [ ! -d data/demo_ravdess ]; then
  $PY scripts/make_synthetic_ravdess.py --out-dir data/demo_ravdess
fi
$PY train.py --config configs/ser_classic.yaml data.root=data/demo_ravdess out_dir="$RUN/ser" resume=auto
cat "$RUN/ser/report/summary.md"
WAV=data/demo_ravdess/Actor_05/03-01-05-02-01-01-05.wav  # an angry utterance of a test actor
$PY -m react.ser.predict "$WAV" --checkpoint "$RUN/ser"
$PY -m react.ser.predict "$WAV" --checkpoint "$RUN/ser" --stream --window 1.5 --hop 0.5
$PY -m react.ser.export --checkpoint "$RUN/ser" --out "$RUN/ser/ser.onnx"

step "5/5 training tools on synthetic XRoom sessions -> runs/demo_tools"
bash scripts/demo_tools.sh

step "done"
echo "dataset:      $DATA"
echo "stages:       $RUN/{preproc,train,deploy,infer} (docs/stages.md)"
echo "predictions:  $RUN/train/pred/test/<speaker_path>/result-{0..9}.pth"
echo "inference:    $RUN/infer (result-k.pth/.csv, viz/*.png, viz/face.mp4)"
echo "metrics:      $RUN/metrics.json"; cat "$RUN/metrics.json"
echo "SER report:   $RUN/ser/test_metrics.json, $RUN/ser/report/, $RUN/ser/ser.onnx"
