"""HierarchicalVQVAE: layer/model mechanics, config, and a tiny real run on the demo table."""

import json
import shutil

import keras
import numpy as np
import pytest

from kerasvq.common.errors import UserError
from helpers.run_helpers import CrashAtEpoch
from helpers.vq_data import TINY_LEVELS, demo_data


def small_model(**kwargs):
    from kerasvq.models import HierarchicalVQVAE

    groups = {"a": [0, 2, 4, 6], "b": [1, 3, 5], "c": [7, 8, 9, 10, 11]}
    model = HierarchicalVQVAE(groups, 12, levels=TINY_LEVELS[:2],
                              encoder={"hidden_dims": [16], "output_dim": 8},
                              encoder_overrides={"c": {"hidden_dims": [12, 12], "batch_norm": True}}, **kwargs)
    model.build()
    return model


@pytest.mark.backend_neutral
def test_encoder_gathers_each_groups_columns():
    from kerasvq.layers import GroupedFeatureEncoder

    enc = GroupedFeatureEncoder({"x": [3, 0], "y": [1, 2]}, hidden_dims=[], output_dim=2,
                                overrides={"y": {"output_dim": 5}})
    x = np.arange(8, dtype="float32").reshape(2, 4)
    hx, hy = enc(x)
    assert tuple(hx.shape) == (2, 2) and tuple(hy.shape) == (2, 5)
    w = keras.ops.convert_to_numpy(enc.encoders[0].layers[-1].kernel)
    b = keras.ops.convert_to_numpy(enc.encoders[0].layers[-1].bias)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(hx), x[:, [3, 0]] @ w + b, rtol=1e-5)
    assert GroupedFeatureEncoder.from_config(enc.get_config()).output_dims == [2, 5]


@pytest.mark.backend_neutral
def test_codes_shapes_and_keras_round_trip(tmp_path):
    values, _ = demo_data(256)
    x = values[:, :12]
    model = small_model()
    model.set_normalization(x.mean(0), x.std(0))
    model.initialize_codebooks(x)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(x, epochs=1, batch_size=64, verbose=0)
    codes = model.encode(x)
    assert codes.shape == (256, 2, 3) and codes.dtype == np.int32
    assert codes[:, 0].max() < 16 and codes[:, 1].max() < 32
    assert model.decode_codes(codes).shape == model.decode_codes(codes, levels=1).shape == (256, 12)
    assert [e.shape for e in model.category_embeddings(x)] == [(256, 8)] * 3
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(loaded.encode(x), codes)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x[:16])),
                               keras.ops.convert_to_numpy(model(x[:16])), atol=1e-6)
    np.testing.assert_allclose(loaded.normalize(x), model.normalize(x), atol=1e-6)


@pytest.mark.backend_neutral
def test_bad_groups_and_inputs_name_the_problem():
    from kerasvq.models import HierarchicalVQVAE

    with pytest.raises(UserError, match=r"'b' has column index 12 out of range"):
        HierarchicalVQVAE({"a": [0, 1], "b": [2, 12]}, 12)
    with pytest.raises(UserError, match=r"column 1 is in category 'b' and in 'a'"):
        HierarchicalVQVAE({"a": [0, 1], "b": [1, 2]}, 3)
    with pytest.raises(UserError, match=r"cover 2 columns but there are 4 features; columns in no category: 2, 3"):
        HierarchicalVQVAE({"a": [0], "b": [1]}, 4)
    model = small_model()
    with pytest.raises(UserError, match=r"shape \(N, 12\), got \(3, 11\)"):
        model.encode(np.zeros((3, 11), "float32"))
    x = np.zeros((3, 12), "float32")
    x[2, 5] = np.nan
    with pytest.raises(UserError, match="row 2, column 5"):
        model.encode(x)
    with pytest.raises(UserError, match="levels must be in 1..2"):
        model.decode_codes(np.zeros((1, 2, 3), "int32"), levels=3)


