"""Builds the TCC report (markdown + PNG figures) from a comparison JSON.

    python analysis/compare_versions.py --model-keys v4_lstm v5_brwac_transformer_fixed
    python analysis/report.py --comparison analysis/artifacts/compare/comparison.json \
        --output-dir analysis/artifacts/report --attention-model v5_brwac_transformer_fixed
"""

import argparse

from _common import DEFAULT_REGISTRY, main_wrapper


def run():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comparison", default="analysis/artifacts/compare/comparison.json")
    parser.add_argument("--output-dir", default="analysis/artifacts/report")
    parser.add_argument("--attention-model", help="registry key of a Transformer whose attention to draw")
    parser.add_argument("--attention-prompt", default="O setor de infraestrutura logística brasileira debate")
    parser.add_argument("--title", default="Language-model evaluation")
    parser.add_argument("--registry", default=str(DEFAULT_REGISTRY))
    args = parser.parse_args()

    from kerasvq.config.base import load_json
    from kerasvq.report import build_report

    attention = []
    if args.attention_model:
        from kerasvq.attention import attention_maps
        from kerasvq.registry import resolve_model
        from kerasvq.runs import load_trained_model

        key, path, _ = resolve_model(args.attention_model, args.registry)
        model, _, tokenizer = load_trained_model(path)
        attention = attention_maps(model, tokenizer, args.attention_prompt, args.output_dir, f"attention_{key}")
    path = build_report(load_json(args.comparison), args.output_dir, attention, args.title)
    print(f"wrote {path}")


if __name__ == "__main__":
    main_wrapper(run)
