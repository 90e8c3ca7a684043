"""Pallas (Triton) matmul kernels for one token of Transformer decoding on a GPU, JAX only.

At decode time every matmul has one row per sequence, so a step is bound by how many kernels
it launches and how long each waits on memory, not by arithmetic: XLA turns a v5 decoder block
into about 16 kernels of a microsecond or two each. These kernels fuse what surrounds each
matmul:

- `ln_linear`: LayerNorm, then `x @ w + b`, optionally GELU (QKV, FFN in);
- `ln_logits`: the same into float32 vocabulary logits, with each row's argmax;
- `linear_residual`: `residual + x @ w + b`, the depth split over several programs (FFN out);
- `ln_ffn`: the whole FFN with its residual, for one or two rows;
- and, in `kerasvq.kernels.pallas_attention`, `attention_output` (attention, output
  projection and residual) and `ln_attention_output` (the same with LayerNorm and QKV).

Rows (sequences) are padded to a power of two, and to at least 16 (Triton's smallest matmul
tile) above 8; padded rows are computed and ignored. Up to 8 rows a matmul is a broadcast
product and sum in float32, above that a Triton dot. LayerNorm statistics, softmax and
accumulation are float32; matmul inputs are cast to `compute_dtype`.

Kernels that split one output over several programs write partial sums, then count arrivals
in an int32 slot (`counter_slots` zeros, passed along from kernel to kernel): the last program
to arrive adds the partials in a fixed order and sets the slot back to zero, so results do not
depend on which program finishes first. With `interpret=True` the same kernels run on any JAX
device through Pallas's interpreter (slow; the tests use it on the CPU).

Example:
    >>> counters = jnp.zeros((counter_slots(16, 256),), jnp.int32)
    >>> hidden = ln_linear(x, gamma, beta, w_in, b_in, epsilon=1e-5, gelu=True)   # (16, 1024)
    >>> x, counters = linear_residual(hidden, w_out, b_out, x, counters)           # (16, 256)
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plgpu

from kerasvq.layers.tanh_gelu import CUBIC, SQRT_2_OVER_PI

MIN_ROWS = 16
"""Triton's `dot` needs tiles of at least 16 rows; fewer rows take the broadcast-and-sum path."""
SMALL_ROWS = 8
"""Up to this many sequences, rows are padded to a power of two and matmuls are GEMVs."""

# Block sizes and warps, picked by timing batch 1 and 32 (v5 shape, float32) on a GPU: wide
# blocks of a few columns keep many programs in flight, which is what a latency-bound step needs.
_LN_COLUMNS = {"small": 8, "dot": 32}
_RESIDUAL_COLUMNS = {"small": 4, "dot": 16}
_RESIDUAL_DEPTH = {"small": 1024, "dot": 128}
_RESIDUAL_WARPS = {"small": 8, "dot": 4}
_RESIDUAL_SPLITS = {"small": 1, "dot": 8}
_FFN_CHUNK = 32
_FFN_WARPS = 8
FFN_FUSED_ROWS = 2
"""Up to this many rows the FFN is one kernel (`ln_ffn`); its partial sums grow with rows."""


def padded_rows(batch: int) -> int:
    """The row count kernels run with for `batch` sequences: a power of two, at least 16 once
    above `SMALL_ROWS`."""
    rows = 1 << (batch - 1).bit_length()
    return rows if rows <= SMALL_ROWS else max(MIN_ROWS, rows)


def matmul(x, w, transposed=False):
    """x (rows, k) @ w (k, n), or w (n, k) when transposed; float32 result. Up to `SMALL_ROWS`
    rows, a broadcast product and sum (Triton's dot needs 16), which is also what a GEMV is."""
    if x.shape[0] <= SMALL_ROWS:
        if transposed:
            return jnp.sum(x[:, None, :].astype(jnp.float32) * w[None, :, :].astype(jnp.float32), axis=2)
        return jnp.sum(x[:, :, None].astype(jnp.float32) * w[None, :, :].astype(jnp.float32), axis=1)
    # Default precision: float32 inputs run as TF32, as XLA's own float32 matmuls do on a GPU
    # (exact float32 Triton dots were many times slower at batch 32: docs/performance.md).
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


