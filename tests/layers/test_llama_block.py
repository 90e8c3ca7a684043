import dataclasses

import keras
import numpy as np
import pytest
from keras import ops

from kerasvq.config.base import from_dict
from kerasvq.config.lm import LMConfig, ModelConfig
from kerasvq.common.errors import UserError
from kerasvq.layers import moe_losses
from kerasvq.layers.llama_decoder import LlamaDecoder
from kerasvq.metrics.moe import (
    expert_layers,
    forward_macs_per_token,
    parameter_counts,
    routing_snapshot,
)
from kerasvq.models.build import build_language_model
from kerasvq.training.routing_logger import RoutingLogger
from kerasvq.models.transformer_lm import TransformerLM

VOCAB, SEQ = 300, 16


def _np(t):
    return np.asarray(ops.convert_to_numpy(t))


def _model(ffn, aux_loss="faithful", aux_loss_weight=0.01):
    keras.utils.set_random_seed(0)
    model = TransformerLM(
        VOCAB, SEQ, d_model=32, num_layers=2, num_heads=4, d_ff=48, dropout=0.0,
        positions="rotary", block="llama", num_kv_heads=2, ffn=ffn,
        expert_options={"num_experts": 4, "top_k": 2, "expert_d_ff": 32, "aux_loss": aux_loss,
                        "aux_loss_weight": aux_loss_weight},
    )
    model.build((None, SEQ))
    return model


def _tokens(batch=2, seed=0):
    return np.random.RandomState(seed).randint(0, VOCAB, size=(batch, SEQ)).astype("int32")


@pytest.mark.parametrize("ffn", ["dense", "moe", pytest.param("moc", marks=pytest.mark.backend_neutral)])
def test_llama_model_is_causal(ffn):
    model = _model(ffn)
    x = _tokens()
    logits = _np(model(x))
    assert logits.shape == (2, SEQ, VOCAB) and logits.dtype == np.float32
    changed = x.copy()
    changed[:, 10:] = (changed[:, 10:] + 7) % VOCAB
    np.testing.assert_allclose(_np(model(changed))[:, :10], logits[:, :10], atol=1e-5)


@pytest.mark.parametrize("ffn", ["dense", "moc"])
def test_llama_kv_cache_matches_full_forward(ffn):
    model = _model(ffn)
    x = _tokens()
    logits = _np(model(x))
    cache = model.init_cache(batch_size=2, max_length=SEQ)
    assert cache[0].shape[-2] == 2  # GQA: the cache holds num_kv_heads heads
    first, cache = model.call_with_cache(x[:, :12], cache, 0)
    step, _ = model.call_with_cache(x[:, 12:13], cache, 12)
    np.testing.assert_allclose(_np(first), logits[:, :12], atol=1e-4)
    np.testing.assert_allclose(_np(step)[:, 0], logits[:, 12], atol=1e-4)


@pytest.mark.backend_neutral
def test_llama_block_has_no_attention_biases_and_uses_rms_norm():
    block = LlamaDecoder(num_heads=4, num_kv_heads=2, d_ff=48)
    block.build((None, None, 32))
    names = [w.path for w in block.weights]
    assert not any("bias" in n for n in names), names
    assert isinstance(block.attention_norm, keras.layers.RMSNormalization)
    assert block.attention_norm.epsilon == 1e-5
    assert block.attention.num_kv_heads == 2 and block.attention.rotary


@pytest.mark.backend_neutral
def test_faithful_aux_loss_is_averaged_over_layers():
    model = _model("moc", aux_loss_weight=0.01)
    model(_tokens(4), training=True)
    assert len(model.losses) == 2
    total = float(sum(float(l) for l in model.losses))
    lo, hi = moe_losses.faithful_moc_aux_bounds(4, 2, 0.01)
    assert lo - 1e-9 <= total <= hi
    assert total == pytest.approx(lo, rel=0.05)
    assert routing_snapshot(model)["aux_loss"] == pytest.approx(total, rel=1e-5)
    model(_tokens(4), training=False)
    assert len(model.losses) == 0


