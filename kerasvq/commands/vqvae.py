"""`kerasvq vqvae train|evaluate`: train the 4-byte sentence-embedding VQ-VAE and judge it.

Example:
    $ kerasvq vqvae train --config versions/vqvae-wiki/config.json --set train.epochs=2
    $ kerasvq vqvae evaluate --config versions/vqvae-wiki/config.json
"""

from __future__ import annotations

from pathlib import Path

from kerasvq.commands.train import add_distribution_flag, distribution_overrides


def register(subparsers):
    p = subparsers.add_parser("vqvae", help="train or evaluate the sentence-embedding VQ-VAE")
    sub = p.add_subparsers(dest="action", required=True)
    for action, helptext in (("train", "train per config"), ("evaluate", "held-out metrics next to FAISS")):
        a = sub.add_parser(action, help=helptext)
        a.add_argument("--config", required=True)
        a.add_argument("--set", action="append", default=[], metavar="section.field=value")
        a.add_argument("--out", default=None, help="output folder (default versions/<name>)")
        if action == "evaluate":
            a.add_argument("--model", default=None, help=".keras file (default <out>/models/vqvae.keras)")
            a.add_argument("--no-faiss", action="store_true")
            a.add_argument("--queries", type=int, default=1000)
        else:
            add_distribution_flag(a)
            a.add_argument("--overwrite", action="store_true", help="replace a finished run in that folder")
    p.set_defaults(func=run)


def run(args) -> int:
    from kerasvq.config.vqvae import load_vqvae_config
    from kerasvq.paths import version_dir

    cfg = load_vqvae_config(args.config, args.set + distribution_overrides(args))
    out = Path(args.out) if args.out else version_dir(cfg.name)
    if args.action == "train":
        from kerasvq.training.vqvae_run import train_vqvae

        _, summary = train_vqvae(cfg, out, overwrite=args.overwrite)
        print(f"trained epochs {summary['first_epoch']}..{summary['epochs']} in "
              f"{summary['training_seconds']:.0f} s → {summary['model']}")
        return 0
    from kerasvq.training.vqvae_run import evaluate_run

    results = evaluate_run(cfg, out, args.model, not args.no_faiss, args.queries)
    print(format_table(results))
    return 0


def format_table(results: dict) -> str:
    cols = ("min_usage", "max_share", "mean_perplexity", "cosine", "relative_error", "recall_at_10")
    lines = [f"{'method':14s} " + " ".join(f"{c:>15s}" for c in cols)]
    for name, r in results.get("methods", results).items():
        lines.append(f"{name:14s} " + " ".join(f"{r[c]:15.4f}" for c in cols))
    return "\n".join(lines)
