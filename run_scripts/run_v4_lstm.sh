#!/usr/bin/env bash
# Trains the v4 baseline (2-layer LSTM) on the default pt-BR corpus, sharing v5's tokenizer
# (train v5 first, or the v5 tokenizer is trained here on the same split).
#
#   bash run_scripts/run_v4_lstm.sh [--quick] [--corpus PATH] [--run-name NAME] [--set k=v]
set -euo pipefail
cd "$(dirname "$0")/.."
exec python -m kerasvq train --config versions/v4-lstm/config.json "$@"
