"""`kerasvq attention`: a prompt's attention weights, one PNG per layer with a panel per head.

Only Transformer models have attention to draw. `analysis/plot_attention.py` is this verb
under its old name; `kerasvq report --attention-model` draws the same maps into a report.

Example:
    $ kerasvq attention --model v5_brwac_transformer_fixed \
        --prompt "O setor de infraestrutura logística brasileira debate" --output-dir analysis/artifacts/attention
"""

from __future__ import annotations

from pathlib import Path

from kerasvq.commands._common import DEFAULT_ATTENTION_PROMPT, add_registry_option


def register(subparsers):
    parser = subparsers.add_parser("attention", help="a prompt's attention heatmaps, one PNG per layer",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="registry key or a .keras path (a Transformer)")
    parser.add_argument("--prompt", default=DEFAULT_ATTENTION_PROMPT)
    parser.add_argument("--output-dir", default="analysis/artifacts/attention")
    add_registry_option(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    for png in draw_attention(args.model, args.registry, args.prompt, args.output_dir):
        print(f"wrote {png}")
    return 0


def draw_attention(model_key: str, registry: str, prompt: str, output_dir: str) -> list[Path]:
    """Writes `attention_<key>_layer<i>.png` into `output_dir` for the model `model_key`
    names (a registry key or a `.keras` path); returns the paths."""
    from kerasvq.evaluation.attention_maps import attention_maps
    from kerasvq.evaluation.registry import resolve_model
    from kerasvq.evaluation.trained_model import load_trained_model

    key, path, _ = resolve_model(model_key, registry)
    model, _, tokenizer = load_trained_model(path)
    return attention_maps(model, tokenizer, prompt, output_dir, f"attention_{key}")
