"""Beam-search encoding and conditioned (QINCo-style) codewords of the residual VectorQuantizer."""

import numpy as np
import pytest

import keras
from keras import ops

from kerasvq.layers.residual_search import beam_search, follow_path
from kerasvq.layers.vector_quantizer import VectorQuantizer

np_ = ops.convert_to_numpy
pytestmark = pytest.mark.backend_neutral


def gaussian(n=600, dim=12, seed=0):
    return np.random.default_rng(seed).standard_normal((n, dim)).astype("float32")


def fitted(x, **kw):
    vq = VectorQuantizer(num_heads=3, codebook_size=16, residual=True, **kw)
    vq.build(x.shape)
    vq.initialize_codebook(x)
    return vq


def error(x, q):
    return float(((x - np_(q)) ** 2).sum(1).mean())


def test_beam_of_one_is_the_greedy_residual_encoding():
    x = gaussian()
    greedy = fitted(x)
    codes = beam_search(ops.convert_to_tensor(x), ops.convert_to_tensor(greedy.codebook), beam=1)
    np.testing.assert_array_equal(np_(codes), np_(greedy.get_codes(x)))


def test_wider_beams_never_lose_and_do_win_on_average():
    x = gaussian()
    greedy = fitted(x)
    errors = []
    for beam in (1, 4, 16):
        vq = fitted(x, beam_size=beam)
        vq.set_codes(np_(greedy.codebook))
        codes = vq.get_codes(x)
        errors.append(error(x, vq.lookup(codes)))
        q, train_codes = vq(x, training=False)
        np.testing.assert_array_equal(np_(train_codes), np_(codes))
        np.testing.assert_allclose(np_(q), np_(vq.lookup(codes)), atol=1e-4)
    assert errors[0] > errors[1] > errors[2]


def test_conditioning_starts_as_the_plain_quantizer_then_learns_to_lower_the_error():
    x = gaussian()
    plain = fitted(x, beam_size=4)
    vq = fitted(x, beam_size=4, conditioning_dim=8, conditioning_candidates=16)
    vq.set_codes(np_(plain.codebook))
    np.testing.assert_array_equal(np_(vq.get_codes(x)), np_(plain.get_codes(x)))
    before = error(x, vq.lookup(vq.get_codes(x)))
    # the corrections alone (dead-code re-seeding and EMA of the base kept as they are)
    vq.trainable = True
    opt = keras.optimizers.Adam(3e-3)
    weights = [vq.cond_code, vq.cond_recon, vq.cond_bias, vq.cond_out]
    opt.build(weights)
    for _ in range(60):
        train_step(opt, weights, lambda: error_tensor(vq, x))
    codes = vq.get_codes(x)
    after = error(x, vq.lookup(codes))
    assert after < 0.97 * before
    q, call_codes = vq(x, training=False)
    np.testing.assert_array_equal(np_(call_codes), np_(codes))
    np.testing.assert_allclose(np_(q), np_(vq.lookup(codes)), atol=1e-4)


def error_tensor(vq, x):
    codes = ops.stop_gradient(vq.get_codes(x))
    words = follow_path(None, ops.convert_to_tensor(vq.codebook), codes, vq._correction)[2]
    return ops.mean(ops.sum(ops.square(x - ops.sum(words, axis=1)), axis=-1))


def train_step(opt, weights, loss):
    """One optimizer step on `weights` under either backend."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            value = loss()
        opt.apply_gradients(zip(tape.gradient(value, weights), weights))
        return
    import jax

    def stateless_loss(values):
        with keras.StatelessScope(state_mapping=list(zip(weights, values))):
            return loss()

    grads = jax.grad(stateless_loss)([w.value for w in weights])
    opt.apply_gradients(zip(grads, weights))


def test_serialization_keeps_options_and_codes():
    x = gaussian()
    vq = fitted(x, beam_size=4, conditioning_dim=8, conditioning_candidates=8)
    vq.cond_out.assign(np.random.default_rng(1).standard_normal(vq.cond_out.shape).astype("float32") * 0.05)
    clone = VectorQuantizer.from_config(vq.get_config())
    clone.build(x.shape)
    for a, b in zip(clone.weights, vq.weights):
        a.assign(b)
    assert (clone.beam_size, clone.conditioning_dim, clone.conditioning_candidates) == (4, 8, 8)
    np.testing.assert_array_equal(np_(clone.get_codes(x)), np_(vq.get_codes(x)))


def test_search_options_need_residual_mode():
    with pytest.raises(ValueError, match="residual"):
        VectorQuantizer(num_heads=2, beam_size=4)
    with pytest.raises(ValueError, match="residual"):
        VectorQuantizer(num_heads=2, conditioning_dim=8)
