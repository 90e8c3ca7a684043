"""The plain Keras path cannot collapse silently: in-layer k-means and dead-code re-seeding,
the per-epoch usage monitor and its warning, and the health check with its CLI."""

import json
import warnings

import keras
import numpy as np
import pytest
from keras import ops

from kerasvq.cli import main
from kerasvq.common.errors import UserError
from kerasvq.layers.vector_quantizer import VectorQuantizer
from kerasvq.metrics.codebook import codebook_stats
from kerasvq.metrics.reconstruction import cosine
from kerasvq.metrics.vq_health import vqvae_health
from kerasvq.models.vqvae import VQVAE
from kerasvq.models.codebook_monitor import CodebookCollapseWarning
from helpers.layer_helpers import far_codes_vqvae

np_ = ops.convert_to_numpy


def clustered_unit_vectors(n, dim=384, centers=2000, noise=0.5, seed=0):
    """Unit vectors around `centers` random directions (sentence-embedding-like geometry)."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centers, dim)).astype("float32")
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    x = c[rng.integers(0, centers, n)] + noise / np.sqrt(dim) * rng.standard_normal((n, dim)).astype("float32")
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def blobs(n=2048, dim=8, centers=32, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centers, dim)).astype("float32") * 3
    return (c[rng.integers(0, centers, n)] + 0.3 * rng.standard_normal((n, dim))).astype("float32")


@pytest.mark.backend_neutral
def test_plain_fit_with_class_defaults_uses_every_head_and_reconstructs():
    keras.utils.set_random_seed(0)
    x = clustered_unit_vectors(28_000)
    train, held_out = x[:24_000], x[24_000:]
    model = VQVAE()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    with warnings.catch_warnings():
        warnings.simplefilter("error", CodebookCollapseWarning)
        history = model.fit(train, train, batch_size=512, epochs=6, verbose=0)
    stats = codebook_stats(model.encode(held_out), 256)
    usage = [h["usage"] for h in stats["per_head"]]
    got = cosine(held_out, model.decode(model.encode(held_out)))
    baseline = cosine(held_out, np.broadcast_to(train.mean(0), held_out.shape))
    print(f"plain fit: held-out usage per head {usage}, cosine {got:.3f} (mean vector {baseline:.3f})")
    assert min(usage) >= 0.9, usage
    assert got > baseline + 0.4, (got, baseline)
    # the monitor logged every head's usage per epoch, without a callback from the user
    assert all(len(history.history[f"codebook_usage/head{h}"]) == 6 for h in range(4))
    assert min(history.history[f"codebook_usage/head{h}"][-1] for h in range(4)) >= 0.9


@pytest.mark.backend_neutral
def test_in_layer_kmeans_fills_its_buffer_then_fits_the_data():
    x = blobs()
    vq = VectorQuantizer(num_heads=2, codebook_size=16, kmeans_rows=256, dead_code_threshold=0.0)
    vq.build(x.shape)
    random_book = np_(vq.codebook).copy()
    q, _ = vq(x[:128], training=True)  # half the buffer: input passes through, codes untouched
    np.testing.assert_allclose(np_(q), x[:128], atol=1e-6)
    assert float(np_(vq.initialized)) == 0.0
    np.testing.assert_array_equal(np_(vq.codebook), random_book)
    vq(x[128:256], training=True)  # the buffer is full: k-means runs in the step
    assert float(np_(vq.initialized)) == 1.0
    assert codebook_stats(np_(vq.get_codes(x)), 16)["min_usage"] >= 0.9
    fitted = np_(vq.codebook).copy()
    for i in range(2, 6):
        vq(x[i * 256:(i + 1) * 256], training=True)
    # afterwards only the EMA moves it (slightly): no second k-means
    assert np.abs(np_(vq.codebook) - fitted).max() < 1.0


@pytest.mark.backend_neutral
def test_explicit_initialization_is_kept_and_in_layer_reseeding_revives_far_codes():
    x = blobs(seed=1)
    vq = VectorQuantizer(num_heads=2, codebook_size=16, kmeans_rows=64)
    vq.build(x.shape)
    far = np.full((2, 16, 4), 100.0, "float32") + np.arange(16, dtype="float32")[None, :, None]
    vq.set_codes(far)  # explicit: the in-layer k-means must not replace it
    vq(x[:64], training=True)
    assert float(np_(vq.initialized)) == 1.0
    assert codebook_stats(np_(vq.get_codes(x)), 16)["mean_usage"] <= 2 / 16
    rng = np.random.default_rng(0)
    for _ in range(60):  # no callback: the layer re-seeds codes whose EMA count decayed
        vq(x[rng.integers(0, len(x), 128)], training=True)
    assert codebook_stats(np_(vq.get_codes(x)), 16)["min_usage"] >= 0.9
    off = VectorQuantizer(num_heads=2, codebook_size=16, dead_code_threshold=0.0)
    off.build(x.shape)
    off.set_codes(far)
    for _ in range(60):
        off(x[rng.integers(0, len(x), 128)], training=True)
    assert codebook_stats(np_(off.get_codes(x)), 16)["mean_usage"] <= 2 / 16


def collapsed_model(seed=0):
    """The old failure, in-layer measures off: every code starts far from the data."""
    keras.utils.set_random_seed(seed)
    x = blobs(1024, dim=16, centers=64, seed=seed)
    model = far_codes_vqvae(x, seed)
    return model, x


@pytest.mark.backend_neutral
def test_collapse_reproduction_warns_and_fails_the_health_check():
    model, x = collapsed_model()
    with pytest.warns(CodebookCollapseWarning, match=r"head0 .*remedy: keep the quantizer's kmeans_init"):
        history = model.fit(x, x, epochs=2, batch_size=64, verbose=0)
    assert history.history["codebook_usage/head0"][-1] <= 2 / 16
    report = vqvae_health(model, x, sample=500)
    assert not report["healthy"] and report["collapsed_heads"] == ["head0", "head1"]
    assert report["heads"][0]["max_share"] > 0.5 and "usage" in report["heads"][0]["reason"]


def test_health_cli_exit_codes_and_json(tmp_path, capsys):
    sick, x = collapsed_model()
    sick.fit(x, x, epochs=1, batch_size=64, verbose=0)
    sick.save(tmp_path / "sick.keras")
    np.save(tmp_path / "x.npy", x)
    keras.utils.set_random_seed(1)
    good = VQVAE(input_dim=16, hidden_dim=32, latent_dim=16, num_heads=2, codebook_size=16, data_variance=9.0)
    good.compile(optimizer=keras.optimizers.Adam(1e-3))
    good.fit(x, x, epochs=3, batch_size=64, verbose=0)
    good.save(tmp_path / "good.keras")

    argv = ["vqvae", "health", "--embeddings", str(tmp_path / "x.npy"), "--sample", "300"]
    assert main(argv + ["--model", str(tmp_path / "good.keras"), "--json", str(tmp_path / "good.json")]) == 0
    report = json.loads((tmp_path / "good.json").read_text())
    assert report["healthy"] and len(report["heads"]) == 2
    assert {"usage", "perplexity", "max_share", "zipf_alpha", "zipf_r2"} <= set(report["heads"][0])
    assert report["cosine"] > report["mean_vector_cosine"] and 0 <= report["recall_at_10"] <= 1
    assert main(argv + ["--model", str(tmp_path / "sick.keras")]) == 1
    sick_report = json.loads((tmp_path / "sick.keras.health.json").read_text())
    assert sick_report["collapsed_heads"] == ["head0", "head1"]
    out = capsys.readouterr().out
    assert "COLLAPSED: head0, head1" in out

    np.save(tmp_path / "wide.npy", np.zeros((10, 24), "float32"))
    assert main(["vqvae", "health", "--model", str(tmp_path / "good.keras"), "--embeddings", str(tmp_path / "wide.npy")]) == 2
    assert main(argv + ["--model", str(tmp_path / "missing.keras")]) == 2
    err = capsys.readouterr().err
    assert "expected embedding width 16, got 24" in err and "missing.keras: model not found" in err


def test_load_default_takes_the_newest_finished_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KERASVQ_HOME", str(tmp_path))
    with pytest.raises(UserError, match=r"no trained VQ-VAE; train one with 'kerasvq vqvae train --config "
                                        r"versions/vqvae-wiki/config.json'"):
        VQVAE.load_default()
    assert main(["vqvae", "health", "--embeddings", str(tmp_path / "x.npy")]) == 2
    assert "kerasvq vqvae train" in capsys.readouterr().err
    folder = tmp_path / "versions" / "vqvae-wiki" / "models"
    folder.mkdir(parents=True)
    for name, heads in (("old.keras", 2), ("new.keras", 4)):
        m = VQVAE(input_dim=16, hidden_dim=8, latent_dim=8, num_heads=heads, codebook_size=4)
        m.build()
        m.save(folder / name)
    (folder / ".vqvae.partial.keras").write_bytes(b"still being written")
    import os

    os.utime(folder / "old.keras", (1, 1))
    assert VQVAE.load_default().num_heads == 4


@pytest.mark.backend_neutral
def test_hvqvae_monitor_and_health_per_level_and_category(tmp_path):
    from kerasvq.metrics.vq_health import hvqvae_health
    from kerasvq.models import HierarchicalVQVAE

    rng = np.random.default_rng(0)
    x = blobs(1024, dim=6, centers=40) + 0.1 * rng.standard_normal((1024, 6)).astype("float32")
    levels = [{"name": "coarse", "dim": 4, "codebook_size": 8}, {"name": "fine", "dim": 4, "codebook_size": 16}]
    keras.utils.set_random_seed(0)
    model = HierarchicalVQVAE({"a": [0, 1, 2], "b": [3, 4, 5]}, 6, levels=levels,
                              encoder={"hidden_dims": [16], "output_dim": 8})
    model.build()
    model.set_normalization(x.mean(0), x.std(0))
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(x, epochs=3, batch_size=64, verbose=0)
    assert set(k for k in history.history if k.startswith("codebook_usage/")) == {
        "codebook_usage/coarse/a", "codebook_usage/coarse/b", "codebook_usage/fine/a", "codebook_usage/fine/b"}
    report = hvqvae_health(model, x, sample=300)
    assert [h["head"] for h in report["heads"]] == ["coarse/a", "coarse/b", "fine/a", "fine/b"]
    assert report["healthy"], report["collapsed_heads"]
    assert min(h["usage"] for h in report["heads"]) >= 0.5 and report["r2"] > 0.2
