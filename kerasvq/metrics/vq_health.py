"""Health check of a trained quantizer: is any codebook head collapsed? (the old `system_health_check.py`)

A head is collapsed when it uses fewer than `min_usage` (10%) of its codes on the checked
rows, or when one code takes more than `max_share` (50%) of them: either way its byte carries
almost no information while the reconstruction metrics can still look acceptable (the
decoder learns the mean). Per head the report carries usage, perplexity, max share and the
Zipf α/R² of the rank/frequency curve (`kerasvq.metrics.codebook.head_stats`); for a `VQVAE`
also cosine and recall@10 of the decoded vectors on a sample, next to the cosine of the
training-free mean vector; for a `HierarchicalVQVAE` the heads are (level, category) pairs
and the sample's reconstruction MSE and R² (normalized features) replace cosine.

Example:
    >>> report = vqvae_health(model, x)
    >>> report["healthy"], report["heads"][0]["usage"]
    (True, 0.99)
    >>> print(format_health(report))
"""

from __future__ import annotations

import numpy as np

from kerasvq.metrics.codebook import code_counts, head_stats
from kerasvq.metrics.reconstruction import cosine, mse, reconstruction_stats

MIN_USAGE = 0.10
MAX_SHARE = 0.50


def heads_health(codes, codebook_size: int, names, min_usage: float = MIN_USAGE,
                 max_share: float = MAX_SHARE) -> list[dict]:
    """Per-head statistics of integer codes (N, heads), each with `collapsed` and why."""
    out = []
    for name, counts in zip(names, code_counts(codes, codebook_size)):
        stats = {"head": name, "codebook_size": int(codebook_size), **head_stats(counts)}
        reasons = []
        if stats["usage"] < min_usage:
            reasons.append(f"usage {stats['usage']:.1%} < {min_usage:.0%}")
        if stats["max_share"] > max_share:
            reasons.append(f"one code takes {stats['max_share']:.1%} > {max_share:.0%}")
        stats.update(collapsed=bool(reasons), reason="; ".join(reasons))
        out.append(stats)
    return out


def _summarize(heads: list[dict], **extra) -> dict:
    collapsed = [h["head"] for h in heads if h["collapsed"]]
    return {**extra, "healthy": not collapsed, "collapsed_heads": collapsed, "heads": heads,
            "thresholds": {"min_usage": MIN_USAGE, "max_share": MAX_SHARE}}


def _rows(n: int, limit: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.arange(n) if n <= limit else np.sort(rng.choice(n, limit, replace=False))


def vqvae_health(model, x, max_rows: int = 100_000, sample: int = 2000, num_queries: int = 1000,
                 seed: int = 0) -> dict:
    """Health of a `VQVAE` on embeddings `x` (N, input_dim).

    Args:
        max_rows: code statistics on at most this many rows (a random subset).
        sample: rows decoded for cosine, relative error and recall@10.
        num_queries: recall@10 queries among the sample.
        seed: row sampling seed.
    """
    x = np.asarray(x, np.float32)
    rows = x[_rows(len(x), max_rows, seed)]
    names = model.codebook_heads()[0][1]
    heads = heads_health(model.encode(rows), model.codebook_size, names)
    xs = rows[_rows(len(rows), sample, seed + 1)]
    recon = reconstruction_stats(xs, model.decode(model.encode(xs)), num_queries=min(num_queries, len(xs) - 1))
    return _summarize(
        heads, kind="vqvae", rows=int(len(rows)), sample=int(len(xs)), cosine=recon["cosine"],
        recall_at_10=recon["recall_at_10"], relative_error=recon["relative_error"],
        mean_vector_cosine=cosine(xs, np.broadcast_to(rows.mean(0), xs.shape)),
    )


def hvqvae_health(model, x, max_rows: int = 100_000, sample: int = 2000, seed: int = 0) -> dict:
    """Health of a `HierarchicalVQVAE` on raw features `x`: one head per (level, category)."""
    x = np.asarray(x, np.float32)
    rows = x[_rows(len(x), max_rows, seed)]
    codes = model.encode(rows)  # (N, levels, categories)
    heads = []
    for l, level in enumerate(model.levels):
        names = [f"{level['name']}/{c}" for c in model.category_names]
        heads += heads_health(codes[:, l], level["codebook_size"], names)
    xs = rows[_rows(len(rows), sample, seed + 1)]
    xn = model.normalize(xs)
    x_hat = model.decode_codes(model.encode(xs))
    total = float(np.sum((xn - xn.mean(0)) ** 2))
    return _summarize(heads, kind="hvqvae", rows=int(len(rows)), sample=int(len(xs)), mse=mse(xn, x_hat),
                      r2=1.0 - float(np.sum((xn - x_hat) ** 2)) / max(total, 1e-12))


def format_health(report: dict) -> str:
    """A table, one row per head, then the reconstruction line and the verdict."""
    lines = [f"{'head':24s} {'usage':>7s} {'perplexity':>10s} {'max share':>9s} {'zipf a':>7s} {'zipf R2':>7s}  status"]
    for h in report["heads"]:
        status = f"COLLAPSED ({h['reason']})" if h["collapsed"] else "ok"
        lines.append(f"{h['head']:24s} {h['usage']:7.3f} {h['perplexity']:10.1f} {h['max_share']:9.3f} "
                     f"{h['zipf_alpha']:7.3f} {h['zipf_r2']:7.3f}  {status}")
    if report["kind"] == "vqvae":
        lines.append(f"sample of {report['sample']}: cosine {report['cosine']:.4f} (mean vector "
                     f"{report['mean_vector_cosine']:.4f}), recall@10 {report['recall_at_10']:.4f}")
    else:
        lines.append(f"sample of {report['sample']}: MSE {report['mse']:.4f}, R² {report['r2']:.3f} (normalized features)")
    lines.append("healthy" if report["healthy"] else
                 f"COLLAPSED: {', '.join(report['collapsed_heads'])} (usage < {MIN_USAGE:.0%} or one code > {MAX_SHARE:.0%})")
    return "\n".join(lines)
