"""Evaluates and samples several models on the same text and prompts; writes a comparison
JSON and a markdown table (plus each model's results and samples JSON).

    python analysis/compare_versions.py --model-keys v4_lstm v5_brwac_transformer_fixed \
        --output-dir analysis/artifacts/compare

With `--reuse DIR ...`, models whose results_<key>.json and samples_<key>.json are already in
one of those folders (from an earlier run, or another machine) are read instead of evaluated.
"""

import argparse
from pathlib import Path

from _common import (  # noqa: E402
    DEFAULT_PROMPTS, DEFAULT_REGISTRY, add_lexicon_option, main_wrapper, prepare_lexicon, write_json,
)


def run():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-keys", nargs="+", required=True, help="registry keys or .keras paths")
    parser.add_argument("--output-dir", default="analysis/artifacts/compare")
    parser.add_argument("--corpus", help="held-out text for every model (default: each run's own val split)")
    parser.add_argument("--prompts", default=str(DEFAULT_PROMPTS))
    parser.add_argument("--max-tokens", type=int, help="score whole documents up to about this many tokens")
    parser.add_argument("--max-new-tokens", type=int)
    parser.add_argument("--registry", default=str(DEFAULT_REGISTRY))
    parser.add_argument("--reuse", nargs="+", default=[], metavar="DIR",
                        help="folders with earlier results_<key>.json/samples_<key>.json to read instead of evaluating")
    add_lexicon_option(parser)
    args = parser.parse_args()
    prepare_lexicon(args)

    from kerasvq.comparison import compare, comparison_markdown, gather_evaluations
    from kerasvq.registry import resolve_model
    from kerasvq.samples import read_prompts, settings_with

    resolved = [resolve_model(k, args.registry) for k in args.model_keys]
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


if __name__ == "__main__":
    main_wrapper(run)
