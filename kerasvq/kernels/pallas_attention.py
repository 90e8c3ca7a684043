"""Attention of one new token against the KV cache, with the output projection and residual,
as one Pallas (Triton) kernel on a GPU, JAX only; see `kerasvq.kernels.pallas_decode`.

Example:
    >>> x, cache, counters = attention_output(qkv, cache, index, w_out, b_out, x, counters, batch=1)
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from kerasvq.kernels.pallas_decode import arrives_last, reset_arrivals, residual_plus_partials, triton_params

KEYS_PER_BLOCK = 128
"""Cached keys read per step of the online softmax (picked on an H100: 64 was 0.5 µs slower at
batch 1, 256 slower at batch 32)."""


def _attention_output_kernel(q_ref, k_ref, v_ref, cache_ref, index_ref, w_ref, b_ref, residual_ref,
                             counter_ref, out_ref, cache_out_ref, partial_ref, counter_out_ref, *, batch,
                             scale, block, compute_dtype, interpret):
    del counter_ref  # aliased with counter_out_ref
    row, head = pl.program_id(0), pl.program_id(1)
    index = index_ref[()]
    k_new = k_ref[...].astype(cache_ref.dtype)
    v_new = v_ref[...].astype(cache_ref.dtype)
    query = q_ref[...].astype(jnp.float32)
    # This head's rows of the output projection, loaded before the key loop so that the two
    # loads overlap.
    w = w_ref[...].astype(compute_dtype).astype(jnp.float32)
    offsets = jnp.arange(block)

    def attend(i, carry):
        # Online softmax over key blocks, reading only the slots up to `index`. The slot
        # `index` is about to hold this token's key and value: they come from the registers,
        # not from the store below, whose order against these loads is not fixed.
        total, norm, peak = carry
        start = i * block
        positions = start + offsets
        here = (positions == index)[:, None]
        keys = jnp.where(here, k_new[None, :], cache_ref[0, pl.ds(start, block), :]).astype(jnp.float32)
        values = jnp.where(here, v_new[None, :], cache_ref[1, pl.ds(start, block), :]).astype(jnp.float32)
        scores = jnp.sum(keys * query[None, :], axis=1) * scale
        scores = jnp.where(positions <= index, scores, -jnp.inf)
        new_peak = jnp.maximum(peak, jnp.max(scores))
        correction = jnp.exp(peak - new_peak)
        weights = jnp.exp(scores - new_peak)
        total = total * correction + jnp.sum(weights[:, None] * values, axis=0)
        return total, norm * correction + jnp.sum(weights), new_peak

    blocks = index // block + 1
    init = (jnp.zeros(query.shape, jnp.float32), jnp.float32(0.0), jnp.float32(-jnp.inf))
    total, norm, _ = jax.lax.fori_loop(0, blocks, attend, init)
    attended = (total / norm).astype(compute_dtype).astype(jnp.float32)
    partial_ref[pl.ds(head, 1), :] = jnp.sum(attended[:, None] * w, axis=0)[None, :]

    @pl.when(row < batch)
    def _():
        cache_out_ref[0, pl.ds(index, 1), :] = k_new[None, :]
        cache_out_ref[1, pl.ds(index, 1), :] = v_new[None, :]

    @pl.when(arrives_last(counter_out_ref, row, partial_ref.shape[0], interpret))
    def _():
        total = residual_plus_partials(residual_ref[...], partial_ref, b_ref, compute_dtype)
        out_ref[...] = total.astype(out_ref.dtype)
        reset_arrivals(counter_out_ref, row, partial_ref.shape[0])


def attention_output(qkv, cache, index, w, b, residual, counters, *, batch, compute_dtype=None,
                     interpret=False):
    """`residual + Attention(new token, cache) @ w + b`, writing the new keys and values into
    the cache in place. One program per sequence and head: each attends over its head's cache
    and projects its head_dim slice through the matching rows of `w`; the last of a row's
    programs to finish adds the heads' partial sums in a fixed order.

    Args:
        qkv: (rows, 3·heads·head_dim) queries, keys and values of the new token (rows ≥ batch;
            rows past `batch` are padding, computed against sequence `batch - 1`).
        cache: (2, batch, max_length, heads, head_dim), keys then values.
        index: int32 scalar, the slot of the new token; slots above it are masked.
        w, b: the output projection, (heads·head_dim, d) and (d,) or None.
        residual: (rows, d).
        counters: `counter_slots(rows, d)` int32 zeros.

    Returns `(out (rows, d), updated cache, counters)`.
    """
    rows = qkv.shape[0]
    _, _, length, heads, head_dim = cache.shape
    width = w.shape[1]
    compute_dtype = compute_dtype or qkv.dtype
    last = batch - 1
    clamp = lambda r: jnp.minimum(r, last)  # noqa: E731
    kernel = functools.partial(_attention_output_kernel, batch=batch, scale=1.0 / math.sqrt(head_dim),
                               block=min(length, KEYS_PER_BLOCK), compute_dtype=compute_dtype,
                               interpret=interpret)
    cache_spec = pl.BlockSpec((2, None, length, None, head_dim), lambda r, h: (0, clamp(r), 0, h, 0))
    row_spec = pl.BlockSpec((None, width), lambda r, h: (r, 0))
    counter_spec = pl.BlockSpec(counters.shape, lambda r, h: (0,))
    out, cache, _, counters = pl.pallas_call(
        kernel,
        out_shape=(jax.ShapeDtypeStruct((rows, width), residual.dtype),
                   jax.ShapeDtypeStruct(cache.shape, cache.dtype),
                   jax.ShapeDtypeStruct((rows, heads, width), jnp.float32),
                   jax.ShapeDtypeStruct(counters.shape, counters.dtype)),
        grid=(rows, heads),
        in_specs=[pl.BlockSpec((None, head_dim), lambda r, h: (r, h)),
                  pl.BlockSpec((None, head_dim), lambda r, h: (r, heads + h)),
                  pl.BlockSpec((None, head_dim), lambda r, h: (r, 2 * heads + h)),
                  cache_spec, pl.BlockSpec((), lambda r, h: ()),
                  pl.BlockSpec((head_dim, width), lambda r, h: (h, 0)),
                  None if b is None else pl.BlockSpec((width,), lambda r, h: (0,)),
                  row_spec, counter_spec],
        out_specs=(row_spec, cache_spec, pl.BlockSpec((None, heads, width), lambda r, h: (r, 0, 0)),
                   counter_spec),
        input_output_aliases={3: 1, 8: 3},
        compiler_params=triton_params(num_warps=8),
        interpret=interpret,
        name="attention_output",
    )(qkv, qkv, qkv, cache, jnp.asarray(index, jnp.int32), w, b, residual, counters)
    return out, cache, counters
