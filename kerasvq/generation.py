"""Autoregressive generation for kerasvq language models, with or without a KV cache.

Works with any model that offers `model(token_ids)` → logits (batch, seq, vocab),
`model.init_cache(batch, max_length)`, `model.call_with_cache(ids, cache, index)` →
(logits, cache) and `model.seq_len` (the Transformer and the LSTM LMs both do).

Batched prompts of different lengths are left-aligned in one (batch, seq_len) buffer, as in
keras-hub: the cache is filled with the columns every prompt has, then one column is decoded
per step for the whole batch; a row still inside its own prompt keeps its prompt token. Each
row stops at its first generated end-of-sequence token (when `stop_at_eos`), and the loop ends
when every row has stopped or has `max_new_tokens` new tokens. The uncached path recomputes
the whole buffer each step and gives the same greedy tokens (checked by the tests).

Prompts longer than `model.seq_len - max_new_tokens` keep their last tokens (reported in
`prompt_truncated`), because the Transformer never sees more than `seq_len` positions.

On JAX with a GPU, greedy decoding of a supported Transformer at batch ≤ 32 runs as fused
Pallas kernels: at batch 1 without a repetition penalty the whole loop is one persistent kernel
(`kerasvq.kernels.persistent_decode`), otherwise each step is two or four kernels per block
(`kerasvq.kernels.fused_decode_step`) instead of about sixteen; the `fused` argument of
`generate` forces or disables that.

Example:
    >>> out = generate_text(model, tokenizer, ["O setor de infraestrutura logística"],
    ...                     SamplingConfig(max_new_tokens=40, top_p=0.9, seed=1))
    >>> out[0]["text"]
"""

from __future__ import annotations

import weakref

import numpy as np
import keras
from keras import ops

from kerasvq.errors import UserError
from kerasvq.sampling import SamplingConfig, apply_repetition_penalty, sample_next, token_presence


_COMPILED = weakref.WeakKeyDictionary()
_LOOPS = weakref.WeakKeyDictionary()


def _compile(fn, model):
    """`fn(*args)` compiled once per model: tf.function on TensorFlow, jax.jit over the
    model's variables (as keras-hub's generate does) on JAX, plain eager elsewhere. The cache
    index is passed as a tensor so one trace serves every step."""
    backend = keras.config.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, reduce_retracing=True)
    if backend == "jax":
        import jax

        # Collected once: walking the model's layers for them took about 1 ms a call on a GPU
        # host, more than a batch-1 decode step.
        trainable, non_trainable = list(model.trainable_variables), list(model.non_trainable_variables)

        def stateless(trainable_values, non_trainable_values, *args):
            mapping = list(zip(trainable, trainable_values)) + list(zip(non_trainable, non_trainable_values))
            with keras.StatelessScope(state_mapping=mapping):
                return fn(*args)

        jitted = jax.jit(stateless)
        return lambda *args: jitted([v.value for v in trainable], [v.value for v in non_trainable], *args)
    return fn


FUSED_MAX_BATCH = 32
"""Largest batch the fused decode kernels are chosen for by default: the batches they were
measured at. On an H100 (v5 shape, float32) greedy `generate` ran 18.1 k new tokens/s at batch
1 against 9.5 k with the keras.ops step, and 252 k against 191 k at batch 32; rows are padded
to a power of two, which larger uneven batches would pay for."""


def fused_decode_available(model, cache_length=None, fused=None, batch=1) -> bool:
    """Whether single-token steps of `model` run as fused Pallas kernels.

    `fused=None` means: when the backend is JAX on a GPU, the model is supported and `batch` is
    at most `FUSED_MAX_BATCH`; `True` insists (on a CPU the kernels run in Pallas's slow
    interpreter, which is what tests use) and raises `UserError` naming why a model is not
    supported; `False` never."""
    if fused is False:
        return False
    if keras.config.backend() != "jax":
        if fused:
            raise UserError(f"fused=True needs the JAX backend; this is {keras.config.backend()}")
        return False
    from kerasvq.kernels.fused_decode_step import unsupported_reason

    reason = unsupported_reason(model, cache_length)
    if fused and reason:
        raise UserError(f"fused=True: {reason}")
    if reason:
        return False
    import jax

    return bool(fused) or (jax.default_backend() == "gpu" and batch <= FUSED_MAX_BATCH)


