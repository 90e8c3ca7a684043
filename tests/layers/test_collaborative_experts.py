import keras
import numpy as np
import pytest
from keras import ops

from kerasvq.layers import moe_losses
from kerasvq.layers.collaborative_experts import CollaborativeExperts
from helpers.layer_helpers import loss_and_gradients, outputs_before_and_after_a_later_change, round_trip

def _x(shape=(2, 7, 16), seed=0):
    return np.random.RandomState(seed).randn(*shape).astype("float32")


def _np(t):
    return np.asarray(ops.convert_to_numpy(t))


def _moc(**kwargs):
    keras.utils.set_random_seed(0)
    args = dict(num_experts=8, top_k=2, hidden_dim=32, num_heads=2)
    args.update(kwargs)
    return CollaborativeExperts(**args)


@pytest.mark.backend_neutral
def test_shapes_and_gates_sum_to_one_over_k():
    moc = _moc()
    x = _x()
    y, details = moc(x, training=True, return_details=True)
    assert tuple(y.shape) == x.shape
    assert tuple(details["gates"].shape) == (14, 2)
    assert details["gates"].dtype == "float32"
    np.testing.assert_allclose(_np(details["gates"]).sum(-1), 1.0, atol=1e-6)
    np.testing.assert_allclose(_np(details["fusion_weights"]).sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(_np(moc.expert_fraction).sum(), 1.0, atol=1e-6)


def test_gates_follow_the_selected_logits_with_temperature():
    moc = _moc(router_temperature=0.5)
    _, d = moc(_x(), return_details=True)
    logits, idx = _np(d["logits"]), _np(d["top_indices"])
    selected = np.take_along_axis(logits, idx, axis=1)
    assert np.all(selected[:, 0] >= selected[:, 1])
    assert np.all(selected[:, 1:2] >= np.sort(logits, axis=1)[:, -2:-1] - 1e-6)
    expected = np.exp(selected - selected.max(1, keepdims=True))
    np.testing.assert_allclose(_np(d["gates"]), expected / expected.sum(1, keepdims=True), atol=1e-5)


@pytest.mark.backend_neutral
def test_causal_changing_a_later_position_leaves_earlier_ones_untouched():
    y1, y2 = outputs_before_and_after_a_later_change(_moc(), _x((1, 9, 16)), 5)
    np.testing.assert_allclose(y1[:, :5], y2[:, :5], atol=1e-6)
    assert np.abs(y1[:, 5:] - y2[:, 5:]).max() > 1e-3


@pytest.mark.backend_neutral
def test_faithful_aux_loss_lies_in_its_closed_form_bounds_at_init():
    moc = _moc(aux_loss_weight=0.01)
    moc(_x((4, 16, 16)), training=True)
    lo, hi = moe_losses.faithful_moc_aux_bounds(8, 2, 0.01)
    assert lo == pytest.approx(-6.93e-5, rel=1e-3) and hi == pytest.approx(1.25e-5)
    aux = float(moc.losses[0])
    assert lo - 1e-9 <= aux <= hi
    # At init the fusion attention is near uniform and the router near balanced: aux ≈ lo.
    assert aux == pytest.approx(lo, rel=0.02)


def test_faithful_aux_reaches_both_bounds_on_extreme_inputs():
    uniform_attention = ops.full((10, 2, 2), 0.5)
    one_hot_usage = ops.convert_to_tensor(np.tile(np.eye(8)[0], (10, 1)).astype("float32"))
    lo, hi = moe_losses.faithful_moc_aux_bounds(8, 2, 1.0)
    uniform_usage = ops.full((10, 8), 1 / 8)
    assert float(moe_losses.faithful_moc_aux_loss(uniform_attention, uniform_usage, 8)) == (
        pytest.approx(lo, rel=1e-5)
    )
    peaked_attention = ops.convert_to_tensor(np.tile(np.eye(2), (10, 1, 1)).astype("float32"))
    assert float(moe_losses.faithful_moc_aux_loss(peaked_attention, one_hot_usage, 8)) == (
        pytest.approx(hi, rel=1e-5)
    )


def test_aux_loss_only_in_training_and_switch_variant_near_one_when_balanced():
    moc = _moc(aux_loss="switch", aux_loss_weight=1.0, router_z_loss_weight=0.0)
    x = _x((4, 16, 16))
    moc(x, training=False)
    assert len(moc.losses) == 0
    moc(x, training=True)
    assert len(moc.losses) == 1
    assert float(moc.losses[0]) == pytest.approx(1.0, abs=0.3)


@pytest.mark.backend_neutral
@pytest.mark.parametrize("aux_loss, include_aux", [("faithful", False), ("switch", True)])
def test_every_expert_receives_router_gradient(aux_loss, include_aux):
    # Without the aux loss, the gates alone reach every expert once each is someone's top-k.
    moc = _moc(aux_loss=aux_loss)
    x = _x((4, 16, 16))
    moc(x)
    grads = loss_and_gradients(
        moc, x, lambda y: ops.mean(ops.square(y - 1.0)), include_aux=include_aux
    )
    router_kernel = [g for p, g in grads.items() if p.endswith("router/kernel")][0]
    router_bias = [g for p, g in grads.items() if p.endswith("router/bias")][0]
    assert np.all(np.abs(router_kernel).sum(axis=0) > 0)
    assert np.all(np.abs(router_bias) > 0)
    experts = [g for p, g in grads.items() if "gate_up" in p][0]
    assert np.all(np.abs(experts).reshape(8, -1).sum(axis=1) > 0)


@pytest.mark.backend_neutral
def test_keras_round_trip(tmp_path):
    before, after = round_trip(_moc(aux_loss="switch", router_temperature=2.0), _x(), tmp_path)
    np.testing.assert_allclose(before, after, atol=1e-6)


def test_mixed_precision_keeps_router_and_gates_in_float32():
    moc = _moc(dtype="mixed_bfloat16")
    y, d = moc(_x(), training=True, return_details=True)
    assert y.dtype == "bfloat16"
    assert d["logits"].dtype == "float32" and d["gates"].dtype == "float32"
    assert np.isfinite(float(moc.losses[0]))
