"""`TransformerLM.call_with_cache` for one new token, run as Pallas kernels on JAX.

Same inputs, logits and cache layout as the model's own step, for models it supports
(`unsupported_reason` says why not, otherwise None): GPT blocks with learned or sinusoidal
positions and the tanh GELU, power-of-two widths. A block is two kernels for one or two
sequences (attention with its QKV and output projections, the whole FFN) and four above (QKV,
attention with the output projection, FFN in, FFN out); the vocabulary projection also gives
each row's argmax. The model's weights are read inside the caller's trace, so under `jax.jit`
over a `keras.StatelessScope` (as `kerasvq.generation` compiles) the step uses the traced
values.

Example:
    >>> step = fused_decode_step(model, column[:, None], cache, index)
    >>> step.logits.shape, step.greedy_ids.shape  # (batch, 1, vocab), (batch,)
"""

from __future__ import annotations

from typing import Any, NamedTuple

from keras import ops

from kerasvq.kernels.pallas_attention import FUSED_QKV_ROWS, attention_output, ln_attention_output
from kerasvq.kernels.pallas_decode import (FFN_FUSED_ROWS, counter_slots, linear_residual, ln_ffn, ln_linear,
                                           ln_logits, padded_rows)


def _power_of_two(n):
    return n > 0 and n & (n - 1) == 0


def unsupported_reason(model, cache_length=None):
    """Why `fused_decode_step` cannot run `model` (a string), or None when it can."""
    from kerasvq.models.transformer_lm import TransformerLM

    if not isinstance(model, TransformerLM):
        return f"{type(model).__name__} is not a TransformerLM"
    if model.block != "gpt":
        return f"block={model.block!r}; only 'gpt' blocks are fused"
    if model.positions == "rotary":
        return "rotary positions are not fused"
    if not model.approximate_gelu:
        return "the exact (erf) GELU is not fused"
    head_dim = model.d_model // model.num_heads
    cache_length = cache_length or model.seq_len
    for name, value in (("d_model", model.d_model), ("head_dim", head_dim), ("cache length", cache_length)):
        if not _power_of_two(value):
            return f"{name} {value} is not a power of two"
    for name, value in (("d_ff", model.d_ff), ("vocab_size", model.vocab_size)):
        if value % 16:
            return f"{name} {value} is not a multiple of 16"
    return None


def dense_weights(layer):
    """(kernel, bias or None) of a Dense layer, as the kernels take them."""
    bias = layer.bias if layer.use_bias else None
    return ops.convert_to_tensor(layer.kernel), None if bias is None else ops.convert_to_tensor(bias)


def norm_weights(layer):
    """(gamma, beta, epsilon) of a LayerNorm layer."""
    return ops.convert_to_tensor(layer.gamma), ops.convert_to_tensor(layer.beta), layer.epsilon


def vocabulary_head(model):
    """(weights, transposed) of the vocabulary projection: the token embedding (vocab, d) when
    tied, else the output head's (d, vocab) kernel."""
    if model.tie_embeddings:
        return ops.convert_to_tensor(model.token_embedding.embeddings), True
    return ops.convert_to_tensor(model.output_head.kernel), False


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


def arrival_counters(model, batch):
    """The int32 zeros the step's kernels count arrivals in; they leave them zero, so a loop can
    pass one array from step to step instead of making it anew each time."""
    import jax.numpy as jnp

    return jnp.zeros((counter_slots(padded_rows(batch), model.d_model),), jnp.int32)


def fused_decode_step(model, token_ids, cache, cache_update_index, counters=None, interpret=False) -> DecodeStep:
    """One decode step for token_ids (batch, 1) at slot `cache_update_index`; `counters` from
    `arrival_counters` (made here when not given)."""
    import jax.numpy as jnp

    batch = token_ids.shape[0]
    compute_dtype = model.compute_dtype
    x = model._embed(token_ids, cache_update_index, training=False)[:, 0, :]
    rows = padded_rows(batch)
    x = jnp.pad(x, ((0, rows - batch), (0, 0)))
    index = jnp.asarray(cache_update_index, jnp.int32)
    if counters is None:
        counters = arrival_counters(model, batch)
    common = dict(compute_dtype=compute_dtype, interpret=interpret)
    updated = []
    for block, layer_cache in zip(model.blocks, cache):
        gamma, beta, epsilon = norm_weights(block.attention_norm)
        qkv_weights = dense_weights(block.attention.qkv_dense)
        out_weights = dense_weights(block.attention.output_dense)
        if rows <= FUSED_QKV_ROWS:
            x, layer_cache, counters = ln_attention_output(x, gamma, beta, *qkv_weights, layer_cache, index,
                                                           *out_weights, counters, epsilon=epsilon, batch=batch,
                                                           **common)
        else:
            qkv = ln_linear(x, gamma, beta, *qkv_weights, epsilon=epsilon, **common)
            x, layer_cache, counters = attention_output(qkv, layer_cache, index, *out_weights, x, counters,
                                                        batch=batch, **common)
        gamma, beta, epsilon = norm_weights(block.ffn_norm)
        if rows <= FFN_FUSED_ROWS:
            x, counters = ln_ffn(x, gamma, beta, *dense_weights(block.ffn_hidden), *dense_weights(block.ffn_output),
                                 counters, epsilon=epsilon, **common)
        else:
            hidden = ln_linear(x, gamma, beta, *dense_weights(block.ffn_hidden), epsilon=epsilon, gelu=True, **common)
            x, counters = linear_residual(hidden, *dense_weights(block.ffn_output), x, counters, **common)
        updated.append(layer_cache)
    gamma, beta, epsilon = norm_weights(model.final_norm)
    head, transposed = vocabulary_head(model)
    logits, ids, counters = ln_logits(x, gamma, beta, head, None, counters, epsilon=epsilon, transposed=transposed,
                                      **common)
    return DecodeStep(logits[:batch, None, :], tuple(updated), counters, ids[:batch])
