import numpy as np
import pytest

import keras
from keras import ops

from kerasvq.layers.vector_quantizer import VectorQuantizer
from kerasvq.models.vqvae import VQVAE
from kerasvq.metrics.codebook import codebook_stats
from kerasvq.training.codebook_reset import CodebookReset
from helpers.layer_helpers import far_codes_vqvae

np_ = ops.convert_to_numpy


def clusters(n=512, dim=16, centers=32, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centers, dim)).astype("float32") * 3
    return (c[rng.integers(0, centers, n)] + 0.3 * rng.standard_normal((n, dim))).astype("float32")


@pytest.mark.backend_neutral
@pytest.mark.parametrize("residual", [False, True])
def test_codes_lookup_and_shapes(residual):
    x = clusters()
    vq = VectorQuantizer(num_heads=2, codebook_size=8, residual=residual)
    q, codes = vq(x)
    assert q.shape == x.shape and codes.shape == (512, 2)
    vq.initialize_codebook(x)
    q, codes = vq(x)
    np.testing.assert_allclose(np_(q), np_(vq.lookup(codes)), atol=1e-4)
    np.testing.assert_array_equal(np_(codes), np_(vq.get_codes(x)))
    q3, c3 = vq(x[:10].reshape(2, 5, 16))
    assert q3.shape == (2, 5, 16) and c3.shape == (2, 5, 2)


@pytest.mark.backend_neutral
def test_state_changes_only_in_training_and_unused_codes_stay_put():
    x = clusters()
    # the EMA statistics alone: in-layer dead-code re-seeding off
    vq = VectorQuantizer(num_heads=1, codebook_size=4, decay=0.9, dead_code_threshold=0.0)
    vq.build(x.shape)
    book = np.stack([x[:100].mean(0), x[100:200].mean(0), np.full(16, 50.0), np.full(16, -50.0)])[None]
    vq.set_codes(book.astype("float32"))
    before = [np_(v).copy() for v in vq.non_trainable_variables]
    vq(x, training=False)
    for b, v in zip(before, vq.non_trainable_variables):
        np.testing.assert_array_equal(b, np_(v))
    for _ in range(30):
        _, codes = vq(x, training=True)
    after = np_(vq.codebook)[0]
    # codes 2 and 3 are never chosen: with count=1/sum=code statistics they do not drift
    np.testing.assert_allclose(after[2:], book[0, 2:], rtol=1e-5)
    assert np_(vq.steps_unused)[0, 2] == 30
    # a used code moves to the EMA mean of what it was given
    used = np_(codes)[:, 0] == 0
    assert np.linalg.norm(after[0] - x[used].mean(0)) < np.linalg.norm(book[0, 0] - x[used].mean(0))


@pytest.mark.backend_neutral
@pytest.mark.parametrize("gradient", ["straight_through", "rotation"])
def test_gradients_reach_the_encoder(gradient):
    x = clusters(64)
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(16)])
    vq = VectorQuantizer(num_heads=2, codebook_size=8, gradient=gradient)
    vq.initialize_codebook(np_(model(x)))  # builds lazily
    q, _ = vq(model(x))
    np.testing.assert_allclose(np_(q), np_(vq.lookup(vq.get_codes(model(x)))), atol=1e-4)
    head = keras.Sequential([keras.Input((16,)), keras.layers.Dense(16), keras.layers.Lambda(lambda t: vq(t)[0]),
                             keras.layers.Dense(16)])
    head.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    w0 = np_(head.layers[0].kernel).copy()
    head.fit(x, x, epochs=1, batch_size=32, verbose=0)
    assert np.abs(np_(head.layers[0].kernel) - w0).max() > 0


