"""Greedy generation speed of a v5-shaped Transformer (random weights), with and without the
KV cache, next to keras-hub's `GPT2CausalLM.generate` with a backbone of the same shape.

    python bench/generation.py --batches 1 8 --new-tokens 32               # CPU
    KERAS_BACKEND=jax python bench/generation.py --batches 1 32 --new-tokens 240 --keras-hub \
        --steps-per-check 1 16 --unfused

"kerasvq cached/16" is the compiled greedy loop checking for the end every 16 tokens, with
fused Pallas decode kernels where they apply (JAX on a GPU: at batch 1 one persistent kernel
for the whole loop); "keras.ops cached/16" is the same
loop with the model's own `call_with_cache` step. Each time is the best of five calls
after two warm-up calls (the first compiles), the same for every path.
"""

import argparse
import time

import numpy as np

from kerasvq.generation.generate import STEPS_PER_CHECK, generate
from kerasvq.models.transformer_lm import TransformerLM
from kerasvq.generation.sampling import SamplingConfig

SHAPE = dict(vocab_size=4000, seq_len=256, d_model=256, num_layers=4, num_heads=8, d_ff=1024)


REPEATS = 5


def timed(fn):
    fn()  # compiles
    fn()
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def kerasvq_speed(prompts, new_tokens, use_cache, steps_per_check=STEPS_PER_CHECK, fused=None):
    model = TransformerLM(**SHAPE, dropout=0.0)
    model(np.zeros((1, 8), "int32"))
    cfg = SamplingConfig(greedy=True, max_new_tokens=new_tokens, stop_at_eos=False)
    return timed(lambda: generate(model, prompts.tolist(), cfg, use_cache=use_cache,
                                  steps_per_check=steps_per_check, fused=fused))


def keras_hub_speed(prompts, new_tokens):
    import keras_hub

    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=SHAPE["vocab_size"], num_layers=SHAPE["num_layers"],
        num_heads=SHAPE["num_heads"], hidden_dim=SHAPE["d_model"],
        intermediate_dim=SHAPE["d_ff"], max_sequence_length=SHAPE["seq_len"], dropout=0.0,
    )
    causal_lm = keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None, sampler="greedy")
    batch, prompt_len = prompts.shape
    token_ids = np.zeros((batch, prompt_len + new_tokens), "int32")
    token_ids[:, :prompt_len] = prompts
    padding_mask = np.zeros_like(token_ids, dtype=bool)
    padding_mask[:, :prompt_len] = True
    inputs = {"token_ids": token_ids, "padding_mask": padding_mask}
    return timed(lambda: causal_lm.generate(inputs, stop_token_ids=None))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--prompt-len", type=int, default=16)
    parser.add_argument("--steps-per-check", type=int, nargs="+", default=[STEPS_PER_CHECK],
                        help="decode steps between end-of-generation checks (one row each)")
    parser.add_argument("--uncached", action="store_true", help="also time the uncached path")
    parser.add_argument("--unfused", action="store_true",
                        help="also time the cached loop without the fused decode kernels")
    parser.add_argument("--keras-hub", action="store_true", help="also time keras-hub's GPT2CausalLM")
    args = parser.parse_args()
    rows = []
    for batch in args.batches:
        prompts = np.random.default_rng(0).integers(2, SHAPE["vocab_size"], (batch, args.prompt_len))
        paths = [(f"kerasvq cached/{k}", lambda k=k: kerasvq_speed(prompts, args.new_tokens, True, k))
                 for k in args.steps_per_check]
        if args.unfused:
            paths += [(f"keras.ops cached/{k}",
                       lambda k=k: kerasvq_speed(prompts, args.new_tokens, True, k, fused=False))
                      for k in args.steps_per_check]
        if args.uncached:
            paths.append(("kerasvq uncached", lambda: kerasvq_speed(prompts, args.new_tokens, False)))
        if args.keras_hub:
            paths.append(("keras-hub GPT2", lambda: keras_hub_speed(prompts, args.new_tokens)))
        for name, run in paths:
            seconds = run()
            rows.append((name, batch, seconds, batch * args.new_tokens / seconds))
    print(f"prompt {args.prompt_len} tokens, {args.new_tokens} new tokens, greedy")
    print(f"{'path':<20} {'batch':>6} {'seconds':>9} {'new tokens/s':>13}")
    for name, batch, seconds, speed in rows:
        print(f"{name:<20} {batch:>6} {seconds:>9.3f} {speed:>13,.0f}")


if __name__ == "__main__":
    main()
