"""The whole greedy decode loop of a language model as one persistent Pallas (Triton) kernel,
on a GPU, JAX only, over the model's `decode_weights()`; `kerasvq.generation.generate` uses it for
one sequence.

At one sequence a decode step is a chain of tiny matmuls, and a kernel per piece of it
spends more time starting and ending than computing. Here one launch runs every step: a
fixed set of programs, all resident at once, shares out each layer's attention heads, then
its FFN chunks, then the vocabulary blocks, and the programs meet at a grid barrier (an int32
arrival count in global memory) after each of these phases. Every program keeps the residual
stream in registers and adds the other programs' partial sums itself, in a fixed order, so
each program sees the same numbers and picks the same next token; nine barriers per token.

The math is that of `kerasvq.kernels.fused_decode_step` (the same LayerNorm, rounding and
argmax), and the loop is `kerasvq.generation.generate`'s greedy loop without a repetition penalty:
the same column rule (`kerasvq.kernels.column_rule.next_column`), limits and stop at the end-of-sequence
token.

The barrier needs every program resident at once, so there are never more programs than the
GPU has multiprocessors. Pallas's interpreter (`interpret=True`, what the CPU tests use) runs
programs one after another, so there one program does all the work.

Example:
    >>> buffer, stopped = persistent_greedy_decode(model.decode_weights(), buffer, in_prompt, limits,
    ...                                            cache, proposal, start, total, eos_id, stop_at_eos=True)
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plgpu

from kerasvq.kernels.decode_weights import BlockWeights, DecodeWeights
from kerasvq.kernels.pallas_attention import KEYS_PER_BLOCK, attend_to_cache
from kerasvq.kernels.pallas_decode import first_largest, gelu_tanh, layer_norm, matmul, residual_plus_partials
from kerasvq.kernels.column_rule import next_column

# Picked by timing one sequence on a GPU (docs/performance.md has the numbers): more programs
# with narrower vocabulary blocks won, and 8 warps over 4.
PROGRAMS = 128
"""Programs (thread blocks) of the kernel on a GPU, fewer when it has fewer multiprocessors."""
FFN_CHUNK = 32
"""Hidden units per FFN work item."""
LOGITS_BLOCK = 32
"""Vocabulary columns per logits work item."""
WARPS = 8


class BlockArrays(NamedTuple):
    """One GPT block's arrays as the kernel reads them (a bias may be None); the LayerNorm
    epsilons are static, so they travel apart."""

    attention_gamma: Any
    attention_beta: Any
    qkv_kernel: Any
    qkv_bias: Any
    output_kernel: Any
    output_bias: Any
    ffn_gamma: Any
    ffn_beta: Any
    hidden_kernel: Any
    hidden_bias: Any
    ffn_output_kernel: Any
    ffn_output_bias: Any


def default_programs(interpret: bool) -> int:
    """`PROGRAMS`, capped by the GPU's multiprocessor count; 1 in the interpreter."""
    if interpret:
        return 1
    cores = getattr(jax.devices()[0], "core_count", None) or PROGRAMS
    return min(PROGRAMS, cores)


def _row(x, row):
    """Row `row` (a traced scalar) of x (rows, n): Triton cannot index registers."""
    return jnp.sum(jnp.where(jnp.arange(x.shape[0])[:, None] == row, x, 0), axis=0)


def _entry(v, i):
    """Entry `i` (a static int) of the vector v."""
    return jnp.sum(jnp.where(jnp.arange(v.shape[0]) == i, v, 0))


def _grid_barrier(counter_ref, passed, *, programs, interpret):
    """Waits until every program has reached its `passed + 1`-th barrier; returns passed + 1.
    The thread barrier first makes every thread's stores part of the atomic's release; the
    atomics are acquire-release, so what other programs stored before arriving is visible
    after."""
    if programs == 1:
        return passed + 1
    if not interpret:
        plgpu.debug_barrier()
    target = (passed + 1) * programs
    seen = plgpu.atomic_add(counter_ref, 0, jnp.int32(1)) + 1
    jax.lax.while_loop(lambda seen: seen < target, lambda _: plgpu.atomic_add(counter_ref, 0, jnp.int32(0)), seen)
    return passed + 1


def _shared(ref):
    """What other programs stored in `ref`, read as volatile: past the L1 cache, which is not
    coherent across programs."""
    return plgpu.load(ref, volatile=True)


