"""`FastEncoder`: `VQVAE.encode` as plain NumPy matmuls, for bulk CPU encoding.

`VQVAE.encode` runs the Keras layers op by op on every batch; for millions of rows the work is
three matmuls, a LayerNorm, a GELU and an argmin, so the weights are pulled out once as
float32 arrays (the input scale folded into the first kernels, the encoder's first Dense and
its linear skip concatenated into one matmul, the codes' squared norms precomputed) and each
chunk is encoded with BLAS.

Same codes as `VQVAE.encode`: a different summation order can flip the argmin of a row whose
two nearest codes are within float32 rounding of each other, so every row whose best and
second-best distance differ by less than `tie_tolerance` (relative to the distances' size) is
encoded again through `VQVAE.encode` itself. The tests check the result is identical.

Example:
    >>> fast = FastEncoder(model)
    >>> codes = fast.encode(x)          # (N, num_heads) uint8, equal to model.encode(x)
"""

from __future__ import annotations

import numpy as np

from kerasvq.common.errors import UserError


def _erf(x):
    from scipy.special import erf

    return erf(x)


class FastEncoder:
    """NumPy copy of a `VQVAE`'s encoder and nearest-code search (weights read at creation)."""

    def __init__(self, model, chunk_rows: int = 2048, tie_tolerance: float = 1e-4):
        """Args:
            model: a built `VQVAE` (float32 or mixed policy; the copy computes in float32).
            chunk_rows: rows per BLAS call (2048: the activations of a chunk stay in cache).
            tie_tolerance: rows whose two nearest codes are closer than this × the distance
                scale are re-encoded by `model.encode` (exact codes, see module docstring).
        """
        from keras import ops

        def arr(v):
            return np.asarray(ops.convert_to_numpy(v), np.float32)

        self.model = model
        self.chunk_rows = chunk_rows
        self.tie_tolerance = tie_tolerance
        self.num_heads, self.codebook_size = model.num_heads, model.codebook_size
        self.input_dim = model.input_dim
        dense_in, norm, act, _, dense_out = model.encoder.layers
        if getattr(act.activation, "__name__", "") != "gelu":
            raise UserError(f"FastEncoder: expected a GELU encoder, got {act.activation}")
        scale = model._scale
        w1, b1 = arr(dense_in.kernel) * scale, arr(dense_in.bias)
        self.hidden = w1.shape[1]
        if model.linear_skip:
            w1 = np.concatenate([w1, arr(model.encoder_skip.kernel) * scale], axis=1)
        self.w_in, self.b_in = np.ascontiguousarray(w1), b1
        self.gamma = arr(norm.gamma) if norm.scale else None
        self.beta = arr(norm.beta) if norm.center else None
        self.eps = float(norm.epsilon)
        self.w_out, self.b_out = arr(dense_out.kernel), arr(dense_out.bias)
        q = model.quantizer
        self.cosine, self.residual, self.head_dim = q.cosine, q.residual, q.head_dim
        self.codebook = arr(q.codebook)                                # (H, K, d)
        self.codebook_t = np.ascontiguousarray(self.codebook.transpose(0, 2, 1))  # (H, d, K)
        self.c2 = (self.codebook ** 2).sum(-1)                        # (H, K)

    def latents(self, x: np.ndarray) -> np.ndarray:
        """(n, input_dim) float32 → encoder outputs (n, latent_dim), eval mode."""
        a = x @ self.w_in
        h = a[:, : self.hidden]
        h += self.b_in
        mean = h.mean(-1, keepdims=True)
        h -= mean
        var = np.mean(h * h, axis=-1, keepdims=True)
        h *= 1.0 / np.sqrt(var + self.eps)
        if self.gamma is not None:
            h *= self.gamma
        if self.beta is not None:
            h += self.beta
        h = 0.5 * h * (1.0 + _erf(h * np.float32(1.0 / np.sqrt(2.0))))
        z = h.astype(np.float32, copy=False) @ self.w_out
        z += self.b_out
        if self.model.linear_skip:
            z += a[:, self.hidden:]
        return z

    def _nearest(self, z):
        """Codes (n, H) and a mask of rows whose nearest two codes are within the tolerance."""
        n, heads = len(z), self.num_heads
        codes = np.empty((n, heads), np.int64)
        close = np.zeros(n, bool)
        residual = z if self.residual else None
        for h in range(heads):
            zh = residual if self.residual else z[:, h * self.head_dim:(h + 1) * self.head_dim]
            if self.cosine:
                zh = zh / np.maximum(np.linalg.norm(zh, axis=-1, keepdims=True), 1e-6)
                d = 1.0 - zh @ self.codebook_t[h]
                size = np.float32(1.0)
            else:
                z2 = np.einsum("nd,nd->n", zh, zh)[:, None]
                d = self.c2[h][None] - 2.0 * (zh @ self.codebook_t[h])
                size = z2 + np.abs(d).max(-1, keepdims=True)
            two = np.partition(d, 1, axis=-1)[:, :2]
            close |= (two[:, 1] - two[:, 0]) <= self.tie_tolerance * size[:, 0]
            codes[:, h] = np.argmin(d, axis=-1)
            if self.residual:
                residual = residual - self.codebook[h][codes[:, h]]
        return codes, close

    def encode(self, x, return_ties: bool = False):
        """Embeddings (N, input_dim) → codes (N, num_heads), uint8 when codebook_size ≤ 256;
        `return_ties`: also the number of rows re-encoded through `VQVAE.encode`."""
        x = self.model._check(x, "encode input")
        dtype = np.uint8 if self.codebook_size <= 256 else np.int32
        out = np.empty((len(x), self.num_heads), dtype)
        ties = 0
        for i in range(0, len(x), self.chunk_rows):
            chunk = x[i:i + self.chunk_rows]
            codes, close = self._nearest(self.latents(chunk))
            if close.any():
                rows = np.flatnonzero(close)
                codes[rows] = self.model.encode(chunk[rows])
                ties += len(rows)
            out[i:i + len(chunk)] = codes
        return (out, ties) if return_ties else out
