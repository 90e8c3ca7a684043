"""Checks that the fused and persistent Pallas decoders give the reference loop's tokens, and
times them: new tokens/s of each decoder at each batch (JAX; on a GPU for real timings).

    KERAS_BACKEND=jax python bench/check_fused_decode.py                      # GPU, v5 shape
    KERAS_BACKEND=jax python bench/check_fused_decode.py --model run.keras    # a trained model
    KERAS_BACKEND=jax python bench/check_fused_decode.py --tiny               # CPU smoke run (interpreter)

Every decoder is forced by name (`generate(..., decoder=...)`, see
`kerasvq.generation.generate.DECODERS`) at every batch, so "fused" runs at batch 1 and "persistent"
at batch 32 too, where `generate` would not choose them by default. "reference" is the
step-by-step loop over the model's own `call_with_cache`, what the others must match;
"compiled" is the compiled greedy loop over that same step, for scale. Greedy, float32 unless
`--dtype` says otherwise, no end-of-sequence stop, so every row writes `--new-tokens` tokens.

A row "matches" when its tokens equal the reference row's; the first differing position is
printed otherwise. With random weights the logits are nearly flat, so a rounding difference
can flip a near-tie: a trained model (`--model`) is the stricter check. Each time is the best
of `--repeats` calls after two warm-up calls (the first compiles). Exits 1 when any row
differs or a decoder fails.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

SHAPE = dict(vocab_size=4000, seq_len=256, d_model=256, num_layers=4, num_heads=8, d_ff=1024)
"""The v5 shape (as `bench/generation.py`)."""
TINY = dict(vocab_size=48, seq_len=32, d_model=32, num_layers=2, num_heads=4, d_ff=64)
"""A shape the Pallas interpreter runs in seconds on a CPU."""
DECODERS = ("reference", "compiled", "fused", "persistent")


def _model(args):
    import keras

    if args.model:
        from kerasvq.evaluation.trained_model import load_trained_model

        return load_trained_model(args.model)
    from kerasvq.models.transformer_lm import TransformerLM

    keras.utils.set_random_seed(args.seed)
    model = TransformerLM(**(TINY if args.tiny else SHAPE), dropout=0.0, dtype=args.dtype)
    model(np.zeros((1, 8), "int32"))
    return model


def _timed(fn, repeats):
    """(best seconds, result of the last call)."""
    out = fn()  # compiles
    out = fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def _compare(got, want):
    """(rows equal, a note on the first row that differs, or "")."""
    equal, note = 0, ""
    for row, (g, w) in enumerate(zip(got, want)):
        if g["token_ids"] == w["token_ids"]:
            equal += 1
        elif not note:
            at = next((i for i, (a, b) in enumerate(zip(g["token_ids"], w["token_ids"])) if a != b),
                      min(len(g["token_ids"]), len(w["token_ids"])))
            note = f"row {row} differs from token {at}"
    return equal, note


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--decoders", nargs="+", default=list(DECODERS), choices=DECODERS)
    parser.add_argument("--new-tokens", type=int, default=None, help="default 240 (v5 shape), 8 with --tiny")
    parser.add_argument("--prompt-len", type=int, default=None, help="default 16, 4 with --tiny")
    parser.add_argument("--steps-per-check", type=int, default=None, help="default 16, 4 with --tiny")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dtype", default="float32", help="dtype policy of the random model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", help="a saved .keras TransformerLM instead of random weights")
    parser.add_argument("--tiny", action="store_true", help="tiny random model (a CPU smoke run)")
    args = parser.parse_args(argv)

    import keras

    if keras.config.backend() != "jax":
        print(f"the Pallas decoders need KERAS_BACKEND=jax; this is {keras.config.backend()}", file=sys.stderr)
        return 2
    import jax

    from kerasvq.generation.generate import generate
    from kerasvq.generation.sampling import SamplingConfig

    new_tokens = args.new_tokens or (8 if args.tiny else 240)
    prompt_len = args.prompt_len or (4 if args.tiny else 16)
    steps_per_check = args.steps_per_check or (4 if args.tiny else 16)
    repeats = 1 if args.tiny and args.repeats == 5 else args.repeats
    model = _model(args)
    config = SamplingConfig(greedy=True, max_new_tokens=new_tokens, stop_at_eos=False)
    decoders = ["reference"] + [d for d in args.decoders if d != "reference"]
    print(f"device {jax.devices()[0].device_kind}, model {type(model).__name__} d_model {model.d_model} "
          f"{model.num_layers} layers, {model.compute_dtype}; prompt {prompt_len} tokens, {new_tokens} new, greedy")
    rows, failed = [], False
    for batch in args.batches:
        prompts = np.random.default_rng(args.seed).integers(2, int(model.vocab_size), (batch, prompt_len)).tolist()
        reference = None
        for decoder in decoders:
            run = lambda d=decoder: generate(model, prompts, config, steps_per_check=steps_per_check, decoder=d)  # noqa: E731
            try:
                seconds, out = _timed(run, repeats)
            except Exception as err:  # noqa: BLE001 - report it and go on to the next decoder
                rows.append((decoder, batch, None, None, f"failed: {type(err).__name__}: {str(err)[:120]}"))
                failed = True
                continue
            if reference is None:
                reference = out
            equal, note = _compare(out, reference)
            failed |= equal != batch
            rows.append((decoder, batch, seconds, batch * new_tokens / seconds,
                         f"{equal}/{batch} rows match" + (f"; {note}" if note else "")))
    print(f"{'decoder':<11} {'batch':>5} {'seconds':>9} {'new tokens/s':>13}  tokens vs reference")
    for decoder, batch, seconds, speed, check in rows:
        timing = f"{seconds:>9.4f} {speed:>13,.0f}" if seconds is not None else f"{'-':>9} {'-':>13}"
        print(f"{decoder:<11} {batch:>5} {timing}  {check}")
    print("FAIL: a decoder differs from the reference or failed" if failed else "OK: every decoder matches the reference")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
