"""`kerasvq train`: train a language model from a version's config.

Example:
    $ kerasvq train --config versions/v5-transformer/config.json --run-name v5_fixed
    $ kerasvq train --config versions/v5-transformer/config.json --quick
"""

import time

# `--quick` is a wall-clock budget, so the first command fits any machine: the real config,
# corpus, tokenizer and callbacks, but training stops QUICK_MINUTES after its first step (or
# at QUICK_STEPS, which also sets the learning-rate schedule's length), validation reads
# QUICK_VAL_WINDOWS evenly spaced windows of the val split, and the peak learning rate is
# raised so that so few steps still learn. What it leaves is a run named 'quick' like any
# other (model, history, TensorBoard), trained for however many steps the budget allowed.
QUICK_MINUTES = 5.0
QUICK_STEPS = 200
QUICK_VAL_WINDOWS = 64
QUICK_OVERRIDES = [f"train.max_steps={QUICK_STEPS}", "train.learning_rate=2e-3",
                   "train.warmup_fraction=0.1", "train.batch_size=16"]


def register(subparsers):
    parser = subparsers.add_parser("train", help="train a language model from a config")
    parser.add_argument("--config", required=True, help="versions/<name>/config.json")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="SECTION.FIELD=VALUE", help="override a config field (repeatable)")
    parser.add_argument("--corpus", help="corpus file or folder (overrides data.corpus)")
    parser.add_argument("--run-name", default=None,
                        help="name of this run's artifacts (default: 'main', or 'quick' with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help=f"a short CPU run: training stops {QUICK_MINUTES:g} minutes after its first "
                             f"step, validation on {QUICK_VAL_WINDOWS} windows; {' '.join(QUICK_OVERRIDES)}")
    parser.add_argument("--minutes", type=float, default=None,
                        help=f"training budget in minutes from the first step (default with --quick: "
                             f"{QUICK_MINUTES:g}; none otherwise)")
    parser.add_argument("--overwrite", action="store_true", help="replace a finished run of that name")
    add_distribution_flag(parser)
    parser.set_defaults(func=run)


def add_distribution_flag(parser):
    parser.add_argument("--distribution", choices=["none", "data_parallel"],
                        help="data_parallel: train on every visible GPU of this host (--set "
                             "train.devices=N for fewer); train.batch_size stays the global batch")


def distribution_overrides(args) -> list[str]:
    chosen = getattr(args, "distribution", None)
    return [f"train.distribution={chosen}"] if chosen else []


def run(args):
    from kerasvq.config.lm import load_lm_config
    from kerasvq.training.run import train_language_model

    overrides = (list(QUICK_OVERRIDES if args.quick else []) + list(args.overrides)
                 + distribution_overrides(args))
    if args.corpus:
        overrides.append(f"data.corpus={args.corpus}")
    cfg = load_lm_config(args.config, overrides)
    run_name = args.run_name or ("quick" if args.quick else "main")
    minutes = args.minutes if args.minutes is not None else (QUICK_MINUTES if args.quick else None)
    if minutes is not None and not minutes > 0:
        from kerasvq.common.errors import UserError

        raise UserError(f"--minutes: expected a positive number of minutes, got {minutes}")
    start = time.perf_counter()
    best = train_language_model(cfg, run_name, overwrite=args.overwrite, budget_minutes=minutes,
                                val_windows=QUICK_VAL_WINDOWS if args.quick else None)
    print(f"done in {(time.perf_counter() - start) / 60:.1f} min: run '{run_name}' of {cfg.name}, "
          f"best epoch {best['epoch']} val_loss {best['val_loss']:.4f} "
          f"(perplexity {best['val_perplexity']:.1f}, {best['steps']} steps in its last epoch)")
    return 0
