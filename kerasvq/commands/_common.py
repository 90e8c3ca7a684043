"""Options and helpers shared by the analysis verbs (`evaluate`, `sample`, `compare`,
`report`, `attention`); the leading underscore keeps this module from being a verb itself.

The defaults point at the checkout's `analysis/` folder (the model registry and the team's
pt-BR prompts), whatever the current folder, as the `analysis/*.py` scripts always did.

Example:
    >>> parser = argparse.ArgumentParser()
    >>> add_registry_option(parser); add_lexicon_option(parser)
"""

from __future__ import annotations

from pathlib import Path

ANALYSIS_DIR = Path(__file__).resolve().parents[2] / "analysis"
DEFAULT_REGISTRY = ANALYSIS_DIR / "model_registry.json"
DEFAULT_PROMPTS = ANALYSIS_DIR / "prompts_ptbr.txt"
DEFAULT_ATTENTION_PROMPT = "O setor de infraestrutura logística brasileira debate"


def add_registry_option(parser) -> None:
    parser.add_argument("--registry", default=str(DEFAULT_REGISTRY),
                        help="model registry JSON (key → versions/.../<run>.keras)")


def add_lexicon_option(parser) -> None:
    parser.add_argument("--wbrazilian", action="store_true",
                        help="add Debian's wbrazilian word list (apt-get download into the kerasvq cache)")


def prepare_lexicon(args) -> None:
    """Fetches the optional word list before any scoring, when `--wbrazilian` was given."""
    if args.wbrazilian:
        from kerasvq.metrics.lexicon import fetch_wbrazilian

        fetch_wbrazilian()


def write_json(path, data) -> None:
    """Writes `data` as strict JSON (NaN → null) and says so."""
    from kerasvq.config.base import save_json

    save_json(path, data)
    print(f"wrote {path}")
