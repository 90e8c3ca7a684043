"""`CodebookReset`: re-seeds dead codes of every `VectorQuantizer` from live encoder outputs.

A code is dead when it has not been chosen for `max_unused_steps` training steps, or when its
EMA count (an estimate of how many vectors of a batch pick it) falls below
`min_usage × (batch size / codebook size)`, i.e. below a fraction of its uniform share.
Dead codes are replaced by encoder outputs from the latest batch (the quantizer's
`recent_inputs` buffer), preferring the vectors that are worst served by their current code,
with a little noise so that twin seeds separate; their statistics restart at the uniform
share so they are not immediately judged dead again.

Example:
    >>> model.fit(ds, epochs=20, callbacks=[CodebookReset(every=50)])
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from kerasvq.layers.vector_quantizer import VectorQuantizer
from kerasvq.models.codebook_monitor import find_quantizers


def reseed_dead_codes(vq: VectorQuantizer, max_unused_steps: int = 200, min_usage: float = 0.03,
                      rng: np.random.Generator | None = None) -> np.ndarray:
    """Re-seeds the dead codes of one quantizer; returns the number re-seeded per head."""
    rng = rng or np.random.default_rng()
    book = ops.convert_to_numpy(vq.codebook)
    counts = ops.convert_to_numpy(vq.ema_count)
    unused = ops.convert_to_numpy(vq.steps_unused)
    recent = ops.convert_to_numpy(vq.recent_inputs)
    k = vq.codebook_size
    uniform = counts.sum(axis=1, keepdims=True) / k  # ≈ batch size / codebook size
    dead = (unused >= max_unused_steps) | (counts < min_usage * uniform)
    reseeded = np.zeros(vq.num_heads, dtype=np.int64)
    for h in range(vq.num_heads):
        idx = np.flatnonzero(dead[h])
        if not idx.size or not np.any(recent[h]):
            continue
        z = recent[h]
        if vq.cosine:
            z = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
        d = ((z[:, None, :] - book[h][None]) ** 2).sum(-1).min(1)
        order = np.argsort(-d)
        picks = order[np.arange(idx.size) % len(order)]
        scale = 0.01 * (z.std() + 1e-12)
        book[h, idx] = z[picks] + scale * rng.standard_normal((idx.size, z.shape[1]))
        reseeded[h] = idx.size
    if reseeded.any():
        where = np.nonzero(dead & (reseeded[:, None] > 0))
        vq.set_codes(book[where], heads_codes=where, count=np.broadcast_to(uniform, counts.shape)[where])
    return reseeded


class CodebookReset(keras.callbacks.Callback):
    """Every `every` training steps, re-seeds dead codes of all the model's quantizers.

    Args:
        every: steps between checks.
        max_unused_steps: a code unused this many consecutive steps is dead.
        min_usage: a code whose EMA count is below this fraction of the uniform share is dead.
        seed: noise seed.
    """

    def __init__(self, every: int = 100, max_unused_steps: int = 200, min_usage: float = 0.03, seed: int = 0, verbose: int = 0):
        super().__init__()
        self.every = every
        self.max_unused_steps = max_unused_steps
        self.min_usage = min_usage
        self.rng = np.random.default_rng(seed)
        self.verbose = verbose
        self.total_reseeded = 0
        self._step = 0

    def run_state(self) -> dict:
        """What a resumed run needs to continue the same reset schedule and noise."""
        return {"step": self._step, "total_reseeded": self.total_reseeded,
                "rng": self.rng.bit_generator.state}

    def restore_run_state(self, state: dict):
        self._step, self.total_reseeded = state["step"], state["total_reseeded"]
        self.rng.bit_generator.state = state["rng"]

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        if self._step % self.every:
            return
        if keras.backend.backend() == "jax":
            self.model.jax_state_sync()  # the JAX loop keeps state outside the variables
        for vq in find_quantizers(self.model):
            n = reseed_dead_codes(vq, self.max_unused_steps, self.min_usage, self.rng)
            self.total_reseeded += int(n.sum())
            if self.verbose and n.any():
                print(f"\nCodebookReset: step {self._step}, {vq.name}: re-seeded {n.tolist()} codes per head")


def reset_count(callbacks) -> int:
    """Codes re-seeded by the `CodebookReset` among `callbacks` (0 when there is none)."""
    return sum(int(c.total_reseeded) for c in callbacks if isinstance(c, CodebookReset))
