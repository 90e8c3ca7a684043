"""`VectorQuantizer`: a product quantizer (one codebook per head) with EMA codebooks.

The last axis of the input, `num_heads * head_dim` wide, is split into `num_heads` slices;
each slice is replaced by its nearest code in its head's codebook. Codebooks are float32
non-trainable variables moved by exponential moving averages of the vectors assigned to them
(decay 0.99), updated only when `training=True`, with `variable.assign` so that the update
works under both the TensorFlow and the JAX training loops.

Why the EMA statistics start at `count = 1, sum = code`: an unused code's count and sum then
decay by the same factor, so `sum / count` — the code — stays where it is. Laplace smoothing
adds `epsilon` pseudo-counts placed *at the current code* (`(sum + eps·code) / (count + eps)`),
which avoids division by zero without the usual side effect of pulling rarely used codes
towards the origin (the classic `sum / (count + eps)` form shrinks them every step).

Gradients reach the encoder through the straight-through estimator, or the rotation trick
(Fifty et al., 2024) with `gradient="rotation"`. Losses added with `add_loss`:
- commitment `beta * mean((z - sg(q))²)`;
- codebook loss `mean((sg(z) - q)²)` when `use_ema=False` (codebooks then trainable);
- `orthogonal_weight`: squared cross-correlation between the heads' quantized outputs, i.e.
  between the heads' codebooks weighted by use; its gradient reaches the encoder through the
  straight-through path because EMA codebooks take no gradient;
- `entropy_weight`: per-sample assignment entropy minus the entropy of the batch's mean
  assignment (soft assignments over `-distance / entropy_temperature`), normalized by log K.

Safe by default, inside the layer (the ideas of vector-quantize-pytorch's `kmeans_init` and
`threshold_ema_dead_code`), so that a plain `compile` + `fit` cannot collapse to a few codes:
- `kmeans_init=True`: the codebooks are fitted by k-means to the first `kmeans_rows` encoder
  outputs the layer sees in training, unless they were set explicitly first
  (`initialize_codebook`, `set_codes`). Until the buffer is full the layer passes its input
  through unquantized, so the encoder is not pulled towards the random initial codes. The
  buffer, the number of rows in it and the `initialized` flag are non-trainable variables
  and the k-means runs in the compiled step (`ops.cond`), so it works under the TensorFlow
  and JAX loops and `keras.distribution` (where the batch it sees is the global one).
- `dead_code_threshold > 0`: after every training step, a code whose EMA count is below that
  fraction of the uniform share (batch size / codebook size) is re-seeded from the batch's
  encoder outputs worst served by their code, with its statistics restarted at the uniform
  share. Random initial codes far from the data are never chosen, so their counts decay to
  zero and they come back next to the data instead of staying dead.
Both act on EMA codebooks (`use_ema=True`); gradient-trained codebooks keep their values.

Dead codes are also tracked in `steps_unused` and re-seeded from `recent_inputs` (the latest
batch's encoder outputs) by the callback `kerasvq.training.CodebookReset`, for users who want
the reset on a schedule of their own.

Example:
    >>> vq = VectorQuantizer(num_heads=4, codebook_size=256)
    >>> z = keras.random.normal((32, 512))
    >>> vq.initialize_codebook(np.asarray(z))  # k-means per head
    >>> quantized, codes = vq(z, training=True)
    >>> codes.shape
    (32, 4)
    >>> vq.lookup(codes).shape
    (32, 512)
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from kerasvq.layers.kmeans import kmeans, nearest_center
from kerasvq.layers.residual_search import beam_search, follow_path

GRADIENTS = ("straight_through", "rotation")


def cross_correlation_loss(parts) -> "Tensor":
    """Mean squared cross-correlation between every pair of `parts` ((N, d_i) tensors).

    Each column is centered and scaled to unit norm over the batch, so an entry of
    `a.T @ b` is the Pearson correlation (the cosine of the centered columns) of one
    dimension of `a` with one of `b`; 0 means the parts carry linearly unrelated signals.
    The widths d_i may differ.
    """
    normed = [
        VectorQuantizer._normalize(p - ops.mean(p, axis=0, keepdims=True), axis=0)
        for p in (ops.cast(p, "float32") for p in parts)
    ]
    total, pairs = 0.0, 0
    for a in range(len(normed)):
        for b in range(a + 1, len(normed)):
            total = total + ops.mean(ops.square(ops.einsum("nd,ne->de", normed[a], normed[b])))
            pairs += 1
    return total / max(pairs, 1)


@keras.saving.register_keras_serializable(package="kerasvq")
class VectorQuantizer(keras.layers.Layer):
    """Product quantizer with EMA (or trained) codebooks and anti-collapse state.

    Args:
        num_heads: codebooks; the input's last axis is split into this many slices.
        codebook_size: codes per head (K).
        decay: EMA decay of counts and sums (ignored when `use_ema=False`).
        epsilon: Laplace pseudo-count placed at the current code.
        commitment_cost: β of the commitment loss.
        use_ema: EMA codebook updates (True) or gradient-trained codebooks (False).
        cosine: quantize directions: inputs and codes are L2-normalized per head.
        gradient: "straight_through" or "rotation".
        orthogonal_weight: weight of the between-heads orthogonality loss.
        entropy_weight: weight of the diversity (entropy) loss.
        entropy_temperature: temperature of the soft assignments used by the entropy loss.
        buffer_size: how many recent encoder outputs per head to keep for re-seeding.
        residual: residual quantization instead of product: every head has a full-width
            codebook and quantizes what the previous heads left (`num_heads` levels).
        kmeans_init: fit the codebooks by k-means to the first training inputs, unless they
            were set explicitly before (EMA codebooks only).
        kmeans_rows: how many training rows the k-means sees (at least `codebook_size`;
            default 8 × codebook_size).
        kmeans_iterations: Lloyd iterations of that k-means.
        dead_code_threshold: a code whose EMA count falls below this fraction of the uniform
            share is re-seeded during training; 0 turns the in-layer re-seeding off.
        beam_size: residual mode: the codes are found by a beam search keeping this many
            best partial reconstructions per level (1: greedy, the earlier behaviour).
        conditioning_dim: residual mode: hidden width of each level's codeword correction
            `f_h(c, x̂)` (QINCo's implicit codebooks, levels after the first; trained by
            gradient, started at zero so the layer starts as the plain residual quantizer);
            0 turns it off.
        conditioning_candidates: how many base-nearest codes per beam are re-scored with
            their conditioned codewords.
    """

    def __init__(
        self,
        num_heads: int = 1,
        codebook_size: int = 256,
        decay: float = 0.99,
        epsilon: float = 1e-5,
        commitment_cost: float = 0.25,
        use_ema: bool = True,
        cosine: bool = False,
        gradient: str = "straight_through",
        orthogonal_weight: float = 0.0,
        entropy_weight: float = 0.0,
        entropy_temperature: float = 1.0,
        buffer_size: int | None = None,
        residual: bool = False,
        kmeans_init: bool = True,
        kmeans_rows: int | None = None,
        kmeans_iterations: int = 10,
        dead_code_threshold: float = 0.1,
        beam_size: int = 1,
        conditioning_dim: int = 0,
        conditioning_candidates: int = 16,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if gradient not in GRADIENTS:
            raise ValueError(f"gradient must be one of {GRADIENTS}, got {gradient!r}")
        if num_heads < 1 or codebook_size < 2:
            raise ValueError("num_heads must be ≥ 1 and codebook_size ≥ 2")
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.num_heads = int(num_heads)
        self.codebook_size = int(codebook_size)
        self.decay = float(decay)
        self.epsilon = float(epsilon)
        self.commitment_cost = float(commitment_cost)
        self.use_ema = bool(use_ema)
        self.cosine = bool(cosine)
        self.gradient = gradient
        self.orthogonal_weight = float(orthogonal_weight)
        self.entropy_weight = float(entropy_weight)
        self.entropy_temperature = float(entropy_temperature)
        self.buffer_size = int(buffer_size or codebook_size)
        self.residual = bool(residual)
        if self.residual and self.cosine:
            raise ValueError("residual quantization needs Euclidean codebooks (cosine=False)")
        self.kmeans_init = bool(kmeans_init)
        self.kmeans_rows = int(kmeans_rows or 8 * self.codebook_size)
        if self.kmeans_rows < self.codebook_size:
            raise ValueError(f"kmeans_rows ({self.kmeans_rows}) must be at least codebook_size ({self.codebook_size})")
        self.kmeans_iterations = int(kmeans_iterations)
        if dead_code_threshold < 0:
            raise ValueError(f"dead_code_threshold must be ≥ 0, got {dead_code_threshold}")
        self.dead_code_threshold = float(dead_code_threshold)
        self.beam_size = int(beam_size)
        self.conditioning_dim = int(conditioning_dim)
        self.conditioning_candidates = int(conditioning_candidates)
        if self.beam_size < 1 or self.conditioning_dim < 0 or self.conditioning_candidates < 1:
            raise ValueError("beam_size and conditioning_candidates must be ≥ 1, conditioning_dim ≥ 0")
        if not self.residual and (self.beam_size > 1 or self.conditioning_dim):
            raise ValueError("beam_size > 1 and conditioning_dim need residual=True")
        self.head_dim = None

    def build(self, input_shape):
        dim = input_shape[-1]
        if self.residual:
            self.head_dim = dim
        elif dim is None or dim % self.num_heads:
            raise ValueError(
                f"VectorQuantizer: input width {dim} must be divisible by num_heads={self.num_heads}"
            )
        else:
            self.head_dim = dim // self.num_heads
        h, k, d = self.num_heads, self.codebook_size, self.head_dim
        init = keras.initializers.RandomNormal(stddev=1.0 / math.sqrt(d))
        self.codebook = self.add_weight(
            name="codebook", shape=(h, k, d), initializer=init, dtype="float32",
            trainable=not self.use_ema, autocast=False,
        )
        self.ema_count = self.add_weight(
            name="ema_count", shape=(h, k), initializer="ones", dtype="float32", trainable=False, autocast=False
        )
        self.ema_sum = self.add_weight(
            name="ema_sum", shape=(h, k, d), initializer="zeros", dtype="float32", trainable=False, autocast=False
        )
        self.steps_unused = self.add_weight(
            name="steps_unused", shape=(h, k), initializer="zeros", dtype="float32", trainable=False, autocast=False
        )
        self.recent_inputs = self.add_weight(
            name="recent_inputs", shape=(h, self.buffer_size, d), initializer="zeros",
            dtype="float32", trainable=False, autocast=False,
        )
        # Created last, so that a model saved before they existed still finds its variables
        # at the same positions (`load_own_variables`).
        self.initialized = self.add_weight(
            name="initialized", shape=(), initializer="zeros" if self._warms_up else "ones",
            dtype="float32", trainable=False, autocast=False,
        )
        if self._warms_up:
            self.kmeans_filled = self.add_weight(
                name="kmeans_filled", shape=(), initializer="zeros", dtype="float32", trainable=False, autocast=False
            )
            self.kmeans_buffer = self.add_weight(
                name="kmeans_buffer", shape=(1 if self.residual else h, self.kmeans_rows, d), initializer="zeros",
                dtype="float32", trainable=False, autocast=False,
            )
        if self.conditioning_dim:
            # after every older variable, so that saved layers without it keep their positions
            m, levels = self.conditioning_dim, h - 1
            glorot = keras.initializers.VarianceScaling(1.0, "fan_in", "normal")
            self.cond_code = self.add_weight(name="cond_code", shape=(max(levels, 1), d, m), initializer=glorot,
                                             dtype="float32", autocast=False)
            self.cond_recon = self.add_weight(name="cond_recon", shape=(max(levels, 1), d, m), initializer=glorot,
                                              dtype="float32", autocast=False)
            self.cond_bias = self.add_weight(name="cond_bias", shape=(max(levels, 1), m), initializer="zeros",
                                             dtype="float32", autocast=False)
            self.cond_out = self.add_weight(name="cond_out", shape=(max(levels, 1), m, d), initializer="zeros",
                                            dtype="float32", autocast=False)
        if self.cosine:
            self.codebook.assign(self._normalize(self.codebook))
        self.ema_sum.assign(ops.convert_to_tensor(self.codebook) * 1.0)

    @property
    def _warms_up(self) -> bool:
        """Whether the layer fits its codebooks to the first training rows (in-layer k-means)."""
        return self.kmeans_init and self.use_ema

    LEGACY_VARIABLES = 5  # codebook, ema_count, ema_sum, steps_unused, recent_inputs

    def load_own_variables(self, store):
        """Also loads layers saved before the k-means state existed: they were trained or
        initialized explicitly, so they load as initialized."""
        if len(store.keys()) == self.LEGACY_VARIABLES:
            all_vars = self._trainable_variables + self._non_trainable_variables
            for i, v in enumerate(all_vars[: self.LEGACY_VARIABLES]):
                v.assign(store[f"{i}"])
            self.initialized.assign(1.0)
            return
        super().load_own_variables(store)

    # ---- helpers -------------------------------------------------------------------------
    @staticmethod
    def _normalize(x, axis=-1):
        return x / ops.sqrt(ops.maximum(ops.sum(ops.square(x), axis=axis, keepdims=True), 1e-12))

    def _split(self, inputs):
        """(..., H*d) → (N, H, d) float32; residual mode: (..., d) → (N, 1, d)."""
        z = ops.cast(inputs, "float32")
        return ops.reshape(z, (-1, 1 if self.residual else self.num_heads, self.head_dim))

    def _distances(self, z):
        """Squared distances (N, H, K) in float32 (negative cosine + 1 when `cosine`)."""
        codebook = ops.convert_to_tensor(self.codebook)
        if self.cosine:
            return 1.0 - ops.einsum("nhd,hkd->nhk", z, codebook)
        z2 = ops.sum(ops.square(z), axis=-1, keepdims=True)
        c2 = ops.sum(ops.square(codebook), axis=-1)[None]
        return z2 - 2.0 * ops.einsum("nhd,hkd->nhk", z, codebook) + c2

    def _gather(self, codes):
        """codes (N, H) → code vectors (N, H, d)."""
        codebook = ops.convert_to_tensor(self.codebook)
        return ops.stack(
            [ops.take(codebook[i], codes[:, i], axis=0) for i in range(self.num_heads)], axis=1
        )

    def _rotate(self, z, q):
        """The rotation trick: a value equal to q whose gradient w.r.t. z is a fixed rotation + scale."""
        eps = 1e-6
        z_norm = ops.sqrt(ops.sum(ops.square(z), axis=-1, keepdims=True) + eps)
        q_norm = ops.sqrt(ops.sum(ops.square(q), axis=-1, keepdims=True) + eps)
        z_hat = ops.stop_gradient(z / z_norm)
        q_hat = ops.stop_gradient(q / q_norm)
        r = self._normalize(z_hat + q_hat)
        rotated = (
            z
            - 2.0 * ops.sum(z * r, axis=-1, keepdims=True) * r
            + 2.0 * ops.sum(z * z_hat, axis=-1, keepdims=True) * q_hat
        )
        return ops.stop_gradient(q_norm / z_norm) * rotated

    # ---- forward ---------------------------------------------------------------------------
    def _assign(self, z):
        """Head inputs (N, H, d), distances (N, H, K), codes (N, H) and code vectors (N, H, d).

        Product mode: head h sees slice h of `z`. Residual mode: head h sees what the heads
        before it left unexplained, `z − Σ_{j<h} q_j`.
        """
        if not self.residual:
            distances = self._distances(z)
            codes = ops.argmin(distances, axis=-1)
            return z, distances, codes, self._gather(codes)
        if self._searches:
            return self._assign_searched(z[:, 0])
        codebook = ops.convert_to_tensor(self.codebook)
        residual, inputs, dists, codes, qs = z[:, 0], [], [], [], []
        for h in range(self.num_heads):
            d = (
                ops.sum(ops.square(residual), axis=-1, keepdims=True)
                - 2.0 * ops.matmul(residual, ops.transpose(codebook[h]))
                + ops.sum(ops.square(codebook[h]), axis=-1)[None]
            )
            c = ops.argmin(d, axis=-1)
            q = ops.take(codebook[h], c, axis=0)
            inputs.append(residual)
            dists.append(d)
            codes.append(c)
            qs.append(q)
            residual = residual - q
        stack = lambda xs: ops.stack(xs, axis=1)
        return stack(inputs), stack(dists), stack(codes), stack(qs)

    @property
    def _searches(self) -> bool:
        """Residual codes found by beam search and/or scored with conditioned codewords."""
        return self.residual and (self.beam_size > 1 or self.conditioning_dim > 0)

    def _correction(self, h, words, recon):
        """Level h's codeword offsets f_h(c, x̂): words (N, b, A, d), recon (N, b, d)."""
        i = h - 1
        hidden = (ops.einsum("nbad,dm->nbam", words, self.cond_code[i])
                  + ops.einsum("nbd,dm->nbm", recon, self.cond_recon[i])[:, :, None, :] + self.cond_bias[i])
        return ops.einsum("nbam,md->nbad", ops.gelu(hidden), self.cond_out[i])

    def _assign_searched(self, x):
        """Residual assignment by beam search: the search itself takes no gradient; the levels'
        inputs, distances and codewords are then recomputed along the codes it found, so that
        the corrections get their gradient. With conditioning the EMA target of a base code is
        the residual minus its correction (the base codeword plus the correction should meet
        the residual)."""
        codebook = ops.convert_to_tensor(self.codebook)
        correction = self._correction if self.conditioning_dim else None
        codes = ops.stop_gradient(beam_search(ops.stop_gradient(x), codebook, self.beam_size, correction,
                                              self.conditioning_candidates))
        residuals, dists, words, offsets = follow_path(x, codebook, codes, correction)
        return residuals - ops.stop_gradient(offsets), dists, codes, words

    def _combine(self, q):
        """Per-head code vectors (N, H, d) → the quantized vector (N, width)."""
        if self.residual:
            return ops.sum(q, axis=1)
        return ops.reshape(q, (-1, self.num_heads * self.head_dim))

    def call(self, inputs, training=None):
        shape = ops.shape(inputs)
        z = self._split(inputs)
        if self.cosine:
            z = self._normalize(z)
        head_inputs, distances, codes, q = self._assign(z)
        z_flat, q_flat = self._combine(z if not self.residual else z[:, :1]), self._combine(q)
        if training and self._warms_up:
            # Until the k-means has run, pass the input through: the random initial codes
            # would only pull the encoder away from the data.
            live = self.initialized > 0.5
            q_flat = ops.where(live, q_flat, z_flat)
            if not self.residual:
                q = ops.where(live, q, head_inputs)

        commitment = ops.mean(ops.square(z_flat - ops.stop_gradient(q_flat)))
        self.add_loss(self.commitment_cost * commitment)
        if not self.use_ema:
            self.add_loss(ops.mean(ops.square(ops.stop_gradient(z_flat) - q_flat)))

        if self.gradient == "rotation":
            if self.residual:
                q_out = self._rotate(z_flat, ops.stop_gradient(q_flat))
            else:
                q_out = self._combine(self._rotate(z, ops.stop_gradient(q)))
        else:
            q_out = z_flat + ops.stop_gradient(q_flat - z_flat)
        if self.conditioning_dim:
            # the corrections are trained by the quantization error and, through the
            # decoder, by the model's loss (q_out's value is unchanged)
            self.add_loss(ops.mean(ops.square(ops.stop_gradient(z_flat) - q_flat)))
            q_out = q_out + (q_flat - ops.stop_gradient(q_flat))
        if self.orthogonal_weight > 0 and self.num_heads > 1:
            per_head = head_inputs + ops.stop_gradient(q - head_inputs)
            self.add_loss(self.orthogonal_weight * self._orthogonal_loss(per_head))
        if self.entropy_weight > 0:
            self.add_loss(self.entropy_weight * self._entropy_loss(distances))
        if training:
            self._update_state(ops.stop_gradient(head_inputs), codes, ops.stop_gradient(distances), z)

        lead = tuple(shape[:-1])
        quantized = ops.reshape(ops.cast(q_out, self.compute_dtype), shape)
        codes = ops.reshape(ops.cast(codes, "int32"), lead + (self.num_heads,))
        return quantized, codes

    def _orthogonal_loss(self, q):
        """Mean squared cosine between every pair of heads' (used) code vectors in the batch."""
        return cross_correlation_loss([q[:, h] for h in range(self.num_heads)])

    def _entropy_loss(self, distances):
        probs = ops.softmax(-distances / self.entropy_temperature, axis=-1)
        log_probs = ops.log(ops.maximum(probs, 1e-9))
        sample_entropy = -ops.mean(ops.sum(probs * log_probs, axis=-1))
        avg = ops.mean(probs, axis=0)
        batch_entropy = -ops.mean(ops.sum(avg * ops.log(ops.maximum(avg, 1e-9)), axis=-1))
        return (sample_entropy - batch_entropy) / math.log(self.codebook_size)

    def _update_state(self, z, codes, distances, inputs):
        """Usage counters, the re-seeding buffer, (with EMA) the codebook, the in-layer k-means
        and dead-code re-seeding; training only.

        z: head inputs (N, H, d); codes (N, H); distances (N, H, K); inputs: the layer's
        (normalized) input split per head, (N, H, d) or (N, 1, d) in residual mode.
        """
        z = ops.stop_gradient(z)
        onehot = ops.one_hot(codes, self.codebook_size, dtype="float32")
        counts = ops.sum(onehot, axis=0)
        ema_count = self.decay * self.ema_count + (1.0 - self.decay) * counts
        steps_unused = ops.where(counts > 0, 0.0, ops.convert_to_tensor(self.steps_unused) + 1.0)
        rows = ops.mod(ops.arange(self.buffer_size), ops.shape(z)[0])
        self.recent_inputs.assign(ops.transpose(ops.take(z, rows, axis=0), (1, 0, 2)))
        if not self.use_ema:
            self.ema_count.assign(ema_count)
            self.steps_unused.assign(steps_unused)
            return
        sums = ops.einsum("nhk,nhd->hkd", onehot, z)
        ema_sum = self.decay * self.ema_sum + (1.0 - self.decay) * sums
        codebook = (ema_sum + self.epsilon * self.codebook) / (ema_count[..., None] + self.epsilon)
        if self.cosine:
            codebook = self._normalize(codebook)
        live = None
        if self._warms_up:
            live = self.initialized > 0.5
            codebook, ema_count, ema_sum, steps_unused = self._warm_up(
                ops.stop_gradient(inputs), live, codebook, ema_count, ema_sum, steps_unused)
        if self.dead_code_threshold > 0:
            codebook, ema_count, ema_sum, steps_unused = self._reseed_dead(
                z, distances, codes, live, codebook, ema_count, ema_sum, steps_unused)
        self.ema_count.assign(ema_count)
        self.steps_unused.assign(steps_unused)
        self.ema_sum.assign(ema_sum)
        self.codebook.assign(codebook)

    # ---- in-layer k-means and dead-code re-seeding (traced: ops only) -------------------------
    @staticmethod
    def _worst_rows(rows, errors, dead):
        """For every dead code, one of the rows its head serves worst, in order of error.

        rows (H, N, d), errors (H, N), dead (H, K) bool → (H, K, d): the i-th dead code of a
        head gets that head's i-th worst row (cycling when there are more dead codes than rows).
        """
        h, n = ops.shape(rows)[0], ops.shape(rows)[1]
        order = ops.argsort(-errors, axis=-1)
        rank = ops.maximum(ops.cumsum(ops.cast(dead, "int32"), axis=-1) - 1, 0)
        pick = ops.take_along_axis(order, ops.mod(rank, n), axis=-1)
        flat = ops.reshape(rows, (-1, ops.shape(rows)[-1]))
        index = pick + ops.arange(h, dtype=pick.dtype)[:, None] * n
        return ops.reshape(ops.take(flat, ops.reshape(index, (-1,)), axis=0), (h, -1, ops.shape(rows)[-1]))

    def _lloyd(self, rows):
        """k-means of every head at once: rows (H, B, d) → centers (H, K, d), counts (H, K)
        and the rows' assignments (H, B). Seeds are evenly spaced buffer rows (the buffer
        holds shuffled batches); empty clusters restart at the worst-fit rows."""
        b, k = self.kmeans_rows, self.codebook_size
        centers = ops.take(rows, ops.arange(k) * (b // k), axis=1)
        r2 = ops.sum(ops.square(rows), axis=-1)[..., None]

        def assign(centers):
            d = r2 - 2.0 * ops.einsum("hbd,hkd->hbk", rows, centers) + ops.sum(ops.square(centers), axis=-1)[:, None]
            return d, ops.argmin(d, axis=-1)

        for _ in range(self.kmeans_iterations):
            d, labels = assign(centers)
            onehot = ops.one_hot(labels, k, dtype="float32")
            cnt = ops.sum(onehot, axis=1)
            means = ops.einsum("hbk,hbd->hkd", onehot, rows) / ops.maximum(cnt, 1.0)[..., None]
            restart = self._worst_rows(rows, ops.min(d, axis=-1), cnt < 0.5)
            centers = ops.where((cnt > 0.5)[..., None], means, restart)
            if self.cosine:
                centers = self._normalize(centers)
        _, labels = assign(centers)
        return centers, ops.sum(ops.one_hot(labels, k, dtype="float32"), axis=1), labels

    def _kmeans(self, buffer):
        """Codebooks (H, K, d) and per-code row counts (H, K) from the k-means buffer;
        residual mode fits level after level on what the previous levels leave."""
        if not self.residual:
            return self._lloyd(self._normalize(buffer) if self.cosine else buffer)[:2]
        residual, books, counts = buffer, [], []
        for _ in range(self.num_heads):
            centers, cnt, labels = self._lloyd(residual)
            residual = residual - ops.take(centers[0], labels[0], axis=0)[None]
            books.append(centers[0])
            counts.append(cnt[0])
        return ops.stack(books), ops.stack(counts)

    def _warm_up(self, inputs, live, codebook, ema_count, ema_sum, steps_unused):
        """Until `initialized`: append the batch to the k-means buffer, keep the codebook
        statistics as they are, and run the k-means on the step that fills the buffer."""
        x = ops.transpose(inputs, (1, 0, 2))  # (H or 1, N, d)
        n = ops.shape(x)[1]
        before = ops.convert_to_tensor(self.kmeans_buffer)
        filled = ops.cast(self.kmeans_filled, "int32")
        source = ops.arange(self.kmeans_rows, dtype="int32") - filled
        valid = (source >= 0) & (source < n)
        rows = ops.take(x, ops.clip(source, 0, n - 1), axis=1)
        buffer = ops.where(valid[None, :, None], rows, before)
        new_filled = ops.minimum(filled + n, self.kmeans_rows)
        ready = ops.logical_and(ops.logical_not(live), new_filled >= self.kmeans_rows)
        old_book, old_count, old_sum = (ops.convert_to_tensor(v) for v in (self.codebook, self.ema_count, self.ema_sum))
        book, cnt = ops.cond(ready, lambda: self._kmeans(buffer), lambda: (old_book, old_count))
        # counts per batch of n rows, as the EMA keeps them
        cnt = cnt * (ops.cast(n, "float32") / self.kmeans_rows)
        keep = lambda trained, fitted, before: ops.where(live, trained, ops.where(ready, fitted, before))
        codebook = keep(codebook, book, old_book)
        ema_sum = keep(ema_sum, book * cnt[..., None], old_sum)
        ema_count = keep(ema_count, cnt, old_count)
        steps_unused = ops.where(live, steps_unused, ops.zeros_like(steps_unused))
        self.kmeans_buffer.assign(ops.where(live, before, buffer))
        self.kmeans_filled.assign(ops.cast(new_filled, "float32"))
        self.initialized.assign(ops.where(ops.logical_or(live, ready), 1.0, 0.0))
        return codebook, ema_count, ema_sum, steps_unused

    def _reseed_dead(self, z, distances, codes, live, codebook, ema_count, ema_sum, steps_unused):
        """Codes whose EMA count is below `dead_code_threshold` × the uniform share restart
        at the batch's worst-served rows, with the uniform share as their count."""
        # the uniform share of this batch (not of the EMA counts, which lag for hundreds of
        # steps behind a start at count 1 per code)
        uniform = ops.cast(ops.shape(z)[0], "float32") / self.codebook_size * ops.ones_like(ema_count[:, :1])
        dead = ema_count < self.dead_code_threshold * uniform
        if live is not None:
            dead = ops.logical_and(dead, live)
        rows = ops.transpose(z, (1, 0, 2))  # (H, N, d)
        error = ops.take_along_axis(distances, ops.expand_dims(codes, -1), axis=-1)[..., 0]
        seeds = self._worst_rows(rows, ops.transpose(error), dead)
        if self.cosine:
            seeds = self._normalize(seeds)
        uniform = ops.broadcast_to(uniform, ops.shape(ema_count))
        codebook = ops.where(dead[..., None], seeds, codebook)
        ema_count = ops.where(dead, uniform, ema_count)
        ema_sum = ops.where(dead[..., None], seeds * uniform[..., None], ema_sum)
        steps_unused = ops.where(dead, 0.0, steps_unused)
        return codebook, ema_count, ema_sum, steps_unused

    # ---- codes in, codes out -----------------------------------------------------------------
    def get_codes(self, inputs):
        """Nearest code per head, (..., H) int32, without touching any state."""
        z = self._split(inputs)
        if self.cosine:
            z = self._normalize(z)
        codes = ops.cast(self._assign(z)[2], "int32")
        return ops.reshape(codes, tuple(ops.shape(inputs)[:-1]) + (self.num_heads,))

    def lookup(self, codes):
        """Integer codes (..., H) → quantized vectors (..., width) in the compute dtype."""
        codes = ops.cast(codes, "int32")
        lead = tuple(ops.shape(codes)[:-1])
        flat = ops.reshape(codes, (-1, self.num_heads))
        width = self.head_dim if self.residual else self.num_heads * self.head_dim
        if self.conditioning_dim:
            words = follow_path(None, ops.convert_to_tensor(self.codebook), flat, self._correction)[2]
        else:
            words = self._gather(flat)
        q = ops.reshape(self._combine(words), lead + (width,))
        return ops.cast(q, self.compute_dtype)

    # ---- anti-collapse state (called outside the compiled step) ---------------------------
    def initialize_codebook(self, samples, iterations: int = 20, seed: int = 0):
        """k-means (k-means++ seeding) of each head's codebook on a sample of encoder outputs."""
        if not self.built:
            self.build(np.shape(samples))
        if self.residual:  # residual k-means: each level fits what the previous ones left
            residual, books = np.asarray(samples, dtype=np.float32).reshape(-1, self.head_dim), []
            for h in range(self.num_heads):
                book = kmeans(residual, self.codebook_size, iterations, seed + h)
                residual = residual - book[nearest_center(residual, book)]
                books.append(book)
            self.set_codes(np.stack(books))
            return
        z = np.asarray(samples, dtype=np.float32).reshape(-1, self.num_heads, self.head_dim)
        if self.cosine:
            z = z / np.maximum(np.linalg.norm(z, axis=-1, keepdims=True), 1e-12)
        books = np.stack(
            [kmeans(z[:, h], self.codebook_size, iterations, seed + h, spherical=self.cosine)
             for h in range(self.num_heads)]
        )
        self.set_codes(books)

    def set_codes(self, codebook, heads_codes=None, count=None):
        """Replaces codes (all, or `heads_codes=(head_idx, code_idx)`) and resets their statistics."""
        book = np.array(ops.convert_to_numpy(self.codebook))
        ema_count = np.array(ops.convert_to_numpy(self.ema_count))
        steps = np.array(ops.convert_to_numpy(self.steps_unused))
        if heads_codes is None:
            book[...] = codebook
            ema_count[...] = 1.0 if count is None else count
            steps[...] = 0.0
        else:
            book[heads_codes] = codebook
            ema_count[heads_codes] = 1.0 if count is None else count
            steps[heads_codes] = 0.0
        if self.cosine:
            book /= np.maximum(np.linalg.norm(book, axis=-1, keepdims=True), 1e-12)
        self.codebook.assign(book)
        self.ema_count.assign(ema_count)
        self.ema_sum.assign(book * ema_count[..., None])
        self.steps_unused.assign(steps)
        if heads_codes is None:  # set explicitly: the in-layer k-means must not overwrite it
            self.initialized.assign(1.0)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape), tuple(input_shape[:-1]) + (self.num_heads,)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_heads=self.num_heads,
            codebook_size=self.codebook_size,
            decay=self.decay,
            epsilon=self.epsilon,
            commitment_cost=self.commitment_cost,
            use_ema=self.use_ema,
            cosine=self.cosine,
            gradient=self.gradient,
            orthogonal_weight=self.orthogonal_weight,
            entropy_weight=self.entropy_weight,
            entropy_temperature=self.entropy_temperature,
            buffer_size=self.buffer_size,
            residual=self.residual,
            kmeans_init=self.kmeans_init,
            kmeans_rows=self.kmeans_rows,
            kmeans_iterations=self.kmeans_iterations,
            dead_code_threshold=self.dead_code_threshold,
            beam_size=self.beam_size,
            conditioning_dim=self.conditioning_dim,
            conditioning_candidates=self.conditioning_candidates,
        )
        return config
