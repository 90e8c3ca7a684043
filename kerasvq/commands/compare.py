"""`kerasvq compare`: several LMs evaluated and sampled on the same text and prompts →
comparison JSON and markdown table, plus each model's results and samples JSON.

With `--reuse DIR ...`, models whose results_<key>.json and samples_<key>.json are already in
one of those folders (from an earlier run, or another machine) are read instead of evaluated.
`analysis/compare_versions.py` is this verb under its old name.

Example:
    $ kerasvq compare --models v4_lstm v5_brwac_transformer_fixed --output-dir analysis/artifacts/compare
"""

from __future__ import annotations

from pathlib import Path

from kerasvq.commands._common import (
    DEFAULT_PROMPTS, add_lexicon_option, add_registry_option, prepare_lexicon, write_json,
)


def register(subparsers):
    parser = subparsers.add_parser("compare", help="several LMs side by side → comparison JSON + markdown",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", "--model-keys", dest="models", nargs="+", required=True,
                        help="registry keys or .keras paths")
    parser.add_argument("--output-dir", default="analysis/artifacts/compare")
    parser.add_argument("--corpus", help="held-out text for every model (default: each run's own val split)")
    parser.add_argument("--prompts", default=str(DEFAULT_PROMPTS))
    parser.add_argument("--max-tokens", type=int, help="score whole documents up to about this many tokens")
    parser.add_argument("--max-new-tokens", type=int)
    add_registry_option(parser)
    parser.add_argument("--reuse", nargs="+", default=[], metavar="DIR",
                        help="folders with earlier results_<key>.json/samples_<key>.json to read instead of evaluating")
    add_lexicon_option(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from kerasvq.evaluation.comparison import compare, comparison_markdown, gather_evaluations
    from kerasvq.evaluation.registry import resolve_model
    from kerasvq.evaluation.samples import read_prompts, settings_with

    prepare_lexicon(args)
    resolved = [resolve_model(k, args.registry) for k in args.models]
    results, samples = gather_evaluations(
        [(key, path) for key, path, _ in resolved], args.reuse, read_prompts(args.prompts),
        settings_with(args.max_new_tokens), args.corpus, args.max_tokens)
    out = Path(args.output_dir)
    for (key, _, _), r, s in zip(resolved, results, samples):
        write_json(out / f"results_{key}.json", r)
        write_json(out / f"samples_{key}.json", s)
    comp = compare(results, samples, [entry.get("label") for _, _, entry in resolved])
    write_json(out / "comparison.json", comp)
    table = comparison_markdown(comp)
    (out / "comparison.md").write_text(table, encoding="utf-8")
    print(table)
    print(f"wrote {out / 'comparison.md'}")
    return 0
