"""Where a training step's GPU time goes: kernel time per step, by kernel and by model part.

Trains the config's model through the same compile/fit path as `bench/train_throughput.py`,
traces `--steps` steps with the JAX profiler, and names each GPU kernel after the HLO
instruction it runs (read from XLA's optimized-HLO dump of the train step), so a row reads
"block_0/ffn_hidden/mul" rather than "loop_convert_multiply_fusion_3". JAX on a GPU only.

    KERAS_BACKEND=jax python bench/profile_train_step.py --set train.dtype_policy=mixed_bfloat16 \\
        --batch-size 256 --steps 20

The "part" table groups kernels by the layer path in their HLO op name (block_*/attention,
token_embedding, compile_loss, adam_w, ...); library kernels (cuBLAS matmuls, cuDNN
attention) carry no instruction name in the trace and are grouped by library.
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import re
import sys
import tempfile

WARMUP_STEPS = 5
DUMP_DIR = tempfile.mkdtemp(prefix="kerasvq_hlo_")
# XLA reads its flags when JAX starts, so they are set before anything imports jax.
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_dump_to={DUMP_DIR} --xla_dump_hlo_as_text"


def hlo_names(dump_dir: str, module: str = "train_step") -> dict:
    """Kernel name → HLO op name, from the optimized HLO of the `module` dumps."""
    names = {}
    for path in glob.glob(f"{dump_dir}/*{module}*after_optimizations.txt"):
        for line in open(path):
            head = re.match(r"\s*(?:ROOT )?%([\w.\-]+) = ", line)
            op = re.search(r'op_name="([^"]+)"', line)
            if not head or not op:
                continue
            op_name = re.sub(r"^jit\([^)]*\)/", "", op.group(1))
            for key in [head.group(1)] + re.findall(r'(?:scheduling|deduplicated)_name="([^"]+)"', line):
                names.setdefault(re.sub(r"[.\-]", "_", key), op_name)
    return names


def model_part(op_name: str) -> str:
    """'transpose(jvp(block_3))/ffn_hidden/reduce_sum' → 'block_*/ffn_hidden'."""
    *scopes, _primitive = [re.sub(r"^(?:\w+\()+|\)+$", "", p) for p in op_name.split("/")]
    layers = [re.sub(r"_\d+$", "", p) for p in scopes if not op_name_wrapper(p)]
    layers = ["block_*" if p == "block" else p for p in layers]
    return "/".join(layers[:2]) or "(other)"


def op_name_wrapper(scope: str) -> bool:
    return scope.startswith(("jit(", "vmap(", "_")) or not scope


def library_part(kernel: str) -> str:
    """A group for kernels XLA runs from libraries (their trace events carry no HLO name)."""
    if "sdpa" in kernel or "cudnn" in kernel:
        return "(cuDNN attention)"
    if "nvjet" in kernel or "gemm" in kernel or "cublas" in kernel or "cutlass" in kernel:
        return "(cuBLAS matmuls)"
    return "(unnamed)"


def kernel_times(trace_dir: str, steps: int):
    """(time in ns, launches) per kernel name, per step, from the trace's GPU streams."""
    import jax

    path = glob.glob(f"{trace_dir}/**/*.xplane.pb", recursive=True)[0]
    times, counts = collections.Counter(), collections.Counter()
    for plane in jax.profiler.ProfileData.from_file(path).planes:
        if not plane.name.startswith("/device:GPU"):
            continue
        for line in plane.lines:
            if line.name.startswith("Stream"):
                for event in line.events:
                    times[event.name] += event.duration_ns / steps
                    counts[event.name] += 1 / steps
    return times, counts


def main():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from train_throughput import add_config_arguments, config_from_args, load_stream, windows  # imports no device

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_arguments(parser)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20, help="traced steps")
    parser.add_argument("--top", type=int, default=25, help="kernels listed")
    args = parser.parse_args()

    from kerasvq.training.xla_flags import use_training_xla_flags

    use_training_xla_flags()  # as `kerasvq train` does, before JAX starts
    import jax
    import keras

    if keras.config.backend() != "jax" or jax.default_backend() != "gpu":
        sys.exit("error: profile_train_step.py needs KERAS_BACKEND=jax and a GPU")

    from kerasvq.models.build import build_language_model
    from kerasvq.training.run import compile_for_training

    cfg = config_from_args(args)
    cfg.train.batch_size = args.batch_size
    batches = windows(load_stream(args, cfg), cfg, args.batch_size, WARMUP_STEPS + args.steps)
    keras.utils.set_random_seed(cfg.train.seed)
    model = build_language_model(cfg)
    compile_for_training(model, cfg, total_steps=1000, warmup_steps=1)
    fit = lambda steps: model.fit(batches, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)  # noqa: E731
    fit(WARMUP_STEPS)  # compiles
    trace_dir = tempfile.mkdtemp(prefix="kerasvq_trace_")
    jax.profiler.start_trace(trace_dir)
    fit(args.steps)
    jax.profiler.stop_trace()

    times, counts = kernel_times(trace_dir, args.steps)
    names = hlo_names(DUMP_DIR)
    total = sum(times.values())
    print(f"{cfg.model.architecture} batch={args.batch_size} policy={cfg.train.dtype_policy} "
          f"dropout={cfg.model.dropout}: {total / 1e6:.2f} ms of kernels per step, "
          f"{sum(counts.values()):.0f} launches")
    parts = collections.Counter()
    for kernel, ns in times.items():
        op = names.get(kernel)
        parts[model_part(op) if op else library_part(kernel)] += ns
    print(f"\n{'part':<28} {'ms/step':>8} {'share':>6}")
    for part, ns in parts.most_common():
        print(f"{part:<28} {ns / 1e6:>8.3f} {100 * ns / total:>5.1f}%")
    print(f"\n{'µs/step':>8} {'launches':>8}  kernel → HLO op")
    for kernel, ns in times.most_common(args.top):
        print(f"{ns / 1e3:>8.0f} {counts[kernel]:>8.1f}  {kernel[:48]} → {names.get(kernel, '')[:70]}")


if __name__ == "__main__":
    main()
