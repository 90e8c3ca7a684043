"""Codebook statistics: usage, perplexity, entropy, max share, Zipf fit.

All functions take integer codes of shape (N, num_heads) and return plain numbers, so they
serve tests, the TensorBoard logging callback and the evaluation script alike. Balance is
judged by usage, perplexity and max share; the Zipf exponent α and the R² of the log-log
rank/frequency fit are reported for comparison with the old runs (α ≥ 1.2 over 256 codes
forces the top code above 25%, so a healthy codebook has a small α).

Example:
    >>> stats = codebook_stats(codes, codebook_size=256)
    >>> stats["per_head"][0]["usage"], stats["min_usage"], stats["max_share"]
    (0.99, 0.97, 0.012)
"""

from __future__ import annotations

import numpy as np


def code_counts(codes, codebook_size: int) -> np.ndarray:
    """(num_heads, codebook_size) assignment counts."""
    codes = np.asarray(codes).reshape(len(codes), -1)
    return np.stack([np.bincount(codes[:, h], minlength=codebook_size) for h in range(codes.shape[1])])


def zipf_fit(counts) -> tuple[float, float]:
    """(α, R²) of log(frequency) = c − α·log(rank) over the codes that were used."""
    freq = np.sort(np.asarray(counts, dtype=np.float64))[::-1]
    freq = freq[freq > 0]
    if len(freq) < 3:
        return float("nan"), float("nan")
    x, y = np.log(np.arange(1, len(freq) + 1)), np.log(freq)
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (slope * x + intercept)
    total = np.sum((y - y.mean()) ** 2)
    r2 = 1.0 - np.sum(residual ** 2) / total if total > 0 else 1.0
    return float(-slope), float(r2)


def head_stats(counts) -> dict:
    counts = np.asarray(counts, dtype=np.float64)
    k, n = len(counts), counts.sum()
    p = counts / max(n, 1.0)
    nz = p[p > 0]
    entropy = float(-(nz * np.log(nz)).sum())
    alpha, r2 = zipf_fit(counts)
    return {
        "usage": float((counts > 0).mean()),
        "used_codes": int((counts > 0).sum()),
        "perplexity": float(np.exp(entropy)),
        "normalized_entropy": entropy / float(np.log(k)),
        "max_share": float(p.max()) if n else 0.0,
        "zipf_alpha": alpha,
        "zipf_r2": r2,
    }


def codebook_stats(codes, codebook_size: int) -> dict:
    """Per-head statistics plus the worst case over heads (min usage, max share)."""
    per_head = [head_stats(c) for c in code_counts(codes, codebook_size)]
    return {
        "per_head": per_head,
        "min_usage": min(h["usage"] for h in per_head),
        "mean_usage": float(np.mean([h["usage"] for h in per_head])),
        "max_share": max(h["max_share"] for h in per_head),
        "mean_perplexity": float(np.mean([h["perplexity"] for h in per_head])),
        "min_normalized_entropy": min(h["normalized_entropy"] for h in per_head),
    }
