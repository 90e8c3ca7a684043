"""`kerasvq vqvae train|evaluate|health`: train the 4-byte sentence-embedding VQ-VAE and judge it.

`health` exits 0 when every head is healthy, 1 when any is collapsed (usage < 10% or one
code > 50%), 2 on bad input.

Example:
    $ kerasvq vqvae train --config versions/vqvae-wiki/config.json --set train.epochs=2
    $ kerasvq vqvae evaluate --config versions/vqvae-wiki/config.json
    $ kerasvq vqvae health --model versions/vqvae-wiki/models/vqvae.keras --embeddings x.h5
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
    h = sub.add_parser("health", help="per-head collapse check; exit 1 when any head is collapsed")
    h.add_argument("--model", default=None, help=".keras file (default: VQVAE.load_default())")
    add_health_arguments(h, "embeddings", "an .h5/.hdf5 or .npy file of (rows, input_dim) vectors")
    p.set_defaults(func=run)


def add_health_arguments(parser, data_flag: str, data_help: str):
    parser.add_argument(f"--{data_flag}", required=True, help=data_help)
    parser.add_argument("--dataset", default=None, help="HDF5 dataset name (default: the file kind's usual one)")
    parser.add_argument("--json", default=None, help="report path (default <model>.health.json)")
    parser.add_argument("--sample", type=int, default=2000, help="rows decoded for the reconstruction metrics")
    parser.add_argument("--max-rows", type=int, default=100_000, help="rows the code statistics use")


def write_health(report: dict, model_path: Path, json_path) -> int:
    """Prints the report, writes its JSON; exit status 1 when any head is collapsed."""
    from kerasvq.config.base import save_json
    from kerasvq.metrics.vq_health import format_health

    path = Path(json_path) if json_path else model_path.with_name(model_path.name + ".health.json")
    save_json(path, {"model": str(model_path), **report})
    print(format_health(report))
    print(f"→ {path}")
    return 0 if report["healthy"] else 1


def health(args) -> int:
    import keras

    import numpy as np

    from kerasvq.data.embeddings import DEFAULT_DATASET, EmbeddingFile
    from kerasvq.common.errors import UserError
    from kerasvq.metrics.vq_health import vqvae_health
    from kerasvq.models.vqvae import VQVAE

    model_path = Path(args.model) if args.model else VQVAE.default_model_path()
    if not model_path.is_file():
        raise UserError(f"{model_path}: model not found")
    model = keras.saving.load_model(model_path)
    if not isinstance(model, VQVAE):
        raise UserError(f"{model_path}: expected a VQVAE model, got {type(model).__name__}")
    source = EmbeddingFile(args.embeddings, model.input_dim, args.dataset or DEFAULT_DATASET)
    try:
        rows = np.random.default_rng(0).permutation(len(source))[: args.max_rows]
        x = source.take(np.sort(rows))
    finally:
        source.close()
    return write_health(vqvae_health(model, x, args.max_rows, args.sample), model_path, args.json)


def run(args) -> int:
    if args.action == "health":
        return health(args)
    from kerasvq.config.vqvae import load_vqvae_config
    from kerasvq.common.paths import version_dir

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
    lines = [f"{'method':16s} " + " ".join(f"{c:>15s}" for c in cols + ("fit_seconds", "encode_seconds"))]
    for name, r in results.get("methods", results).items():
        timing = " ".join(f"{r[c]:15.2f}" if c in r else f"{'-':>15s}" for c in ("fit_seconds", "encode_seconds"))
        lines.append(f"{name:16s} " + " ".join(f"{r[c]:15.4f}" for c in cols) + " " + timing)
    return "\n".join(lines)
