"""`kerasvq sample`: continue fixed pt-BR prompts with a trained LM → samples JSON with metrics.

Every prompt runs under the greedy and the sampled setting; each sample gets degeneration
metrics and a verdict against held-out human text (schema and thresholds in
`analysis/README.md`). `analysis/generate_samples.py` is this verb under its old name.

Example:
    $ kerasvq sample --model v5_brwac_transformer_fixed \
        --output analysis/artifacts/samples/samples_v5_fixed.json
"""

from __future__ import annotations

from kerasvq.commands._common import (
    DEFAULT_PROMPTS, add_lexicon_option, add_registry_option, prepare_lexicon, write_json,
)


def register(subparsers):
    parser = subparsers.add_parser("sample", help="continue fixed prompts with an LM → samples JSON",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", "--model-key", dest="model", required=True,
                        help="registry key or a versions/.../<run>.keras path")
    parser.add_argument("--output", required=True, help="samples JSON to write")
    parser.add_argument("--prompts", default=str(DEFAULT_PROMPTS), help="one prompt per line")
    parser.add_argument("--max-new-tokens", type=int, help="override the settings' length (default 60)")
    parser.add_argument("--seed", type=int, help="override the sampled setting's seed")
    parser.add_argument("--corpus", help="human baseline from the val split of this corpus")
    add_registry_option(parser)
    add_lexicon_option(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from kerasvq.evaluation.registry import resolve_model
    from kerasvq.evaluation.samples import read_prompts, sample_run, settings_with

    prepare_lexicon(args)
    key, path, _ = resolve_model(args.model, args.registry)
    record = sample_run(path, read_prompts(args.prompts), settings_with(args.max_new_tokens, args.seed),
                        model_key=key, corpus=args.corpus)
    human = record["human_baseline"]
    print(f"human baseline: validity {human['word_validity']:.3f}, seq-rep-4 {human['seq_rep_4']:.3f}")
    for name, s in record["summary"].items():
        print(f"{name}: validity {s['word_validity']:.3f}, seq-rep-4 {s['seq_rep_4']:.3f}, "
              f"distinct-2 {s['distinct_2']:.3f} → {s['verdict']['label']} {s['sample_verdicts']}")
    write_json(args.output, record)
    return 0
