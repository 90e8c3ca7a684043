"""Shared argument handling of the analysis scripts (kept here so each script stays thin)."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing the package

DEFAULT_REGISTRY = HERE / "model_registry.json"
DEFAULT_PROMPTS = HERE / "prompts_ptbr.txt"


def main_wrapper(run):
    """Runs `run()`; a `UserError` becomes one `error:` line and exit status 2."""
    from kerasvq.errors import UserError

    try:
        sys.exit(run() or 0)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


def add_lexicon_option(parser):
    parser.add_argument("--wbrazilian", action="store_true",
                        help="add Debian's wbrazilian word list (apt-get download into the kerasvq cache)")


def prepare_lexicon(args):
    """Fetches the optional word list before any scoring, when `--wbrazilian` was given."""
    if args.wbrazilian:
        from kerasvq.metrics.lexicon import fetch_wbrazilian

        fetch_wbrazilian()


def write_json(path, data):
    from kerasvq.config.base import save_json
    from kerasvq.comparison import json_ready

    save_json(path, json_ready(data))
    print(f"wrote {path}")
