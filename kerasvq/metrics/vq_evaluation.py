"""Held-out evaluation of a VQ-VAE next to FAISS's 4-byte quantizers on the same split.

Baselines (`faiss-cpu`, optional extra), all at M codes of 8 bits (4 bytes by default), fitted
on the train split and judged with the same code statistics and reconstruction metrics:
`ProductQuantizer(d, M, 8)`; OPQ rotation + PQ (`OPQMatrix` then `ProductQuantizer`);
`ResidualQuantizer(d, M, 8)` at FAISS's default beam (5) and with wider beams
(`max_beam_size` 8 and 32, set before training: RQ's training encodes with the same beam, so
the codebooks are fitted for it); `LocalSearchQuantizer(d, M, 8)` (joint codebooks, ICM
encoding); and `ProductResidualQuantizer(d, 2, M/2, 8)` (two halves of the space, each an
M/2-step RQ). Each row carries its fit and encode seconds (encode: the held-out split).

Example:
    >>> results = evaluate_quantizers(model, x_train, x_test)
    >>> results["kerasvq"]["cosine"], results["faiss_pq"]["cosine"]
"""

from __future__ import annotations

import time

import numpy as np

from kerasvq.common.errors import UserError
from kerasvq.metrics.codebook import codebook_stats
from kerasvq.metrics.reconstruction import reconstruction_stats


def _summary(codes, x, x_hat, codebook_size, num_queries) -> dict:
    stats = codebook_stats(codes, codebook_size)
    out = {
        "min_usage": stats["min_usage"], "mean_usage": stats["mean_usage"], "max_share": stats["max_share"],
        "mean_perplexity": stats["mean_perplexity"], "min_normalized_entropy": stats["min_normalized_entropy"],
        "per_head": stats["per_head"],
    }
    out.update(reconstruction_stats(x, x_hat, num_queries=num_queries))
    return out


def _faiss_codes(codes_bytes, m, nbits):
    """FAISS packs M codes of `nbits` bits, least significant bit first: (N, M) integers."""
    packed = np.asarray(codes_bytes, dtype=np.uint8).reshape(len(codes_bytes), -1)
    bits = np.unpackbits(packed, axis=1, bitorder="little")[:, : m * nbits].reshape(len(packed), m, nbits)
    return (bits.astype(np.int64) << np.arange(nbits)).sum(-1)


def faiss_baselines(x_train, x_test, num_heads: int = 4, nbits: int = 8, num_queries: int = 1000,
                    codes_out: dict | None = None, only=None) -> dict:
    """FAISS's 4-byte quantizers fitted on `x_train`, judged on `x_test`; `only`: names to run."""
    try:
        import faiss
    except ImportError:
        raise UserError("FAISS baselines need faiss-cpu: pip install 'kerasvq[faiss]'") from None
    d, k = x_train.shape[1], 2 ** nbits
    x_train = np.ascontiguousarray(x_train, dtype=np.float32)
    x_test = np.ascontiguousarray(x_test, dtype=np.float32)

    def fit_pq(x):
        pq = faiss.ProductQuantizer(d, num_heads, nbits)
        pq.train(x)
        return pq.compute_codes, pq.decode

    def fit_opq_pq(x):
        opq = faiss.OPQMatrix(d, num_heads)
        opq.train(x)
        encode, decode = fit_pq(opq.apply(x))
        return (lambda v: encode(opq.apply(v))), (lambda c: opq.reverse_transform(decode(c)))

    def fit_rq(beam=None):
        def fit(x):
            rq = faiss.ResidualQuantizer(d, num_heads, nbits)
            if beam is not None:
                rq.max_beam_size = beam
            rq.train(x)
            return rq.compute_codes, rq.decode
        return fit

    def fit_lsq(x):
        lsq = faiss.LocalSearchQuantizer(d, num_heads, nbits)
        lsq.train(x)
        return lsq.compute_codes, lsq.decode

    def fit_prq(x):
        prq = faiss.ProductResidualQuantizer(d, 2, num_heads // 2, nbits)
        prq.train(x)
        return prq.compute_codes, prq.decode

    methods = [("faiss_pq", fit_pq), ("faiss_opq_pq", fit_opq_pq), ("faiss_rq", fit_rq()),
               ("faiss_rq_beam8", fit_rq(8)), ("faiss_rq_beam32", fit_rq(32)), ("faiss_lsq", fit_lsq)]
    if num_heads % 2 == 0 and d % 2 == 0:
        methods.append(("faiss_prq_2x2" if num_heads == 4 else f"faiss_prq_2x{num_heads // 2}", fit_prq))
    codes_out = {} if codes_out is None else codes_out
    results = {}
    for name, fit in methods:
        if only is not None and name not in only:
            continue
        start = time.perf_counter()
        encode, decode = fit(x_train)
        fitted = time.perf_counter()
        codes = encode(x_test)
        encoded = time.perf_counter()
        codes_out[name] = _faiss_codes(codes, num_heads, nbits)
        results[name] = _summary(codes_out[name], x_test, decode(codes), k, num_queries)
        results[name]["fit_seconds"] = fitted - start
        results[name]["encode_seconds"] = encoded - fitted
    return results


def evaluate_quantizers(model, x_train, x_test, num_queries: int = 1000, baselines: bool = True,
                        codes_out: dict | None = None) -> dict:
    """Metrics of `model` and (optionally) the FAISS baselines; fills `codes_out` with test codes."""
    start = time.perf_counter()
    codes = model.encode(x_test)
    encode_seconds = time.perf_counter() - start
    if codes_out is not None:
        codes_out["kerasvq"] = codes
    results = {"kerasvq": _summary(codes, x_test, model.decode(codes), model.codebook_size, num_queries)}
    results["kerasvq"]["encode_seconds"] = encode_seconds
    if baselines:
        results.update(faiss_baselines(x_train, x_test, model.num_heads, int(np.log2(model.codebook_size)), num_queries, codes_out))
    return results


def plot_rank_frequency(codes_by_method: dict, codebook_size: int, path) -> None:
    """One panel per method: log-log rank/frequency of every head's codes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kerasvq.metrics.codebook import code_counts

    fig, axes = plt.subplots(1, len(codes_by_method), figsize=(4.5 * len(codes_by_method), 3.6), squeeze=False)
    for ax, (name, codes) in zip(axes[0], codes_by_method.items()):
        for h, counts in enumerate(code_counts(codes, codebook_size)):
            freq = np.sort(counts)[::-1]
            ax.loglog(np.arange(1, len(freq) + 1), np.maximum(freq, 0.5), label=f"head {h}")
        ax.set_title(name)
        ax.set_xlabel("rank")
        ax.set_ylabel("count")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
