"""Held-out evaluation of the VQ-VAE next to FAISS PQ(4×8), OPQ+PQ4 and RQ(4×8).

Writes versions/<name>/results/evaluation.json (every metric, per head too) and
rank_frequency.png, and prints the acceptance table.

Example:
    $ python analysis/evaluate_vqvae.py --config versions/vqvae-wiki/config.json
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kerasvq.cli import main  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--model", default=None)
    parser.add_argument("--queries", type=int, default=1000)
    args = parser.parse_args()
    argv = ["vqvae", "evaluate", "--config", args.config, "--queries", str(args.queries)]
    argv += [item for s in args.set for item in ("--set", s)]
    argv += ["--model", args.model] if args.model else []
    sys.exit(main(argv))