def _pallas_interpreted() -> bool:
    """Whether the Pallas kernels run in the interpreter: anywhere but on a GPU (the tests)."""
    import jax

    return jax.default_backend() != "gpu"


def _single_token_step(model, fused: bool):
    """`(begin, step)` for a decode loop: `begin(cache, batch)` is the state the loop carries
    and `step(ids (batch, 1), state, index) -> (logits, greedy ids or None, state)` one step,
    either the model's own `call_with_cache` (the state is its cache) or the fused kernels
    (the cache and their arrival counters; they also give each row's argmax)."""
    if not fused:
        def step(ids, cache, index):
            logits, cache = model.call_with_cache(ids, cache, index)
            return logits, None, cache

        return (lambda cache, batch: cache), step
    from kerasvq.kernels.fused_decode_step import arrival_counters, fused_decode_step

    interpret = _pallas_interpreted()

    def fused_step(ids, state, index):
        cache, counters = state
        out = fused_decode_step(model, ids, cache, index, counters, interpret=interpret)
        return out.logits, out.greedy_ids, (out.cache, out.counters)

    return (lambda cache, batch: (cache, arrival_counters(model, batch))), fused_step


def compiled_steps(model):
    """(cached step, full forward) for `model`, compiled once and reused across calls."""
    if model not in _COMPILED:
        _COMPILED[model] = (
            _compile(lambda ids, cache, index: model.call_with_cache(ids, cache, index), model),
            _compile(lambda ids: model(ids, training=False), model),
        )
    return _COMPILED[model]


STEPS_PER_CHECK = 16
"""Decode steps the compiled greedy loop runs between two checks of its stop condition."""


def _greedy_loop(model, start: int, penalty: float, stop_at_eos: bool, steps_per_check: int = STEPS_PER_CHECK,
                 fused: bool = False):
    """The whole cached greedy decode as one compiled call, compiled once per model, setting
    and `start` (the shortest prompt's length): the empty cache, the prompt columns every row
    has, then the decode loop. One call instead of a dozen small eager ones, which cost
    milliseconds per `generate` on a GPU.

    The outer `while_loop` checks "every row done?" only once per `steps_per_check` steps:
    the inner `fori_loop` has a trip count fixed at compile time, which XLA runs without
    reading a predicate back to the host (on a GPU, that read is a sync per token); with the
    fused kernels the inner steps are unrolled instead, and at batch 1 without a penalty the
    whole loop is `persistent_greedy_decode`, one kernel. Steps past `total` change nothing in
    the buffer. Same column rule as the step-by-step loop in
    `generate`, which stays the reference (the tests compare the two).
    """
    key = (start, penalty, stop_at_eos, steps_per_check, fused)
    loops = _LOOPS.setdefault(model, {})
    if key in loops:
        return loops[key]
    begin, decode_step = _single_token_step(model, fused)

    def run(buffer, in_prompt, limits, total, eos_id):
        batch, width = ops.shape(buffer)[0], ops.shape(buffer)[1]
        logits, cache = model.call_with_cache(buffer[:, :start], model.init_cache(batch, width), 0)
        last = logits[:, -1, :]
        # Presence is a dummy when there is no penalty: the loop carries a fixed shape.
        presence = (token_presence(buffer, int(model.vocab_size), in_prompt) if penalty != 1.0
                    else ops.zeros((batch, 1), "float32"))

        def choose(logits, presence):
            logits = ops.cast(logits, "float32")
            if penalty != 1.0:
                logits = apply_repetition_penalty(logits, presence, penalty)
            return ops.cast(ops.argmax(logits, axis=-1), "int32")

        if fused and penalty == 1.0:
            from kerasvq.kernels import persistent_decode

            if batch <= persistent_decode.MAX_BATCH:
                # The whole loop in one kernel; it stops exactly when every row is done.
                return persistent_decode.persistent_greedy_decode(
                    model, buffer, in_prompt, limits, cache, choose(last, presence), start, total, eos_id,
                    stop_at_eos=stop_at_eos, interpret=_pallas_interpreted())

        def step(index, buffer, decoder, proposal, presence, done, stopped):
            active = index < total
            at = ops.minimum(index, width - 1)  # past `total`: rewrite the last column as it is
            prompt_column = ops.take(buffer, at, axis=1)
            in_prompt_now = ops.logical_or(ops.take(in_prompt, at, axis=1), ops.logical_not(active))
            generating = ops.logical_and(ops.logical_and(ops.logical_not(in_prompt_now), ops.logical_not(done)),
                                         index < limits)
            column = ops.where(in_prompt_now, prompt_column, ops.where(generating, proposal, 0))
            buffer = ops.slice_update(buffer, [0, at], ops.expand_dims(column, 1))
            if penalty != 1.0:
                hit = ops.one_hot(column, ops.shape(presence)[-1], dtype="float32")
                presence = ops.maximum(presence, hit * ops.cast(generating, "float32")[:, None])
            if stop_at_eos:
                newly = ops.logical_and(generating, column == eos_id)
                stopped = ops.logical_or(stopped, newly)
                done = ops.logical_or(done, newly)
            done = ops.logical_or(done, index + 1 >= limits)
            logits, greedy_ids, decoder = decode_step(ops.expand_dims(column, 1), decoder, at)
            # The next proposal sees the presence that includes this column, as the reference does.
            proposal = greedy_ids if greedy_ids is not None and penalty == 1.0 else choose(logits[:, -1, :], presence)
            return index + 1, buffer, decoder, proposal, presence, done, stopped

        def steps(*state):
            if not fused:
                return ops.fori_loop(0, steps_per_check, lambda _, s: step(*s), state)
            # The fused steps are a dozen kernels each; unrolled, XLA schedules the steps
            # between two checks as one sequence. (Also compiling the loop into CUDA graphs
            # measured slower at batch 1 on an H100, 10.6 k against 11.2 k new tokens/s.)
            for _ in range(steps_per_check):
                state = step(*state)
            return state

        def cond(index, buffer, decoder, proposal, presence, done, stopped):
            return ops.logical_and(index < total, ops.logical_not(ops.all(done)))

        state = (ops.convert_to_tensor(start, "int32"), buffer, begin(cache, batch), choose(last, presence), presence,
                 ops.zeros((batch,), "bool"), ops.zeros((batch,), "bool"))
        _, buffer, _, _, _, _, stopped = ops.while_loop(cond, steps, state)
        return buffer, stopped

    loops[key] = _compile(run, model)
    return loops[key]


