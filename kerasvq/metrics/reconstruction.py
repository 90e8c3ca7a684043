"""Reconstruction quality that means something for unit-length sentence embeddings.

MSE alone is misleading (the zero vector scores 1/384 on unit vectors), so every report
carries cosine(x, x̂), the relative squared error ‖x−x̂‖²/‖x‖² and neighbour recall@10: for
each raw query, the share of its 10 nearest raw neighbours (cosine, itself excluded) found
among the 10 nearest *decoded* vectors.

Example:
    >>> reconstruction_stats(x_test, x_hat, num_queries=1000)
    {'cosine': 0.71, 'relative_error': 0.56, 'mse': 0.0015, 'recall_at_10': 0.36, ...}
"""

from __future__ import annotations

import numpy as np


def _unit(x):
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def cosine(x, x_hat) -> float:
    return float(np.mean(np.sum(_unit(x) * _unit(x_hat), axis=1)))


def relative_error(x, x_hat) -> float:
    return float(np.mean(np.sum((x - x_hat) ** 2, axis=1) / np.maximum(np.sum(x ** 2, axis=1), 1e-12)))


def mse(x, x_hat) -> float:
    return float(np.mean((x - x_hat) ** 2))


def neighbour_recall(x, x_hat, k: int = 10, num_queries: int = 1000, seed: int = 0) -> float:
    """Recall@k of raw queries (rows of `x`) against the decoded database `x_hat`."""
    x, x_hat = np.asarray(x, np.float32), np.asarray(x_hat, np.float32)
    rng = np.random.default_rng(seed)
    queries = np.sort(rng.choice(len(x), min(num_queries, len(x)), replace=False))
    q = _unit(x[queries])
    exact = q @ _unit(x).T
    approx = q @ _unit(x_hat).T
    rows = np.arange(len(queries))
    exact[rows, queries] = -np.inf  # a query is not its own neighbour
    approx[rows, queries] = -np.inf
    truth = np.argpartition(-exact, k, axis=1)[:, :k]
    found = np.argpartition(-approx, k, axis=1)[:, :k]
    hits = [len(np.intersect1d(t, f)) for t, f in zip(truth, found)]
    return float(np.mean(hits) / k)


def reconstruction_stats(x, x_hat, k: int = 10, num_queries: int = 1000) -> dict:
    x, x_hat = np.asarray(x, np.float32), np.asarray(x_hat, np.float32)
    return {
        "cosine": cosine(x, x_hat),
        "relative_error": relative_error(x, x_hat),
        "mse": mse(x, x_hat),
        f"recall_at_{k}": neighbour_recall(x, x_hat, k, num_queries),
        "mse_of_zero_vector": float(np.mean(x ** 2)),
        "mse_of_mean_vector": mse(x, np.broadcast_to(x.mean(0), x.shape)),
    }
