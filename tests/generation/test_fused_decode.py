"""The fused Pallas decode step against the model's own `call_with_cache` (JAX only; on the
CPU the kernels run in Pallas's interpreter)."""

import numpy as np
import pytest
import keras

from kerasvq.common.errors import UserError
from kerasvq.generation.generate import fused_decode_available, generate
from kerasvq.models.transformer_lm import TransformerLM
from kerasvq.generation.sampling import SamplingConfig

on_jax = pytest.mark.skipif(keras.backend.backend() != "jax", reason="Pallas kernels need JAX")


def _model(dtype="float32", seq_len=128, **overrides):
    keras.utils.set_random_seed(5)
    options = dict(vocab_size=48, seq_len=seq_len, d_model=32, num_layers=2, num_heads=4, d_ff=64,
                   dropout=0.0, dtype=dtype)
    model = TransformerLM(**{**options, **overrides})
    model(np.zeros((1, 4), "int32"))
    return model


@on_jax
@pytest.mark.backend_neutral
@pytest.mark.parametrize("dtype, atol", [("float32", 2e-5), ("mixed_bfloat16", 3e-2)])
@pytest.mark.parametrize("batch", [2, 3, 9])  # 2: one FFN kernel; 3: broadcast-and-sum matmuls; 9: Triton dots
def test_fused_step_matches_the_models_own_step(dtype, atol, batch):
    from kerasvq.kernels.fused_decode_step import fused_decode_step

    model = _model(dtype, seq_len=256)
    prompts = np.random.default_rng(0).integers(0, 48, (batch, 140)).astype("int32")
    cache = model.init_cache(batch)
    _, cache = model.call_with_cache(prompts, cache, 0)
    column = prompts[:, -1:]
    # Slot 140 lies in the second block of 128 keys the attention kernel reads.
    expected, expected_cache = model.call_with_cache(column, cache, 140)
    logits, updated, counters, greedy_ids = fused_decode_step(model.decode_weights(), column, cache, 140,
                                                               interpret=True)
    assert logits.shape == expected.shape and str(logits.dtype) == "float32"
    np.testing.assert_allclose(np.asarray(logits), np.asarray(expected), atol=atol)
    for got, want in zip(updated, expected_cache):
        np.testing.assert_allclose(np.asarray(got, "float32"), np.asarray(want, "float32"), atol=atol)
        # Slots past the new token are untouched (still the zeros init_cache made).
        assert not np.asarray(got, "float32")[:, :, 141:].any()
    assert not np.asarray(counters).any()
    np.testing.assert_array_equal(np.asarray(greedy_ids), np.argmax(np.asarray(logits)[:, 0], axis=-1))


@on_jax
@pytest.mark.backend_neutral
@pytest.mark.parametrize("overrides", [dict(), dict(positions="sinusoidal", tie_embeddings=False)])
def test_fused_step_needs_only_the_plain_arrays_of_decode_weights(overrides):
    import jax

    from kerasvq.kernels.fused_decode_step import fused_decode_step

    model = _model(seq_len=32, **overrides)
    # NumPy copies of every array (the static numbers as they are): the kernels see no
    # variable, layer or model.
    weights = jax.tree.map(lambda a: np.asarray(a) if hasattr(a, "shape") else a, model.decode_weights())
    assert not any(isinstance(a, keras.Variable) or hasattr(a, "value") for a in jax.tree.leaves(weights))
    prompts = np.random.default_rng(3).integers(0, 48, (2, 7)).astype("int32")
    _, cache = model.call_with_cache(prompts, model.init_cache(2), 0)
    expected, _ = model.call_with_cache(prompts[:, -1:], cache, 7)
    step = fused_decode_step(weights, prompts[:, -1:], cache, 7, interpret=True)
    np.testing.assert_allclose(np.asarray(step.logits), np.asarray(expected), atol=2e-5)


@on_jax
@pytest.mark.backend_neutral
@pytest.mark.parametrize("batch, penalty, decoder", [(1, 1.0, "persistent"), (3, 1.0, "fused"), (1, 1.3, "fused")])
def test_forced_kernels_pick_the_persistent_kernel_only_at_one_row_without_a_penalty(batch, penalty, decoder):
    from kerasvq.generation.generate import choose_decoder

    config = SamplingConfig(greedy=True, repetition_penalty=penalty)
    assert choose_decoder(_model(seq_len=32), config, batch, 32, fused=True) == decoder


