"""Attention of one new token against the KV cache, with the output projection and residual,
as one Pallas (Triton) kernel on a GPU, JAX only; see `kerasvq.kernels.pallas_decode`.

`attention_output` takes the new token's queries, keys and values from a QKV projection;
`ln_attention_output` computes them itself (LayerNorm and each head's slice of the QKV
projection in every program), which saves a kernel when there are few rows.

Example:
    >>> x, cache, counters = attention_output(qkv, cache, index, w_out, b_out, x, counters, batch=1)
    >>> x, cache, counters = ln_attention_output(x, gamma, beta, w_qkv, b_qkv, cache, index, w_out,
    ...                                          b_out, counters, epsilon=1e-5, batch=1)
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from kerasvq.kernels.pallas_decode import (arrives_last, layer_norm, matmul, reset_arrivals, residual_plus_partials,
                                           triton_params)

FUSED_QKV_ROWS = 2
"""Up to this many rows the decode step uses `ln_attention_output` (its programs each read a
slice of the QKV weights, which grows with rows)."""
KEYS_PER_BLOCK = 128
"""Cached keys read per step of the online softmax (timed on a GPU: 64 was slower at batch 1,
256 slower at batch 32)."""


def attend_to_cache(query, k_new, v_new, load_keys, load_values, index, block, scale):
    """Softmax attention of one query (head_dim,) over the cache slots up to `index`, in
    float32: an online softmax over blocks of `block` slots, `load_keys(start)` and
    `load_values(start)` giving (block, head_dim) from the cache. The slot `index` is about
    to hold the new token's key and value: they come from the registers (`k_new`, `v_new`), not
    from a store whose order against these loads is not fixed."""
    offsets = jnp.arange(block)

    def attend(i, carry):
        total, norm, peak = carry
        start = i * block
        positions = start + offsets
        here = (positions == index)[:, None]
        keys = jnp.where(here, k_new[None, :], load_keys(start)).astype(jnp.float32)
        values = jnp.where(here, v_new[None, :], load_values(start)).astype(jnp.float32)
        scores = jnp.sum(keys * query[None, :], axis=1) * scale
        scores = jnp.where(positions <= index, scores, -jnp.inf)
        new_peak = jnp.maximum(peak, jnp.max(scores))
        correction = jnp.exp(peak - new_peak)
        weights = jnp.exp(scores - new_peak)
        total = total * correction + jnp.sum(weights[:, None] * values, axis=0)
        return total, norm * correction + jnp.sum(weights), new_peak

    init = (jnp.zeros(query.shape, jnp.float32), jnp.float32(0.0), jnp.float32(-jnp.inf))
    total, norm, _ = jax.lax.fori_loop(0, index // block + 1, attend, init)
    return total / norm


def _given_qkv(source, residual_ref):
    """The new token's query, key and value of this program's head, as given."""
    del residual_ref
    return tuple(ref[...] for ref in source)


def _projected_qkv(source, residual_ref, *, epsilon, compute_dtype):
    """The new token's query, key and value of this program's head: LayerNorm of the residual
    row through the head's columns of the QKV projection, rounded as the projection's output."""
    gamma_ref, beta_ref, w_refs, b_refs = source
    weights = [ref[...].astype(compute_dtype) for ref in w_refs]
    normed = layer_norm(residual_ref[...].astype(jnp.float32)[None, :], gamma_ref, beta_ref, epsilon)
    normed = normed.astype(compute_dtype)
    projected = []
    for w, b_ref in zip(weights, b_refs):
        y = matmul(normed, w)[0]
        if b_ref is not None:
            y = y + b_ref[...].astype(jnp.float32)
        projected.append(y.astype(compute_dtype))
    return tuple(projected)


def _attention_output_kernel(source, cache_ref, index_ref, w_ref, b_ref, residual_ref, counter_ref, out_ref,
                             cache_out_ref, partial_ref, counter_out_ref, *, new_token, batch, scale, block,
                             compute_dtype, interpret):
    del counter_ref  # aliased with counter_out_ref
    row, head = pl.program_id(0), pl.program_id(1)
    index = index_ref[()]
    query, k_new, v_new = new_token(source, residual_ref)
    k_new = k_new.astype(cache_ref.dtype)
    v_new = v_new.astype(cache_ref.dtype)
    query = query.astype(jnp.float32)
    # This head's rows of the output projection, loaded before the key loop so that the two
    # loads overlap.
    w = w_ref[...].astype(compute_dtype).astype(jnp.float32)
    attended = attend_to_cache(query, k_new, v_new, lambda start: cache_ref[0, pl.ds(start, block), :],
                               lambda start: cache_ref[1, pl.ds(start, block), :], index, block, scale)
    attended = attended.astype(compute_dtype).astype(jnp.float32)
    partial_ref[pl.ds(head, 1), :] = jnp.sum(attended[:, None] * w, axis=0)[None, :]

    @pl.when(row < batch)
    def _():
        cache_out_ref[0, pl.ds(index, 1), :] = k_new[None, :]
        cache_out_ref[1, pl.ds(index, 1), :] = v_new[None, :]

    @pl.when(arrives_last(counter_out_ref, row, partial_ref.shape[0], interpret))
    def _():
        total = residual_plus_partials(residual_ref[...], partial_ref[...], b_ref, compute_dtype)
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
    heads, head_dim = cache.shape[3:]
    source = (qkv, qkv, qkv)
    specs = tuple(pl.BlockSpec((None, head_dim), lambda r, h, part=part: (r, part * heads + h)) for part in range(3))
    return _attention_call(source, specs, _given_qkv, cache, index, w, b, residual, counters, batch=batch,
                           compute_dtype=compute_dtype or qkv.dtype, interpret=interpret)


def ln_attention_output(x, gamma, beta, w_qkv, b_qkv, cache, index, w, b, counters, *, epsilon, batch,
                        compute_dtype=None, interpret=False):
    """`x + Attention(LayerNorm(x) @ w_qkv + b_qkv, cache) @ w + b`: `attention_output` with
    the QKV projection inside, each program computing its own head's query, key and value.

    Every program reads a (d, 3·head_dim) slice of `w_qkv`, so this is for a few rows: at one
    row it is one kernel fewer than the QKV kernel and `attention_output`, for about the same
    time. Arguments as `attention_output`, with
    `x` (rows, d) the residual stream and `w_qkv` (d, 3·heads·head_dim), `b_qkv` or None.
    """
    heads, head_dim = cache.shape[3:]
    width = x.shape[1]
    full = lambda r, h: (0,)  # noqa: E731
    parts = range(3)
    source = (gamma, beta, (w_qkv,) * 3, (b_qkv,) * 3)
    specs = (pl.BlockSpec((width,), full), pl.BlockSpec((width,), full),
             tuple(pl.BlockSpec((width, head_dim), lambda r, h, part=part: (0, part * heads + h)) for part in parts),
             tuple(None if b_qkv is None else pl.BlockSpec((head_dim,), lambda r, h, part=part: (part * heads + h,))
                   for part in parts))
    compute_dtype = compute_dtype or x.dtype
    new_token = functools.partial(_projected_qkv, epsilon=epsilon, compute_dtype=compute_dtype)
    return _attention_call(source, specs, new_token, cache, index, w, b, x, counters, batch=batch,
                           compute_dtype=compute_dtype, interpret=interpret)


def _attention_call(source, source_specs, new_token, cache, index, w, b, residual, counters, *, batch,
                    compute_dtype, interpret):
    """The `pallas_call` behind both public functions; `new_token(source, residual_ref)` gives
    a program's query, key and value from the refs of `source`."""
    rows, width = residual.shape
    _, _, length, heads, head_dim = cache.shape
    last = batch - 1
    clamp = lambda r: jnp.minimum(r, last)  # noqa: E731
    kernel = functools.partial(_attention_output_kernel, new_token=new_token, batch=batch,
                               scale=1.0 / math.sqrt(head_dim), block=min(length, KEYS_PER_BLOCK),
                               compute_dtype=compute_dtype, interpret=interpret)
    cache_spec = pl.BlockSpec((2, None, length, None, head_dim), lambda r, h: (0, clamp(r), 0, h, 0))
    row_spec = pl.BlockSpec((None, width), lambda r, h: (r, 0))
    counter_spec = pl.BlockSpec(counters.shape, lambda r, h: (0,))
    args = (source, cache, jnp.asarray(index, jnp.int32), w, b, residual, counters)
    # Aliases count flattened inputs: the source's arrays, then the rest (a None bias is none).
    cache_input, counter_input = len(jax.tree.leaves(source)), len(jax.tree.leaves(args)) - 1
    out, cache, _, counters = pl.pallas_call(
        kernel,
        out_shape=(jax.ShapeDtypeStruct((rows, width), residual.dtype),
                   jax.ShapeDtypeStruct(cache.shape, cache.dtype),
                   jax.ShapeDtypeStruct((rows, heads, width), jnp.float32),
                   jax.ShapeDtypeStruct(counters.shape, counters.dtype)),
        grid=(rows, heads),
        in_specs=[source_specs, cache_spec, pl.BlockSpec((), lambda r, h: ()),
                  pl.BlockSpec((head_dim, width), lambda r, h: (h, 0)),
                  None if b is None else pl.BlockSpec((width,), lambda r, h: (0,)),
                  row_spec, counter_spec],
        out_specs=(row_spec, cache_spec, pl.BlockSpec((None, heads, width), lambda r, h: (r, 0, 0)),
                   counter_spec),
        input_output_aliases={cache_input: 1, counter_input: 3},
        compiler_params=triton_params(num_warps=8),
        interpret=interpret,
        name="attention_output",
    )(*args)
    return out, cache, counters
