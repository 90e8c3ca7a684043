"""k-means in NumPy for seeding codebooks from data (`VectorQuantizer.initialize_codebook`).

The quantizer's own in-graph k-means (its first training batches) lives in the layer; this one
runs outside the compiled step on a sample the caller hands over, with k-means++ seeding.

Example:
    >>> centers = kmeans(np.random.default_rng(0).normal(size=(1000, 8)), k=16)
    >>> centers.shape
    (16, 8)
"""

from __future__ import annotations

import numpy as np


def _sq_distances(x, centers):
    return (x * x).sum(1)[:, None] - 2.0 * x @ centers.T + (centers * centers).sum(1)[None]


def nearest_center(x, centers) -> np.ndarray:
    """Index of each row's nearest center (squared Euclidean distance): (N,) ints."""
    return _sq_distances(x, centers).argmin(1)


def kmeans(x, k: int, iterations: int = 20, seed: int = 0, spherical: bool = False) -> np.ndarray:
    """k-means++ seeding then Lloyd iterations; empty clusters re-seeded from the worst-fit points.

    `spherical=True` keeps centers on the unit sphere (cosine codebooks). With fewer points
    than `k`, points are repeated with a little noise so every code starts distinct.
    """
    rng = np.random.default_rng(seed)
    x = np.asarray(x, dtype=np.float32)
    if len(x) < k:
        reps = x[rng.integers(0, len(x), k - len(x))]
        x = np.concatenate([x, reps + 1e-3 * x.std() * rng.standard_normal(reps.shape).astype(np.float32)])
    sample = x[rng.choice(len(x), min(len(x), 20 * k), replace=False)]
    centers = [sample[rng.integers(len(sample))]]
    closest = _sq_distances(sample, centers[0][None])[:, 0]
    for _ in range(1, k):
        p = np.maximum(closest, 0)
        i = rng.choice(len(sample), p=p / p.sum()) if p.sum() > 0 else rng.integers(len(sample))
        centers.append(sample[i])
        closest = np.minimum(closest, _sq_distances(sample, sample[i][None])[:, 0])
    centers = np.stack(centers)
    for _ in range(iterations):
        d = _sq_distances(x, centers)
        assign = d.argmin(1)
        counts = np.bincount(assign, minlength=k)
        sums = np.zeros_like(centers)
        np.add.at(sums, assign, x)
        alive = counts > 0
        centers[alive] = sums[alive] / counts[alive, None]
        if (~alive).any():
            worst = np.argsort(d[np.arange(len(x)), assign])[::-1][: (~alive).sum()]
            centers[~alive] = x[worst]
        if spherical:
            centers /= np.maximum(np.linalg.norm(centers, axis=1, keepdims=True), 1e-12)
    return centers.astype(np.float32)
