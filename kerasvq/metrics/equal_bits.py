"""Classical quantizers of one category's (normalized) columns with the model's bit budget.

The hierarchical VQ-VAE spends Σ_l log2(K_l) bits per category (one code per level of
K_l codes). A baseline given "as many real coefficients as tokens" is not at equal bits — a
PCA keeping 3 real numbers is lossless on a 3-column category — so the comparisons here
spend the same bits on the raw features instead:

- `residual_kmeans`: L levels of k-means with the model's codebook sizes, each on what the
  coarser ones left (residual quantization of the raw columns; greedy encoding);
- `faiss_residual`: FAISS's `ResidualQuantizer` with the same per-level bits and beam-search
  training/encoding, when faiss is installed and every size is a power of two (else None);
- `pca_scalar`: transform coding — the train split's principal axes (all of them: a
  rotation), each coefficient scalar-quantized by a 1-D k-means (Lloyd–Max) quantizer, the
  integer bit budget ⌊Σ_l log2 K_l⌋ handed out one bit at a time to the coefficient whose
  quantizer gains most on the train split (a coefficient with 0 bits decodes to its mean).

All are fitted on the train split only and return the test split's reconstruction.

Example:
    >>> x_hat, by_level = residual_kmeans(train, test, [16, 32, 64])
    >>> x_hat_pca, bits = pca_scalar(train, test, category_bits([16, 32, 64]))
    >>> bits  # per principal axis, largest variance first
    [7, 5, 3]
"""

from __future__ import annotations

import math

import numpy as np

from kerasvq.layers.kmeans import kmeans, nearest_center


def category_bits(sizes) -> float:
    """Bits per category of one code per level: Σ log2 K_l."""
    return float(sum(math.log2(k) for k in sizes))


def residual_kmeans(train, test, sizes, iterations: int = 25, seed: int = 0):
    """(test reconstruction, [test reconstruction from levels 1..l for each l])."""
    r_train, r_test = np.asarray(train, np.float32).copy(), np.asarray(test, np.float32).copy()
    x_hat, prefixes = np.zeros_like(r_test), []
    for level, k in enumerate(sizes):
        centers = kmeans(r_train, int(k), iterations, seed + 97 * level)
        q_train, q_test = centers[nearest_center(r_train, centers)], centers[nearest_center(r_test, centers)]
        r_train -= q_train
        r_test -= q_test
        x_hat = x_hat + q_test
        prefixes.append(x_hat.copy())
    return x_hat, prefixes


def _power_of_two_bits(sizes):
    bits = [int(round(math.log2(k))) for k in sizes]
    return bits if all(2 ** b == k for b, k in zip(bits, sizes)) else None


def faiss_residual(train, test, sizes, beam: int = 8):
    """FAISS RQ (beam search) test reconstruction, or None without faiss or for sizes that are
    not powers of two."""
    try:
        import faiss
    except ImportError:
        return None
    bits = _power_of_two_bits(sizes)
    if bits is None:
        return None
    train, test = np.ascontiguousarray(train, np.float32), np.ascontiguousarray(test, np.float32)
    nbits = faiss.UInt64Vector()
    for b in bits:
        nbits.push_back(b)
    rq = faiss.ResidualQuantizer(train.shape[1], nbits)
    rq.max_beam_size = beam
    rq.cp.min_points_per_centroid = 1  # small tables are the point here; no warning per k-means
    rq.train(train)
    return rq.decode(rq.compute_codes(test))


def _scalar_quantizer(values, bits: int, seed: int):
    """Levels of a 1-D Lloyd–Max quantizer with 2**bits levels (one level — the mean — at 0 bits)."""
    if bits == 0:
        return np.array([values.mean()], np.float32)
    return np.sort(kmeans(values[:, None], 2 ** bits, 30, seed)[:, 0])


def _quantize_1d(values, levels):
    return levels[np.abs(values[:, None] - levels[None]).argmin(1)]


def pca_scalar(train, test, bits: float, seed: int = 0):
    """(test reconstruction, bits given to each principal axis) at ⌊bits⌋ bits in all."""
    train, test = np.asarray(train, np.float64), np.asarray(test, np.float64)
    mean = train.mean(axis=0)
    _, _, vt = np.linalg.svd(train - mean, full_matrices=False)
    c_train, c_test = ((train - mean) @ vt.T).astype(np.float32), ((test - mean) @ vt.T).astype(np.float32)
    axes = c_train.shape[1]
    most = int(math.floor(math.log2(max(len(train), 2))))  # no more levels than training rows

    def distortion(j, b):
        levels = _scalar_quantizer(c_train[:, j], b, seed + j)
        return float(np.mean((c_train[:, j] - _quantize_1d(c_train[:, j], levels)) ** 2))

    alloc = [0] * axes
    current = [distortion(j, 0) for j in range(axes)]
    for _ in range(int(math.floor(bits + 1e-9))):
        gains = [(current[j] - distortion(j, alloc[j] + 1), j) if alloc[j] < most else (-1.0, j)
                 for j in range(axes)]
        gain, j = max(gains)
        if gain < 0:
            break
        alloc[j] += 1
        current[j] = current[j] - gain
    q_test = np.stack([_quantize_1d(c_test[:, j], _scalar_quantizer(c_train[:, j], alloc[j], seed + j))
                       for j in range(axes)], axis=1)
    return (q_test @ vt + mean).astype(np.float32), alloc
