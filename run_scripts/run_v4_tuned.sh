#!/usr/bin/env bash
# Trains v4-tuned: the v4 LSTM shape with lr 2e-3, batch 64, dropout 0.3, 30 epochs, on v5's
# tokenizer. Meant for a GPU (the LSTM runs in float32 there), e.g.
#   KERAS_BACKEND=jax bash run_scripts/run_v4_tuned.sh
set -euo pipefail
cd "$(dirname "$0")/.."
exec python -m kerasvq train --config versions/v4-tuned/config.json "$@"
