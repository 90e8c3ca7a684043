"""tanh_gelu is ops.gelu(approximate=True) forward and backward, with its own derivative."""

import keras
import numpy as np
import pytest

from kerasvq.layers.tanh_gelu import tanh_gelu

pytestmark = pytest.mark.backend_neutral


def _upstream(shape):
    # A non-uniform upstream gradient, so a wrong derivative cannot hide in a sum.
    return (np.arange(np.prod(shape)) % 7).reshape(shape).astype("float32")


def _value_and_gradient(fn, x):
    """fn(x) and the gradient of sum(fn(x) * _upstream)."""
    upstream = keras.ops.cast(_upstream(x.shape), x.dtype)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        x = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x)
            total = tf.reduce_sum(y * upstream)
        return y, tape.gradient(total, x)
    import jax

    return fn(x), jax.grad(lambda x: (fn(x) * upstream).sum())(x)


def _reference(x):
    """GELU (tanh form) and its derivative in float64."""
    c, a = np.sqrt(2 / np.pi), 0.044715
    tanh = np.tanh(c * (x + a * x**3))
    return 0.5 * x * (1 + tanh), 0.5 * (1 + tanh) + 0.5 * x * (1 - tanh**2) * c * (1 + 3 * a * x**2)


def test_value_and_derivative_match_float64():
    x = np.linspace(-9.0, 9.0, 4 * 301, dtype="float32").reshape(4, 301)
    y, grad = _value_and_gradient(tanh_gelu, x)
    want_y, want_derivative = _reference(x.astype("float64"))
    upstream = _upstream(x.shape)
    # The forward value is keras's own gelu, which cancels to zero below x ≈ -5.
    np.testing.assert_allclose(keras.ops.convert_to_numpy(y), want_y, rtol=1e-6, atol=1e-6)
    nonzero = upstream > 0
    derivative = keras.ops.convert_to_numpy(grad)[nonzero] / upstream[nonzero]
    # atol covers float32 rounding of O(1) terms where the derivative crosses zero; in the
    # negative tail (|GELU'| ≈ 1e-5) a cancelling 1 − tanh² is off by 1e-6 and fails.
    np.testing.assert_allclose(derivative, want_derivative[nonzero], rtol=2e-6, atol=5e-8)


def test_matches_the_autodiff_of_keras_gelu():
    x = np.linspace(-3.0, 3.0, 4 * 301, dtype="float32").reshape(4, 301)
    want_y, want_grad = _value_and_gradient(lambda x: keras.ops.gelu(x, approximate=True), x)
    got_y, got_grad = _value_and_gradient(tanh_gelu, x)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(got_y), keras.ops.convert_to_numpy(want_y), atol=1e-6)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(got_grad), keras.ops.convert_to_numpy(want_grad), atol=1e-5
    )


def test_bfloat16_in_bfloat16_out():
    y, grad = _value_and_gradient(tanh_gelu, keras.ops.cast(keras.ops.linspace(-3.0, 3.0, 64), "bfloat16"))
    assert keras.backend.standardize_dtype(y.dtype) == "bfloat16"
    assert keras.backend.standardize_dtype(grad.dtype) == "bfloat16"
