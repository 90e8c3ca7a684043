"""HashedDropout drops like keras.layers.Dropout: the right fraction, independent bits, fresh per call."""

import keras
import numpy as np
import pytest

from kerasvq.layers import HashedDropout
from helpers.layer_helpers import round_trip

pytestmark = pytest.mark.backend_neutral

SHAPE = (8, 128, 256)  # 262,144 elements: the binomial spread of the keep fraction is 6e-4


def _masks(layer, calls=2):
    x = np.ones(SHAPE, "float32")
    return [keras.ops.convert_to_numpy(layer(x, training=True)) != 0 for _ in range(calls)]


@pytest.mark.parametrize("rate", [0.1, 0.5])
def test_drops_the_rate_and_scales_what_it_keeps(rate):
    layer = HashedDropout(rate, seed=3)
    x = np.random.default_rng(0).normal(size=SHAPE).astype("float32")
    y = keras.ops.convert_to_numpy(layer(x, training=True))
    kept = y != 0
    spread = np.sqrt(rate * (1 - rate) / kept.size)
    assert abs(kept.mean() - (1 - rate)) < 5 * spread
    np.testing.assert_allclose(y[kept], x[kept] / (1 - rate), rtol=1e-6)


def test_bits_are_independent_across_elements_rows_and_calls():
    first, second = _masks(HashedDropout(0.5, seed=11))
    flat = first.ravel().astype("float32")
    assert abs(np.corrcoef(flat[:-1], flat[1:])[0, 1]) < 0.01       # neighbours
    assert abs(np.corrcoef(flat[:-256], flat[256:])[0, 1]) < 0.01   # the same column, next row
    # Each row keeps a binomial share: no row or feature column is all kept or all dropped.
    row_share = first.reshape(-1, SHAPE[-1]).mean(axis=1)
    assert row_share.std() < 1.3 * np.sqrt(0.25 / SHAPE[-1])
    column_share = first.reshape(-1, SHAPE[-1]).mean(axis=0)
    assert column_share.std() < 1.3 * np.sqrt(0.25 / (first.size / SHAPE[-1]))
    # A second call draws a new mask, unrelated to the first.
    assert abs((first == second).mean() - 0.5) < 0.01


def test_same_seed_same_masks_other_seed_other_masks():
    a, b, c = (_masks(HashedDropout(0.3, seed=s), calls=1)[0] for s in (5, 5, 6))
    np.testing.assert_array_equal(a, b)
    assert abs((a == c).mean() - (0.7**2 + 0.3**2)) < 0.01


def test_inference_and_rate_zero_pass_inputs_through():
    x = np.random.default_rng(1).normal(size=(2, 3, 4)).astype("float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(HashedDropout(0.4)(x)), x)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(HashedDropout(0.0)(x, training=True)), x)


def test_gradient_is_the_mask_times_the_scale():
    layer = HashedDropout(0.25, seed=2)
    x = np.random.default_rng(4).normal(size=(4, 16, 32)).astype("float32")
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        x = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            total = tf.reduce_sum(y)
        grad = tape.gradient(total, x)
    else:
        import jax

        state = [v.value for v in layer.non_trainable_variables]
        y = layer.stateless_call([], state, x, training=True)[0]
        grad = jax.grad(lambda x: layer.stateless_call([], state, x, training=True)[0].sum())(x)
    y, grad = keras.ops.convert_to_numpy(y), keras.ops.convert_to_numpy(grad)
    np.testing.assert_allclose(grad, np.where(y != 0, 1 / 0.75, 0.0), rtol=1e-6)


def test_bfloat16_inputs_stay_bfloat16_and_are_scaled_without_bias():
    layer = HashedDropout(0.1, seed=0, dtype="mixed_bfloat16")
    x = keras.ops.cast(np.random.default_rng(3).normal(size=(2, 64, 64)), "bfloat16")
    y = layer(x, training=True)
    assert keras.backend.standardize_dtype(y.dtype) == "bfloat16"
    x, y = (keras.ops.convert_to_numpy(keras.ops.cast(t, "float32")) for t in (x, y))
    kept = y != 0
    # Each kept element is x / 0.9 rounded once to bfloat16 (8 significant bits), so the
    # ratio's mean is 1 / 0.9 to well under the 0.2% a rounded bfloat16 factor would cost.
    ratio = y[kept] / x[kept]
    assert np.abs(ratio * 0.9 - 1).max() <= 2**-8
    assert abs(ratio.mean() * 0.9 - 1) < 5e-4


def test_round_trip_and_bad_rate(tmp_path):
    x = np.random.default_rng(2).normal(size=(2, 5, 8)).astype("float32")
    before, after = round_trip(HashedDropout(0.2, seed=9), x, tmp_path)
    np.testing.assert_array_equal(before, after)
    assert HashedDropout.from_config(HashedDropout(0.2, seed=9).get_config()).rate == 0.2
    with pytest.raises(ValueError, match="rate must be in"):
        HashedDropout(1.0)


@pytest.mark.parametrize("shape", [(4096,), (64, 64), (2, 4, 8, 64)])
def test_any_rank_keeps_the_right_share(shape):
    kept = keras.ops.convert_to_numpy(HashedDropout(0.5, seed=1)(np.ones(shape, "float32"), training=True)) != 0
    assert kept.shape == shape and abs(kept.mean() - 0.5) < 5 * np.sqrt(0.25 / kept.size)
