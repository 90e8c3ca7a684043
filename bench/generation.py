"""Generation speed with and without the KV cache, on a v5-shaped Transformer (random weights).

    python bench/generation.py [--batch 8] [--new-tokens 32] [--prompt-len 16]
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from kerasvq.generation import generate  # noqa: E402
from kerasvq.models.transformer_lm import TransformerLM  # noqa: E402
from kerasvq.sampling import SamplingConfig  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--prompt-len", type=int, default=16)
    args = parser.parse_args()
    model = TransformerLM(vocab_size=4000, seq_len=256, d_model=256, num_layers=4, num_heads=8, d_ff=1024)
    model(np.zeros((1, 8), "int32"))
    prompts = np.random.default_rng(0).integers(2, 4000, (args.batch, args.prompt_len)).tolist()
    cfg = SamplingConfig(greedy=True, max_new_tokens=args.new_tokens, stop_at_eos=False)
    print(f"{'path':<10} {'seconds':>8} {'new tokens/s':>13}")
    for use_cache in (True, False):
        generate(model, prompts, cfg, use_cache=use_cache)  # compiles
        start = time.perf_counter()
        generate(model, prompts, cfg, use_cache=use_cache)
        seconds = time.perf_counter() - start
        name = "cached" if use_cache else "uncached"
        print(f"{name:<10} {seconds:>8.2f} {args.batch * args.new_tokens / seconds:>13.1f}")


if __name__ == "__main__":
    main()
