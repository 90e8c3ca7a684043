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

`generate` picks one of `DECODERS` once per call (`choose_decoder`): the step-by-step loop
(sampling, `use_cache=False`, `reference_loop=True`) or, for cached greedy decoding, one
compiled loop whose single-token step is the model's own `call_with_cache` or, on JAX with a
GPU for a model with `decode_weights()` at batch ≤ 32, fused Pallas kernels: at batch 1
without a repetition penalty the whole loop is one persistent kernel
(`kerasvq.kernels.persistent_decode`), otherwise each step is two or four kernels per block
(`kerasvq.kernels.fused_decode_step`) instead of about sixteen. The `fused` argument of
`generate` forces or disables the kernels; `decoder` names one. Every decoder writes its
columns by one rule, `kerasvq.kernels.column_rule.next_column`.

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

from kerasvq.common.errors import UserError
from kerasvq.generation.sampling import SamplingConfig, apply_repetition_penalty, sample_next, token_presence
from kerasvq.kernels.column_rule import next_column


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

        # Collected once: walking the model's layers for them costs more host time a call
        # than a batch-1 decode step takes on a GPU.
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
measured at, faster than the keras.ops step at both ends (docs/performance.md); rows are
padded to a power of two, which larger uneven batches would pay for."""

PERSISTENT_MAX_BATCH = 1
"""Most sequences the persistent kernel is chosen for by default. It takes any batch, but its
per-program tiles grow with rows: at two sequences it was slower than even the keras.ops step."""

DECODERS = ("uncached", "reference", "compiled", "fused", "persistent")
"""The decoders `generate` can run, from `choose_decoder`:

- "uncached": the step-by-step loop, the whole buffer through the model each step.
- "reference": the step-by-step loop, one compiled `call_with_cache` per token; the only one
  that samples, and the reference the tests compare the others with.