@pytest.mark.backend_neutral
def test_fit_updates_non_trainable_state():
    x = clusters()
    model = VQVAE(input_dim=16, hidden_dim=32, latent_dim=16, num_heads=2, codebook_size=8, data_variance=9.0)
    model.build()
    model.compile(optimizer="adam")
    model.initialize_codebooks(x)
    book = np_(model.quantizer.codebook).copy()
    count = np_(model.quantizer.ema_count).copy()
    model.fit(x, epochs=1, batch_size=64, verbose=0)
    assert not np.allclose(book, np_(model.quantizer.codebook))
    assert not np.allclose(count, np_(model.quantizer.ema_count))
    assert np.isfinite(np_(model.quantizer.codebook)).all()


def test_mixed_precision_keeps_codebooks_float32():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        vq = VectorQuantizer(num_heads=2, codebook_size=8)
        q, codes = vq(clusters(32), training=True)
        assert vq.codebook.dtype == "float32" and q.dtype == "float16"
        assert "int32" in str(codes.dtype)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def _collapse_run(anti_collapse: bool, seed: int = 0):
    """The old failure: every code starts far from the data, so one code wins everything."""
    keras.utils.set_random_seed(seed)
    x = clusters(1024, centers=64, seed=seed)
    model = far_codes_vqvae(x, seed)  # in-layer measures off: the codes stay where they are put
    callbacks = []
    if anti_collapse:
        model.initialize_codebooks(x)
        # also re-seed the codes k-means leaves idle, from live encoder outputs
        callbacks.append(CodebookReset(every=4, max_unused_steps=8))
    model.fit(x, epochs=4, batch_size=64, verbose=0, callbacks=callbacks)
    return codebook_stats(model.encode(x), 16)


@pytest.mark.backend_neutral
def test_collapse_reproduced_without_and_recovered_with_anti_collapse():
    off = _collapse_run(False)
    assert off["mean_usage"] <= 2 / 16 and off["max_share"] > 0.9
    on = _collapse_run(True)
    assert on["min_usage"] >= 0.9 and on["max_share"] < 0.3


@pytest.mark.backend_neutral
def test_codebook_reset_alone_revives_codes_far_from_data():
    keras.utils.set_random_seed(1)
    x = clusters(1024, centers=64, seed=1)
    vq = VectorQuantizer(num_heads=2, codebook_size=16, dead_code_threshold=0.0)  # the callback alone
    vq.build(x.shape)
    vq.set_codes(np.full((2, 16, 8), 100.0, "float32") + np.arange(16, dtype="float32")[None, :, None])
    model = keras.Sequential([keras.Input((16,)), keras.layers.Lambda(lambda t: t), vq])
    for _ in range(10):
        vq(x[np.random.default_rng(_).integers(0, 1024, 128)], training=True)
    assert codebook_stats(np_(vq.get_codes(x)), 16)["mean_usage"] <= 2 / 16
    from kerasvq.training.codebook_reset import reseed_dead_codes

    revived = reseed_dead_codes(vq, max_unused_steps=5)
    assert revived.sum() >= 28
    for _ in range(20):
        vq(x[np.random.default_rng(_).integers(0, 1024, 128)], training=True)
        reseed_dead_codes(vq, max_unused_steps=5)
    assert codebook_stats(np_(vq.get_codes(x)), 16)["min_usage"] >= 0.9


@pytest.mark.backend_neutral
def test_orthogonal_and_entropy_losses_are_finite():
    vq = VectorQuantizer(num_heads=2, codebook_size=8, orthogonal_weight=1.0, entropy_weight=1.0)
    vq(clusters(64), training=True)
    losses = [float(np_(l)) for l in vq.losses]
    assert len(losses) == 3 and all(np.isfinite(losses)) and losses[1] >= 0


def test_config_round_trip():
    vq = VectorQuantizer(num_heads=4, codebook_size=32, cosine=True, gradient="rotation", residual=False)
    again = VectorQuantizer.from_config(vq.get_config())
    assert again.get_config() == vq.get_config()
    with pytest.raises(ValueError, match="divisible"):
        VectorQuantizer(num_heads=3)(np.zeros((2, 16), "float32"))
