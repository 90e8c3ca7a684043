"""`kerasvq hvqvae train|evaluate|health`: the hierarchical categorical VQ-VAE over grouped features.

`health` checks every (level, category) codebook: exit 0 when all are healthy, 1 when any is
collapsed (usage < 10% or one code > 50%), 2 on bad input.

Example:
    $ kerasvq hvqvae train --config versions/hvqvae-demo/config.yaml --set train.epochs=2
    $ kerasvq hvqvae train --config versions/hvqvae-demo/config.yaml --set train.epochs=4 --resume
    $ kerasvq hvqvae evaluate --config versions/hvqvae-demo/config.yaml
    $ kerasvq hvqvae health --model versions/hvqvae-demo/models/hvqvae.keras --features f.h5
"""

from __future__ import annotations

from kerasvq.commands.vqvae import add_health_arguments


def register(subparsers):
    p = subparsers.add_parser("hvqvae", help="train or evaluate the hierarchical VQ-VAE over grouped features")
    sub = p.add_subparsers(dest="action", required=True)
    for action, helptext in (("train", "train per config (YAML or JSON)"),
                             ("evaluate", "test-split metrics next to equal-bits baselines (residual k-means, FAISS RQ, PCA + scalar quantization)")):
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
    h = sub.add_parser("health", help="per level and category collapse check; exit 1 when any is collapsed")
    h.add_argument("--model", required=True, help=".keras file")
    add_health_arguments(h, "features", "the feature file (HDF5) the model was trained on")
    p.set_defaults(func=run)


def health(args) -> int:
    from pathlib import Path

    import keras

    from kerasvq.commands.vqvae import write_health
    from kerasvq.data.features import DEFAULT_FEATURES_DATASET, read_features
    from kerasvq.common.errors import UserError
    from kerasvq.metrics.vq_health import hvqvae_health
    from kerasvq.models.hierarchical_vqvae import HierarchicalVQVAE

    model_path = Path(args.model)
    if not model_path.is_file():
        raise UserError(f"{model_path}: model not found")
    model = keras.saving.load_model(model_path)
    if not isinstance(model, HierarchicalVQVAE):
        raise UserError(f"{model_path}: expected a HierarchicalVQVAE model, got {type(model).__name__}")
    table = read_features(Path(args.features).expanduser(), args.dataset or DEFAULT_FEATURES_DATASET)
    if table.values.shape[1] != model.num_features:
        raise UserError(f"{table.path}: feature count mismatch: the model expects {model.num_features} "
                        f"features, the file has {table.values.shape[1]}")
    return write_health(hvqvae_health(model, table.values, args.max_rows, args.sample), model_path, args.json)


def run(args) -> int:
    if args.action == "health":
        return health(args)
    from kerasvq.config.hvqvae import load_hvqvae_config

    cfg = load_hvqvae_config(args.config, args.set)
    if args.action == "train":
        from kerasvq.training.hvqvae_run import train_hvqvae

        _, summary = train_hvqvae(cfg, resume=args.resume, overwrite=args.overwrite)
        print(f"trained epochs {summary['first_epoch']}..{summary['epochs']} in "
              f"{summary['training_seconds']:.0f} s → {summary['model']}")
        return 0
    from kerasvq.metrics.hvqvae import format_markdown
    from kerasvq.common.paths import version_dir
    from kerasvq.training.hvqvae_run import evaluate_hvqvae

    results = evaluate_hvqvae(cfg, args.model)
    print(format_markdown(results))
    print(f"→ {version_dir(cfg.name) / 'results' / 'evaluation.json'}")
    return 0
