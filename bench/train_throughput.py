"""Training throughput of kerasvq's language models through the normal compile/fit path.

Builds the model from a version config (plus overrides), compiles it exactly as
`kerasvq train` does, and times `model.fit` over real token windows: one untimed fit that
compiles, then a second fit timed from the end of its step `SETTLE_STEPS` to the end of
`--steps` steps later (Keras on JAX compiles the step again when a fit under a
`keras.distribution` starts; the settle steps keep that out of the timing, and there are at
least `WARM_SECONDS` of them so that a GPU's clocks have ramped up). Prints one row
per (batch size, dropout): tokens/s, ms per step and model FLOPs utilization.

    python bench/train_throughput.py --config versions/v5-transformer/config.json \\
        --batch-sizes 16 --dropouts 0.1 --steps 20                       # CPU
    KERAS_BACKEND=jax python bench/train_throughput.py --tokens .gpudata/train_tokens.npy \\
        --set train.dtype_policy=mixed_bfloat16 --batch-sizes 32 256 --peak-tflops 989   # H100

MFU counts 6·N + 12·L·T·D FLOPs per token (N = parameters without position embeddings,
L layers, T sequence length, D width), as nanoGPT does, over `--peak-tflops`.
"""

from __future__ import annotations

import argparse
import math
import os
import time

import keras
import numpy as np

from kerasvq.config.lm import load_lm_config
from kerasvq.data.windows import WindowDataset
from kerasvq.models.build import build_language_model
from kerasvq.training.callbacks import StepCounter
from kerasvq.training.distribution import plan_replicas
from kerasvq.training.run import compile_for_training
from kerasvq.training.xla_flags import use_training_xla_flags


SETTLE_STEPS = 3
WARM_SECONDS = 2.0  # measured on an H100: batch 32 timed right after compiling ran 4.5 ms/step, later 3.0


class StepTimer(StepCounter):
    """Wall time from the end of step `skip` to the end of step `skip + steps`.

    Both marks wait for that step's loss, so they are taken when the device has finished it.
    Async-safe (it reads only `logs`), so Keras keeps dispatching steps without waiting.
    """

    def __init__(self, skip, steps):
        super().__init__()
        self.skip, self.steps = skip, steps
        self.start = self.end = None

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        # With steps_per_execution > 1 the step count advances in jumps, hence >=.
        if self.start is None and self.step >= self.skip:
            float(logs["loss"])
            self.start, self.start_step = time.perf_counter(), self.step
        elif self.end is None and self.step >= self.skip + self.steps:
            float(logs["loss"])
            self.end, self.timed_steps = time.perf_counter(), self.step - self.start_step


def flops_per_token(model, cfg) -> float:
    params = model.count_params()
    if getattr(model, "position_embedding", None) is not None and cfg.model.positions == "learned":
        params -= cfg.data.seq_len * cfg.model.d_model
    if cfg.model.architecture != "transformer":
        return 6.0 * params
    return 6.0 * params + 12.0 * cfg.model.num_layers * cfg.data.seq_len * cfg.model.d_model


def load_stream(args, cfg):
    if args.tokens:
        return np.load(args.tokens, mmap_mode="r")
    from kerasvq.data.lm_data import load_lm_data
    from kerasvq.training.run_paths import RunPaths

    return load_lm_data(cfg, RunPaths(cfg.data.tokenizer_version or cfg.name, "bench").mappings,
                        log=lambda m: None).train_stream


class LossRecorder(keras.callbacks.Callback):
    """Keeps every step's (running mean) loss and end time; read after fit. Not async-safe, so
    Keras waits for each step and the times are the device's step times."""

    def __init__(self):
        super().__init__()
        self.values, self.times = [], []

    def on_train_batch_end(self, batch, logs=None):
        self.values.append(logs["loss"])
        self.times.append(time.perf_counter())

    def losses(self):
        return [float(v) for v in self.values]

    def step_seconds(self):
        """Median duration of the recorded steps after the first (which compiles)."""
        gaps = np.diff(self.times[1:])
        return float(np.median(gaps)) if len(gaps) else float("inf")


