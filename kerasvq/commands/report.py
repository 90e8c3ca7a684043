"""`kerasvq report`: the TCC report (markdown + PNG figures) from a comparison JSON.

`analysis/report.py` is this verb under its old name.

Example:
    $ kerasvq compare --models v4_lstm v5_brwac_transformer_fixed
    $ kerasvq report --comparison analysis/artifacts/compare/comparison.json \
        --output-dir analysis/artifacts/report --attention-model v5_brwac_transformer_fixed
"""

from __future__ import annotations

from kerasvq.commands._common import DEFAULT_ATTENTION_PROMPT, add_registry_option


def register(subparsers):
    parser = subparsers.add_parser("report", help="markdown report + figures from a comparison JSON",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("--comparison", default="analysis/artifacts/compare/comparison.json")
    parser.add_argument("--output-dir", default="analysis/artifacts/report")
    parser.add_argument("--attention-model", help="registry key of a Transformer whose attention to draw")
    parser.add_argument("--attention-prompt", default=DEFAULT_ATTENTION_PROMPT)
    parser.add_argument("--title", default="Language-model evaluation")
    add_registry_option(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from kerasvq.commands.attention import draw_attention
    from kerasvq.config.base import load_json
    from kerasvq.evaluation.report import build_report

    attention = []
    if args.attention_model:
        attention = draw_attention(args.attention_model, args.registry, args.attention_prompt, args.output_dir)
    path = build_report(load_json(args.comparison), args.output_dir, attention, args.title)
    print(f"wrote {path}")
    return 0
