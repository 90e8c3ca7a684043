"""A language model's `call_with_cache` for one new token, run as Pallas kernels on JAX.

Same inputs, logits and cache layout as the model's own step, for the weights of a model that
offers `decode_weights()` (`kerasvq.kernels.decode_weights`; `unsupported_reason` there says
when the shapes do not fit): GPT blocks with learned or sinusoidal positions and the tanh
GELU, power-of-two widths. A block is two kernels for one or two sequences (attention with
its QKV and output projections, the whole FFN) and four above (QKV, attention with the
output projection, FFN in, FFN out); the vocabulary projection also gives each row's argmax.
Make the weights inside the caller's trace, so under `jax.jit` over a `keras.StatelessScope`
(as `kerasvq.generation.generate` compiles) the step uses the traced values.

Example:
    >>> step = fused_decode_step(model.decode_weights(), column[:, None], cache, index)
    >>> step.logits.shape, step.greedy_ids.shape  # (batch, 1, vocab), (batch,)
"""

from __future__ import annotations

from typing import Any, NamedTuple

from kerasvq.kernels.decode_weights import DecodeWeights
from kerasvq.kernels.pallas_attention import FUSED_QKV_ROWS, attention_output, ln_attention_output
from kerasvq.kernels.pallas_decode import (FFN_FUSED_ROWS, counter_slots, linear_residual, ln_ffn, ln_linear,
                                           ln_logits, padded_rows)


class DecodeStep(NamedTuple):
    """What `fused_decode_step` returns."""

    logits: Any
    """(batch, 1, vocab) float32."""
    cache: tuple
    """The updated cache, laid out as the model's own."""
    counters: Any
    """The `arrival_counters`, zero again, for the next step."""
    greedy_ids: Any
    """(batch,) int32: each row's largest logit (the first on a tie, as `argmax`)."""


def arrival_counters(weights: DecodeWeights, batch):
    """The int32 zeros the step's kernels count arrivals in; they leave them zero, so a loop can
    pass one array from step to step instead of making it anew each time."""
    import jax.numpy as jnp

    return jnp.zeros((counter_slots(padded_rows(batch), weights.d_model),), jnp.int32)


def embed_token(weights: DecodeWeights, token_ids, index):
    """(batch, d) vectors of token_ids (batch, 1) at position `index`, in the compute dtype:
    the token vector plus the position vector, as the model's own step adds them."""
    import jax.numpy as jnp

    tokens = jnp.take(weights.token_embedding, token_ids[:, 0], axis=0).astype(weights.compute_dtype)
    return tokens + jnp.take(weights.positions, index, axis=0)[None, :]


def fused_decode_step(weights: DecodeWeights, token_ids, cache, cache_update_index, counters=None,
                      interpret=False) -> DecodeStep:
    """One decode step for token_ids (batch, 1) at slot `cache_update_index`; `weights` from the
    model's `decode_weights()`, `counters` from `arrival_counters` (made here when not given)."""
    import jax.numpy as jnp

    batch = token_ids.shape[0]
    index = jnp.asarray(cache_update_index, jnp.int32)
    x = embed_token(weights, jnp.asarray(token_ids, jnp.int32), index)
    rows = padded_rows(batch)
    x = jnp.pad(x, ((0, rows - batch), (0, 0)))
    if counters is None:
        counters = arrival_counters(weights, batch)
    common = dict(compute_dtype=weights.compute_dtype, interpret=interpret)
    updated = []
    for block, layer_cache in zip(weights.blocks, cache):
        gamma, beta, epsilon = block.attention_norm
        if rows <= FUSED_QKV_ROWS:
            x, layer_cache, counters = ln_attention_output(x, gamma, beta, *block.qkv, layer_cache, index,
                                                           *block.attention_output, counters, epsilon=epsilon,
                                                           batch=batch, **common)
        else:
            qkv = ln_linear(x, gamma, beta, *block.qkv, epsilon=epsilon, **common)
            x, layer_cache, counters = attention_output(qkv, layer_cache, index, *block.attention_output, x, counters,
                                                        batch=batch, **common)
        gamma, beta, epsilon = block.ffn_norm
        if rows <= FFN_FUSED_ROWS:
            x, counters = ln_ffn(x, gamma, beta, *block.ffn_hidden, *block.ffn_output, counters, epsilon=epsilon,
                                 **common)
        else:
            hidden = ln_linear(x, gamma, beta, *block.ffn_hidden, epsilon=epsilon, gelu=True, **common)
            x, counters = linear_residual(hidden, *block.ffn_output, x, counters, **common)
        updated.append(layer_cache)
    gamma, beta, epsilon = weights.final_norm
    logits, ids, counters = ln_logits(x, gamma, beta, weights.vocabulary_head, None, counters, epsilon=epsilon,
                                      transposed=weights.head_transposed, **common)
    return DecodeStep(logits[:batch, None, :], tuple(updated), counters, ids[:batch])
