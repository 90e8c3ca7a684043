"""Held-out metrics of a `HierarchicalVQVAE`, next to classical quantizers at equal bits.

All errors are on normalized features (the training split's mean/std stored in the model).
- reconstruction: MSE over all test features from all levels, and per category MSE and R²
  (pooled: 1 − Σ squared error / Σ squared deviation from the test mean, over its columns);
- equal-bits baselines (`kerasvq.metrics.equal_bits`), per category on its normalized
  columns, fitted on the training split, each spending the model's Σ_l log2(K_l) bits per
  category: residual k-means with the model's codebook sizes (`residual_kmeans`, with its
  MSE by levels too), FAISS's beam-search residual quantizer (`faiss_rq`, when faiss is
  installed and the sizes are powers of two) and PCA with scalar-quantized coefficients
  (`pca_scalar`). (A PCA keeping as many real coefficients as there are tokens is not a
  comparison: it is lossless on a category of ≤ L columns.)
- usage: the share of each level's codes, per category, that the samples use (on all rows,
  train and test: a test split smaller than the finest codebook could not reach 100%; the
  test-only figure is reported too);
- orthogonality: the mean |cosine| between categories' embeddings, the embeddings' dimensions
  centered over the test samples (i.e. the mean absolute Pearson correlation between any
  dimension of category a's quantized embedding and any of category b's), over all pairs;
  `data_orthogonality` is the same figure of the normalized test columns themselves — how
  related the categories are in the data, which an embedding that reconstructs them cannot
  entirely remove;
- informativeness: the test MSE from each prefix of levels (coarse only, coarse + medium,
  ...); `coarse_share` is the part of the all-levels explained variance that the coarse
  tokens alone explain.

Example:
    >>> results = hvqvae_metrics(model, x_train, x_test)
    >>> results["orthogonality"], results["baselines"]["residual_kmeans"]
    (0.03, 0.21)
"""

from __future__ import annotations

import itertools

import numpy as np

from kerasvq.metrics.codebook import codebook_stats
from kerasvq.metrics.equal_bits import category_bits, faiss_residual, pca_scalar, residual_kmeans
from kerasvq.metrics.reconstruction import mse


def r2(x, x_hat) -> float:
    total = float(np.sum((x - x.mean(axis=0)) ** 2))
    return 1.0 - float(np.sum((x - x_hat) ** 2)) / max(total, 1e-12)


def mean_abs_cross_correlation(parts) -> float:
    """Mean |Pearson correlation| between the dimensions of every pair of (N, d_i) arrays."""
    unit = []
    for p in parts:
        c = np.asarray(p, np.float64) - np.mean(p, axis=0)
        unit.append(c / np.maximum(np.linalg.norm(c, axis=0), 1e-12))
    return float(np.mean([np.abs(a.T @ b).mean() for a, b in itertools.combinations(unit, 2)]))


def equal_bits_baselines(train, test, sizes, seed: int = 0) -> dict:
    """{baseline: {"mse", "r2", ...}} of one category's normalized (train, test) columns."""
    rq, prefixes = residual_kmeans(train, test, sizes, seed=seed)
    pca, axis_bits = pca_scalar(train, test, category_bits(sizes), seed=seed)
    out = {"residual_kmeans": {"mse": mse(test, rq), "r2": r2(test, rq),
                               "mse_by_levels": [mse(test, p) for p in prefixes]},
           "pca_scalar": {"mse": mse(test, pca), "r2": r2(test, pca), "axis_bits": axis_bits}}
    faiss_hat = faiss_residual(train, test, sizes)
    if faiss_hat is not None:
        out["faiss_rq"] = {"mse": mse(test, faiss_hat), "r2": r2(test, faiss_hat)}
    return out


