import keras
import numpy as np
import pytest

from kerasvq.layers.token_embedding import TokenEmbedding
from helpers.layer_helpers import loss_and_gradients, round_trip

# Skewed ids, like real text: token 3 fills half of the positions.
IDS = np.array([[3, 3, 5, 3, 0, 9], [3, 1, 3, 3, 9, 3]], dtype="int32")


def _layer(gradient, dtype="float32"):
    keras.utils.set_random_seed(0)
    layer = TokenEmbedding(12, 8, gradient=gradient, dtype=dtype)
    layer.build((None, None))
    return layer


def _weighted_sum(y):
    return keras.ops.sum(keras.ops.cast(y, "float32") * np.arange(48).reshape(6, 8).astype("float32"))


@pytest.mark.backend_neutral
@pytest.mark.parametrize("gradient", ["segment_sum", "one_hot_matmul"])
def test_gradient_equals_the_scatter_gradient(gradient):
    lookup, scatter = _layer(gradient), _layer("scatter")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(lookup(IDS)),
                                  keras.ops.convert_to_numpy(scatter(IDS)))
    (grad,) = loss_and_gradients(lookup, IDS, _weighted_sum).values()
    (expected,) = loss_and_gradients(scatter, IDS, _weighted_sum).values()
    assert np.abs(expected[3]).sum() > 0 and not expected[2].any()
    np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=1e-5)


@pytest.mark.backend_neutral
@pytest.mark.parametrize("gradient", ["segment_sum", "one_hot_matmul"])
def test_mixed_precision_keeps_a_float32_table_and_a_close_gradient(gradient):
    layer, reference = _layer(gradient, "mixed_bfloat16"), _layer("scatter")
    assert layer(IDS).dtype == "bfloat16" and layer.embeddings.dtype == "float32"
    (grad,) = loss_and_gradients(layer, IDS, _weighted_sum).values()
    (expected,) = loss_and_gradients(reference, IDS, _weighted_sum).values()
    np.testing.assert_allclose(grad, expected, rtol=2e-2)


def test_segment_sum_adds_in_float32():
    # Token 3 receives 4,096 additions of 1 + 2⁻⁷: summed in bfloat16 the total stalls once
    # the running sum's spacing exceeds the addend; in float32 it is exact.
    ids = np.full((4, 1024), 3, "int32")
    layer = _layer("segment_sum", "mixed_bfloat16")
    (grad,) = loss_and_gradients(
        layer, ids, lambda y: keras.ops.sum(keras.ops.cast(y, "float32")) * (1 + 2**-7)
    ).values()
    np.testing.assert_allclose(grad[3], 4096 * (1 + 2**-7), rtol=1e-6)


def test_round_trip_and_bad_gradient_name(tmp_path):
    before, after = round_trip(_layer("one_hot_matmul"), IDS, tmp_path)
    np.testing.assert_array_equal(before, after)
    with pytest.raises(ValueError, match="gradient must be one of"):
        TokenEmbedding(12, 8, gradient="sorted")


def test_auto_means_segment_sum(monkeypatch):
    layer = _layer("auto")
    calls = []
    monkeypatch.setattr(keras.layers.Embedding, "call", lambda self, ids: calls.append(1) or 0)
    layer(IDS)
    assert calls == []  # Keras's own lookup (the "scatter" gradient) is not used