@on_jax
@pytest.mark.backend_neutral
def test_fused_greedy_generation_gives_the_same_tokens():
    model = _model(seq_len=32)
    cfg = SamplingConfig(greedy=True, max_new_tokens=10, stop_at_eos=False)
    prompts = [[5, 6, 7, 8, 9], [10, 11], [12, 13, 14]]
    # Four unrolled steps per check keep the interpreter's compilation short.
    fused = generate(model, prompts, cfg, fused=True, steps_per_check=4)
    plain = generate(model, prompts, cfg, fused=False)
    assert [r["token_ids"] for r in fused] == [r["token_ids"] for r in plain]



@on_jax
@pytest.mark.backend_neutral
@pytest.mark.parametrize("dtype", ["float32", "mixed_bfloat16"])
def test_persistent_kernel_gives_the_tokens_of_the_step_by_step_loop(dtype, monkeypatch):
    from kerasvq.kernels import persistent_decode

    calls = []
    kernel = persistent_decode.persistent_greedy_decode
    monkeypatch.setattr(persistent_decode, "persistent_greedy_decode",
                        lambda *a, **k: calls.append(1) or kernel(*a, **k))
    model = _model(dtype, seq_len=32)
    prompt = [[5, 6, 7, 8, 9]]
    plain = generate(model, prompt, SamplingConfig(greedy=True, max_new_tokens=12, stop_at_eos=False), fused=False)
    fused = generate(model, prompt, SamplingConfig(greedy=True, max_new_tokens=12, stop_at_eos=False), fused=True)
    assert fused == plain
    # Stop at the fourth token the plain loop wrote: the kernel must stop there too.
    eos = plain[0]["token_ids"][3]
    config = SamplingConfig(greedy=True, max_new_tokens=12, stop_at_eos=True)
    stopped = generate(model, prompt, config, eos_id=eos, fused=True)
    assert stopped == generate(model, prompt, config, eos_id=eos, fused=False)
    assert stopped[0]["stopped_at_eos"] and len(stopped[0]["token_ids"]) <= 3
    assert len(calls) == 2  # traced once per compiled loop: with and without the stop at eos


@on_jax
@pytest.mark.backend_neutral
def test_persistent_kernel_keeps_prompt_tokens_of_longer_prompts(monkeypatch):
    from kerasvq.generation import generate as generation

    monkeypatch.setattr(generation, "PERSISTENT_MAX_BATCH", 2)  # generate picks the kernel at two rows
    model = _model(seq_len=32)
    prompts = [[5, 6, 7, 8, 9, 10, 11], [12, 13]]
    config = SamplingConfig(greedy=True, max_new_tokens=6, stop_at_eos=False)
    fused = generate(model, prompts, config, fused=True)
    assert fused == generate(model, prompts, config, fused=False)
    assert [len(r["token_ids"]) for r in fused] == [6, 6]


@on_jax
@pytest.mark.backend_neutral
def test_persistent_kernel_refuses_several_programs_in_the_interpreter():
    from kerasvq.kernels.persistent_decode import persistent_greedy_decode

    model = _model(seq_len=32)
    buffer = np.zeros((1, 32), "int32")
    with pytest.raises(ValueError, match="programs=1"):
        persistent_greedy_decode(model.decode_weights(), buffer, buffer != 0, np.array([8], "int32"), model.init_cache(1),
                                 np.array([1], "int32"), 4, 8, -1, stop_at_eos=False, programs=2, interpret=True)

@on_jax
@pytest.mark.backend_neutral
@pytest.mark.parametrize("overrides, reason", [
    (dict(positions="rotary"), "rotary"),
    (dict(approximate_gelu=False), "erf"),
    (dict(d_ff=40), "d_ff 40"),
    (dict(block="llama", positions="rotary"), "block"),
])
def test_unsupported_models_fall_back_or_are_refused(overrides, reason):
    model = _model(seq_len=32, **overrides)
    assert fused_decode_available(model) is False
    with pytest.raises(UserError, match=reason):
        fused_decode_available(model, fused=True)


@on_jax
@pytest.mark.backend_neutral
def test_models_without_decode_weights_fall_back_or_are_refused():
    from kerasvq.models.lstm_lm import LSTMLM

    model = LSTMLM(vocab_size=48, seq_len=32, units=16, num_layers=1, dropout=0.0)
    model(np.zeros((1, 4), "int32"))
    assert fused_decode_available(model) is False
    with pytest.raises(UserError, match="LSTMLM has no decode_weights"):
        generate(model, [[1, 2]], SamplingConfig(greedy=True, max_new_tokens=2, stop_at_eos=False), decoder="fused")


