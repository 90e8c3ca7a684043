#!/usr/bin/env bash
# Builds the English sentence embeddings once (cached), trains the MonolithWiki-shape VQ-VAE
# and evaluates it next to FAISS PQ / OPQ+PQ / RQ at 4 bytes. Outputs: versions/vqvae-wiki/.
# Usage: run_scripts/run_vqvae.sh [--set section.field=value ...]
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=versions/vqvae-wiki/config.json
EMB="${KERASVQ_CACHE:-$HOME/.cache/kerasvq}/embeddings/debian-en-minilm.h5"
if [ ! -f "$EMB" ]; then
  mkdir -p "$(dirname "$EMB")"
  python -m kerasvq embed debian-en "$EMB" --max-sentences 28000 --batch-size 128
fi
python -m kerasvq vqvae train --config "$CONFIG" --set "data.embeddings=$EMB" "$@"
python analysis/evaluate_vqvae.py --config "$CONFIG" --set "data.embeddings=$EMB" "$@"
python bench/vq_encode.py --model versions/vqvae-wiki/models/vqvae.keras --embeddings "$EMB"
