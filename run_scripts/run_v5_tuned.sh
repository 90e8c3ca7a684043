#!/usr/bin/env bash
# Trains v5-tuned: the v5 shape with the recipe found for the small default corpus
# (versions/v5-tuned/README.md). 60 epochs: meant for a GPU, e.g.
#   KERAS_BACKEND=jax bash run_scripts/run_v5_tuned.sh --set train.dtype_policy=mixed_bfloat16
set -euo pipefail
cd "$(dirname "$0")/.."
exec python -m kerasvq train --config versions/v5-tuned/config.json "$@"
