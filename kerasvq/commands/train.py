"""`kerasvq train`: train a language model from a version's config.

Example:
    $ kerasvq train --config versions/v5-transformer/config.json --run-name v5_fixed
    $ kerasvq train --config versions/v5-transformer/config.json --quick
"""

# A CPU-sized token budget for `--quick`: the real config, corpus, tokenizer and callbacks,
# but training stops after QUICK_STEPS optimizer steps (logged as a max_steps cap) and the
# peak learning rate is raised so that so few steps still learn. Measured: 5 minutes on 2 cores
# with the corpus and tokenizer cached (about 8 the first time, which builds both).
QUICK_STEPS = 200
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
                        help=f"a short CPU run: {' '.join(QUICK_OVERRIDES)}")
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
    train_language_model(cfg, run_name, overwrite=args.overwrite)
    return 0
