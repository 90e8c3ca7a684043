import keras
import numpy as np
import pytest
from keras import ops

from kerasvq.layers import moe_losses
from kerasvq.layers.swiglu import SwiGLU
from kerasvq.layers.top_k_moe import TopKMoE
from helpers.layer_helpers import loss_and_gradients, outputs_before_and_after_a_later_change, round_trip

def _x(shape=(2, 7, 16), seed=0):
    return np.random.RandomState(seed).randn(*shape).astype("float32")


def _np(t):
    return np.asarray(ops.convert_to_numpy(t))


def _swiglu_numpy(x, gate_up, down):
    h = x @ gate_up
    gate, up = np.split(h, 2, axis=-1)
    return (gate / (1 + np.exp(-gate)) * up) @ down


def test_swiglu_single_matches_formula():
    keras.utils.set_random_seed(0)
    layer = SwiGLU(24)
    x = _x()
    y = _np(layer(x))
    assert y.shape == x.shape
    ref = _swiglu_numpy(x, _np(layer.gate_up_kernel), _np(layer.down_kernel))
    np.testing.assert_allclose(y, ref, atol=1e-5)


def test_swiglu_experts_run_every_expert_and_dispatched_mode_agrees():
    keras.utils.set_random_seed(0)
    layer = SwiGLU(24, num_experts=3)
    x = _x()
    y = _np(layer(x))
    assert y.shape == (2, 7, 3, 16)
    gate_up, down = _np(layer.gate_up_kernel), _np(layer.down_kernel)
    for e in range(3):
        np.testing.assert_allclose(y[:, :, e], _swiglu_numpy(x, gate_up[e], down[e]), atol=1e-5)
    per_expert = np.stack([x.reshape(-1, 16)] * 3)  # (E, C, D)
    yd = _np(layer(per_expert, dispatched=True))
    np.testing.assert_allclose(yd.transpose(1, 0, 2), y.reshape(-1, 3, 16), atol=1e-5)


def test_switch_balance_is_one_when_uniform_and_larger_when_skewed():
    probs = ops.full((8, 4), 0.25)
    indices = ops.convert_to_tensor(np.array([[0, 1], [2, 3]] * 4))
    assert float(moe_losses.switch_balance_loss(probs, indices, 4)) == pytest.approx(1.0)
    skewed_probs = ops.convert_to_tensor(np.tile([[0.7, 0.1, 0.1, 0.1]], (8, 1)).astype("float32"))
    skewed_idx = ops.convert_to_tensor(np.tile([[0, 1]], (8, 1)))
    assert float(moe_losses.switch_balance_loss(skewed_probs, skewed_idx, 4)) > 1.5


@pytest.mark.backend_neutral
def test_top_k_moe_dropless_equals_dense_reference_and_gates_sum_to_one():
    keras.utils.set_random_seed(0)
    x = _x()
    moe = TopKMoE(4, 2, 32, capacity_factor=None, eval_capacity_factor=None)
    y = _np(moe(x, training=True))
    assert y.shape == x.shape
    _, probs, idx, gates = moe.route(x.reshape(-1, 16))
    gates, idx = _np(gates), _np(idx)
    np.testing.assert_allclose(gates.sum(-1), 1.0, atol=1e-6)
    every = _np(moe.experts(x.reshape(-1, 16)))
    ref = (np.take_along_axis(every, idx[:, :, None], 1) * gates[:, :, None]).sum(1)
    np.testing.assert_allclose(y, ref.reshape(x.shape), atol=1e-5)
    assert float(moe.dropped_fraction) == 0.0
    np.testing.assert_allclose(_np(moe.expert_fraction).sum(), 1.0, atol=1e-6)


def test_top_k_moe_capacity_drops_overflow_and_reports_it():
    keras.utils.set_random_seed(0)
    moe = TopKMoE(4, 2, 32, capacity_factor=0.5)
    moe(_x(), training=True)
    # capacity = ceil(14·2·0.5/4) = 4 per expert → at most 16 of 28 assignments kept.
    assert float(moe.dropped_fraction) >= 12 / 28 - 1e-6


def test_top_k_moe_is_causal_at_inference():
    keras.utils.set_random_seed(0)
    moe = TopKMoE(4, 2, 32, capacity_factor=0.5)
    y1, y2 = outputs_before_and_after_a_later_change(moe, _x((2, 9, 16)), 5)
    np.testing.assert_allclose(y1[:, :5], y2[:, :5], atol=1e-6)


def test_top_k_moe_aux_loss_only_in_training():
    keras.utils.set_random_seed(0)
    moe = TopKMoE(4, 2, 32)
    x = _x()
    moe(x, training=False)
    assert len(moe.losses) == 0
    moe(x, training=True)
    assert len(moe.losses) == 1
    aux = float(moe.losses[0])
    assert aux == pytest.approx(float(moe.last_aux_loss), rel=1e-6)
    # Balance term is ≥ 1·0.01 (Cauchy–Schwarz lower bound is reached only when balanced).
    assert aux > 0.009


@pytest.mark.backend_neutral
def test_top_k_moe_every_expert_gets_router_gradient():
    keras.utils.set_random_seed(0)
    moe = TopKMoE(4, 2, 32, capacity_factor=None)
    x = _x((4, 16, 16))
    moe(x)
    grads = loss_and_gradients(moe, x, lambda y: ops.mean(ops.square(y)))
    router = [g for p, g in grads.items() if "router" in p][0]
    assert np.all(np.abs(router).sum(axis=0) > 0)
    experts = [g for p, g in grads.items() if "gate_up" in p][0]
    assert np.all(np.abs(experts).reshape(4, -1).sum(axis=1) > 0)


def test_top_k_moe_keras_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    before, after = round_trip(TopKMoE(4, 2, 32), _x(), tmp_path)
    np.testing.assert_allclose(before, after, atol=1e-6)


def test_swiglu_keras_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    before, after = round_trip(SwiGLU(24, num_experts=2), _x(), tmp_path)
    np.testing.assert_allclose(before, after, atol=1e-6)
