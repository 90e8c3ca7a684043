"""Equal-bits baselines and codebook sizing on the real breast-cancer table scikit-learn ships."""

import json
import math
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def categories():
    """{measurement: (train, test)} normalized columns of three categories, with the split the
    hierarchical VQ-VAE's runs use (test_fraction 0.2, seed 1337: 455 / 114 rows)."""
    from kerasvq.data.embeddings import split_indices
    from kerasvq.data.feature_groups import groups_from_registry
    from kerasvq.data.features import fit_normalization, normalize
    from kerasvq.data.sklearn_tables import sklearn_table

    values, registry = sklearn_table("breast_cancer")
    train, test = split_indices(len(values), 0.2, 1337)
    mean, std = fit_normalization(values[train])
    x = normalize(values, mean, std)
    groups = groups_from_registry(registry)
    return {name: (x[train][:, groups[name]], x[test][:, groups[name]]) for name in ("radius", "texture", "symmetry")}


def err(a, b):
    return float(np.mean((a - b) ** 2))


def test_bits_are_counted_per_level():
    from kerasvq.metrics.equal_bits import category_bits

    assert category_bits([16, 16, 16]) == category_bits([8, 16, 32]) == 12.0
    assert math.isclose(category_bits([3]), math.log2(3))


def test_residual_kmeans_refines_by_level_and_beats_one_level(categories):
    from kerasvq.metrics.equal_bits import residual_kmeans

    for name, (train, test) in categories.items():
        x_hat, prefixes = residual_kmeans(train, test, [16, 16, 16])
        by_level = [err(test, p) for p in prefixes]
        assert by_level[0] > by_level[1] > by_level[2], (name, by_level)
        np.testing.assert_allclose(x_hat, prefixes[-1])
        # on the training rows the same quantizer is much closer (455 rows, 4096 code triples)
        _, on_train = residual_kmeans(train, train, [16, 16, 16])
        assert err(train, on_train[-1]) < by_level[-1]


def test_pca_scalar_spends_the_bits_and_is_not_lossless(categories):
    from kerasvq.metrics.equal_bits import pca_scalar

    for name, (train, test) in categories.items():
        _, _, vt = np.linalg.svd(train - train.mean(0), full_matrices=False)
        three_reals = (test - train.mean(0)) @ vt.T @ vt + train.mean(0)
        assert err(test, three_reals) < 1e-10  # the old "as many coefficients as tokens" baseline
        x6, bits6 = pca_scalar(train, test, 6.0)
        x12, bits12 = pca_scalar(train, test, 12.9)
        assert sum(bits6) == 6 and sum(bits12) == 12, (bits6, bits12)
        assert bits12[0] >= bits12[-1] and max(bits12) <= math.floor(math.log2(len(train)))
        assert err(test, x6) > err(test, x12) > 1e-4, (name, err(test, x6), err(test, x12))


def test_faiss_rq_at_the_same_bits(categories):
    pytest.importorskip("faiss")
    from kerasvq.metrics.equal_bits import faiss_residual, residual_kmeans

    train, test = categories["texture"]
    assert faiss_residual(train, test, [16, 24]) is None  # 24 codes are not a whole number of bits
    x_hat = faiss_residual(train, test, [16, 16, 16])
    assert x_hat.shape == test.shape
    one_level = faiss_residual(train, test, [16])
    assert err(test, x_hat) < err(test, one_level)
    assert err(test, x_hat) < err(test, residual_kmeans(train, test, [16])[0])


def test_oversized_levels_warn_one_line_each():
    from kerasvq.config.hvqvae import HVQModelConfig, load_hvqvae_config

    lines = HVQModelConfig().oversized_levels(455)  # the demo's 128/256/512 codes on 455 rows
    assert len(lines) == 1 and "level 'fine' has 512 codes" in lines[0] and "455 rows" in lines[0]
    assert "\n" not in lines[0] and "89%" in lines[0]
    assert HVQModelConfig().oversized_levels(3200) == []
    cfg = load_hvqvae_config("versions/hvqvae-breast-cancer/config.yaml")
    assert cfg.model.oversized_levels(455) == []
    assert all(level.codebook_size * 10 <= 455 for level in cfg.model.levels)


def test_real_table_run_warns_on_sizing_and_evaluates_at_equal_bits(tmp_path, monkeypatch, capsys):
    """One epoch on the real table, the finest level deliberately larger than the 455 rows."""
    from kerasvq.cli import main
    from kerasvq.config.hvqvae import load_hvqvae_config
    from kerasvq.metrics.hvqvae import format_markdown
    from kerasvq.training.hvqvae_run import evaluate_hvqvae, train_hvqvae

    monkeypatch.setenv("KERASVQ_HOME", str(tmp_path))
    table = tmp_path / "bc.h5"
    assert main(["features", "sklearn", "breast_cancer", "--out", str(table)]) == 0
    config = {"name": "bc-tiny", "data": {"features": str(table)},
              "families": {"default": {"hidden_dims": [8], "output_dim": 8}},
              "model": {"levels": [{"name": "coarse", "dim": 4, "codebook_size": 8},
                                   {"name": "fine", "dim": 4, "codebook_size": 512}]},
              "train": {"epochs": 1, "batch_size": 128}}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    cfg = load_hvqvae_config(path)
    with pytest.warns(UserWarning, match=r"bc-tiny: level 'fine' has 512 codes but the training split has only 455"):
        train_hvqvae(cfg, verbose=0)
    results = evaluate_hvqvae(cfg)
    assert results["bits_per_category"] == 12.0 and results["bits_per_row"] == 120.0
    assert len(results["categories"]) == 10 and results["train_rows"] == 455
    assert results["usage"]["fine"]["radius"]["test_usage"] <= 114 / 512
    assert 0.2 < results["data_orthogonality"] < 0.6  # the measurements are correlated in the data
    for c in results["categories"].values():
        assert {"residual_kmeans", "pca_scalar"} <= set(c["baselines"])
        assert c["baselines"]["pca_scalar"]["mse"] > 1e-4 and sum(c["baselines"]["pca_scalar"]["axis_bits"]) == 12
    weighted = np.mean([c["baselines"]["residual_kmeans"]["mse"] for c in results["categories"].values()])
    assert math.isclose(results["baselines"]["residual_kmeans"], weighted, rel_tol=1e-6)
    table_text = format_markdown(results)
    assert "| radius | 3 |" in table_text and "RQ k-means MSE" in table_text and "12 bits per category" in table_text
