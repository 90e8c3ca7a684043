"""Draws a prompt's attention weights, one PNG per layer with a panel per head.

    python analysis/plot_attention.py --model v5_brwac_transformer_fixed \
        --prompt "O setor de infraestrutura logística brasileira debate" --output-dir analysis/artifacts/attention
"""

import argparse

from _common import DEFAULT_REGISTRY, main_wrapper


def run():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="registry key or a .keras path (a Transformer)")
    parser.add_argument("--prompt", default="O setor de infraestrutura logística brasileira debate")
    parser.add_argument("--output-dir", default="analysis/artifacts/attention")
    parser.add_argument("--registry", default=str(DEFAULT_REGISTRY))
    args = parser.parse_args()

    from kerasvq.attention import attention_maps
    from kerasvq.registry import resolve_model
    from kerasvq.runs import load_trained_model

    key, path, _ = resolve_model(args.model, args.registry)
    model, _, tokenizer = load_trained_model(path)
    for png in attention_maps(model, tokenizer, args.prompt, args.output_dir, f"attention_{key}"):
        print(f"wrote {png}")


if __name__ == "__main__":
    main_wrapper(run)
