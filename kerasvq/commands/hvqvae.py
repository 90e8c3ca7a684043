"""`kerasvq hvqvae train|evaluate`: the hierarchical categorical VQ-VAE over grouped features.

Example:
    $ kerasvq hvqvae train --config versions/hvqvae-demo/config.yaml --set train.epochs=2
    $ kerasvq hvqvae train --config versions/hvqvae-demo/config.yaml --set train.epochs=4 --resume
    $ kerasvq hvqvae evaluate --config versions/hvqvae-demo/config.yaml
"""

from __future__ import annotations


def register(subparsers):
    p = subparsers.add_parser("hvqvae", help="train or evaluate the hierarchical VQ-VAE over grouped features")
    sub = p.add_subparsers(dest="action", required=True)
    for action, helptext in (("train", "train per config (YAML or JSON)"),
                             ("evaluate", "test-split metrics next to per-category PCA")):
        a = sub.add_parser(action, help=helptext)
        a.add_argument("--config", required=True)
        a.add_argument("--set", action="append", default=[], metavar="section.field=value")
        if action == "train":
            a.add_argument("--resume", action="store_true",
                           help="continue a finished run checkpointed in train.checkpoint_dir with more "
                                "epochs (a killed run continues without it)")
            a.add_argument("--overwrite", action="store_true", help="replace the existing run")
        else:
            a.add_argument("--model", default=None, help=".keras file (default versions/<name>/models/hvqvae.keras)")
    p.set_defaults(func=run)


def run(args) -> int:
    from kerasvq.config.hvqvae import load_hvqvae_config

    cfg = load_hvqvae_config(args.config, args.set)
    if args.action == "train":
        from kerasvq.training.hvqvae_run import train_hvqvae

        _, summary = train_hvqvae(cfg, resume=args.resume, overwrite=args.overwrite)
        print(f"trained epochs {summary['first_epoch']}..{summary['epochs']} in "
              f"{summary['training_seconds']:.0f} s → {summary['model']}")
        return 0
    from kerasvq.metrics.hvqvae import format_markdown
    from kerasvq.paths import version_dir
    from kerasvq.training.hvqvae_run import evaluate_hvqvae

    results = evaluate_hvqvae(cfg, args.model)
    print(format_markdown(results))
    print(f"→ {version_dir(cfg.name) / 'results' / 'evaluation.json'}")
    return 0
