"""Data-parallel scaling of a language model: one device against several, same compile/fit path.

Three runs of `bench/train_throughput.py`'s `measure` (the model built and compiled as
`kerasvq train` does, timed over real token windows):
1. one device at the per-device batch;
2. `--devices` devices (default: all visible) with `train.distribution=data_parallel` at
   devices × per-device batch — speedup = its tokens/s over run 1's;
3. one device at that same global batch, whose losses run 2 should reproduce step by step
   (use dropout 0: dropout masks are drawn differently when the batch is sharded).

    KERAS_BACKEND=jax python bench/data_parallel.py --tokens .gpudata/train_tokens.npy \\
        --set train.dtype_policy=mixed_bfloat16 --per-device-batch 256          # GPUs
    XLA_FLAGS=--xla_force_host_platform_device_count=4 KERAS_BACKEND=jax JAX_PLATFORMS=cpu \\
        python bench/data_parallel.py --per-device-batch 4 --steps 5 --warmup-steps 2   # CPU check
"""

from __future__ import annotations

import argparse
import os
import sys

import keras

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from train_throughput import add_config_arguments, config_from_args, load_stream, measure  # noqa: E402

from kerasvq.training.distribution import plan_replicas  # noqa: E402
from kerasvq.training.xla_flags import use_training_xla_flags  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_arguments(parser)
    parser.add_argument("--per-device-batch", type=int, default=256, help="sequences per device")
    parser.add_argument("--devices", type=int, default=None, help="default: every visible accelerator")
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--steps", type=int, default=20, help="timed steps")
    parser.add_argument("--warmup-steps", type=int, default=5, help="untimed steps (compilation)")
    parser.add_argument("--losses", type=int, default=10, help="first N losses to compare")
    parser.add_argument("--no-loss-run", action="store_true",
                        help="skip run 3 (one device at the global batch), e.g. when it does not fit")
    args = parser.parse_args()
    use_training_xla_flags()  # as `kerasvq train` does, before JAX starts

    cfg = config_from_args(args)
    cfg.model.dropout = args.dropout
    cfg.train.distribution, cfg.train.devices = "data_parallel", args.devices
    cfg.train.batch_size = args.per_device_batch
    devices = plan_replicas(cfg.train).replicas if args.devices is None else args.devices
    stream = load_stream(args, cfg)
    timing = (args.steps, max(args.warmup_steps, args.losses))  # losses come from the untimed steps

    cfg.train.distribution = "none"
    runs = [("1 device", measure(cfg, stream, args.per_device_batch, *timing))]
    cfg.train.distribution = "data_parallel"
    runs.append((f"{devices} devices", measure(cfg, stream, devices * args.per_device_batch, *timing)))
    if not args.no_loss_run:
        cfg.train.distribution = "none"
        runs.append(("1 device", measure(cfg, stream, devices * args.per_device_batch, *timing)))

    print(f"backend={keras.backend.backend()} dtype_policy={cfg.train.dtype_policy} "
          f"seq_len={cfg.data.seq_len} d_model={cfg.model.d_model} layers={cfg.model.num_layers} "
          f"dropout={args.dropout} per-device batch={args.per_device_batch}")
    print(f"{'run':>12} {'global batch':>13} {'ms/step':>9} {'tokens/s':>12} {'speedup':>8}")
    base = runs[0][1]["tokens_per_second"]
    for name, r in runs:
        print(f"{name:>12} {r['global_batch']:>13} {r['ms_per_step']:>9.1f} {r['tokens_per_second']:>12,.0f} "
              f"{r['tokens_per_second'] / base:>7.2f}x")
    if len(runs) == 3:
        many, one = runs[1][1]["losses"], runs[2][1]["losses"]
        print(f"running-mean loss per step at global batch {devices * args.per_device_batch} "
              f"({devices} devices | 1 device | difference):")
        for step, (a, b) in enumerate(zip(many[:args.losses], one[:args.losses]), start=1):
            print(f"{step:>4} {a:>10.5f} {b:>10.5f} {a - b:>+10.2e}")


if __name__ == "__main__":
    main()
