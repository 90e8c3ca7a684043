"""Pallas (Triton) kernels for one token of Transformer decoding on a GPU, JAX only.

At decode time every matmul has one row per sequence, so a step is bound by how many kernels
it launches, not by arithmetic: XLA turns a v5 decoder block into about 16 kernels of 1-2 µs
each. These three kernels do a block in four launches, each fusing what surrounds a matmul:

- `ln_linear`: LayerNorm, then `x @ w + b`, optionally GELU (QKV, FFN in, vocabulary logits);
- `decode_attention`: one new token against the KV cache, writing its key and value into the
  cache in place (one program per sequence and head);
- `linear_residual`: `residual + x @ w + b` (attention output, FFN out).

Rows (sequences) are padded to a power of two, and to at least 16 (Triton's smallest matmul
tile) above 8; padded rows are computed and ignored. Up to 8 rows a matmul is a broadcast
product and sum in float32, above that a Triton dot. LayerNorm statistics, softmax and
accumulation are float32; matmul inputs are cast to `compute_dtype`. With `interpret=True`
the same kernels run on any JAX device through Pallas's interpreter (slow; the tests use it
on the CPU).

Example:
    >>> qkv = ln_linear(x, gamma, beta, qkv_kernel, qkv_bias, epsilon=1e-5)      # (16, 768)
    >>> heads, cache = decode_attention(qkv, cache, index, batch=1)              # (16, 256)
    >>> x = linear_residual(heads, out_kernel, out_bias, x)                      # (16, 256)
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plgpu

from kerasvq.layers.tanh_gelu import CUBIC, SQRT_2_OVER_PI

MIN_ROWS = 16
"""Triton's `dot` needs tiles of at least 16 rows; fewer rows take the broadcast-and-sum path."""
SMALL_ROWS = 8
"""Up to this many sequences, rows are padded to a power of two and matmuls are GEMVs."""

# Block sizes and warps, picked on an H100 at batch 1 and 32 (v5 shape, float32): wide blocks
# of a few columns keep many programs in flight, which is what a latency-bound step needs.
_LN_COLUMNS = {"small": 8, "dot": 32}
_RESIDUAL_COLUMNS = {"small": 4, "dot": 16}
_RESIDUAL_DEPTH = {"small": 1024, "dot": 128}
_RESIDUAL_WARPS = {"small": 8, "dot": 4}
_ATTENTION_KEYS = 64


def padded_rows(batch: int) -> int:
    """The row count kernels run with for `batch` sequences: a power of two, at least 16 once
    above `SMALL_ROWS`."""
    rows = 1 << (batch - 1).bit_length()
    return rows if rows <= SMALL_ROWS else max(MIN_ROWS, rows)


def _matmul(x, w, transposed=False):
    """x (rows, k) @ w (k, n), or w (n, k) when transposed; float32 result. Rows below 16 are
    a broadcast product and sum (Triton's dot needs 16), which is also what a GEMV is."""
    if x.shape[0] < MIN_ROWS:
        if transposed:
            return jnp.sum(x[:, None, :].astype(jnp.float32) * w[None, :, :].astype(jnp.float32), axis=2)
        return jnp.sum(x[:, :, None].astype(jnp.float32) * w[None, :, :].astype(jnp.float32), axis=1)
    # Default precision: float32 inputs run as TF32, as XLA's own float32 matmuls do on a GPU
    # (exact float32 Triton dots were 10× slower at batch 32).
    contract = ((1,), (1,)) if transposed else ((1,), (0,))
    return jax.lax.dot_general(x, w, (contract, ((), ())), preferred_element_type=jnp.float32)


def _plan(rows: int, width: int, preferred_columns: dict) -> tuple[str, int]:
    """("small" or "dot", columns per program) for a matmul of `rows` rows into `width` columns:
    the preferred block for the path, halved until it divides `width` (a dot needs 16)."""
    path = "dot" if rows >= MIN_ROWS else "small"
    block, smallest = preferred_columns[path], MIN_ROWS if path == "dot" else 1
    while width % block:
        block //= 2
    if block < smallest:
        raise ValueError(f"width {width} is not a multiple of {smallest}")
    return path, block


