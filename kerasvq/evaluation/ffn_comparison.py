"""Dense SwiGLU vs top-k MoE vs MoC on one training harness, at equal training tokens.

Each variant is a version config (`versions/moc-dense`, `moc-moe`, `moc-moc`, ...) trained by
`train_language_model` (same corpus, tokenizer, batch, steps and schedule), in its own
process so that peak device memory is per variant. A variant's result JSON holds: final and
best validation cross-entropy (nats/token), bits per byte, steady-state training tokens/s,
total and per-token-active parameters, forward MACs per token, peak memory, and the router
state (aux loss, expert shares). `write_table` gathers them into JSON + a markdown table.

Example:
    >>> results = [run_variant(cfg, "compare", out_dir)]       # in a fresh process per variant
    >>> write_table(out_dir)
"""

from __future__ import annotations

import json
import math
import resource
import time
from pathlib import Path

import keras

from kerasvq.config.base import save_json, to_dict
from kerasvq.config.lm import LMConfig
from kerasvq.common.errors import UserError
from kerasvq.training.callbacks import StepCounter

# A CPU-sized shape for smoke runs: the real configs and corpus, tiny model and few steps.
QUICK_OVERRIDES = [
    "model.d_model=64", "model.num_layers=2", "model.num_heads=4", "model.num_kv_heads=2",
    "model.d_ff=128", "model.expert_d_ff=128", "model.num_experts=4", "data.seq_len=64",
    "data.stride=64", "data.vocab_size=1000", "data.max_docs=600", "train.batch_size=8",
    "train.max_steps=12", "train.learning_rate=0.002", "train.warmup_fraction=0.1",
    "train.dtype_policy=float32",
]


class Throughput(StepCounter):
    """Steady-state training tokens/s over the first epoch: wall time from the end of step
    `skip` (after compilation) to the end of step `last`, both synchronized with the device
    through the step's loss.

    Synchronous (not async-safe: reading logs on Keras's async thread races with JAX buffer
    donation). Runs with `max_steps` are synchronous anyway (`StopAtStep`), so every variant
    is timed the same way, host sync after each step included.
    """

    async_safe = False

    def __init__(self, tokens_per_step, skip, last):
        super().__init__()
        self.tokens_per_step = tokens_per_step
        self.skip = skip
        self.last = last
        self._start = self._seconds = None

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        if self._start is None and self.skip <= self.step < self.last:
            float(logs["loss"])  # wait for the device before starting the clock
            self._start, self._start_step = time.perf_counter(), self.step
        elif self._start is not None and self._seconds is None and self.step >= self.last:
            float(logs["loss"])
            self._seconds = time.perf_counter() - self._start
            self._steps = self.step - self._start_step

    def tokens_per_second(self):
        if not self._seconds:
            return None
        return self._steps * self.tokens_per_step / self._seconds


