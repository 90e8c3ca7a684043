"""Held-out metrics of a `HierarchicalVQVAE`, next to a per-category PCA baseline.

All errors are on normalized features (the training split's mean/std stored in the model).
- reconstruction: MSE over all test features from all levels, and per category MSE and R²
  (pooled: 1 − Σ squared error / Σ squared deviation from the test mean, over its columns);
- usage: the share of each level's codes, per category, that the samples use (on all rows,
  train and test: a test split smaller than the finest codebook could not reach 100%; the
  test-only figure is reported too);
- orthogonality: the mean |cosine| between categories' embeddings, the embeddings' dimensions
  centered over the test samples (i.e. the mean absolute Pearson correlation between any
  dimension of category a's quantized embedding and any of category b's), over all pairs;
- informativeness: the test MSE from each prefix of levels (coarse only, coarse + medium,
  ...); `coarse_share` is the part of the all-levels explained variance that the coarse
  tokens alone explain;
- PCA baseline: per category, a PCA fitted on the training split keeping as many components
  as the category has tokens (one per level), i.e. the same number of coefficients — real
  numbers instead of token indices.

Example:
    >>> results = hvqvae_metrics(model, x_train, x_test)
    >>> results["orthogonality"], results["categories"]["temporal"]["r2"]
    (0.03, 0.94)
"""

from __future__ import annotations

import itertools

import numpy as np

from kerasvq.metrics.codebook import codebook_stats
from kerasvq.metrics.reconstruction import mse


def r2(x, x_hat) -> float:
    total = float(np.sum((x - x.mean(axis=0)) ** 2))
    return 1.0 - float(np.sum((x - x_hat) ** 2)) / max(total, 1e-12)


def pca_reconstruction(train, test, components: int) -> np.ndarray:
    """`test` projected on the top `components` principal directions of `train`, and back."""
    mean = train.mean(axis=0)
    _, _, vt = np.linalg.svd(train - mean, full_matrices=False)
    basis = vt[:components]
    return (test - mean) @ basis.T @ basis + mean


def mean_abs_cross_correlation(parts) -> float:
    """Mean |Pearson correlation| between the dimensions of every pair of (N, d_i) arrays."""
    unit = []
    for p in parts:
        c = np.asarray(p, np.float64) - np.mean(p, axis=0)
        unit.append(c / np.maximum(np.linalg.norm(c, axis=0), 1e-12))
    return float(np.mean([np.abs(a.T @ b).mean() for a, b in itertools.combinations(unit, 2)]))


def hvqvae_metrics(model, x_train, x_test) -> dict:
    """Raw train/test feature matrices → the results dictionary described above."""
    groups, levels = model.groups, model.levels
    train_n, test_n = model.normalize(x_train), model.normalize(x_test)
    codes_test, codes_train = model.encode(x_test), model.encode(x_train)
    prefix = {k: model.decode_codes(codes_test, levels=k) for k in range(1, len(levels) + 1)}
    x_hat = prefix[len(levels)]
    categories = {}
    for c, (name, cols) in enumerate(groups.items()):
        baseline = pca_reconstruction(train_n[:, cols], test_n[:, cols], len(levels))
        categories[name] = {
            "columns": len(cols),
            "mse": mse(test_n[:, cols], x_hat[:, cols]),
            "r2": r2(test_n[:, cols], x_hat[:, cols]),
            "pca_mse": mse(test_n[:, cols], baseline),
            "pca_r2": r2(test_n[:, cols], baseline),
            "coarse_mse": mse(test_n[:, cols], prefix[1][:, cols]),
        }
    all_codes = np.concatenate([codes_train, codes_test])
    usage = {}
    for l, level in enumerate(levels):
        stats = codebook_stats(all_codes[:, l], level["codebook_size"])
        test_stats = codebook_stats(codes_test[:, l], level["codebook_size"])
        usage[level["name"]] = {
            name: {"usage": s["usage"], "test_usage": t["usage"], "perplexity": s["perplexity"],
                   "max_share": s["max_share"]}
            for name, s, t in zip(groups, stats["per_head"], test_stats["per_head"])
        }
    variance = float(np.mean((test_n - test_n.mean(axis=0)) ** 2))
    prefix_mse = {levels[k - 1]["name"]: mse(test_n, prefix[k]) for k in prefix}
    coarse, full = prefix_mse[levels[0]["name"]], prefix_mse[levels[-1]["name"]]
    pca_mse = sum(c["pca_mse"] * c["columns"] for c in categories.values()) / test_n.shape[1]
    return {
        "train_rows": int(len(x_train)),
        "test_rows": int(len(x_test)),
        "reconstruction_mse": full,
        "pca_mse": pca_mse,
        "min_usage": min(u["usage"] for per in usage.values() for u in per.values()),
        "orthogonality": mean_abs_cross_correlation(model.category_embeddings(x_test)),
        "informativeness": {
            "mse_by_levels": prefix_mse,
            "coarse_mse": coarse,
            "all_levels_mse": full,
            "coarse_share": (variance - coarse) / max(variance - full, 1e-12),
        },
        "categories": categories,
        "usage": usage,
    }


def format_markdown(results: dict) -> str:
    """A short markdown table: per category model vs PCA, then the summary numbers."""
    lines = ["| category | MSE | R² | PCA MSE | PCA R² | min usage |", "|---|---|---|---|---|---|"]
    for name, c in results["categories"].items():
        use = min(per[name]["usage"] for per in results["usage"].values())
        lines.append(f"| {name} | {c['mse']:.4f} | {c['r2']:.3f} | {c['pca_mse']:.4f} | {c['pca_r2']:.3f} | {use:.3f} |")
    info = results["informativeness"]
    lines += [
        "",
        f"reconstruction MSE {results['reconstruction_mse']:.4f} (PCA {results['pca_mse']:.4f}); "
        f"min usage {results['min_usage']:.3f}; orthogonality {results['orthogonality']:.3f}; "
        "MSE by levels " + ", ".join(f"{k} {v:.4f}" for k, v in info["mse_by_levels"].items())
        + f" (coarse explains {info['coarse_share']:.0%} of what all levels explain)",
    ]
    return "\n".join(lines)
