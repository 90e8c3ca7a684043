import json
from pathlib import Path

import pytest

from kerasvq.config.base import apply_overrides
from kerasvq.config.lm import LMConfig, load_lm_config
from kerasvq.common.errors import UserError
from kerasvq.training.run import plan_steps


def write(tmp_path, data):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("name", ["v5-transformer", "v4-lstm", "v5-tuned", "v4-tuned", "v6-50m"])
def test_shipped_configs_load(name):
    cfg = load_lm_config(f"versions/{name}/config.json")
    assert cfg.name == name


def test_v5_fixed_values():
    cfg = load_lm_config("versions/v5-transformer/config.json")
    assert (cfg.data.seq_len, cfg.data.stride, cfg.data.vocab_size, cfg.data.max_docs) == (256, 128, 4000, 50000)
    assert (cfg.model.d_model, cfg.model.num_layers, cfg.model.num_heads, cfg.model.d_ff) == (256, 4, 8, 1024)
    t = cfg.train
    assert (t.batch_size, t.learning_rate, t.weight_decay, t.label_smoothing, t.clipnorm, t.epochs,
            t.early_stopping_patience, t.warmup_fraction) == (32, 1e-4, 0.01, 0.1, 1.0, 4, 2, 0.05)


def test_v6_50m_shape_and_parameter_count():
    """The count written in versions/v6-50m/README.md, from the model built on CPU."""
    from kerasvq.models.build import build_language_model

    cfg = load_lm_config("versions/v6-50m/config.json")
    assert (cfg.model.d_model, cfg.model.num_layers, cfg.model.num_heads, cfg.model.d_ff) == (512, 12, 8, 2048)
    assert (cfg.data.seq_len, cfg.data.vocab_size, cfg.data.tokenizer_version) == (512, 16384, None)
    assert cfg.train.dtype_policy == "mixed_bfloat16"
    assert build_language_model(cfg).count_params() == 46_218_240


def test_overrides_parse_json_values():
    data = apply_overrides({"train": {"epochs": 4}}, ["train.epochs=1", "model.positions=rotary"])
    assert data == {"train": {"epochs": 1}, "model": {"positions": "rotary"}}


@pytest.mark.parametrize(
    "data, message",
    [
        ({"model": {"d_model": 100, "num_heads": 8}}, "divisible"),
        ({"data": {"seq_len": 64, "stride": 128}}, "data.stride"),
        ({"train": {"epochs": "4"}}, "'train.epochs' must be int"),
        ({"train": {"epoch": 4}}, "unknown field 'train.epoch'"),
        ({"bogus": 1}, "unknown field 'bogus'"),
        ({"model": {"positions": "alibi"}}, "model.positions"),
        ({"data": {"vocab_size": 65537}}, "at most 65536 (token streams are uint16)"),
        ({"train": {"max_steps": 10, "steps_per_execution": 4}}, "'train.max_steps' (10) must be a multiple"),
    ],
)
def test_config_errors_are_one_line_and_name_the_field(tmp_path, data, message):
    path = write(tmp_path, data)
    with pytest.raises(UserError) as error:
        load_lm_config(path)
    assert message in str(error.value)
    assert str(path) in str(error.value)
    assert "\n" not in str(error.value)


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(UserError, match="file not found"):
        load_lm_config(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        load_lm_config(bad)


def test_plan_steps_counts_batches_in_sequences():
    cfg = LMConfig()
    cfg.data.seq_len, cfg.data.stride, cfg.train.batch_size, cfg.train.epochs = 8, 4, 2, 3
    steps = plan_steps(cfg, train_tokens=45)  # windows start at 0,4,...,36 → 10 windows
    assert steps["train_windows"] == 10
    assert steps["steps_per_epoch"] == 5
    assert steps["total_steps"] == 15
    assert steps["tokens_per_step"] == 16


def test_plan_steps_max_steps_cap_is_recorded():
    cfg = LMConfig()
    cfg.data.seq_len, cfg.data.stride, cfg.train.batch_size, cfg.train.max_steps = 8, 8, 1, 3
    steps = plan_steps(cfg, train_tokens=100)
    assert steps["capped_by_max_steps"] and steps["total_steps"] == 3 and steps["planned_steps"] == 48


def test_plan_steps_rejects_batch_counted_in_tokens():
    cfg = LMConfig()
    cfg.train.batch_size = 8192  # tokens, the old v5 mistake
    with pytest.raises(UserError, match="counts sequences, not tokens"):
        plan_steps(cfg, train_tokens=200_000)


def test_plan_steps_rejects_warmup_as_long_as_training():
    cfg = LMConfig()
    cfg.data.seq_len, cfg.data.stride, cfg.train.batch_size, cfg.train.epochs = 8, 8, 1, 1
    cfg.train.warmup_fraction = 0.9
    with pytest.raises(UserError, match="warmup"):
        plan_steps(cfg, train_tokens=18)  # 2 steps, warmup rounds to 2


def test_every_config_family_reads_yaml_as_well_as_json(tmp_path):
    import yaml

    v5 = Path(__file__).resolve().parents[2] / "versions" / "v5-transformer" / "config.json"
    (tmp_path / "v5.yaml").write_text(yaml.safe_dump(json.loads(v5.read_text())))
    from_yaml = load_lm_config(tmp_path / "v5.yaml", ["train.epochs=1"])
    from_json = load_lm_config(v5, ["train.epochs=1"])
    assert from_yaml == from_json and from_yaml.train.epochs == 1
