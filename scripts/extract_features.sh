#!/usr/bin/env bash
# Extract video and audio features for every split of a REACT dataset, in one process.
#   scripts/extract_features.sh DATA_DIR [OUT_DIR] [extra react extract args / key=value ...]
# e.g.  scripts/extract_features.sh data/react data/react video.weights=ckpt/swin_tiny.pth \
#           audio.weights=ckpt/wav2vec2-base device=cuda
#       scripts/extract_features.sh data/demo data/demo --config configs/features_tiny.yaml
# Up-to-date clips are skipped; failed clips are listed at the end and the exit status is non-zero.
set -euo pipefail
usage="usage: $0 DATA_DIR [SAVE_DIR] [--config YAML] [key=value ...]
  Extracts video and audio features of every split (react extract --help lists the options)."
if [ $# -ge 1 ] && { [ "$1" == "-h" ] || [ "$1" == "--help" ]; }; then
  echo "$usage"
  exit 0
fi
if [ $# -lt 1 ] || [[ "$1" == -* ]]; then
  echo "$usage" >&2
  exit 2
fi
DATA_DIR=$1; shift
SAVE_DIR=$DATA_DIR
if [ $# -gt 0 ] && [[ "$1" != -* ]] && [[ "$1" != *=* ]]; then SAVE_DIR=$1; shift; fi
DATA_DIR=$(realpath -m "$DATA_DIR"); SAVE_DIR=$(realpath -m "$SAVE_DIR")
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec "$PY" -m features.extract --split all --type all --data-dir "$DATA_DIR" --out-dir "$SAVE_DIR" "$@"
