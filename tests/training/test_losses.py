import keras
import numpy as np
import pytest

from kerasvq.training.losses import SparseCategoricalCrossentropyWithSmoothing
from kerasvq.training.metrics import CrossEntropy, Perplexity
from kerasvq.training.schedules import warmup_cosine


@pytest.mark.backend_neutral
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_sparse_smoothing_matches_dense_formula(smoothing):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 5, 11)).astype("float32") * 3
    labels = rng.integers(0, 11, size=(3, 5))
    sparse = SparseCategoricalCrossentropyWithSmoothing(label_smoothing=smoothing)(labels, logits)
    dense = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=smoothing)(
        np.eye(11, dtype="float32")[labels], logits
    )
    np.testing.assert_allclose(float(sparse), float(dense), rtol=1e-5)


@pytest.mark.backend_neutral
def test_smoothed_loss_gradient_is_softmax_minus_smoothed_target():
    from keras import ops

    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 3, 7)).astype("float32") * 2
    labels = rng.integers(0, 7, size=(2, 3))
    smoothing = 0.2
    loss = SparseCategoricalCrossentropyWithSmoothing(label_smoothing=smoothing)
    if keras.backend.backend() == "jax":
        import jax

        grad = np.asarray(jax.grad(lambda z: loss(labels, z))(logits))
    else:
        import tensorflow as tf

        z = tf.Variable(logits)
        with tf.GradientTape() as tape:
            value = loss(labels, z)
        grad = tape.gradient(value, z).numpy()
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    target = (1 - smoothing) * np.eye(7)[labels] + smoothing / 7
    np.testing.assert_allclose(grad, (probs - target) / labels.size, atol=1e-6)
    assert np.isfinite(float(ops.convert_to_numpy(loss(labels, logits * 1e4))))


@pytest.mark.backend_neutral
def test_perplexity_ignores_smoothing_and_matches_exp_cross_entropy():
    logits = np.log(np.array([[[0.5, 0.25, 0.25]]], dtype="float32"))
    labels = np.array([[0]])
    ce, ppl = CrossEntropy(), Perplexity()
    ce.update_state(labels, logits)
    ppl.update_state(labels, logits)
    np.testing.assert_allclose(float(ce.result()), np.log(2), rtol=1e-6)
    np.testing.assert_allclose(float(ppl.result()), 2.0, rtol=1e-6)
    both = CrossEntropy(report_perplexity=True)
    both.update_state(labels, logits)
    result = both.result()
    assert sorted(result) == ["cross_entropy", "perplexity"]
    np.testing.assert_allclose(float(result["perplexity"]), 2.0, rtol=1e-6)
    assert CrossEntropy.from_config(both.get_config()).report_perplexity


def test_warmup_cosine_shape():
    schedule = warmup_cosine(1e-3, total_steps=100, warmup_steps=10, min_ratio=0.1)
    assert float(schedule(5)) == pytest.approx(5e-4)
    assert float(schedule(10)) == pytest.approx(1e-3)
    assert float(schedule(100)) == pytest.approx(1e-4)
    assert float(schedule(55)) == pytest.approx(1e-4 + 0.5 * 9e-4, rel=1e-3)