def _add_partials(x, partial_ref, b_ref, compute_dtype):
    """x + Σ partial_ref (over its first axis, a fixed order) + b, rounded as the residual
    stream (x is float32 holding `compute_dtype` values)."""
    total = residual_plus_partials(x, _shared(partial_ref), b_ref, compute_dtype)
    return total.astype(compute_dtype).astype(jnp.float32)


def _for_each_item(program, programs, items, body):
    """Runs body(item) for this program's share of `items`: program, program + programs, …"""
    def visit(i, carry):
        item = program + i * programs

        @pl.when(item < items)
        def _():
            body(item)

        return carry

    jax.lax.fori_loop(0, -(-items // programs), visit, 0)


def _attention_item(weights: BlockArrays, cache, x, at, item, *, heads, epsilon, compute_dtype, out_ref):
    """One (row, head): LayerNorm, the head's query, key and value, attention over the cache
    (the new key and value stored at slot `at`), and the head's share of the output projection
    into out_ref[head, row]."""
    f32 = jnp.float32
    head_dim = weights.qkv_kernel.shape[1] // (3 * heads)
    row, head = item // heads, item % heads
    normed = layer_norm(_row(x, row)[None, :], weights.attention_gamma, weights.attention_beta, epsilon)
    normed = normed.astype(compute_dtype)
    qkv = []
    for part in range(3):
        columns = pl.ds((part * heads + head) * head_dim, head_dim)
        y = matmul(normed, weights.qkv_kernel[:, columns].astype(compute_dtype))[0]
        if weights.qkv_bias is not None:
            y = y + weights.qkv_bias[columns].astype(f32)
        qkv.append(y.astype(compute_dtype))
    query, k_new, v_new = qkv[0].astype(f32), qkv[1].astype(cache.dtype), qkv[2].astype(cache.dtype)
    w = weights.output_kernel[pl.ds(head * head_dim, head_dim), :].astype(compute_dtype).astype(f32)
    block = min(cache.shape[2], KEYS_PER_BLOCK)
    attended = attend_to_cache(query, k_new, v_new, lambda s: cache[0, row, pl.ds(s, block), head, :],
                               lambda s: cache[1, row, pl.ds(s, block), head, :], at, block,
                               1.0 / math.sqrt(head_dim))
    attended = attended.astype(compute_dtype).astype(f32)
    out_ref[pl.ds(head, 1), pl.ds(row, 1), :] = jnp.sum(attended[:, None] * w, axis=0)[None, None, :]
    cache[0, row, pl.ds(at, 1), head, :] = k_new[None, :]
    cache[1, row, pl.ds(at, 1), head, :] = v_new[None, :]


def _ffn_item(weights: BlockArrays, normed, chunk, *, compute_dtype, out_ref):
    """One chunk of hidden units: GELU(normed @ w_in + b_in) @ w_out into out_ref[chunk]."""
    size = weights.hidden_kernel.shape[1] // out_ref.shape[0]
    units = pl.ds(chunk * size, size)
    hidden = matmul(normed, weights.hidden_kernel[:, units].astype(compute_dtype))
    if weights.hidden_bias is not None:
        hidden = hidden + weights.hidden_bias[units].astype(jnp.float32)[None, :]
    hidden = gelu_tanh(hidden.astype(compute_dtype).astype(jnp.float32)).astype(compute_dtype)
    out_ref[pl.ds(chunk, 1), :, :] = matmul(hidden, weights.ffn_output_kernel[units, :].astype(compute_dtype))[None]


def _logits_item(head_ref, normed, block, *, size, vocab, transposed, compute_dtype, peak_ref, where_ref):
    """One block of `size` vocabulary columns: its largest logit per row and where it is."""
    columns = pl.ds(block * size, size)
    w = head_ref[columns, :] if transposed else head_ref[:, columns]
    y = matmul(normed, w.astype(compute_dtype), transposed)
    y = jnp.where((block * size + jnp.arange(size))[None, :] < vocab, y, -jnp.inf)
    peak_ref[pl.ds(block, 1), :] = jnp.max(y, axis=1)[None, :]
    where_ref[pl.ds(block, 1), :] = (jnp.argmax(y, axis=1).astype(jnp.int32) + block * size)[None, :]


def _kernel(state, token_ref, position_ref, blocks, final_gamma, final_beta, head_ref, caches, counter,
            buffer_out, stopped_out, caches_out, attention_partials, ffn_partials, peaks, wheres, counter_out, *,
            programs, heads, vocab, logits_blocks, epsilons, final_epsilon, transposed, stop_at_eos, compute_dtype,
            interpret):
    del caches, counter  # aliased with caches_out and counter_out
    buffer_ref, in_prompt_ref, limits_ref, proposal_ref, settings_ref = state
    program = pl.program_id(0)
    rows, d_model = buffer_ref.shape[0], token_ref.shape[1]
    start, total, eos_id = settings_ref[0], settings_ref[1], settings_ref[2]
    barrier = functools.partial(_grid_barrier, counter_out, programs=programs, interpret=interpret)
    common = dict(compute_dtype=compute_dtype)
    f32 = jnp.float32
    row_ids = jnp.arange(rows)

    def embed(column, at):
        position = position_ref[at, :].astype(compute_dtype)
        x = jnp.zeros((rows, d_model), f32)
        for r in range(rows):
            token = token_ref[_entry(column, r), :].astype(compute_dtype)
            x = jnp.where(row_ids[:, None] == r, (token + position).astype(f32)[None, :], x)
        return x

    def step(carry):
        at, proposal, done, stopped, passed = carry
        # Every program reads the prompt column while program 0 writes this column; a row in
        # its prompt gets its prompt token back, and the others do not use what they read.
        column, _, done, stopped = next_column(at, buffer_ref[:, at], in_prompt_ref[:, at] != 0, proposal, done,
                                               stopped, limits_ref[...], eos_id, stop_at_eos=stop_at_eos,
                                               where=jnp.where)

        @pl.when(program == 0)
        def _():
            buffer_out[:, pl.ds(at, 1)] = column[:, None]

        x = embed(column, at)
        for weights, cache, (attention_epsilon, ffn_epsilon) in zip(blocks, caches_out, epsilons):
            attend = functools.partial(_attention_item, weights, cache, x, at, heads=heads, epsilon=attention_epsilon,
                                       out_ref=attention_partials, **common)
            _for_each_item(program, programs, rows * heads, attend)
            passed = barrier(passed)
            x = _add_partials(x, attention_partials, weights.output_bias, compute_dtype)
            normed = layer_norm(x, weights.ffn_gamma, weights.ffn_beta, ffn_epsilon).astype(compute_dtype)
            ffn = functools.partial(_ffn_item, weights, normed, out_ref=ffn_partials, **common)
            _for_each_item(program, programs, ffn_partials.shape[0], ffn)
            passed = barrier(passed)
            x = _add_partials(x, ffn_partials, weights.ffn_output_bias, compute_dtype)
        normed = layer_norm(x, final_gamma, final_beta, final_epsilon).astype(compute_dtype)
        size = head_ref.shape[0 if transposed else 1] // logits_blocks
        logits = functools.partial(_logits_item, head_ref, normed, size=size, vocab=vocab, transposed=transposed,
                                   peak_ref=peaks, where_ref=wheres, **common)
        _for_each_item(program, programs, logits_blocks, logits)
        passed = barrier(passed)
        proposal = first_largest(_shared(peaks), _shared(wheres), logits_blocks)
        return at + 1, proposal, done, stopped, passed

    def more(carry):
        at, _, done, _, _ = carry
        # Every row done: Triton has no reduce_and.
        return jnp.logical_and(at < total, jnp.min(done.astype(jnp.int32)) == 0)

    none = jnp.zeros((rows,), jnp.bool_)
    _, _, _, stopped, _ = jax.lax.while_loop(more, step, (start, proposal_ref[...], none, none, jnp.int32(0)))

    @pl.when(program == 0)
    def _():
        stopped_out[...] = stopped.astype(jnp.int32)


def _block_arrays(block: BlockWeights) -> tuple[BlockArrays, tuple[float, float]]:
    """A block's arrays and its two LayerNorm epsilons (static, so not among the arrays)."""
    *attention_norm, attention_epsilon = block.attention_norm
    *ffn_norm, ffn_epsilon = block.ffn_norm
    arrays = BlockArrays(*attention_norm, *block.qkv, *block.attention_output, *ffn_norm, *block.ffn_hidden,
                         *block.ffn_output)
    return arrays, (attention_epsilon, ffn_epsilon)


def persistent_greedy_decode(weights: DecodeWeights, buffer, in_prompt, limits, cache, proposal, start, total, eos_id, *,
                             stop_at_eos, programs=None, interpret=False):
    """The greedy loop of `kerasvq.generation.generate` (no repetition penalty) from column `start` to
    `total`, in one kernel.

    Args:
        weights: the model's `decode_weights()`.
        buffer: (batch, width) int32 tokens, prompts left-aligned; in_prompt: (batch, width)
            bool; limits: (batch,) int32, each row's end (prompt length + new tokens).
        cache: the model's cache, filled for the columns before `start`.
        proposal: (batch,) int32, the greedy token after column `start - 1`.
        start, total, eos_id: int32 scalars (eos_id -1 when there is none).
        programs: thread blocks (default `default_programs`); 1 in the interpreter.

    Returns `(buffer, stopped)`: the filled buffer and (batch,) bool, stopped at eos_id.
    """
    batch, width = buffer.shape
    programs = programs or default_programs(interpret)
    if interpret and programs != 1:
        raise ValueError("the interpreter runs programs one after another: a grid barrier needs programs=1")
    compute_dtype = weights.compute_dtype
    vocab = weights.vocab_size
    head, transposed = weights.vocabulary_head, weights.head_transposed
    padded_vocab = -(-vocab // LOGITS_BLOCK) * LOGITS_BLOCK
    head = jnp.pad(head, ((0, padded_vocab - vocab), (0, 0)) if transposed else ((0, 0), (0, padded_vocab - vocab)))
    logits_blocks = padded_vocab // LOGITS_BLOCK
    token_table = head if transposed else weights.token_embedding
    blocks, epsilons = zip(*(_block_arrays(block) for block in weights.blocks))
    final_gamma, final_beta, final_epsilon = weights.final_norm
    heads = weights.num_heads
    f32 = jnp.float32
    # Padded to four entries: Triton loads power-of-two shapes.
    settings = jnp.stack([jnp.asarray(v, jnp.int32) for v in (start, total, eos_id, 0)])
    state = (buffer, jnp.asarray(in_prompt, jnp.int32), jnp.asarray(limits, jnp.int32),
             jnp.asarray(proposal, jnp.int32), settings)
    counter = jnp.zeros((1,), jnp.int32)
    args = (state, token_table, weights.positions[:width], blocks, final_gamma, final_beta, head, tuple(cache),
            counter)
    whole = lambda a: pl.BlockSpec(a.shape, lambda p: (0,) * len(a.shape))  # noqa: E731
    slots = 1 << (logits_blocks - 1).bit_length()
    out_shape = (jax.ShapeDtypeStruct(buffer.shape, jnp.int32), jax.ShapeDtypeStruct((batch,), jnp.int32),
                 tuple(jax.ShapeDtypeStruct(c.shape, c.dtype) for c in cache),
                 jax.ShapeDtypeStruct((heads, batch, weights.d_model), f32),
                 jax.ShapeDtypeStruct((weights.d_ff // FFN_CHUNK, batch, weights.d_model), f32),
                 jax.ShapeDtypeStruct((slots, batch), f32), jax.ShapeDtypeStruct((slots, batch), jnp.int32),
                 jax.ShapeDtypeStruct(counter.shape, counter.dtype))
    leaves = lambda tree: len(jax.tree.leaves(tree))  # noqa: E731
    # In place: the buffer (first in and out), each layer's cache, the counter (last in and out).
    caches_at = leaves(args[:7])
    aliases = {0: 0, leaves(args) - 1: leaves(out_shape) - 1}
    aliases.update({caches_at + i: 2 + i for i in range(len(cache))})
    kernel = functools.partial(_kernel, programs=programs, heads=heads, vocab=vocab, logits_blocks=logits_blocks,
                               epsilons=epsilons, final_epsilon=final_epsilon, transposed=transposed, stop_at_eos=stop_at_eos,
                               compute_dtype=compute_dtype, interpret=interpret)
    outputs = pl.pallas_call(
        kernel,
        out_shape=out_shape,
        grid=(programs,),
        in_specs=jax.tree.map(whole, args),
        out_specs=jax.tree.map(whole, out_shape),
        input_output_aliases=aliases,
        compiler_params=plgpu.CompilerParams(num_warps=WARPS, num_stages=1),
        interpret=interpret,
        name="persistent_greedy_decode",
    )(*args)
    return outputs[0], outputs[1] != 0
