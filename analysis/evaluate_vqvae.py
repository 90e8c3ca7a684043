"""Held-out evaluation of the VQ-VAE next to FAISS PQ(4×8), OPQ+PQ4 and RQ(4×8).

Writes versions/<name>/results/evaluation.json (every metric, per head too) and
rank_frequency.png, and prints the acceptance table.

The same as `kerasvq vqvae evaluate` (arguments and outputs: kerasvq/commands/vqvae.py, `--help`):

    python analysis/evaluate_vqvae.py --config versions/vqvae-wiki/config.json
    kerasvq vqvae evaluate --config versions/vqvae-wiki/config.json
"""

from _common import run_verb

if __name__ == "__main__":
    run_verb("vqvae", "evaluate")