def triton_params(num_warps=4):
    """Triton compiler settings: one stage (no software pipelining of the short loops here)."""
    return plgpu.CompilerParams(num_warps=num_warps, num_stages=1)


def arrives_last(counter_ref, slot, arrivals, interpret):
    """True in the program that is the last of `arrivals` to reach `counter_ref[slot]`, which
    then adds the partial sums and calls `reset_arrivals`. The barrier first makes every
    thread's partial-sum stores part of the atomic's release, so the last program reads them.
    With one arrival there is nothing to wait for: no barrier, no atomic."""
    if arrivals == 1:
        return True
    if not interpret:
        plgpu.debug_barrier()
    return plgpu.atomic_add(counter_ref, jnp.asarray(slot, jnp.int32), jnp.int32(1)) == arrivals - 1


def reset_arrivals(counter_ref, slot, arrivals):
    """Sets `counter_ref[slot]` back to zero; called by the program `arrives_last` picked."""
    if arrivals > 1:
        plgpu.atomic_add(counter_ref, jnp.asarray(slot, jnp.int32), jnp.int32(-arrivals))


def residual_plus_partials(residual, partials, b_ref, compute_dtype):
    """`residual + Σ partials + b` in float32, the sum over the first axis of `partials`
    (a fixed order) rounded to `compute_dtype` as the matmul output it stands for."""
    total = jnp.sum(partials, axis=0)
    if b_ref is not None:
        total = total + b_ref[...].astype(jnp.float32)
    return residual.astype(jnp.float32) + total.astype(compute_dtype).astype(jnp.float32)


def counter_slots(rows: int, width: int) -> int:
    """Length of the int32 zeros that the kernels splitting an output over programs
    (`attention_output`, `ln_attention_output`, `ln_ffn`, `linear_residual`, `ln_logits`) count
    arrivals in: one slot per row or per output column block of a `width`-wide result at most.
    The kernels leave them zero again, so one array serves a whole decode loop."""
    return max(rows, width)


def first_largest(peaks, wheres, blocks):
    """Per row, the index of the largest value (the first on a tie, as `argmax`) from the
    (slots, rows) maxima `peaks` of `blocks` consecutive column blocks and where each block has
    it, `wheres`; slots past `blocks` pad to a power of two and are ignored."""
    slots = jnp.arange(peaks.shape[0])[:, None]
    best = jnp.argmax(jnp.where(slots < blocks, peaks, -jnp.inf), axis=0).astype(jnp.int32)
    return jnp.sum(jnp.where(slots == best[None, :], wheres, 0), axis=0)


def gelu_tanh(x):
    """GPT-2's tanh GELU, as `kerasvq.layers.tanh_gelu`."""
    return 0.5 * x * (1.0 + jnp.tanh(SQRT_2_OVER_PI * (x + CUBIC * x * x * x)))


def layer_norm(x, gamma_ref, beta_ref, epsilon):
    """LayerNorm of x (rows, d) float32 over d, with the statistics of
    `OnePassLayerNormalization`: E[x²] − E[x]² from one read."""
    mean = jnp.mean(x, axis=1, keepdims=True)
    variance = jnp.maximum(jnp.mean(x * x, axis=1, keepdims=True) - mean * mean, 0.0)
    scale = jax.lax.rsqrt(variance + epsilon) * gamma_ref[...].astype(jnp.float32)[None, :]
    return x * scale + (beta_ref[...].astype(jnp.float32)[None, :] - mean * scale)


def _ln_linear_values(x, gamma_ref, beta_ref, w_ref, b_ref, *, epsilon, gelu, compute_dtype,
                      transposed=False):
    """`LayerNorm(x) @ w + b`, then GELU when `gelu`, in float32 for x float32 (rows, d)."""
    normed = layer_norm(x, gamma_ref, beta_ref, epsilon).astype(compute_dtype)
    y = matmul(normed, w_ref[...].astype(compute_dtype), transposed)
    if b_ref is not None:
        y = y + b_ref[...].astype(jnp.float32)[None, :]
    if gelu:
        y = gelu_tanh(y.astype(compute_dtype).astype(jnp.float32))
    return y