def peak_memory() -> dict:
    """Peak accelerator memory where the backend reports it, else the host's peak RSS."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        stats = device.memory_stats() if hasattr(device, "memory_stats") else None
        if stats and "peak_bytes_in_use" in stats:
            return {"bytes": int(stats["peak_bytes_in_use"]), "kind": f"{device.platform} peak_bytes_in_use"}
    if backend == "tensorflow":
        import tensorflow as tf

        if tf.config.list_physical_devices("GPU"):
            info = tf.config.experimental.get_memory_info("GPU:0")
            return {"bytes": int(info["peak"]), "kind": "GPU:0 peak"}
    return {"bytes": int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024,
            "kind": "host peak RSS (no device statistics)"}


def bits_per_byte(cross_entropy_nats: float, tokens: int, text_bytes: int) -> float:
    """Converts mean nats per token over `tokens` tokens into bits per UTF-8 byte."""
    return cross_entropy_nats * tokens / (text_bytes * math.log(2))


def run_variant(cfg: LMConfig, run_name: str, out_dir, log=print) -> dict:
    """Trains `cfg` (overwriting an earlier run of that name) and writes `<out_dir>/<name>.json`."""
    from kerasvq.metrics.moe import forward_macs_per_token, parameter_counts, routing_snapshot
    from kerasvq.training.routing_logger import RoutingLogger
    from kerasvq.training.run_paths import RunPaths
    from kerasvq.training.run import train_language_model

    paths = RunPaths(cfg.name, run_name)
    tokens_per_step = cfg.train.batch_size * cfg.data.seq_len
    captured = {}

    class Capture(keras.callbacks.Callback):
        async_safe = True

        def on_train_begin(self, logs=None):
            captured["model"] = self.model

    throughput = Throughput(tokens_per_step, skip=0, last=0)

    class PlanThroughput(keras.callbacks.Callback):
        """Times the first epoch, whose length the run's step plan (written before fit) gives."""

        async_safe = True

        def on_train_begin(self, logs=None):
            plan = json.loads(paths.resolved_config.read_text(encoding="utf-8"))["steps"]
            last = min(plan["steps_per_epoch"], plan["total_steps"])
            throughput.last = last
            throughput.skip = min(5, max(1, last // 4))

    start = time.perf_counter()
    train_language_model(
        cfg, run_name, overwrite=True, verbose=2, log=log,
        extra_callbacks=[PlanThroughput(), RoutingLogger(paths.tensorboard),
                         throughput, Capture()],
    )
    wall = time.perf_counter() - start
    model = captured["model"]
    history = json.loads(paths.history.read_text(encoding="utf-8"))
    epochs = history["epochs"]
    last, best = epochs[-1], min(epochs, key=lambda e: e["val_cross_entropy"])
    val_tokens, val_bytes = history["data"]["val_tokens"], history["data"]["val_bytes"]
    m = cfg.model
    macs = forward_macs_per_token(
        m.d_model, m.num_layers, m.num_heads, m.d_ff, cfg.data.vocab_size, cfg.data.seq_len,
        ffn=m.ffn, num_kv_heads=m.num_kv_heads, num_experts=m.num_experts, top_k=m.top_k,
        expert_d_ff=m.expert_d_ff,
    )
    snapshot = routing_snapshot(model)
    result = {
        "variant": cfg.name,
        "run": run_name,
        "backend": keras.backend.backend(),
        "ffn": m.ffn,
        "aux_loss": m.aux_loss if m.ffn == "moc" else ("switch" if m.ffn == "moe" else None),
        "config": to_dict(cfg),
        "train_steps": history["steps"]["total_steps"],
        "train_tokens": history["steps"]["total_steps"] * tokens_per_step,
        "val_loss": last["val_cross_entropy"],
        "best_val_loss": best["val_cross_entropy"],
        "val_bits_per_byte": bits_per_byte(last["val_cross_entropy"], val_tokens, val_bytes),
        "val_tokens": val_tokens,
        "val_bytes": val_bytes,
        "data": history["data"],
        "tokenizer": history["tokenizer"],
        "train_loss_main": last.get("cross_entropy"),
        "train_loss_aux": last.get("aux_loss"),
        "tokens_per_second": throughput.tokens_per_second(),
        "wall_seconds": wall,
        "parameters": parameter_counts(model),
        "forward_macs_per_token": macs,
        "peak_memory": peak_memory(),
        "router": snapshot,
    }
    save_json(Path(out_dir) / f"{cfg.name}.json", result)
    return result


def _fmt(value, spec):
    return "n/a" if value is None else format(value, spec)


def write_table(out_dir, order=("dense", "moe", "moc")) -> tuple[Path, Path]:
    """Gathers `<out_dir>/*.json` variant results into `comparison.json` and `comparison.md`."""
    out_dir = Path(out_dir)
    results = [
        json.loads(p.read_text(encoding="utf-8"))
        for p in sorted(out_dir.glob("*.json"))
        if p.name != "comparison.json"
    ]
    if not results:
        raise UserError(f"{out_dir}: no variant results (<variant>.json) to tabulate")
    rank = {name: i for i, name in enumerate(order)}
    results.sort(key=lambda r: (rank.get(r["ffn"], 99), r["variant"]))
    dense = next((r for r in results if r["ffn"] == "dense"), None)
    lines = [
        "| variant | ffn | aux | train tokens | val loss (nats) | best val loss | val bits/byte "
        "| tokens/s | params total | params active/token | fwd MACs/token (× dense) | peak memory |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        macs = r["forward_macs_per_token"]["total"]
        ratio = f" ({macs / dense['forward_macs_per_token']['total']:.2f}×)" if dense else ""
        memory = r["peak_memory"]
        lines.append(
            f"| {r['variant']} | {r['ffn']} | {r['aux_loss'] or '-'} | {r['train_tokens']:,} "
            f"| {r['val_loss']:.4f} | {r['best_val_loss']:.4f} | {r['val_bits_per_byte']:.4f} "
            f"| {_fmt(r['tokens_per_second'], ',.0f')} | {r['parameters']['total']:,} "
            f"| {r['parameters']['active_per_token']:,} | {macs / 1e6:,.1f}M{ratio} "
            f"| {memory['bytes'] / 2**30:.2f} GiB ({memory['kind']}) |"
        )
    backends = sorted({r["backend"] for r in results})
    same_data = len({(r["val_tokens"], r["val_bytes"], r["tokenizer"]["sha256"]) for r in results}) <= 1
    same_tokens = len({r["train_tokens"] for r in results}) <= 1
    lines += [
        "",
        f"Backend: {', '.join(backends)}. Val loss = unsmoothed cross-entropy of the final model on "
        "the validation split; bits/byte = val loss × val tokens / (val UTF-8 bytes · ln 2). "
        "tokens/s = steady-state training throughput (compilation steps excluded). MACs are "
        "analytic forward multiply-accumulates per token (attention over the full context).",
    ]
    if not same_data:
        lines.append("\nWARNING: the variants did not see the same validation text or tokenizer; "
                     "their losses are not comparable.")
    if not same_tokens:
        lines.append("\nWARNING: the variants trained on different numbers of tokens.")
    table = out_dir / "comparison.md"
    table.write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = save_json(out_dir / "comparison.json", {"results": results})
    return summary, table
