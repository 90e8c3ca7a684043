"""OnePassLayerNormalization computes what keras.layers.LayerNormalization does, with its weights."""

import keras
import numpy as np
import pytest

from kerasvq.layers import OnePassLayerNormalization
from helpers.layer_helpers import loss_and_gradients, round_trip

pytestmark = pytest.mark.backend_neutral


def _pair(dtype="float32"):
    """A Keras LayerNormalization and a one-pass one with the same random gamma and beta."""
    rng = np.random.default_rng(0)
    reference = keras.layers.LayerNormalization(epsilon=1e-5, dtype=dtype)
    one_pass = OnePassLayerNormalization(epsilon=1e-5, dtype=dtype)
    for layer in (reference, one_pass):
        layer.build((None, 7, 64))
    weights = [rng.normal(1.0, 0.3, 64).astype("float32"), rng.normal(0.0, 0.3, 64).astype("float32")]
    reference.set_weights(weights)
    one_pass.set_weights(weights)
    return reference, one_pass


def _inputs(offset=3.0):
    # Rows with a mean of `offset` and spreads from 0.5 to 4: the one-pass variance must not
    # lose the spread to the mean.
    rng = np.random.default_rng(1)
    spread = np.linspace(0.5, 4.0, 7)[None, :, None]
    return (offset + spread * rng.normal(size=(3, 7, 64))).astype("float32")


def test_matches_keras_layer_normalization():
    reference, one_pass = _pair()
    x = _inputs()
    expected = keras.ops.convert_to_numpy(reference(x))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(one_pass(x)), expected, atol=2e-5)


def test_gradients_match_keras_layer_normalization():
    reference, one_pass = _pair()
    x = _inputs()
    target = np.random.default_rng(2).normal(size=x.shape).astype("float32")
    loss = lambda y: keras.ops.mean((y - target) ** 2)  # noqa: E731
    expected = loss_and_gradients(reference, x, loss)
    got = loss_and_gradients(one_pass, x, loss)
    for (_, want), (_, have) in zip(sorted(expected.items()), sorted(got.items())):
        np.testing.assert_allclose(have, want, atol=1e-5)


def test_mixed_precision_outputs_compute_dtype_from_float32_statistics():
    reference, one_pass = _pair("mixed_bfloat16")
    x = _inputs()
    y = one_pass(keras.ops.cast(x, "bfloat16"))
    assert keras.backend.standardize_dtype(y.dtype) == "bfloat16"
    assert one_pass.gamma.dtype == "float32"
    expected = keras.ops.convert_to_numpy(keras.ops.cast(reference(keras.ops.cast(x, "bfloat16")), "float32"))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(keras.ops.cast(y, "float32")), expected, atol=0.05)


def test_keras_round_trip(tmp_path):
    _, one_pass = _pair()
    before, after = round_trip(one_pass, _inputs(), tmp_path)
    np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("kwargs", [{"axis": 1}, {"rms_scaling": True}])
def test_refuses_other_axes_and_rms_scaling(kwargs):
    with pytest.raises(ValueError, match="last axis"):
        OnePassLayerNormalization(**kwargs).build((None, 7, 64))
