"""Codebooks from FAISS's `ResidualQuantizer`, to start a residual `VectorQuantizer` from.

FAISS trains its residual codebooks level by level with beam search over the candidate
paths (`max_beam_size`), a better optimum than the greedy residual k-means; starting from
its centroids puts a model at FAISS RQ's quality before any gradient step.
"""

from __future__ import annotations

import numpy as np

from kerasvq.common.errors import UserError


def residual_codebooks(x, levels: int, codebook_size: int, beam: int = 32) -> np.ndarray:
    """FAISS `ResidualQuantizer` centroids of rows `x` (N, d): (levels, codebook_size, d) float32.

    Args:
        x: training rows.
        levels: codebooks (the quantizer's heads).
        codebook_size: codes per level, a power of two (FAISS counts bits).
        beam: `max_beam_size` of FAISS's training and encoding.
    """
    try:
        import faiss
    except ImportError:
        raise UserError("codebook_init 'faiss_rq' needs faiss-cpu: pip install 'kerasvq[faiss]'") from None
    bits = int(np.log2(codebook_size))
    if 2 ** bits != codebook_size:
        raise UserError(f"codebook_init 'faiss_rq': codebook_size must be a power of two, got {codebook_size}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    rq = faiss.ResidualQuantizer(x.shape[1], levels, bits)
    rq.max_beam_size = int(beam)
    rq.train(x)
    return faiss.vector_to_array(rq.codebooks).reshape(levels, codebook_size, x.shape[1]).astype(np.float32)