def _ln_linear_kernel(x_ref, gamma_ref, beta_ref, w_ref, b_ref, out_ref, **options):
    y = _ln_linear_values(x_ref[...].astype(jnp.float32), gamma_ref, beta_ref, w_ref, b_ref, **options)
    out_ref[...] = y.astype(out_ref.dtype)


def _ln_linear_specs(x, w, b, transposed):
    """(columns per program, programs, in_specs) of a LayerNorm-matmul over one column block
    per program; `w` is (d, n), or (n, d) when `transposed` (a tied embedding table)."""
    rows, width = x.shape
    n = w.shape[0] if transposed else w.shape[1]
    _, block = _plan(rows, n, _LN_COLUMNS)
    w_spec = (pl.BlockSpec((block, width), lambda j: (j, 0)) if transposed
              else pl.BlockSpec((width, block), lambda j: (0, j)))
    full = lambda j: (0,)  # noqa: E731
    in_specs = [pl.BlockSpec((rows, width), lambda j: (0, 0)), pl.BlockSpec((width,), full),
                pl.BlockSpec((width,), full), w_spec, None if b is None else pl.BlockSpec((block,), lambda j: (j,))]
    return block, n // block, in_specs


def ln_linear(x, gamma, beta, w, b=None, *, epsilon, gelu=False, compute_dtype=None, interpret=False):
    """`LayerNorm(x) @ w + b` (then tanh GELU when `gelu`) in `compute_dtype`, for x (rows, d),
    rows from `padded_rows`, and w (d, n)."""
    compute_dtype = compute_dtype or x.dtype
    block, programs, in_specs = _ln_linear_specs(x, w, b, transposed=False)
    kernel = functools.partial(_ln_linear_kernel, epsilon=epsilon, gelu=gelu, compute_dtype=compute_dtype)
    return pl.pallas_call(
        kernel,
        out_shape=jax.ShapeDtypeStruct((x.shape[0], block * programs), compute_dtype),
        grid=(programs,),
        in_specs=in_specs,
        out_specs=pl.BlockSpec((x.shape[0], block), lambda j: (0, j)),
        compiler_params=triton_params(),
        interpret=interpret,
        name="ln_linear",
    )(x, gamma, beta, w, b)


def _ln_logits_kernel(x_ref, gamma_ref, beta_ref, w_ref, b_ref, counter_ref, out_ref, peak_ref, where_ref,
                      ids_ref, counter_out_ref, *, programs, interpret, **options):
    del counter_ref  # aliased with counter_out_ref
    y = _ln_linear_values(x_ref[...].astype(jnp.float32), gamma_ref, beta_ref, w_ref, b_ref, **options)
    out_ref[...] = y
    program, block = pl.program_id(0), y.shape[1]
    peak_ref[pl.ds(program, 1), :] = jnp.max(y, axis=1)[None, :]
    where_ref[pl.ds(program, 1), :] = (jnp.argmax(y, axis=1).astype(jnp.int32) + program * block)[None, :]

    @pl.when(arrives_last(counter_out_ref, 0, programs, interpret))
    def _():
        ids_ref[...] = first_largest(peak_ref[...], where_ref[...], programs)
        reset_arrivals(counter_out_ref, 0, programs)