def test_config_yaml_and_errors(tmp_path):
    from kerasvq.config.hvqvae import load_hvqvae_config

    cfg = load_hvqvae_config("versions/hvqvae-demo/config.yaml")
    assert [(l.name, l.dim, l.codebook_size) for l in cfg.model.levels] == [
        ("coarse", 32, 128), ("medium", 16, 256), ("fine", 8, 512)]
    assert cfg.model.commitment_cost == 0.45 and cfg.model.ema_decay == 0.99
    bad = tmp_path / "bad.yaml"
    bad.write_text("families:\n  overrides:\n    temporal: {hidden_dim: [4]}\n")
    with pytest.raises(UserError, match="unknown field 'families.overrides.temporal.hidden_dim'"):
        load_hvqvae_config(bad)
    bad.write_text("data: {category_mapping: file}\n")
    with pytest.raises(UserError, match="category_mapping_file' is not set"):
        load_hvqvae_config(bad)
    as_json = tmp_path / "c.json"
    as_json.write_text(json.dumps({"model": {"levels": [{"name": "only", "dim": 4, "codebook_size": "8"}]}}))
    with pytest.raises(UserError, match=r"field 'model.levels\[0\].codebook_size' must be int"):
        load_hvqvae_config(as_json)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A tiny real run on a 1200-sample demo table (72 features, 6 categories)."""
    from kerasvq.config.hvqvae import load_hvqvae_config
    from kerasvq.data.features import write_features
    from kerasvq.training.hvqvae_run import train_hvqvae

    home = tmp_path_factory.mktemp("hvq")
    values, registry = demo_data(1200)
    write_features(home / "demo.h5", values, registry)
    config = {
        "name": "hvq-tiny",
        "data": {"features": str(home / "demo.h5")},
        "families": {"default": {"hidden_dims": [64], "output_dim": 32}},
        "model": {"levels": TINY_LEVELS},
        "train": {"epochs": 12, "batch_size": 64, "learning_rate": 2e-3, "reset_every": 10,
                  "reset_max_unused_steps": 20},
    }
    path = home / "config.json"
    path.write_text(json.dumps(config))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KERASVQ_HOME", str(home))
        cfg = load_hvqvae_config(path)
        model, summary = train_hvqvae(cfg, verbose=0)
    return home, path, model, summary


def test_tiny_run_is_scored_at_equal_bits_keeps_usage_and_refines_by_level(tiny_run, monkeypatch):
    from kerasvq.config.hvqvae import load_hvqvae_config
    from kerasvq.training.hvqvae_run import evaluate_hvqvae

    home, path, _, summary = tiny_run
    monkeypatch.setenv("KERASVQ_HOME", str(home))
    results = evaluate_hvqvae(load_hvqvae_config(path))
    assert (home / "versions/hvq-tiny/results/evaluation.json").is_file()
    # At equal bits the model does not beat the baselines on this demo table (per-category
    # residual k-means is best in every category) nor on the breast-cancer table
    # (versions/hvqvae-breast-cancer/README.md), so the test asserts that every baseline is
    # scored and that the model reconstructs, not a win.
    for name, c in results["categories"].items():
        assert set(c["baselines"]) == {"residual_kmeans", "pca_scalar", "faiss_rq"}, name
        assert c["r2"] > 0.8 and all(0 < b["mse"] < 1 for b in c["baselines"].values()), (name, c)
    assert results["min_usage"] >= 0.8, results["usage"]
    assert results["orthogonality"] < 0.15
    by_level = list(results["informativeness"]["mse_by_levels"].values())
    assert by_level[0] > by_level[1] > by_level[2]


def test_resume_continues_the_same_run(tiny_run, tmp_path, monkeypatch):
    from kerasvq.config.hvqvae import load_hvqvae_config
    from kerasvq.training.hvqvae_run import train_hvqvae

    home, path, model, summary = tiny_run
    copy = tmp_path / "copy"
    shutil.copytree(home, copy)
    monkeypatch.setenv("KERASVQ_HOME", str(copy))
    config = json.loads(path.read_text())
    config["train"]["checkpoint_dir"] = str(copy / "versions/hvq-tiny/checkpoints")
    path = copy / "config.json"
    path.write_text(json.dumps(config))
    with pytest.raises(UserError, match="a run already exists; pass --resume"):
        train_hvqvae(load_hvqvae_config(path), verbose=0)
    with pytest.raises(UserError, match="category mapping differs"):
        train_hvqvae(load_hvqvae_config(path, ["data.category_mapping=auto", "data.num_groups=5"]),
                     resume=True, verbose=0)
    resumed, again = train_hvqvae(load_hvqvae_config(path, ["train.epochs=13", "data.category_mapping=checkpoint"]),
                                  resume=True, verbose=0)
    assert again["first_epoch"] == 13 and again["epochs_run"] == 1
    steps = -(-again["train_rows"] // 64)
    assert int(keras.ops.convert_to_numpy(resumed.optimizer.iterations)) == 13 * steps
    # the restored run starts where the first one ended: its loss continues the curve
    assert again["history"]["loss"][0] < 1.5 * summary["history"]["loss"][-1]
    assert len((copy / "versions/hvq-tiny/logs/history.csv").read_text().strip().splitlines()) == 1 + 13


def test_mapping_modes_registry_auto_file(tmp_path, monkeypatch):
    from kerasvq.config.hvqvae import load_hvqvae_config
    from kerasvq.data.feature_groups import groups_from_registry, save_groups
    from kerasvq.data.features import write_features
    from kerasvq.training.hvqvae_run import load_table, resolve_groups

    monkeypatch.setenv("KERASVQ_HOME", str(tmp_path))
    values, registry = demo_data(300)
    write_features(tmp_path / "d.h5", values, registry)
    truth = groups_from_registry(registry)
    save_groups(tmp_path / "g.json", truth, values.shape[1])
    base = [f"data.features={tmp_path / 'd.h5'}"]
    for sets, check in (
        ([], lambda g: g == truth),
        (["data.category_mapping=auto", "data.num_groups=4"], lambda g: len(g) == 4),
        (["data.category_mapping=file", f"data.category_mapping_file={tmp_path / 'g.json'}"], lambda g: g == truth),
    ):
        cfg = load_hvqvae_config("versions/hvqvae-demo/config.yaml", base + sets)
        table, train_idx, _ = load_table(cfg)
        groups = resolve_groups(cfg, table, train_idx)
        assert check(groups) and sorted(i for c in groups.values() for i in c) == list(range(values.shape[1]))
    cfg = load_hvqvae_config("versions/hvqvae-demo/config.yaml", base + ["data.category_mapping=checkpoint"])
    with pytest.raises(UserError, match="category mapping file not found"):
        resolve_groups(cfg, *load_table(cfg)[:2])
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_hvqvae_config(bad)


def test_killed_run_resumes_and_reproduces_the_uninterrupted_one(tmp_path, monkeypatch):
    from kerasvq.config.hvqvae import load_hvqvae_config
    from kerasvq.data.features import write_features
    from kerasvq.training.hvqvae_run import train_hvqvae

    monkeypatch.setenv("KERASVQ_HOME", str(tmp_path))
    values, registry = demo_data(400)
    write_features(tmp_path / "demo.h5", values, registry)
    config = {"data": {"features": str(tmp_path / "demo.h5")},
              "families": {"default": {"hidden_dims": [16], "output_dim": 16}},
              "model": {"levels": TINY_LEVELS[:2]},
              "train": {"epochs": 4, "batch_size": 64, "reset_every": 5, "reset_max_unused_steps": 5}}
    losses = {}
    for name, crash in (("whole", []), ("killed", [CrashAtEpoch(2)])):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"name": name, **config}))
        if crash:
            with pytest.raises(KeyboardInterrupt):
                train_hvqvae(load_hvqvae_config(path), verbose=0, extra_callbacks=crash)
        _, summary = train_hvqvae(load_hvqvae_config(path), verbose=0)  # no --resume needed
        history = json.loads((tmp_path / f"versions/{name}/logs/train_hvqvae.json").read_text())
        assert history["status"] == "finished" and summary["first_epoch"] == (3 if crash else 1)
        losses[name] = [e["loss"] for e in history["epochs"]]
        assert len((tmp_path / f"versions/{name}/logs/history.csv").read_text().splitlines()) == 1 + 4
    assert losses["killed"] == pytest.approx(losses["whole"], rel=1e-5)
