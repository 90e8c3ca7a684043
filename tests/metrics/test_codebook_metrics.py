import numpy as np
import pytest

from kerasvq.layers.kmeans import kmeans
from kerasvq.metrics.codebook import code_counts, codebook_stats, zipf_fit
from kerasvq.metrics.reconstruction import neighbour_recall, reconstruction_stats


def test_uniform_codes_are_perfectly_balanced():
    codes = np.stack([np.arange(1024) % 256, (np.arange(1024) * 7) % 256], axis=1)
    stats = codebook_stats(codes, 256)
    assert stats["min_usage"] == 1.0
    assert stats["max_share"] == pytest.approx(1 / 256)
    assert stats["mean_perplexity"] == pytest.approx(256, rel=1e-6)
    assert stats["min_normalized_entropy"] == pytest.approx(1.0)


def test_collapsed_codes_are_flagged():
    codes = np.zeros((1000, 4), dtype=np.uint8)
    codes[:5, 0] = [1, 2, 3, 4, 5]
    stats = codebook_stats(codes, 256)
    assert stats["min_usage"] == 1 / 256 and stats["max_share"] == 1.0
    assert stats["per_head"][0]["used_codes"] == 6
    assert code_counts(codes, 256).shape == (4, 256)


def test_zipf_fit_recovers_exponent():
    counts = np.round(1e6 * np.arange(1, 257, dtype=float) ** -1.3)
    alpha, r2 = zipf_fit(counts)
    assert alpha == pytest.approx(1.3, abs=0.01) and r2 > 0.999


def test_reconstruction_metrics_mean_what_they_say():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 32)).astype("float32")
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    zero = reconstruction_stats(x, np.zeros_like(x) + 1e-9, num_queries=50)
    assert zero["relative_error"] == pytest.approx(1.0, abs=1e-3)
    assert zero["mse"] == pytest.approx(1 / 32, rel=1e-3)  # the "excellent" MSE of nothing
    perfect = reconstruction_stats(x, x, num_queries=50)
    assert perfect["cosine"] == pytest.approx(1.0) and perfect["recall_at_10"] == 1.0
    assert neighbour_recall(x, rng.standard_normal(x.shape), num_queries=50) < 0.2


def test_kmeans_finds_separated_clusters_and_fills_every_code():
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((8, 4)) * 10
    x = (centers[rng.integers(0, 8, 800)] + 0.1 * rng.standard_normal((800, 4))).astype("float32")
    found = kmeans(x, 8, iterations=10)
    assert np.max(np.min(((centers[:, None] - found[None]) ** 2).sum(-1), axis=1)) < 0.1
    tiny = kmeans(x[:5], 16)
    assert len(np.unique(tiny.round(6), axis=0)) == 16
    sphere = kmeans(x, 4, spherical=True)
    np.testing.assert_allclose(np.linalg.norm(sphere, axis=1), 1.0, rtol=1e-5)
