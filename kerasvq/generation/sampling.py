"""Sampling settings and logit processors, in `keras.ops` (any backend).

Each processor maps float32 logits (batch, vocab) to logits, marking removed tokens with
-inf, so they compose in a fixed order: repetition penalty → temperature → top-k → top-p →
pick (argmax when greedy, else a categorical draw from a seeded `keras.random.SeedGenerator`).

Why not keras-hub's samplers: `keras_hub.samplers` (an optional extra here) implement
top-k and top-p with the same maths, but have no repetition penalty, and their loop
(`ops.while_loop` over `next(prompt, cache, index)`) stops only when *every* row has hit a
stop token and keeps writing tokens after a row's end-of-sequence. `kerasvq.generation.generate`
needs per-row stop, a history-aware penalty and a plain Python loop that also runs the
uncached path, so the processors are written here; `tests/generation/test_sampling.py` checks the
top-k/top-p kept sets against `keras_hub.samplers` when keras-hub is installed.

Example:
    >>> cfg = SamplingConfig(temperature=0.8, top_k=40, top_p=0.95, seed=1)
    >>> next_ids = sample_next(logits, cfg, keras.random.SeedGenerator(cfg.seed))
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import keras
from keras import ops

from kerasvq.common.errors import UserError

NEG_INF = -1e30


@dataclasses.dataclass
class SamplingConfig:
    max_new_tokens: int = 64
    greedy: bool = False
    """Argmax decoding; temperature, top-k, top-p and the seed are then ignored."""
    temperature: float = 1.0
    top_k: Optional[int] = None
    top_p: Optional[float] = None
    repetition_penalty: float = 1.0
    """CTRL-style (Keskar et al., 2019): logits of tokens already in the prompt or the
    generated text are divided by it when positive and multiplied when negative."""
    stop_at_eos: bool = True
    seed: Optional[int] = 1337

    def validate(self):
        if self.max_new_tokens < 1:
            raise UserError(f"field 'max_new_tokens' must be at least 1, got {self.max_new_tokens}")
        if self.temperature <= 0:
            raise UserError(
                f"field 'temperature' must be positive (use greedy=true for argmax), got {self.temperature}"
            )
        if self.top_k is not None and self.top_k < 1:
            raise UserError(f"field 'top_k' must be at least 1 or null, got {self.top_k}")
        if self.top_p is not None and not 0.0 < self.top_p <= 1.0:
            raise UserError(f"field 'top_p' must be in (0, 1] or null, got {self.top_p}")
        if self.repetition_penalty < 1.0:
            raise UserError(
                f"field 'repetition_penalty' must be at least 1.0, got {self.repetition_penalty}"
            )
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def apply_temperature(logits, temperature: float):
    return logits / temperature


def apply_top_k(logits, k: int):
    """Keeps the `k` largest logits per row (ties with the k-th are kept too)."""
    k = min(int(k), int(logits.shape[-1]))
    kth = ops.top_k(logits, k=k, sorted=True)[0][:, -1:]
    return ops.where(logits < kth, NEG_INF, logits)


def apply_top_p(logits, p: float):
    """Nucleus filtering (Holtzman et al., 2020): keeps the smallest set of most probable
    tokens whose probabilities sum to at least `p` (the token that crosses `p` is kept).

    Done with a threshold instead of a scatter: the smallest kept probability is found in
    sorted order and every token at least that probable is kept.
    """
    probs = ops.softmax(logits, axis=-1)
    sorted_probs = ops.flip(ops.sort(probs, axis=-1), axis=-1)
    mass_before = ops.cumsum(sorted_probs, axis=-1) - sorted_probs
    keep_sorted = mass_before < p
    threshold = ops.min(ops.where(keep_sorted, sorted_probs, 2.0), axis=-1, keepdims=True)
    return ops.where(probs < threshold, NEG_INF, logits)


def token_presence(token_ids, vocab_size: int, mask=None):
    """(batch, vocab) float32: 1 where a token occurs in `token_ids` (where `mask` is true)."""
    one_hot = ops.one_hot(ops.cast(token_ids, "int32"), vocab_size, dtype="float32")
    if mask is not None:
        one_hot = one_hot * ops.cast(mask, "float32")[..., None]
    return ops.max(one_hot, axis=1)


def apply_repetition_penalty(logits, presence, penalty: float):
    penalized = ops.where(logits > 0, logits / penalty, logits * penalty)
    return ops.where(presence > 0, penalized, logits)


def process_logits(logits, config: SamplingConfig, presence=None):
    """Applies the processors of `config` in order; returns float32 logits."""
    logits = ops.cast(logits, "float32")
    if config.repetition_penalty != 1.0 and presence is not None:
        logits = apply_repetition_penalty(logits, presence, config.repetition_penalty)
    if config.greedy:
        return logits
    if config.temperature != 1.0:
        logits = apply_temperature(logits, config.temperature)
    if config.top_k is not None:
        logits = apply_top_k(logits, config.top_k)
    if config.top_p is not None and config.top_p < 1.0:
        logits = apply_top_p(logits, config.top_p)
    return logits


def sample_next(logits, config: SamplingConfig, seed_generator=None, presence=None):
    """Next token ids (batch,) int32 from raw logits (batch, vocab)."""
    logits = process_logits(logits, config, presence)
    if config.greedy:
        return ops.cast(ops.argmax(logits, axis=-1), "int32")
    draw = keras.random.categorical(logits, 1, seed=seed_generator, dtype="int32")
    return draw[:, 0]