def _params(num_warps=4):
    return plgpu.CompilerParams(num_warps=num_warps, num_stages=1)


def _gelu_tanh(x):
    return 0.5 * x * (1.0 + jnp.tanh(SQRT_2_OVER_PI * (x + CUBIC * x * x * x)))


def _ln_linear_kernel(x_ref, gamma_ref, beta_ref, w_ref, b_ref, out_ref, *, epsilon, gelu,
                      transposed, compute_dtype):
    # The statistics of `OnePassLayerNormalization`: E[x²] − E[x]² from one read, float32.
    x = x_ref[...].astype(jnp.float32)
    mean = jnp.mean(x, axis=1, keepdims=True)
    variance = jnp.maximum(jnp.mean(x * x, axis=1, keepdims=True) - mean * mean, 0.0)
    scale = jax.lax.rsqrt(variance + epsilon) * gamma_ref[...].astype(jnp.float32)[None, :]
    normed = (x * scale + (beta_ref[...].astype(jnp.float32)[None, :] - mean * scale)).astype(compute_dtype)
    y = _matmul(normed, w_ref[...].astype(compute_dtype), transposed)
    if b_ref is not None:
        y = y + b_ref[...].astype(jnp.float32)[None, :]
    if gelu:
        y = _gelu_tanh(y.astype(compute_dtype).astype(jnp.float32))
    out_ref[...] = y.astype(out_ref.dtype)