- "compiled": cached greedy decoding as one compiled loop over `call_with_cache`.
- "fused": that loop with the fused Pallas single-token step (`fused_decode_step`).
- "persistent": the whole greedy loop as one persistent Pallas kernel (no repetition penalty).
"""

_GREEDY_LOOP_DECODERS = ("compiled", "fused", "persistent")
_UNSUPPORTED = weakref.WeakKeyDictionary()


def _fused_unsupported(model, cache_length):
    """Why the decode kernels cannot run `model` (a string), or None. The model's
    `decode_weights()` refuses architectures the kernels' math does not cover; the kernels
    check the shapes. Remembered per model: it depends on nothing that training changes."""
    known = _UNSUPPORTED.setdefault(model, {})
    if cache_length not in known:
        from kerasvq.kernels.decode_weights import unsupported_reason

        if not callable(getattr(model, "decode_weights", None)):
            known[cache_length] = f"{type(model).__name__} has no decode_weights()"
        else:
            try:
                known[cache_length] = unsupported_reason(model.decode_weights(), cache_length)
            except ValueError as err:
                known[cache_length] = str(err)
    return known[cache_length]


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
    reason = _fused_unsupported(model, int(cache_length or model.seq_len))
    if fused and reason:
        raise UserError(f"fused=True: {reason}")
    if reason:
        return False
    import jax

    return bool(fused) or (jax.default_backend() == "gpu" and batch <= FUSED_MAX_BATCH)


def choose_decoder(model, config: SamplingConfig, batch: int, cache_length: int, use_cache: bool = True,
                   reference_loop: bool = False, fused: bool = None, decoder: str = None) -> str:
    """The one of `DECODERS` that `generate` runs; the only place that decides.

    With `decoder=None`: "uncached" without the cache, "reference" when sampling or with
    `reference_loop`, else the compiled greedy loop: "persistent" when the kernels apply (see
    `fused_decode_available`), there is no repetition penalty and `batch` is at most
    `PERSISTENT_MAX_BATCH`, "fused" when the kernels apply otherwise, "compiled" when not.
    A named `decoder` is used as it is (the other flags are then ignored); `UserError` says
    why when it cannot run this model or `config`.
    """
    if decoder is None:
        if not use_cache:
            return "uncached"
        if reference_loop or not config.greedy:
            return "reference"
        if not fused_decode_available(model, cache_length, fused, batch):
            return "compiled"
        if config.repetition_penalty == 1.0 and batch <= PERSISTENT_MAX_BATCH:
            return "persistent"
        return "fused"
    if decoder not in DECODERS:
        raise UserError(f"decoder {decoder!r} is not one of {', '.join(DECODERS)}")
    if decoder in _GREEDY_LOOP_DECODERS and not config.greedy:
        raise UserError(f"decoder {decoder!r} decodes greedily; set greedy=true or use 'reference'")
    if decoder == "persistent" and config.repetition_penalty != 1.0:
        raise UserError("decoder 'persistent' has no repetition penalty; use 'fused' or set repetition_penalty=1.0")
    if decoder in ("fused", "persistent"):
        fused_decode_available(model, cache_length, True, batch)  # raises, naming why not
    return decoder


def _pallas_interpreted() -> bool:
    """Whether the Pallas kernels run in the interpreter: anywhere but on a GPU (the tests)."""
    import jax

    return jax.default_backend() != "gpu"


def _single_token_step(model, decoder: str):
    """`(begin, step)` for the compiled loop of `decoder` ("compiled" or "fused"):
    `begin(cache, batch)` is the state the loop carries and
    `step(ids (batch, 1), state, index) -> (logits, greedy ids or None, state)` one step,
    either the model's own `call_with_cache` (the state is its cache) or the fused kernels
    (the cache and their arrival counters; they also give each row's argmax). Call it inside
    the compiled function: the fused step reads the model's traced `decode_weights()`."""
    if decoder == "compiled":
        def step(ids, cache, index):
            logits, cache = model.call_with_cache(ids, cache, index)
            return logits, None, cache

        return (lambda cache, batch: cache), step
    from kerasvq.kernels.fused_decode_step import arrival_counters, fused_decode_step

    interpret = _pallas_interpreted()
    weights = model.decode_weights()

    def fused_step(ids, state, index):
        cache, counters = state
        out = fused_decode_step(weights, ids, cache, index, counters, interpret=interpret)
        return out.logits, out.greedy_ids, (out.cache, out.counters)

    return (lambda cache, batch: (cache, arrival_counters(weights, batch))), fused_step


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


def _greedy_loop(model, decoder: str, start: int, penalty: float, stop_at_eos: bool,
                 steps_per_check: int = STEPS_PER_CHECK):
    """The whole cached greedy decode of `decoder` ("compiled", "fused" or "persistent") as one
    compiled call, compiled once per model, setting and `start` (the shortest prompt's length):
    the empty cache, the prompt columns every row has, then the decode loop. One call instead of a dozen small eager ones, which cost
    milliseconds per `generate` on a GPU.

    The outer `while_loop` checks "every row done?" only once per `steps_per_check` steps:
    the inner `fori_loop` has a trip count fixed at compile time, which XLA runs without
    reading a predicate back to the host (on a GPU, that read is a sync per token); with the
    fused kernels ("fused") the inner steps are unrolled instead, and "persistent" is
    `persistent_greedy_decode`, one kernel. Steps past `total` change nothing in the buffer.
    Same column rule (`next_column`) as the step-by-step loop in `generate`, which stays the
    reference (the tests compare the two).
    """
    key = (decoder, start, penalty, stop_at_eos, steps_per_check)
    loops = _LOOPS.setdefault(model, {})
    if key in loops:
        return loops[key]

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

        if decoder == "persistent":
            from kerasvq.kernels.persistent_decode import persistent_greedy_decode

            # The whole loop in one kernel; it stops exactly when every row is done.
            return persistent_greedy_decode(model.decode_weights(), buffer, in_prompt, limits, cache,
                                            choose(last, presence), start, total, eos_id, stop_at_eos=stop_at_eos,
                                            interpret=_pallas_interpreted())
        begin, decode_step = _single_token_step(model, decoder)

        def step(index, buffer, step_state, proposal, presence, done, stopped):
            at = ops.minimum(index, width - 1)  # past `total`: rewrite the last column as it is
            in_prompt_now = ops.logical_or(ops.take(in_prompt, at, axis=1), ops.logical_not(index < total))
            column, generating, done, stopped = next_column(index, ops.take(buffer, at, axis=1), in_prompt_now,
                                                            proposal, done, stopped, limits, eos_id,
                                                            stop_at_eos=stop_at_eos, where=ops.where)
            buffer = ops.slice_update(buffer, [0, at], ops.expand_dims(column, 1))
            if penalty != 1.0:
                hit = ops.one_hot(column, ops.shape(presence)[-1], dtype="float32")
                presence = ops.maximum(presence, hit * ops.cast(generating, "float32")[:, None])
            logits, greedy_ids, step_state = decode_step(ops.expand_dims(column, 1), step_state, at)
            # The next proposal sees the presence that includes this column, as the reference does.
            proposal = greedy_ids if greedy_ids is not None and penalty == 1.0 else choose(logits[:, -1, :], presence)
            return index + 1, buffer, step_state, proposal, presence, done, stopped

        def steps(*state):
            if decoder == "compiled":
                return ops.fori_loop(0, steps_per_check, lambda _, s: step(*s), state)
            # The fused steps are a dozen kernels each; unrolled, XLA schedules the steps
            # between two checks as one sequence. (Compiling the loop into CUDA graphs
            # instead measured slower at batch 1: docs/performance.md.)
            for _ in range(steps_per_check):
                state = step(*state)
            return state

        def cond(index, buffer, step_state, proposal, presence, done, stopped):
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
             reference_loop: bool = False, steps_per_check: int = STEPS_PER_CHECK, fused: bool = None,
             decoder: str = None):
    """Generates continuations of `prompts` (lists of token ids).

    Cached greedy decoding runs as one compiled loop that checks whether every row is done
    once per `steps_per_check` tokens; `reference_loop=True` forces the step-by-step Python
    loop (one compiled model step per token), which sampling always uses. `fused` picks the
    single-token step (see `fused_decode_available`); the reference loop always uses the
    model's own `call_with_cache`. `decoder` names one of `DECODERS` instead (see
    `choose_decoder`, which makes the choice for every call).

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
    limits = (lengths + config.max_new_tokens).astype("int32")
    done = np.zeros(batch, dtype=bool)
    stopped = np.zeros(batch, dtype=bool)
    decoder = choose_decoder(model, config, batch, width, use_cache, reference_loop, fused, decoder)
    if decoder in _GREEDY_LOOP_DECODERS:
        loop = _greedy_loop(model, decoder, start, float(config.repetition_penalty), bool(config.stop_at_eos),
                            int(steps_per_check))
        out, stopped_t = loop(buffer, in_prompt, limits, np.int32(total), np.int32(-1 if eos_id is None else eos_id))
        buffer = ops.convert_to_numpy(out).astype("int32")
        stopped = ops.convert_to_numpy(stopped_t).astype(bool)
    else:
        seed_gen = None if config.greedy else keras.random.SeedGenerator(config.seed)
        presence = None
        if config.repetition_penalty != 1.0:
            presence = token_presence(ops.convert_to_tensor(buffer), int(model.vocab_size),
                                      ops.convert_to_tensor(in_prompt))
        use_cache = decoder == "reference"
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
            column, generating, done, stopped = next_column(index, buffer[:, index], in_prompt[:, index], proposal,
                                                            done, stopped, limits, eos_id,
                                                            stop_at_eos=config.stop_at_eos, where=np.where)
            buffer[:, index] = column
            if presence is not None:
                hit = ops.one_hot(ops.convert_to_tensor(column), presence.shape[-1], dtype="float32")
                presence = ops.maximum(presence, hit * ops.convert_to_tensor(generating[:, None].astype("float32")))
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