@on_jax
@pytest.mark.backend_neutral
def test_cache_length_that_is_not_a_power_of_two_is_refused():
    model = _model(seq_len=24)
    with pytest.raises(UserError, match="cache length 24"):
        fused_decode_available(model, 24, fused=True)


@pytest.mark.skipif(keras.backend.backend() == "jax", reason="checks the refusal on other backends")
def test_fused_needs_jax():
    model = _model(seq_len=32)
    assert fused_decode_available(model) is False
    with pytest.raises(UserError, match="JAX"):
        fused_decode_available(model, fused=True)


@on_jax
@pytest.mark.backend_neutral
def test_padded_rows():
    from kerasvq.kernels.pallas_decode import padded_rows

    assert [padded_rows(b) for b in (1, 2, 3, 8, 9, 16, 17, 32)] == [1, 2, 4, 8, 16, 16, 32, 32]


@on_jax
@pytest.mark.backend_neutral
@pytest.mark.parametrize("rows", [2, 16])  # 2: one FFN kernel; 16: FFN in, then split-K FFN out
def test_ffn_kernels_add_partial_sums_and_leave_counters_zero(rows):
    import jax.numpy as jnp

    from kerasvq.kernels.pallas_decode import counter_slots, linear_residual, ln_ffn, ln_linear

    rng = np.random.default_rng(1)
    x, gamma, beta = rng.normal(size=(rows, 32)), rng.normal(size=32), rng.normal(size=32)
    w_in, b_in = rng.normal(size=(32, 128)) / 6, rng.normal(size=128)
    w_out, b_out = rng.normal(size=(128, 32)) / 11, rng.normal(size=32)
    normed = (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1e-5) * gamma + beta
    hidden = normed @ w_in + b_in
    hidden = 0.5 * hidden * (1 + np.tanh(np.sqrt(2 / np.pi) * (hidden + 0.044715 * hidden**3)))
    expected = x + hidden @ w_out + b_out

    f32 = lambda a: jnp.asarray(a, jnp.float32)  # noqa: E731
    counters = jnp.zeros((counter_slots(rows, 32),), jnp.int32)
    args = dict(epsilon=1e-5, interpret=True)
    if rows <= 2:
        out, counters = ln_ffn(*map(f32, (x, gamma, beta, w_in, b_in, w_out, b_out)), counters, **args)
    else:
        got_hidden = ln_linear(*map(f32, (x, gamma, beta, w_in, b_in)), gelu=True, **args)
        out, counters = linear_residual(got_hidden, f32(w_out), f32(b_out), f32(x), counters, interpret=True)
    # Loose enough for Triton's TF32 dots on a GPU; the interpreter is float32.
    np.testing.assert_allclose(np.asarray(out), expected, atol=2e-4, rtol=1e-4)
    assert not np.asarray(counters).any()


@on_jax
@pytest.mark.backend_neutral
@pytest.mark.parametrize("rows", [1, 16])  # 1: 6 programs of 8 columns; 16: 3 programs of 16 (a Triton dot)
def test_logits_kernel_gives_the_first_largest_logit_across_programs(rows):
    import jax.numpy as jnp

    from kerasvq.kernels.pallas_decode import counter_slots, ln_logits

    rng = np.random.default_rng(2)
    x = rng.normal(size=(rows, 32))
    normed = (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1e-5)
    table = rng.normal(size=(48, 32)) * 0.1
    # Columns 5 and 40 (different programs) tie for the largest logit of row 0.
    table[5] = table[40] = normed[0] * 3
    f32 = lambda a: jnp.asarray(a, jnp.float32)  # noqa: E731
    counters = jnp.zeros((counter_slots(rows, 32),), jnp.int32)
    logits, ids, counters = ln_logits(f32(x), f32(np.ones(32)), f32(np.zeros(32)), f32(table), None, counters,
                                      epsilon=1e-5, transposed=True, interpret=True)
    np.testing.assert_allclose(np.asarray(logits), normed @ table.T, atol=1e-4)
    assert int(ids[0]) == 5
    np.testing.assert_array_equal(np.asarray(ids), np.argmax(np.asarray(logits), axis=1))
    assert not np.asarray(counters).any()
