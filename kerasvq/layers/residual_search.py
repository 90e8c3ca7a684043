"""Residual-quantizer encoding by beam search, with optional conditioned codewords.

Greedy residual encoding picks, level after level, the code nearest to what is left; an
early choice that looks best can leave a residual the later levels cannot serve. Beam search
(FAISS's `ResidualQuantizer.max_beam_size`) keeps the `beam` best partial reconstructions
after every level instead, and returns the path with the smallest final error.

Conditioned codewords (implicit neural codebooks, Huijben et al. 2024, "QINCo"): level h's
codeword k for a vector whose partial reconstruction is x̂ is `c_k + f_h(c_k, x̂)`, so the
same byte means a different vector in different regions of the space. Evaluating f for all
K codes of every beam is the expensive part; as in QINCo2 only the `candidates` codes nearest
by the base codebook are re-scored with their conditioned codewords.

Everything is `keras.ops`, so it runs in the TensorFlow and JAX training steps.
"""

from __future__ import annotations

from keras import ops


def squared_distances(r, book):
    """r (..., d), book (K, d) → (..., K) squared Euclidean distances."""
    return (ops.sum(ops.square(r), axis=-1, keepdims=True) - 2.0 * ops.matmul(r, ops.transpose(book))
            + ops.sum(ops.square(book), axis=-1))


def beam_search(x, codebook, beam: int, correction=None, candidates: int | None = None):
    """Codes (N, H) int32 of the best path found by a beam search of width `beam`.

    x (N, d); codebook (H, K, d); correction(h, codewords (N, b, A, d), recon (N, b, d)) →
    the conditioned codewords' offsets (same shape as codewords), or None for a plain
    residual quantizer; candidates: how many base-nearest codes per beam are re-scored when
    `correction` is given (all K when None).
    """
    levels, k = ops.shape(codebook)[0], ops.shape(codebook)[1]
    n = ops.shape(x)[0]
    recon = ops.zeros_like(x)[:, None, :]  # (N, 1, d): one beam to start
    codes = ops.zeros((n, 1, 0), "int32")
    for h in range(levels):
        book = codebook[h]
        residual = x[:, None, :] - recon  # (N, b, d)
        base = squared_distances(residual, book)  # (N, b, K)
        if correction is not None and h > 0:
            a = min(candidates or k, k)
            _, ids = ops.top_k(-base, a)  # (N, b, A)
            words = ops.take(book, ids, axis=0)  # (N, b, A, d)
            words = words + correction(h, words, recon)
            dist = ops.sum(ops.square(residual[:, :, None, :] - words), axis=-1)
        else:
            ids, words, dist = None, None, base
        width = ops.shape(dist)[2]
        b = ops.shape(dist)[1]
        keep = min(beam, b * width)
        _, best = ops.top_k(-ops.reshape(dist, (n, -1)), keep)  # (N, keep), best first
        parent, slot = best // width, best % width
        if ids is None:
            code = slot
            word = ops.take(book, code, axis=0)
        else:
            flat = lambda t, extra: ops.reshape(t, (n, -1) + extra)
            pick = ops.expand_dims(parent * width + slot, -1)
            code = ops.take_along_axis(flat(ids, ()), best, axis=1)
            word = ops.take_along_axis(flat(words, (ops.shape(words)[-1],)), pick, axis=1)
        take_beam = lambda t: ops.take_along_axis(t, ops.reshape(parent, (n, keep) + (1,) * (len(t.shape) - 2)), axis=1)
        recon = take_beam(recon) + word
        history = take_beam(codes) if h else codes
        codes = ops.concatenate([ops.broadcast_to(history, (n, keep, h)), ops.cast(code, "int32")[..., None]], axis=-1)
    return codes[:, 0]


def follow_path(x, codebook, codes, correction=None):
    """What every level sees and gives along fixed codes (N, H).

    Returns per-level residuals (N, H, d), base distances (N, H, K), codewords as used
    (base + correction, (N, H, d)) and the corrections alone (N, H, d) (zeros without
    `correction`). With `x=None` only the codewords are meaningful (decoding).
    """
    levels = ops.shape(codebook)[0]
    recon = None
    residuals, dists, words, offsets = [], [], [], []
    for h in range(levels):
        word = ops.take(codebook[h], codes[:, h], axis=0)
        offset = ops.zeros_like(word)
        if correction is not None and h > 0:
            offset = correction(h, word[:, None, None, :], recon[:, None, :])[:, 0, 0]
        word = word + offset
        if x is not None:
            residual = x - (recon if recon is not None else ops.zeros_like(x))
            residuals.append(residual)
            dists.append(squared_distances(residual, codebook[h]))
        words.append(word)
        offsets.append(offset)
        recon = word if recon is None else recon + word
    stack = lambda xs: ops.stack(xs, axis=1) if xs else None
    return stack(residuals), stack(dists), stack(words), stack(offsets)
