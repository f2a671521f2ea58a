#!/usr/bin/env bash
# The training tools end to end on a small synthetic Magic XRoom set (about a minute on a laptop):
# synthetic sessions -> preprocess -> handcrafted -> ssl-train -> ssl-features -> finetune (10 % of
# the labels, from the SSL encoder), then the fine-tuning report.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export HF_HUB_OFFLINE=1
DATA=data/demo_xroom
OUT=runs/demo_tools
step() { printf '\n=== %s ===\n' "$*"; }

mkdir -p "$(dirname "$OUT")"
step "1/2 synthetic XRoom sessions -> $DATA"
if [ -d "$DATA/P8" ]; then
  echo "exists, skipped"
else
  $PY scripts/make_synthetic_xroom.py --out-dir "$DATA" --participants 8 --sessions 1 --levels 8 --seed 0
fi

step "2/2 react tools all (bio: GSR + PPG) -> $OUT/XRoom/bio"
$PY -m react.tools all --config configs/tools/xroom_bio.yaml --data-dir "$DATA" --out-dir "$OUT" \
  preprocess.overlap=0.5 preprocess.val_fraction=0.15 preprocess.test_fraction=0.15 \
  ssl.train.epochs=5 ssl.train.batch_size=128 ssl.train.lr=1e-3 ssl.resume=auto \
  finetune.model.weights=auto finetune.data.label_fraction=0.1 finetune.train.epochs=15 finetune.train.lr=1e-3 \
  finetune.resume=auto 2> "$OUT.log" || { tail -20 "$OUT.log"; exit 1; }

step "done"
echo "outputs: $OUT/XRoom/bio (standardize/, statistical/, spectral/, ssl_training/, ssl_features/, supervised_training/)"
echo "log:     $OUT.log"