def windows(stream, cfg, batch_size, steps):
    """Shuffled real windows for `steps` batches; the tokens repeat rather than run out."""
    needed = steps * batch_size * cfg.data.seq_len + 1
    if len(stream) < needed:
        stream = np.tile(np.asarray(stream), needed // len(stream) + 1)
    return WindowDataset(stream, cfg.data.seq_len, cfg.data.seq_len, batch_size, shuffle=True,
                         seed=cfg.train.seed)


def measure(cfg, stream, batch_size, steps, warmup_steps):
    """Times fit steps of `cfg`'s model at `batch_size` sequences (the global batch), on the
    devices `cfg.train.distribution` asks for, exactly as `kerasvq train` builds and compiles."""
    cfg.train.batch_size = batch_size
    replicas = plan_replicas(cfg.train)
    keras.utils.set_random_seed(cfg.train.seed)
    spe = cfg.train.steps_per_execution
    warmup_steps = max(spe, warmup_steps - warmup_steps % spe)
    steps = max(spe, steps - steps % spe)
    recorder = LossRecorder()
    with replicas.scope():
        model = build_language_model(cfg)
        compile_for_training(model, cfg, total_steps=10 * (steps + warmup_steps), warmup_steps=1)
        # The untimed first fit compiles and records the first steps' losses (a per-step
        # callback that is not async-safe makes Keras wait for every step, so not while timing).
        model.fit(windows(stream, cfg, batch_size, warmup_steps), epochs=1,
                  steps_per_epoch=warmup_steps, callbacks=[recorder], verbose=0, shuffle=False)
        settle = max(SETTLE_STEPS, math.ceil(WARM_SECONDS / recorder.step_seconds() * spe))
        settle = -(-settle // spe) * spe  # rounded up to whole executions
        timer = StepTimer(settle, steps)
        history = model.fit(windows(stream, cfg, batch_size, settle + steps), epochs=1,
                            steps_per_epoch=settle + steps, callbacks=[timer], verbose=0, shuffle=False)
    seconds = timer.end - timer.start
    return {
        "tokens_per_second": timer.timed_steps * batch_size * cfg.data.seq_len / seconds,
        "ms_per_step": 1000 * seconds / timer.timed_steps,
        "flops_per_token": flops_per_token(model, cfg),
        "final_loss": float(history.history["loss"][-1]),
        "losses": recorder.losses(),
        "replicas": replicas.replicas,
        "global_batch": batch_size,
    }


# The shapes the speed comparison with nanoGPT's peer runs at (bench/peer_speed.py): a config
# and the overrides that make it a model the peer can also be (learned positions, GPT block).
SHAPES = {
    "v5": ("versions/v5-transformer/config.json", []),
    "v6-50m": ("versions/v6-50m/config.json", ["model.positions=learned"]),
}


def add_config_arguments(parser):
    """The model and data options every training bench shares: config or shape, overrides, tokens."""
    parser.add_argument("--config", default=None,
                        help="a config path (default: the --shape's, else versions/v5-transformer)")
    parser.add_argument("--shape", choices=sorted(SHAPES), default=None,
                        help="v5: versions/v5-transformer; v6-50m: versions/v6-50m with learned positions")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--tokens", help="a uint16 .npy token stream (default: tokenize the config's corpus)")


def config_from_args(args):
    """The config `--config`/`--shape` and `--set` name (the shape's overrides first)."""
    path, overrides = SHAPES[args.shape] if args.shape else ("versions/v5-transformer/config.json", [])
    return load_lm_config(args.config or path, overrides + args.overrides)


def add_grid_arguments(parser):
    """The options every training-throughput bench shares: config, data, grid, timing, MFU."""
    add_config_arguments(parser)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16])
    parser.add_argument("--dropouts", type=float, nargs="+", default=[0.1])
    parser.add_argument("--steps", type=int, default=20, help="timed steps")
    parser.add_argument("--warmup-steps", type=int, default=5, help="untimed steps (compilation)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="device peak for MFU")


def measure_grid(cfg, args, measure_one):
    """`measure_one(batch_size)` at every batch size × dropout of `args`: a list of
    (batch size, dropout, result, MFU or None) rows."""
    rows = []
    for batch_size in args.batch_sizes:
        for dropout in args.dropouts:
            cfg.model.dropout = dropout
            r = measure_one(batch_size)
            mfu = (r["tokens_per_second"] * r["flops_per_token"] / (args.peak_tflops * 1e12)
                   if args.peak_tflops else None)
            rows.append((batch_size, dropout, r, mfu))
    return rows


def print_rows(rows, extra_columns=()):
    """The grid as a table; `extra_columns` are (title, result key) pairs of floats."""
    extra_titles = "".join(f" {title:>7}" for title, _ in extra_columns)
    print(f"{'batch':>6} {'dropout':>8} {'tokens/s':>12} {'ms/step':>9} {'MFU':>7} {'loss':>7}{extra_titles}")
    for batch_size, dropout, r, mfu in rows:
        mfu_text = f"{100 * mfu:6.1f}%" if mfu is not None else "    n/a"
        extra = "".join(f" {r[key]:>7.3f}" for _, key in extra_columns)
        print(f"{batch_size:>6} {dropout:>8.2f} {r['tokens_per_second']:>12,.0f} "
              f"{r['ms_per_step']:>9.1f} {mfu_text} {r['final_loss']:>7.3f}{extra}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_grid_arguments(parser)
    args = parser.parse_args()
    use_training_xla_flags()  # as `kerasvq train` does, before JAX starts

    cfg = config_from_args(args)
    stream = load_stream(args, cfg)
    rows = measure_grid(cfg, args, lambda batch_size: measure(cfg, stream, batch_size, args.steps,
                                                              args.warmup_steps))
    print(f"backend={keras.backend.backend()} dtype_policy={cfg.train.dtype_policy} "
          f"seq_len={cfg.data.seq_len} model={cfg.model.architecture} d_model={cfg.model.d_model} "
          f"layers={cfg.model.num_layers} steps_per_execution={cfg.train.steps_per_execution} "
          f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")
    print_rows(rows)


if __name__ == "__main__":
    main()
