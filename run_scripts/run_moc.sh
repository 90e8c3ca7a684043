#!/usr/bin/env bash
# Dense SwiGLU vs top-2 MoE vs Collaborative Experts (MoC), Llama-style blocks, equal training
# tokens on the default pt-BR corpus; writes analysis/artifacts/compare_ffn*/comparison.{json,md}.
#
#   run_scripts/run_moc.sh --quick                          # CPU smoke run (tiny shapes, ~2 min)
#   KERAS_BACKEND=jax run_scripts/run_moc.sh                # GPU: versions/moc-{dense,moe,moc}
#   KERAS_BACKEND=jax run_scripts/run_moc.sh --only moc-moc # one variant (then --table-only)
#   run_scripts/run_moc.sh --configs versions/moc-moc-switch/config.json ...  # other variants
#
# Every other argument goes to analysis/compare_ffn.py (e.g. --set train.max_steps=200).
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 analysis/compare_ffn.py "$@"