def ln_linear(x, gamma, beta, w, b=None, *, epsilon, gelu=False, transposed=False,
              compute_dtype=None, out_dtype=None, interpret=False):
    """`LayerNorm(x) @ w + b` (then tanh GELU when `gelu`), for x (rows, d), rows from
    `padded_rows`.

    `w` is (d, n), or (n, d) when `transposed` (a tied embedding table).
    """
    rows, width = x.shape
    n = w.shape[0] if transposed else w.shape[1]
    compute_dtype = compute_dtype or x.dtype
    _, block = _plan(rows, n, _LN_COLUMNS)
    w_spec = (pl.BlockSpec((block, width), lambda j: (j, 0)) if transposed
              else pl.BlockSpec((width, block), lambda j: (0, j)))
    full = lambda j: (0,)  # noqa: E731
    kernel = functools.partial(_ln_linear_kernel, epsilon=epsilon, gelu=gelu, transposed=transposed,
                               compute_dtype=compute_dtype)
    return pl.pallas_call(
        kernel,
        out_shape=jax.ShapeDtypeStruct((rows, n), out_dtype or compute_dtype),
        grid=(n // block,),
        in_specs=[pl.BlockSpec((rows, width), lambda j: (0, 0)), pl.BlockSpec((width,), full),
                  pl.BlockSpec((width,), full), w_spec,
                  None if b is None else pl.BlockSpec((block,), lambda j: (j,))],
        out_specs=pl.BlockSpec((rows, block), lambda j: (0, j)),
        compiler_params=_params(),
        interpret=interpret,
        name="ln_linear",
    )(x, gamma, beta, w, b)


def _linear_residual_kernel(x_ref, w_ref, b_ref, residual_ref, out_ref, *, block_k, compute_dtype):
    acc = residual_ref[...].astype(jnp.float32)
    y = jnp.zeros(acc.shape, jnp.float32)
    for start in range(0, x_ref.shape[1], block_k):
        x = x_ref[:, start : start + block_k].astype(compute_dtype)
        w = w_ref[start : start + block_k, :].astype(compute_dtype)
        y = y + _matmul(x, w)
    if b_ref is not None:
        y = y + b_ref[...].astype(jnp.float32)[None, :]
    out_ref[...] = (acc + y.astype(compute_dtype).astype(jnp.float32)).astype(out_ref.dtype)


def linear_residual(x, w, b, residual, *, compute_dtype=None, interpret=False):
    """`residual + (x @ w + b)` for x (rows, k), w (k, n), residual (rows, n)."""
    rows, depth = x.shape
    n = w.shape[1]
    compute_dtype = compute_dtype or x.dtype
    path, block = _plan(rows, n, _RESIDUAL_COLUMNS)
    block_k = min(depth, _RESIDUAL_DEPTH[path])
    kernel = functools.partial(_linear_residual_kernel, block_k=block_k, compute_dtype=compute_dtype)
    return pl.pallas_call(
        kernel,
        out_shape=jax.ShapeDtypeStruct((rows, n), residual.dtype),
        grid=(n // block,),
        in_specs=[pl.BlockSpec((rows, depth), lambda j: (0, 0)), pl.BlockSpec((depth, block), lambda j: (0, j)),
                  None if b is None else pl.BlockSpec((block,), lambda j: (j,)),
                  pl.BlockSpec((rows, block), lambda j: (0, j))],
        out_specs=pl.BlockSpec((rows, block), lambda j: (0, j)),
        compiler_params=_params(_RESIDUAL_WARPS[path]),
        interpret=interpret,
        name="linear_residual",
    )(x, w, b, residual)


def _decode_attention_kernel(q_ref, k_ref, v_ref, cache_ref, index_ref, out_ref, cache_out_ref, *,
                             batch, scale, block):
    index = index_ref[()]
    k_new = k_ref[...].astype(cache_ref.dtype)
    v_new = v_ref[...].astype(cache_ref.dtype)
    query = q_ref[...].astype(jnp.float32)
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
    out_ref[...] = (total / norm).astype(out_ref.dtype)

    @pl.when(pl.program_id(0) < batch)
    def _():
        cache_out_ref[0, pl.ds(index, 1), :] = k_new[None, :]
        cache_out_ref[1, pl.ds(index, 1), :] = v_new[None, :]


def decode_attention(qkv, cache, index, *, batch, interpret=False):
    """One new token per sequence against a KV cache, updating the cache in place.

    Args:
        qkv: (rows, 3·heads·head_dim) queries, keys and values of the new token (rows ≥ batch;
            rows past `batch` are padding, computed against sequence `batch - 1`).
        cache: (2, batch, max_length, heads, head_dim), keys then values.
        index: int32 scalar, the slot of the new token; slots above it are masked.

    Returns `(out (rows, heads·head_dim), updated cache)`.
    """
    rows = qkv.shape[0]
    _, _, length, heads, head_dim = cache.shape
    last = batch - 1
    clamp = lambda r: jnp.minimum(r, last)  # noqa: E731
    kernel = functools.partial(_decode_attention_kernel, batch=batch, scale=1.0 / math.sqrt(head_dim),
                               block=min(length, _ATTENTION_KEYS))
    cache_spec = pl.BlockSpec((2, None, length, None, head_dim), lambda r, h: (0, clamp(r), 0, h, 0))
    return pl.pallas_call(
        kernel,
        out_shape=(jax.ShapeDtypeStruct((rows, heads * head_dim), qkv.dtype),
                   jax.ShapeDtypeStruct(cache.shape, cache.dtype)),
        grid=(rows, heads),
        in_specs=[pl.BlockSpec((None, head_dim), lambda r, h: (r, h)),
                  pl.BlockSpec((None, head_dim), lambda r, h: (r, heads + h)),
                  pl.BlockSpec((None, head_dim), lambda r, h: (r, 2 * heads + h)),
                  cache_spec, pl.BlockSpec((), lambda r, h: ())],
        out_specs=(pl.BlockSpec((None, head_dim), lambda r, h: (r, h)), cache_spec),
        input_output_aliases={3: 1},
        compiler_params=_params(num_warps=8),
        interpret=interpret,
        name="decode_attention",
    )(qkv, qkv, qkv, cache, jnp.asarray(index, jnp.int32))