def ln_logits(x, gamma, beta, w, b, counters, *, epsilon, transposed=False, compute_dtype=None,
              interpret=False):
    """`ln_linear` to float32 logits, and the index of each row's largest logit (the first on
    a tie, as `argmax`): each program writes its block's maximum and where it is, and the last
    to finish picks the first program with the largest: one kernel fewer than `ln_linear` and
    XLA's argmax, for about the same time.

    `w` is (d, vocab), or (vocab, d) when `transposed` (a tied embedding table); `counters`
    are `counter_slots` int32 zeros. Returns `(logits, ids (rows,) int32, counters)`.
    """
    rows = x.shape[0]
    compute_dtype = compute_dtype or x.dtype
    block, programs, in_specs = _ln_linear_specs(x, w, b, transposed)
    slots = 1 << (programs - 1).bit_length()
    kernel = functools.partial(_ln_logits_kernel, programs=programs, interpret=interpret, epsilon=epsilon,
                               gelu=False, transposed=transposed, compute_dtype=compute_dtype)
    whole = lambda j: (0, 0)  # noqa: E731
    counter_spec = pl.BlockSpec(counters.shape, lambda j: (0,))
    logits, _, _, ids, counters = pl.pallas_call(
        kernel,
        out_shape=(jax.ShapeDtypeStruct((rows, block * programs), jnp.float32),
                   jax.ShapeDtypeStruct((slots, rows), jnp.float32),
                   jax.ShapeDtypeStruct((slots, rows), jnp.int32),
                   jax.ShapeDtypeStruct((rows,), jnp.int32),
                   jax.ShapeDtypeStruct(counters.shape, counters.dtype)),
        grid=(programs,),
        in_specs=in_specs + [counter_spec],
        out_specs=(pl.BlockSpec((rows, block), lambda j: (0, j)), pl.BlockSpec((slots, rows), whole),
                   pl.BlockSpec((slots, rows), whole), pl.BlockSpec((rows,), lambda j: (0,)), counter_spec),
        input_output_aliases={len(jax.tree.leaves((x, gamma, beta, w, b))): 4},
        compiler_params=triton_params(),
        interpret=interpret,
        name="ln_logits",
    )(x, gamma, beta, w, b, counters)
    return logits, ids, counters


def _linear_residual_kernel(x_ref, w_ref, b_ref, residual_ref, counter_ref, out_ref, partial_ref,
                            counter_out_ref, *, block_k, splits, compute_dtype, interpret):
    del counter_ref  # aliased with counter_out_ref
    column, split = pl.program_id(0), pl.program_id(1)
    depth = x_ref.shape[1] // splits
    y = jnp.zeros(partial_ref.shape[1:], jnp.float32)
    for start in range(0, depth, block_k):
        x = x_ref[:, pl.ds(split * depth + start, block_k)].astype(compute_dtype)
        w = w_ref[pl.ds(split * depth + start, block_k), :].astype(compute_dtype)
        y = y + matmul(x, w)
    partial_ref[pl.ds(split, 1), :, :] = y[None]

    @pl.when(arrives_last(counter_out_ref, column, splits, interpret))
    def _():
        total = residual_plus_partials(residual_ref[...], partial_ref[...], b_ref, compute_dtype)
        out_ref[...] = total.astype(out_ref.dtype)
        reset_arrivals(counter_out_ref, column, splits)


