import numpy as np
import pytest
import keras
from keras import ops

from kerasvq.common.errors import UserError
from kerasvq.generation.sampling import (
    SamplingConfig,
    apply_repetition_penalty,
    apply_top_k,
    apply_top_p,
    process_logits,
    sample_next,
    token_presence,
)


def _kept(logits):
    return ops.convert_to_numpy(logits) > -1e29


@pytest.mark.backend_neutral
def test_top_k_keeps_the_k_largest():
    logits = np.array([[0.1, 3.0, -1.0, 2.0, 0.5], [5.0, 4.0, 3.0, 2.0, 1.0]], "float32")
    kept = _kept(apply_top_k(ops.convert_to_tensor(logits), 2))
    np.testing.assert_array_equal(kept, [[0, 1, 0, 1, 0], [1, 1, 0, 0, 0]])
    assert _kept(apply_top_k(ops.convert_to_tensor(logits), 99)).all()


@pytest.mark.backend_neutral
def test_top_p_keeps_the_smallest_nucleus_reaching_p():
    probs = np.array([[0.5, 0.05, 0.3, 0.15], [0.97, 0.01, 0.01, 0.01]], "float32")
    logits = ops.convert_to_tensor(np.log(probs))
    # Row 0: 0.5 < 0.7, 0.5 + 0.3 = 0.8 ≥ 0.7 → {0, 2}. Row 1: the top token alone.
    np.testing.assert_array_equal(_kept(apply_top_p(logits, 0.7)), [[1, 0, 1, 0], [1, 0, 0, 0]])
    # p = 0.81 needs the third token of row 0.
    np.testing.assert_array_equal(_kept(apply_top_p(logits, 0.81))[0], [1, 0, 1, 1])
    assert _kept(apply_top_p(logits, 1.0)).all()


@pytest.mark.backend_neutral
def test_filtered_distribution_renormalises_over_the_kept_set():
    probs = np.array([[0.5, 0.05, 0.3, 0.15]], "float32")
    out = ops.softmax(apply_top_p(ops.convert_to_tensor(np.log(probs)), 0.7), axis=-1)
    np.testing.assert_allclose(ops.convert_to_numpy(out), [[0.625, 0, 0.375, 0]], atol=1e-6)


def test_kept_sets_match_keras_hub():
    samplers = pytest.importorskip("keras_hub").samplers
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(16, 50)).astype("float32") * 3
    probs = ops.softmax(ops.convert_to_tensor(logits), axis=-1)
    for p in (0.3, 0.9):
        hub = samplers.TopPSampler(p=p, seed=0)
        hub_kept = np.zeros_like(logits, bool)
        for _ in range(50):
            hub_kept[np.arange(16), ops.convert_to_numpy(hub.get_next_token(probs))] = True
        ours = _kept(apply_top_p(ops.convert_to_tensor(logits), p))
        assert not (hub_kept & ~ours).any()  # keras-hub never draws a token we filter
    hub = samplers.TopKSampler(k=3, seed=0)
    hub_kept = np.zeros_like(logits, bool)
    for _ in range(150):
        hub_kept[np.arange(16), ops.convert_to_numpy(hub.get_next_token(probs))] = True
    np.testing.assert_array_equal(hub_kept, _kept(apply_top_k(ops.convert_to_tensor(logits), 3)))


@pytest.mark.backend_neutral
def test_repetition_penalty_lowers_seen_tokens_both_signs():
    logits = ops.convert_to_tensor(np.array([[2.0, -2.0, 1.0]], "float32"))
    presence = token_presence(ops.convert_to_tensor([[0, 1, 1]]), 3)
    out = ops.convert_to_numpy(apply_repetition_penalty(logits, presence, 2.0))
    np.testing.assert_allclose(out, [[1.0, -4.0, 1.0]])


@pytest.mark.backend_neutral
def test_token_presence_respects_mask():
    pres = token_presence(ops.convert_to_tensor([[3, 1, 2]]), 5, mask=ops.convert_to_tensor([[True, True, False]]))
    np.testing.assert_array_equal(ops.convert_to_numpy(pres), [[0, 1, 0, 1, 0]])


@pytest.mark.backend_neutral
def test_greedy_and_seeded_sampling():
    logits = ops.convert_to_tensor(np.array([[0.0, 5.0, 1.0], [3.0, 0.0, 0.0]], "float32"))
    np.testing.assert_array_equal(ops.convert_to_numpy(sample_next(logits, SamplingConfig(greedy=True))), [1, 0])
    cfg = SamplingConfig(temperature=2.0, top_k=2, seed=7)
    a = [ops.convert_to_numpy(sample_next(logits, cfg, keras.random.SeedGenerator(7))) for _ in range(3)]
    b = [ops.convert_to_numpy(sample_next(logits, cfg, keras.random.SeedGenerator(7))) for _ in range(3)]
    np.testing.assert_array_equal(a, b)
    draws = np.stack([ops.convert_to_numpy(sample_next(logits, SamplingConfig(top_k=1), keras.random.SeedGenerator(1))) for _ in range(20)])
    assert (draws == [1, 0]).all()


@pytest.mark.backend_neutral
def test_process_logits_greedy_skips_filters():
    logits = ops.convert_to_tensor(np.array([[1.0, 2.0, 3.0]], "float32"))
    out = process_logits(logits, SamplingConfig(greedy=True, top_k=1, temperature=0.5))
    np.testing.assert_allclose(ops.convert_to_numpy(out), [[1.0, 2.0, 3.0]])


@pytest.mark.parametrize("field,value", [("temperature", 0.0), ("top_k", 0), ("top_p", 1.5), ("repetition_penalty", 0.5), ("max_new_tokens", 0)])
def test_config_rejects_bad_values(field, value):
    with pytest.raises(UserError, match=field):
        SamplingConfig(**{field: value}).validate()