@pytest.mark.parametrize("ffn", ["moe", pytest.param("moc", marks=pytest.mark.backend_neutral)])
def test_fit_logs_router_state_separately(ffn, tmp_path):
    from kerasvq.training.losses import SparseCategoricalCrossentropyWithSmoothing
    from kerasvq.training.metrics import CrossEntropy, Perplexity

    model = _model(ffn, aux_loss="switch")
    model.compile(
        optimizer=keras.optimizers.AdamW(1e-3),
        loss=SparseCategoricalCrossentropyWithSmoothing(0.0),
        metrics=[CrossEntropy(), Perplexity()],
    )
    x = _tokens(8)
    history = model.fit(x, np.roll(x, -1, axis=1), batch_size=4, epochs=1, verbose=0,
                        callbacks=[RoutingLogger(tmp_path)])
    logs = {k: v[-1] for k, v in history.history.items()}
    snapshot = routing_snapshot(model)
    # Switch balance (≥ 1 per layer, averaged) plus the z-loss: at least 0.01.
    assert snapshot["aux_loss"] >= 0.0099
    # Keras's loss = main cross-entropy + the router losses, which the model logs apart.
    assert logs["loss"] == pytest.approx(logs["cross_entropy"] + logs["aux_loss"], rel=1e-4)
    assert logs["aux_loss"] >= 0.0099
    assert len(snapshot["expert_fraction"]) == 2
    np.testing.assert_allclose(np.sum(snapshot["expert_share_all_steps"], axis=1), 1.0, atol=1e-5)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "train"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"epoch/loss/main", "epoch/loss/aux", "epoch/perplexity",
            "epoch/experts/layer_1/expert_3"} <= tags


def test_moc_model_keras_round_trip(tmp_path):
    model = _model("moc")
    x = _tokens()
    before = _np(model(x))
    model.save(tmp_path / "moc.keras")
    loaded = keras.saving.load_model(tmp_path / "moc.keras")
    np.testing.assert_allclose(_np(loaded(x)), before, atol=1e-5)
    assert loaded.ffn == "moc" and len(expert_layers(loaded)) == 2


def test_parameter_counts_and_costs():
    dense, moe, moc = (parameter_counts(_model(f)) for f in ("dense", "moe", "moc"))
    assert dense["total"] == dense["active_per_token"]
    # Top-2 of 4 experts: half of the expert weights are idle for any one token.
    expert = 3 * 32 * 32
    assert moe["total"] - moe["active_per_token"] == 2 * 2 * expert
    assert moc["total"] == moc["active_per_token"] > moe["total"]
    ref = {f: forward_macs_per_token(768, 12, 12, 2048, 50257, 1024, ffn=f) for f in ("dense", "moe", "moc")}
    ratio = ref["moc"]["total"] / ref["dense"]["total"]
    assert 6.0 < ratio < 7.0


def _cfg(**model):
    base = {"model": {"block": "llama", "positions": "rotary", **model}}
    return from_dict(LMConfig, base, "cfg.json")


def test_config_builds_each_ffn_and_rejects_bad_combinations():
    for ffn in ("dense", "moe", "moc"):
        cfg = _cfg(ffn=ffn, d_model=32, num_heads=4, num_kv_heads=2, d_ff=48, num_layers=1,
                   expert_d_ff=32, num_experts=4)
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, vocab_size=VOCAB, seq_len=SEQ))
        model = build_language_model(cfg)
        assert model.ffn == ffn and model.block == "llama"
    with pytest.raises(UserError, match="model.top_k"):
        _cfg(ffn="moe", num_experts=4, top_k=5)
    with pytest.raises(UserError, match="num_kv_heads"):
        _cfg(num_heads=8, num_kv_heads=3)
    with pytest.raises(UserError, match="positions rotary"):
        from_dict(LMConfig, {"model": {"block": "llama"}}, "cfg.json")
    with pytest.raises(UserError, match="block"):
        from_dict(LMConfig, {"model": {"ffn": "moc"}}, "cfg.json")
    with pytest.raises(UserError, match="router_temperature"):
        _cfg(ffn="moc", router_temperature=0.0)
    assert ModelConfig().block == "gpt"