def linear_residual(x, w, b, residual, counters, *, compute_dtype=None, interpret=False):
    """`residual + (x @ w + b)` for x (rows, k), w (k, n), residual (rows, n), with the depth k
    split over `_RESIDUAL_SPLITS` programs per column block (split-K): the last of them to
    finish adds the partial sums in a fixed order, so results do not depend on timing.

    `counters` are `counter_slots(rows, n)` int32 zeros; returns `(out, counters)`.
    """
    rows, depth = x.shape
    n = w.shape[1]
    compute_dtype = compute_dtype or x.dtype
    path, block = _plan(rows, n, _RESIDUAL_COLUMNS)
    splits = _RESIDUAL_SPLITS[path]
    block_k = min(depth // splits, _RESIDUAL_DEPTH[path])
    kernel = functools.partial(_linear_residual_kernel, block_k=block_k, splits=splits,
                               compute_dtype=compute_dtype, interpret=interpret)
    out, _, counters = pl.pallas_call(
        kernel,
        out_shape=(jax.ShapeDtypeStruct((rows, n), residual.dtype),
                   jax.ShapeDtypeStruct((splits, rows, n), jnp.float32),
                   jax.ShapeDtypeStruct(counters.shape, counters.dtype)),
        grid=(n // block, splits),
        in_specs=[pl.BlockSpec((rows, depth), lambda j, s: (0, 0)),
                  pl.BlockSpec((depth, block), lambda j, s: (0, j)),
                  None if b is None else pl.BlockSpec((block,), lambda j, s: (j,)),
                  pl.BlockSpec((rows, block), lambda j, s: (0, j)),
                  pl.BlockSpec(counters.shape, lambda j, s: (0,))],
        out_specs=(pl.BlockSpec((rows, block), lambda j, s: (0, j)),
                   pl.BlockSpec((splits, rows, block), lambda j, s: (0, 0, j)),
                   pl.BlockSpec(counters.shape, lambda j, s: (0,))),
        input_output_aliases={4: 2},
        compiler_params=triton_params(_RESIDUAL_WARPS[path]),
        interpret=interpret,
        name="linear_residual",
    )(x, w, b, residual, counters)
    return out, counters


def _ln_ffn_kernel(x_ref, gamma_ref, beta_ref, w_in_ref, b_in_ref, w_out_ref, b_out_ref, counter_ref,
                   out_ref, partial_ref, counter_out_ref, *, epsilon, chunks, compute_dtype, interpret):
    del counter_ref  # aliased with counter_out_ref
    x = x_ref[...].astype(jnp.float32)
    hidden = _ln_linear_values(x, gamma_ref, beta_ref, w_in_ref, b_in_ref, epsilon=epsilon, gelu=True,
                               compute_dtype=compute_dtype).astype(compute_dtype)
    partial_ref[pl.ds(pl.program_id(0), 1), :, :] = matmul(hidden, w_out_ref[...].astype(compute_dtype))[None]

    @pl.when(arrives_last(counter_out_ref, 0, chunks, interpret))
    def _():
        out_ref[...] = residual_plus_partials(x, partial_ref[...], b_out_ref, compute_dtype).astype(out_ref.dtype)
        reset_arrivals(counter_out_ref, 0, chunks)


def ln_ffn(x, gamma, beta, w_in, b_in, w_out, b_out, counters, *, epsilon, compute_dtype=None,
           interpret=False):
    """`x + GELU(LayerNorm(x) @ w_in + b_in) @ w_out + b_out` in one kernel, for at most
    `FFN_FUSED_ROWS` rows: each program takes `_FFN_CHUNK / rows` hidden units and writes its
    partial sum of the output; the last to finish adds them in a fixed order.

    `counters` are `counter_slots(rows, width)` int32 zeros; returns `(out, counters)`.
    """
    rows, width = x.shape
    units = w_in.shape[1]
    if rows > FFN_FUSED_ROWS:
        raise ValueError(f"ln_ffn takes at most {FFN_FUSED_ROWS} rows, got {rows}")
    compute_dtype = compute_dtype or x.dtype
    chunk = _FFN_CHUNK // rows
    while units % chunk:
        chunk //= 2
    chunks = units // chunk
    full = lambda c: (0,)  # noqa: E731
    kernel = functools.partial(_ln_ffn_kernel, epsilon=epsilon, chunks=chunks, compute_dtype=compute_dtype,
                               interpret=interpret)
    out, _, counters = pl.pallas_call(
        kernel,
        out_shape=(jax.ShapeDtypeStruct((rows, width), x.dtype),
                   jax.ShapeDtypeStruct((chunks, rows, width), jnp.float32),
                   jax.ShapeDtypeStruct(counters.shape, counters.dtype)),
        grid=(chunks,),
        in_specs=[pl.BlockSpec((rows, width), lambda c: (0, 0)), pl.BlockSpec((width,), full),
                  pl.BlockSpec((width,), full), pl.BlockSpec((width, chunk), lambda c: (0, c)),
                  None if b_in is None else pl.BlockSpec((chunk,), lambda c: (c,)),
                  pl.BlockSpec((chunk, width), lambda c: (c, 0)),
                  None if b_out is None else pl.BlockSpec((width,), full),
                  pl.BlockSpec(counters.shape, full)],
        out_specs=(pl.BlockSpec((rows, width), lambda c: (0, 0)),
                   pl.BlockSpec((chunks, rows, width), lambda c: (0, 0, 0)),
                   pl.BlockSpec(counters.shape, full)),
        input_output_aliases={7: 2},
        compiler_params=triton_params(_FFN_WARPS),
        interpret=interpret,
        name="ln_ffn",
    )(x, gamma, beta, w_in, b_in, w_out, b_out, counters)
    return out, counters
