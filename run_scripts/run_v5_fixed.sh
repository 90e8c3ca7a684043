#!/usr/bin/env bash
# Trains v5 (decoder-only Transformer) with the v5-fixed recipe on the default pt-BR corpus.
#
#   bash run_scripts/run_v5_fixed.sh                 # the full recipe (4 epochs)
#   bash run_scripts/run_v5_fixed.sh --quick         # training stops 5 minutes after its first step
#                                                    # (validation on 64 windows); the corpus is built once
#   bash run_scripts/run_v5_fixed.sh --corpus brwac.jsonl.gz --run-name brwac --set train.epochs=2
#
# Outputs: versions/v5-transformer/{models,logs,mappings}/. Watch with
#   tensorboard --logdir versions/v5-transformer/logs/tensorboard
set -euo pipefail
cd "$(dirname "$0")/.."
exec python -m kerasvq train --config versions/v5-transformer/config.json "$@"