def _prepare(prompts, seq_len, max_new_tokens):
    if not prompts:
        raise UserError("no prompts given; expected at least one prompt")
    if any(len(p) == 0 for p in prompts):
        raise UserError("a prompt encodes to zero tokens; expected at least one token per prompt")
    if max_new_tokens >= seq_len:
        raise UserError(f"max_new_tokens ({max_new_tokens}) must be below the model's seq_len ({seq_len})")
    keep = seq_len - max_new_tokens
    truncated = [len(p) > keep for p in prompts]
    return [list(p)[-keep:] for p in prompts], truncated


def generate(model, prompts, config: SamplingConfig = None, eos_id: int = None, use_cache: bool = True,
             reference_loop: bool = False, steps_per_check: int = STEPS_PER_CHECK, fused: bool = None):
    """Generates continuations of `prompts` (lists of token ids).

    Cached greedy decoding runs as one compiled loop that checks whether every row is done
    once per `steps_per_check` tokens; `reference_loop=True` forces the step-by-step Python
    loop (one compiled model step per token), which sampling always uses. `fused` picks the
    single-token step (see `fused_decode_available`); the reference loop always uses the
    model's own `call_with_cache`.

    Returns one dict per prompt: `prompt_ids`, `token_ids` (new tokens, the end-of-sequence
    token excluded), `stopped_at_eos`, `prompt_truncated`.
    """
    config = (config or SamplingConfig()).validate()
    if config.stop_at_eos and eos_id is None:
        raise UserError("stop_at_eos needs the tokenizer's eos_id")
    prompts, truncated = _prepare(prompts, int(model.seq_len), config.max_new_tokens)
    batch = len(prompts)
    lengths = np.array([len(p) for p in prompts])
    total = int(lengths.max()) + config.max_new_tokens
    # Buffer and cache always span seq_len, so compiled steps see one shape whatever the
    # prompts (the attention masks cache slots by position; slots past `total` stay unused).
    width = int(model.seq_len)
    buffer = np.zeros((batch, width), dtype="int32")
    in_prompt = np.zeros((batch, width), dtype=bool)
    for i, p in enumerate(prompts):
        buffer[i, : len(p)] = p
        in_prompt[i, : len(p)] = True

    start = int(lengths.min())
    done = np.zeros(batch, dtype=bool)
    stopped = np.zeros(batch, dtype=bool)
    if use_cache and config.greedy and not reference_loop:
        loop = _greedy_loop(model, start, float(config.repetition_penalty), bool(config.stop_at_eos),
                            int(steps_per_check), fused_decode_available(model, width, fused, batch))
        out, stopped_t = loop(buffer, in_prompt, (lengths + config.max_new_tokens).astype("int32"),
                              np.int32(total), np.int32(-1 if eos_id is None else eos_id))
        buffer = ops.convert_to_numpy(out).astype("int32")
        stopped = ops.convert_to_numpy(stopped_t).astype(bool)
    else:
        seed_gen = None if config.greedy else keras.random.SeedGenerator(config.seed)
        presence = None
        if config.repetition_penalty != 1.0:
            presence = token_presence(ops.convert_to_tensor(buffer), int(model.vocab_size),
                                      ops.convert_to_tensor(in_prompt))
        cached_step, forward = compiled_steps(model)
        index_tensor = lambda i: ops.convert_to_tensor(i, "int32")  # noqa: E731
        if use_cache:
            cache = model.init_cache(batch, width)
            logits, cache = cached_step(ops.convert_to_tensor(buffer[:, :start]), cache, index_tensor(0))
            last = logits[:, -1, :]
        for index in range(start, total):
            if not use_cache:
                # The whole buffer each step: one input shape (one compilation on JAX), and the
                # causal model's logits at index - 1 do not depend on the columns after it.
                last = forward(ops.convert_to_tensor(buffer))[:, index - 1, :]
            proposal = ops.convert_to_numpy(sample_next(last, config, seed_gen, presence)).astype("int32")
            generating = ~in_prompt[:, index] & ~done & (index < lengths + config.max_new_tokens)
            column = np.where(in_prompt[:, index], buffer[:, index], np.where(generating, proposal, 0))
            buffer[:, index] = column
            if presence is not None:
                hit = ops.one_hot(ops.convert_to_tensor(column), presence.shape[-1], dtype="float32")
                presence = ops.maximum(presence, hit * ops.convert_to_tensor(generating[:, None].astype("float32")))
            if config.stop_at_eos:
                newly = generating & (column == eos_id)
                stopped |= newly
                done |= newly
            done |= index + 1 >= lengths + config.max_new_tokens
            if done.all() or index + 1 == total:
                break
            if use_cache:
                logits, cache = cached_step(ops.convert_to_tensor(column[:, None]), cache, index_tensor(index))
                last = logits[:, -1, :]

    results = []
    for i, p in enumerate(prompts):
        new = buffer[i, len(p) : len(p) + config.max_new_tokens].tolist()
        if stopped[i]:
            new = new[: new.index(eos_id)]
        results.append(
            {"prompt_ids": list(p), "token_ids": new, "stopped_at_eos": bool(stopped[i]), "prompt_truncated": truncated[i]}
        )
    return results


def generate_text(model, tokenizer, prompts: list[str], config: SamplingConfig = None, use_cache: bool = True,
                  start_with_eos: bool = True):
    """Text in, text out: like `generate`, adding `prompt` and `text` (the decoded new tokens).

    With `start_with_eos`, each prompt is preceded by the end-of-sequence token, which is how
    documents start in the training stream (documents are separated by it).
    """
    ids = tokenizer.encode(list(prompts))
    if start_with_eos:
        ids = [[tokenizer.eos_id] + list(p) for p in ids]
    results = generate(model, ids, config, eos_id=tokenizer.eos_id, use_cache=use_cache)
    for prompt, res in zip(prompts, results):
        res["prompt"] = prompt
        res["text"] = tokenizer.decode(res["token_ids"])
    return results
