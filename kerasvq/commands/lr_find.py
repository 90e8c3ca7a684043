"""`kerasvq lr-find`: a learning-rate range test on a config's real training windows.

Example:
    $ kerasvq lr-find --config versions/v5-transformer/config.json --steps 300
"""


def register(subparsers):
    parser = subparsers.add_parser("lr-find", help="learning-rate range test (loss vs LR plot)")
    parser.add_argument("--config", required=True)
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="SECTION.FIELD=VALUE")
    parser.add_argument("--min-lr", type=float, default=1e-6)
    parser.add_argument("--max-lr", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--output", help="PNG path (default versions/<name>/results/lr_find.png); "
                                         "the JSON goes beside it")
    parser.set_defaults(func=run)


def run(args):
    from pathlib import Path

    from kerasvq.config.base import save_json
    from kerasvq.config.lm import load_lm_config
    from kerasvq.common.errors import UserError
    from kerasvq.common.paths import version_dir
    from kerasvq.training.lr_range_test import lr_range_test, plot_lr_range_test

    if not 0 < args.min_lr < args.max_lr:
        raise UserError(f"--min-lr ({args.min_lr}) must be positive and below --max-lr ({args.max_lr})")
    cfg = load_lm_config(args.config, args.overrides)
    output = Path(args.output or version_dir(cfg.name) / "results" / "lr_find.png")
    output.parent.mkdir(parents=True, exist_ok=True)
    result = lr_range_test(cfg, args.min_lr, args.max_lr, args.steps)
    save_json(output.with_suffix(".json"), result)
    plot_lr_range_test(result, output)
    print(f"suggested peak learning rate: {result['suggested_lr']:.3g} (steepest descent); "
          f"{result['min_loss_lr_over_10']:.3g} (minimum / 10); plot: {output}")
    return 0
