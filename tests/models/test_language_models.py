import keras
import numpy as np
import pytest

from kerasvq.models import LSTMLM, TransformerLM

pytestmark = pytest.mark.backend_neutral


def tiny_transformer(**kwargs):
    options = dict(vocab_size=97, seq_len=24, d_model=32, num_layers=2, num_heads=4, d_ff=64, dropout=0.0)
    return TransformerLM(**{**options, **kwargs})


def tokens(batch=2, length=16, seed=0):
    return np.random.default_rng(seed).integers(0, 97, size=(batch, length)).astype("int32")


@pytest.mark.parametrize("positions", ["learned", "sinusoidal", "rotary"])
def test_causal_mask_future_tokens_do_not_change_earlier_logits(positions):
    model = tiny_transformer(positions=positions)
    x = tokens()
    changed = x.copy()
    changed[:, 10:] = (changed[:, 10:] + 1) % 97
    a, b = keras.ops.convert_to_numpy(model(x)), keras.ops.convert_to_numpy(model(changed))
    np.testing.assert_allclose(a[:, :10], b[:, :10], atol=1e-5)
    assert np.abs(a[:, 10:] - b[:, 10:]).max() > 1e-4


@pytest.mark.parametrize("positions", ["learned", "sinusoidal", "rotary"])
def test_cached_decoding_matches_full_forward(positions):
    model = tiny_transformer(positions=positions)
    x = tokens(length=12)
    full = keras.ops.convert_to_numpy(model(x))
    cache = model.init_cache(2, 20)
    prefix, cache = model.call_with_cache(x[:, :8], cache, 0)
    steps = [prefix]
    for i in range(8, 12):
        logits, cache = model.call_with_cache(x[:, i : i + 1], cache, i)
        steps.append(logits)
    cached = np.concatenate([keras.ops.convert_to_numpy(s) for s in steps], axis=1)
    np.testing.assert_allclose(cached, full, atol=1e-4)


def test_longer_input_than_seq_len_is_rejected():
    model = tiny_transformer()
    with pytest.raises(ValueError, match="seq_len is 24"):
        model(tokens(length=25))


def test_logits_are_float32_under_mixed_precision():
    model = tiny_transformer(dtype="mixed_bfloat16")
    logits = model(tokens())
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    assert model.blocks[0].attention.qkv_dense.compute_dtype == "bfloat16"


@pytest.mark.parametrize("model_fn", [
    lambda: tiny_transformer(positions="rotary", tie_embeddings=False),
    lambda: tiny_transformer(),
    lambda: LSTMLM(vocab_size=97, seq_len=24, units=32, num_layers=2),
])
def test_keras_round_trip_gives_identical_logits(tmp_path, model_fn):
    model = model_fn()
    x = tokens()
    expected = keras.ops.convert_to_numpy(model(x))
    model.save(tmp_path / "model.keras")
    restored = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(restored(x)), expected)
    assert restored.get_config() == model.get_config()


def test_configs_saved_before_approximate_gelu_keep_the_exact_gelu():
    model = tiny_transformer()
    x = tokens()
    assert model.approximate_gelu and model(x) is not None
    legacy_config = model.get_config()
    del legacy_config["approximate_gelu"]
    legacy = TransformerLM.from_config(legacy_config)
    legacy(x)
    legacy.set_weights(model.get_weights())
    assert not legacy.approximate_gelu and not legacy.blocks[0].approximate_gelu
    exact = tiny_transformer(approximate_gelu=False)
    exact(x)
    exact.set_weights(model.get_weights())
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(legacy(x)), keras.ops.convert_to_numpy(exact(x)))
    # The two forms differ a little, but they do differ: the flag reaches the blocks.
    difference = np.abs(keras.ops.convert_to_numpy(model(x)) - keras.ops.convert_to_numpy(exact(x))).max()
    assert 0 < difference < 1e-2


def test_lstm_state_cache_matches_full_forward():
    model = LSTMLM(vocab_size=97, seq_len=24, units=16, num_layers=2, dropout=0.0)
    x = tokens(length=10)
    full = keras.ops.convert_to_numpy(model(x))
    state = model.init_cache(2)
    first, state = model.call_with_cache(x[:, :6], state, 0)
    second, state = model.call_with_cache(x[:, 6:], state, 6)
    cached = np.concatenate([keras.ops.convert_to_numpy(first), keras.ops.convert_to_numpy(second)], axis=1)
    np.testing.assert_allclose(cached, full, atol=1e-5)


def test_attention_weights_are_causal_distributions():
    model = tiny_transformer()
    weights = model.attention_weights(tokens(length=6))
    assert len(weights) == 2
    w = keras.ops.convert_to_numpy(weights[0])
    assert w.shape == (2, 4, 6, 6)
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-5)
    assert np.abs(np.triu(w, k=1)).max() < 1e-6


def test_parameter_counts_of_the_lineage_shapes():
    v5 = TransformerLM(4000, 256)
    v5.build((None, 256))
    v4 = LSTMLM(4000, 192, units=512, num_layers=2)
    v4.build((None, 192))
    assert v5.count_params() == 4_249_088
    assert v4.count_params() == 8_298_400


def test_lstm_starts_like_pytorch_unless_asked_for_keras_defaults():
    from kerasvq.models.lstm_lm import LSTMLM

    keras.utils.set_random_seed(0)
    torch_like = LSTMLM(vocab_size=300, seq_len=16, units=64, num_layers=1)
    torch_like.build()
    bound = 1 / 8
    assert abs(np.std(keras.ops.convert_to_numpy(torch_like.token_embedding.embeddings)) - 1.0) < 0.05
    for weight in torch_like.lstms[0].weights + torch_like.output_head.weights:
        assert np.abs(keras.ops.convert_to_numpy(weight)).max() <= bound
    keras_like = LSTMLM(vocab_size=300, seq_len=16, units=64, num_layers=1, initialization="keras")
    keras_like.build()
    assert np.abs(keras.ops.convert_to_numpy(keras_like.token_embedding.embeddings)).max() <= 0.05
    assert LSTMLM.from_config(torch_like.get_config()).initialization == "pytorch"
    with pytest.raises(ValueError, match="initialization"):
        LSTMLM(vocab_size=300, seq_len=16, initialization="xavier")


def test_lstm_recurrence_runs_in_float32_under_mixed_bfloat16():
    # cuDNN has no bfloat16 LSTM (JAX's GPU path raised "Unknown output type bfloat16"), so the
    # recurrence keeps float32 while the embedding and the head compute in bfloat16; the cache
    # carries the recurrence's dtype so a generation loop's state keeps one dtype.
    model = LSTMLM(vocab_size=97, seq_len=24, units=16, num_layers=2, dropout=0.0, dtype="mixed_bfloat16")
    x = tokens(length=6)
    logits = model(x)
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    assert [lstm.compute_dtype for lstm in model.lstms] == ["float32", "float32"]
    assert model.token_embedding.compute_dtype == "bfloat16"
    state = model.init_cache(2)
    _, new_state = model.call_with_cache(x, state, 0)
    assert keras.backend.standardize_dtype(new_state.dtype) == keras.backend.standardize_dtype(state.dtype) == "float32"
