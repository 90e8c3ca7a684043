#!/usr/bin/env bash
# Writes the synthetic 6-category feature table once (cached), trains the hierarchical
# VQ-VAE on it and evaluates it next to per-category PCA. Outputs: versions/hvqvae-demo/.
# Usage: run_scripts/run_hvqvae.sh [--resume] [--set section.field=value ...]
# (--resume continues the checkpointed run, e.g. with a larger --set train.epochs=N)
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=versions/hvqvae-demo/config.yaml
FEATURES="${KERASVQ_CACHE:-$HOME/.cache/kerasvq}/features/hvqvae-demo.h5"
if [ ! -f "$FEATURES" ]; then
  mkdir -p "$(dirname "$FEATURES")"
  python -m kerasvq features make-demo --out "$FEATURES" --samples 4000
fi
RESUME=()
if [ "${1:-}" = "--resume" ]; then RESUME=(--resume); shift; fi
python -m kerasvq hvqvae train --config "$CONFIG" --set "data.features=$FEATURES" ${RESUME[@]+"${RESUME[@]}"} "$@"
python -m kerasvq hvqvae evaluate --config "$CONFIG" --set "data.features=$FEATURES" "$@"
