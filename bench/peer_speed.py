"""kerasvq against nanoGPT's PyTorch peer at the v5 and v6-50m shapes, one table (issue 23).

For each shape, runs `bench/train_throughput.py` (JAX, mixed_bfloat16, kerasvq's compile/fit
path) and `bench/nanogpt_peer.py` (torch.compile, bf16 autocast) one after the other, each in
its own process so that neither holds the GPU while the other runs, on the same token file,
batch sizes, dropouts, timed steps and shape (`train_throughput.SHAPES`: v6-50m with learned
positions, which the peer has). Both cut the same shuffled windows from the token file with
the config's seed (`train_throughput.windows`). Prints one row per (shape, batch, dropout):
both speeds and their ratio.

    python bench/peer_speed.py --prepare          # here, on CPU: .gpudata/<shape>_train_tokens.npy
    python bench/peer_speed.py --batch-sizes 256 --dropouts 0.1 --steps 300   # on the GPU
    python bench/peer_speed.py --data /tmp/tokens --set model.num_layers=1 ... \
        --peer-args --device cpu --no-compile                               # a CPU check

`--prepare` tokenizes the configs' training split with each shape's own tokenizer (v5's 4,000
pieces, v6-50m's 16,384; trained and saved under versions/<name>/mappings/ when missing).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHAPE_NAMES = ("v5", "v6-50m")


def token_file(folder: Path, shape: str) -> Path:
    return folder / f"{shape}_train_tokens.npy"


def prepare(folder: Path):
    """Writes each shape's training token stream as uint16 .npy (needs the corpus, no GPU)."""
    import numpy as np

    sys.path.insert(0, str(HERE))
    from train_throughput import SHAPES

    from kerasvq.config.lm import load_lm_config
    from kerasvq.data.lm_data import load_lm_data
    from kerasvq.training.run_paths import RunPaths

    folder.mkdir(parents=True, exist_ok=True)
    for shape in SHAPE_NAMES:
        path, overrides = SHAPES[shape]
        cfg = load_lm_config(path, overrides)
        mappings = RunPaths(cfg.data.tokenizer_version or cfg.name, "bench").mappings
        stream = load_lm_data(cfg, mappings, log=print).train_stream
        np.save(token_file(folder, shape), np.asarray(stream, dtype=np.uint16))
        print(f"{token_file(folder, shape)}: {len(stream):,} tokens")


def run_table(command: list[str], env: dict) -> tuple[str, dict]:
    """Runs one bench; returns its output and its rows {(batch, dropout): (tokens/s, ms/step)}."""
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    output = done.stdout + done.stderr
    if done.returncode:
        raise SystemExit(f"error: {' '.join(command)} exited {done.returncode}:\n{output[-4000:]}")
    rows = {}
    for line in done.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[0].isdigit():
            rows[(int(fields[0]), float(fields[1]))] = (float(fields[2].replace(",", "")),
                                                        float(fields[3]))
    return output, rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepare", action="store_true", help="write the token files and stop")
    parser.add_argument("--data", type=Path, default=Path(".gpudata"), help="the token files' folder")
    parser.add_argument("--shapes", nargs="+", choices=SHAPE_NAMES, default=list(SHAPE_NAMES))
    parser.add_argument("--batch-sizes", nargs="+", default=["256"])
    parser.add_argument("--dropouts", nargs="+", default=["0.1"])
    parser.add_argument("--steps", default="300")
    parser.add_argument("--warmup-steps", default="5")
    parser.add_argument("--peak-tflops", default=None)
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="config override for both sides (e.g. a tiny shape for a CPU check)")
    parser.add_argument("--peer-args", nargs=argparse.REMAINDER, default=[],
                        help="passed to nanogpt_peer.py only (e.g. --no-bias); must come last")
    args = parser.parse_args()
    if args.prepare:
        return prepare(args.data)

    env = dict(os.environ, KERAS_BACKEND="jax")
    common = ["--batch-sizes", *args.batch_sizes, "--dropouts", *args.dropouts,
              "--steps", args.steps, "--warmup-steps", args.warmup_steps]
    if args.peak_tflops:
        common += ["--peak-tflops", args.peak_tflops]
    for override in args.overrides:
        common += ["--set", override]
    table = []
    for shape in args.shapes:
        data = ["--shape", shape, "--tokens", str(token_file(args.data, shape))]
        kerasvq_out, ours = run_table([sys.executable, str(HERE / "train_throughput.py"), *data, *common,
                                       "--set", "train.dtype_policy=mixed_bfloat16"], env)
        peer_out, peer = run_table([sys.executable, str(HERE / "nanogpt_peer.py"), *data, *common,
                                    *args.peer_args], env)
        print(f"== {shape}: kerasvq\n{kerasvq_out.strip()}\n== {shape}: nanoGPT peer\n{peer_out.strip()}\n",
              flush=True)
        for key in sorted(ours):
            table.append((shape, *key, ours[key], peer.get(key)))
    print(f"{'shape':>7} {'batch':>6} {'dropout':>8} {'kerasvq tok/s':>14} {'ms':>7} "
          f"{'peer tok/s':>12} {'ms':>7} {'ratio':>6}")
    for shape, batch, dropout, (ours_tps, ours_ms), theirs in table:
        peer_tps, peer_ms = theirs if theirs else (float("nan"), float("nan"))
        print(f"{shape:>7} {batch:>6} {dropout:>8.2f} {ours_tps:>14,.0f} {ours_ms:>7.2f} "
              f"{peer_tps:>12,.0f} {peer_ms:>7.2f} {ours_tps / peer_tps:>6.2f}")


if __name__ == "__main__":
    main()
