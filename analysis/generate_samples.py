"""Continues fixed pt-BR prompts with a trained LM and writes a samples JSON with metrics.

    python analysis/generate_samples.py --model-key v5_brwac_transformer_fixed \
        --output analysis/artifacts/samples/samples_v5_fixed.json
"""

import argparse

from _common import (  # noqa: E402
    DEFAULT_PROMPTS, DEFAULT_REGISTRY, add_lexicon_option, main_wrapper, prepare_lexicon, write_json,
)


def run():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-key", required=True, help="registry key or a versions/.../<run>.keras path")
    parser.add_argument("--output", required=True, help="samples JSON to write")
    parser.add_argument("--prompts", default=str(DEFAULT_PROMPTS), help="one prompt per line")
    parser.add_argument("--max-new-tokens", type=int, help="override the settings' length (default 60)")
    parser.add_argument("--seed", type=int, help="override the sampled setting's seed")
    parser.add_argument("--corpus", help="human baseline from the val split of this corpus")
    parser.add_argument("--registry", default=str(DEFAULT_REGISTRY))
    add_lexicon_option(parser)
    args = parser.parse_args()
    prepare_lexicon(args)

    from kerasvq.registry import resolve_model

    key, path, _ = resolve_model(args.model_key, args.registry)
    from kerasvq.samples import read_prompts, sample_run, settings_with

    record = sample_run(path, read_prompts(args.prompts), settings_with(args.max_new_tokens, args.seed),
                        model_key=key, corpus=args.corpus)
    human = record["human_baseline"]
    print(f"human baseline: validity {human['word_validity']:.3f}, seq-rep-4 {human['seq_rep_4']:.3f}")
    for name, s in record["summary"].items():
        print(f"{name}: validity {s['word_validity']:.3f}, seq-rep-4 {s['seq_rep_4']:.3f}, "
              f"distinct-2 {s['distinct_2']:.3f} → {s['verdict']['label']} {s['sample_verdicts']}")
    write_json(args.output, record)


if __name__ == "__main__":
    main_wrapper(run)