def hvqvae_metrics(model, x_train, x_test, seed: int = 0) -> dict:
    """Raw train/test feature matrices → the results dictionary described above."""
    groups, levels = model.groups, model.levels
    sizes = [level["codebook_size"] for level in levels]
    train_n, test_n = model.normalize(x_train), model.normalize(x_test)
    codes_test, codes_train = model.encode(x_test), model.encode(x_train)
    prefix = {k: model.decode_codes(codes_test, levels=k) for k in range(1, len(levels) + 1)}
    x_hat = prefix[len(levels)]
    categories = {}
    for c, (name, cols) in enumerate(groups.items()):
        categories[name] = {
            "columns": len(cols),
            "mse": mse(test_n[:, cols], x_hat[:, cols]),
            "r2": r2(test_n[:, cols], x_hat[:, cols]),
            "coarse_mse": mse(test_n[:, cols], prefix[1][:, cols]),
            "baselines": equal_bits_baselines(train_n[:, cols], test_n[:, cols], sizes, seed + c),
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
    weights = {name: c["columns"] / test_n.shape[1] for name, c in categories.items()}
    kinds = [k for k in next(iter(categories.values()))["baselines"]]
    baselines = {k: sum(c["baselines"][k]["mse"] * weights[n] for n, c in categories.items()) for k in kinds}
    rq_levels = [sum(c["baselines"]["residual_kmeans"]["mse_by_levels"][l] * weights[n]
                     for n, c in categories.items()) for l in range(len(levels))]
    return {
        "train_rows": int(len(x_train)),
        "test_rows": int(len(x_test)),
        "bits_per_category": category_bits(sizes),
        "bits_per_row": category_bits(sizes) * len(groups),
        "reconstruction_mse": full,
        "baselines": baselines,
        "min_usage": min(u["usage"] for per in usage.values() for u in per.values()),
        "orthogonality": mean_abs_cross_correlation(model.category_embeddings(x_test)),
        "data_orthogonality": mean_abs_cross_correlation([test_n[:, cols] for cols in groups.values()]),
        "informativeness": {
            "mse_by_levels": prefix_mse,
            "residual_kmeans_mse_by_levels": dict(zip(prefix_mse, rq_levels)),
            "coarse_mse": coarse,
            "all_levels_mse": full,
            "coarse_share": (variance - coarse) / max(variance - full, 1e-12),
        },
        "categories": categories,
        "usage": usage,
    }


_BASELINE_LABELS = {"residual_kmeans": "RQ k-means", "faiss_rq": "FAISS RQ", "pca_scalar": "PCA+SQ"}


def format_markdown(results: dict) -> str:
    """Markdown: per category the model's MSE next to each equal-bits baseline and the
    category's lowest usage over levels, then the overall row and the summary numbers."""
    kinds = list(results["baselines"])
    head = ["category", "cols", "model MSE", *(f"{_BASELINE_LABELS.get(k, k)} MSE" for k in kinds), "model R²",
            "min usage"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, c in results["categories"].items():
        use = min(per[name]["usage"] for per in results["usage"].values())
        cells = [name, str(c["columns"]), f"{c['mse']:.4f}", *(f"{c['baselines'][k]['mse']:.4f}" for k in kinds),
                 f"{c['r2']:.3f}", f"{use:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    cells = ["**all**", str(sum(c["columns"] for c in results["categories"].values())),
             f"**{results['reconstruction_mse']:.4f}**", *(f"{results['baselines'][k]:.4f}" for k in kinds), "",
             f"{results['min_usage']:.3f}"]
    lines.append("| " + " | ".join(cells) + " |")
    info = results["informativeness"]
    usage_by_level = ", ".join(f"{level} {min(u['usage'] for u in per.values()):.3f}"
                               for level, per in results["usage"].items())
    lines += [
        "",
        f"{results['bits_per_category']:g} bits per category ({results['bits_per_row']:g} per row) for every column "
        f"above; {results['train_rows']} train / {results['test_rows']} test rows.",
        f"min usage by level {usage_by_level}; orthogonality {results['orthogonality']:.3f} "
        f"(the data's own columns: {results['data_orthogonality']:.3f}).",
        "MSE by levels " + ", ".join(f"{k} {v:.4f}" for k, v in info["mse_by_levels"].items())
        + " (RQ k-means " + ", ".join(f"{v:.4f}" for v in info["residual_kmeans_mse_by_levels"].values()) + ")"
        + f"; coarse explains {info['coarse_share']:.0%} of what all levels explain.",
    ]
    return "\n".join(lines)
