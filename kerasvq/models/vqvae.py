"""`VQVAE`: sentence-embedding compressor to `num_heads` one-byte codes (default 4 bytes).

Default shape is the earlier "MonolithWiki" model: 384 → Dense 1024 → LayerNorm → GELU →
Dropout → Dense 512, split into 4 heads of 128-d quantized against 256 codes each, and the
mirrored decoder back to 384.

Reconstruction loss scale: the loss is the per-vector *sum* of squared errors divided by the
vector's squared norm, `‖x−x̂‖²/‖x‖²` ("relative"), i.e. the per-element MSE multiplied by
the width. On unit-length MiniLM vectors the elementwise MSE of the zero vector is only
1/384 ≈ 0.0026, so an elementwise MSE next to a commitment loss of order 0.1 lets the
commitment term drown reconstruction (the old model's collapse); the relative error is 1.0
for the zero vector and is directly the reported metric. `"variance"` (MSE divided by the
training data's per-element variance) is the same scale for data that is not normalized;
`"cosine"` (1 − cos) ignores the norm.

`residual=True` makes the heads residual levels (each head's full-width codebook quantizes
what the previous heads left), the structure of FAISS's ResidualQuantizer, in latent space.

`linear_skip=True` adds a linear path next to the MLP in both encoder and decoder, so the
model can represent (and starts close to) a linear product quantizer and the MLP learns the
non-linear correction on top.

Defaults are the production recipe of `versions/vqvae-wiki/config.json`, the best measured
one: commitment cost 1.0, linear skip paths started as the variance-balanced PCA rotation
(`pca_init`, done by `fit` on a sample of its input), k-means codebooks (the quantizer's own
`kmeans_init`, on the first training rows) and dead-code re-seeding (the quantizer's
`dead_code_threshold`, in the layer instead of the runner's `CodebookReset`). On 26,000
clustered unit vectors (2,000 clusters, 384-d), a plain `compile(Adam(1e-3))` + `fit`
(batch 512, 6 epochs) reached a held-out cosine of 0.73 with these defaults, 0.56 with the
earlier ones (commitment 0.25, no linear paths) and the same in-layer measures; without
those measures the earlier defaults collapsed to one code per head. Every `fit` logs the
usage per head each epoch and warns when a head collapses (`CodebookMonitor`).

Example:
    >>> model = VQVAE()
    >>> model.compile(optimizer="adam")
    >>> model.fit(x_train, x_train, epochs=10, batch_size=256)  # PCA, k-means, re-seeding inside
    >>> codes = model.encode(x_test)                 # (N, 4) uint8
    >>> x_hat = model.decode(codes)                  # (N, 384) float32
"""

from __future__ import annotations

from pathlib import Path

import warnings

import keras
import numpy as np
from keras import ops

from kerasvq.data.embeddings import check_finite, check_width
from kerasvq.common.errors import UserError
from kerasvq.common.paths import version_dir
from kerasvq.layers.vector_quantizer import VectorQuantizer
from kerasvq.models.neighbour_ranking import neighbour_ranking_loss
from kerasvq.models.untracked_fit_state import UntrackedFitState
from kerasvq.models.codebook_monitor import FIT_SIGNATURE, MonitoredFit

RECONSTRUCTION_LOSSES = ("relative", "variance", "cosine")


def first_rows(x, n: int, seed: int = 0):
    """Up to `n` input rows of a fit's `x` (a random subset of an array; the first batches of
    a `PyDataset` or `tf.data.Dataset`), or None for inputs that cannot be read twice."""
    def inputs(batch):
        return batch[0] if isinstance(batch, (tuple, list)) else batch

    if x is None:
        return None
    if hasattr(x, "shape") and hasattr(x, "__getitem__") and not isinstance(x, keras.utils.PyDataset):
        rows = np.sort(np.random.default_rng(seed).permutation(len(x))[:n])
        taken = ops.convert_to_numpy(ops.take(x, rows, axis=0)) if ops.is_tensor(x) else x[rows]
        return np.asarray(taken, np.float32)
    if isinstance(x, keras.utils.PyDataset):
        batches = (x[i] for i in range(len(x)))
    elif type(x).__module__.startswith("tensorflow") and hasattr(x, "as_numpy_iterator"):
        batches = x.as_numpy_iterator()
    else:
        return None
    out, total = [], 0
    for batch in batches:
        rows = np.asarray(inputs(batch), np.float32)
        out.append(rows)
        total += len(rows)
        if total >= n:
            break
    return np.concatenate(out)[:n] if out else None


@keras.saving.register_keras_serializable(package="kerasvq")
class VQVAE(MonitoredFit, UntrackedFitState, keras.Model):
    """MLP encoder → product `VectorQuantizer` → MLP decoder over fixed-width embeddings."""

    def __init__(
        self,
        input_dim: int = 384,
        hidden_dim: int = 1024,
        latent_dim: int = 512,
        num_heads: int = 4,
        codebook_size: int = 256,
        dropout: float = 0.1,
        decay: float = 0.99,
        commitment_cost: float = 1.0,
        cosine_codebooks: bool = False,
        gradient: str = "straight_through",
        orthogonal_weight: float = 0.0,
        entropy_weight: float = 0.0,
        reconstruction_loss: str = "relative",
        data_variance: float = 1.0 / 384,
        linear_skip: bool = True,
        residual: bool = False,
        freeze_linear_encoder: bool = False,
        pca_init: bool = True,
        kmeans_init: bool = True,
        dead_code_threshold: float = 0.1,
        beam_size: int = 1,
        conditioning_dim: int = 0,
        conditioning_candidates: int = 16,
        ranking_weight: float = 0.0,
        ranking_temperature: float = 0.05,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if reconstruction_loss not in RECONSTRUCTION_LOSSES:
            raise ValueError(f"reconstruction_loss must be one of {RECONSTRUCTION_LOSSES}")
        if latent_dim % num_heads and not residual:
            raise ValueError(f"latent_dim {latent_dim} must be divisible by num_heads {num_heads}")
        self.input_dim = input_dim
        self.hidden_dim = hidden_dim
        self.latent_dim = latent_dim
        self.num_heads = num_heads
        self.codebook_size = codebook_size
        self.dropout = dropout
        self.decay = decay
        self.commitment_cost = commitment_cost
        self.cosine_codebooks = cosine_codebooks
        self.gradient = gradient
        self.orthogonal_weight = orthogonal_weight
        self.entropy_weight = entropy_weight
        self.reconstruction_loss = reconstruction_loss
        self.data_variance = data_variance
        self.linear_skip = linear_skip
        self.residual = residual
        self.freeze_linear_encoder = freeze_linear_encoder
        self.pca_init = pca_init
        self.kmeans_init = kmeans_init
        self.dead_code_threshold = dead_code_threshold
        self.beam_size = beam_size
        self.conditioning_dim = conditioning_dim
        self.conditioning_candidates = conditioning_candidates
        self.ranking_weight = ranking_weight
        self.ranking_temperature = ranking_temperature
        # The network sees and produces unit-variance elements (x / std). Unit-length 384-d
        # inputs have elements of std 0.05; at that scale one Adam step (≈ lr per weight, over
        # a fan-in of 1024) changes the outputs by far more than the targets' size, the
        # relative error jumps from 1 to ~20 and the latents are flung away from every code
        # within a few steps: the collapse seen in the old runs even after k-means init.
        self._scale = float(1.0 / np.sqrt(data_variance))

        def mlp(width, out, name, out_scale=1.0):
            return keras.Sequential(
                [
                    keras.layers.Dense(width, name=f"{name}_dense_in", dtype=self.dtype_policy),
                    keras.layers.LayerNormalization(name=f"{name}_norm", dtype=self.dtype_policy),
                    keras.layers.Activation("gelu", name=f"{name}_gelu", dtype=self.dtype_policy),
                    keras.layers.Dropout(dropout, name=f"{name}_dropout", dtype=self.dtype_policy),
                    keras.layers.Dense(
                        out,
                        kernel_initializer=keras.initializers.VarianceScaling(out_scale, "fan_in"),
                        name=f"{name}_dense_out",
                        dtype=self.dtype_policy,
                    ),
                ],
                name=name,
            )

        self.encoder = mlp(hidden_dim, latent_dim, "encoder")
        self.decoder = mlp(hidden_dim, input_dim, "decoder")
        self.encoder_skip = self.decoder_skip = None
        if linear_skip:
            self.encoder_skip = keras.layers.Dense(latent_dim, use_bias=False, name="encoder_skip", dtype=self.dtype_policy)
            self.encoder_skip.trainable = not freeze_linear_encoder
            self.decoder_skip = keras.layers.Dense(
                input_dim,
                use_bias=False,
                name="decoder_skip",
                dtype=self.dtype_policy,
            )
        self.quantizer = VectorQuantizer(
            num_heads=num_heads,
            codebook_size=codebook_size,
            decay=decay,
            commitment_cost=commitment_cost,
            cosine=cosine_codebooks,
            gradient=gradient,
            orthogonal_weight=orthogonal_weight,
            entropy_weight=entropy_weight,
            residual=residual,
            kmeans_init=kmeans_init,
            dead_code_threshold=dead_code_threshold,
            beam_size=beam_size,
            conditioning_dim=conditioning_dim,
            conditioning_candidates=conditioning_candidates,
            name="quantizer",
            dtype=self.dtype_policy,
        )

    def build(self, input_shape=None):
        shape = (None, self.input_dim)
        self.encoder.build(shape)
        self.quantizer.build((None, self.latent_dim))
        self.decoder.build((None, self.latent_dim))
        if self.linear_skip:
            self.encoder_skip.build(shape)
            self.decoder_skip.build((None, self.latent_dim))
        self.built = True

    # ---- the three stages --------------------------------------------------------------------
    def _encode(self, x, training=False):
        x = x * self._scale
        z = self.encoder(x, training=training)
        if self.linear_skip:
            z = z + self.encoder_skip(x)
        return z

    def _decode(self, q, training=False):
        x_hat = self.decoder(q, training=training)
        if self.linear_skip:
            x_hat = x_hat + self.decoder_skip(q)
        return x_hat / self._scale

    def call(self, x, training=None):
        z = self._encode(x, training=training)
        q, _ = self.quantizer(z, training=training)
        x_hat = self._decode(q, training=training)
        self.add_loss(self._reconstruction_loss(x, x_hat))
        if self.ranking_weight > 0:
            self.add_loss(self.ranking_weight * neighbour_ranking_loss(x, x_hat, self.ranking_temperature))
        return x_hat

    def _reconstruction_loss(self, x, x_hat):
        x = ops.cast(x, "float32")
        x_hat = ops.cast(x_hat, "float32")
        if self.reconstruction_loss == "relative":
            error = ops.sum(ops.square(x - x_hat), axis=-1)
            return ops.mean(error / ops.maximum(ops.sum(ops.square(x), axis=-1), 1e-12))
        if self.reconstruction_loss == "variance":
            return ops.mean(ops.square(x - x_hat)) / self.data_variance
        unit = lambda v: v / ops.sqrt(ops.maximum(ops.sum(ops.square(v), axis=-1, keepdims=True), 1e-12))
        return ops.mean(1.0 - ops.sum(unit(x) * unit(x_hat), axis=-1))

    # ---- numpy API ------------------------------------------------------------------------------
    def _check(self, x, where: str) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        check_width(x.shape, self.input_dim, where)
        check_finite(x, where)
        return x

    def latents(self, x, batch_size: int = 4096) -> np.ndarray:
        x = self._check(x, "latents input")
        return np.concatenate(
            [ops.convert_to_numpy(self._encode(x[i:i + batch_size])) for i in range(0, len(x), batch_size)]
        ) if len(x) else np.zeros((0, self.latent_dim), np.float32)

    def encode(self, x, batch_size: int = 4096) -> np.ndarray:
        """Embeddings (N, input_dim) → codes (N, num_heads), uint8 when codebook_size ≤ 256."""
        x = self._check(x, "encode input")
        out = [
            ops.convert_to_numpy(self.quantizer.get_codes(self._encode(x[i:i + batch_size])))
            for i in range(0, len(x), batch_size)
        ]
        codes = np.concatenate(out) if out else np.zeros((0, self.num_heads), np.int32)
        return codes.astype(np.uint8 if self.codebook_size <= 256 else np.int32)

    def decode(self, codes, batch_size: int = 4096) -> np.ndarray:
        """Codes (N, num_heads) → reconstructed embeddings (N, input_dim) float32."""
        codes = np.asarray(codes)
        if codes.ndim != 2 or codes.shape[1] != self.num_heads:
            raise UserError(f"decode: expected codes of shape (N, {self.num_heads}), got {codes.shape}")
        if not np.issubdtype(codes.dtype, np.integer):
            raise UserError(f"decode: expected integer codes, got dtype {codes.dtype}")
        bad = np.flatnonzero(((codes < 0) | (codes >= self.codebook_size)).any(axis=1))
        if bad.size:
            rows = ", ".join(str(i) for i in bad[:10])
            raise UserError(f"decode: codes out of range 0..{self.codebook_size - 1} in rows {rows}")
        out = [
            ops.convert_to_numpy(
                ops.cast(self._decode(self.quantizer.lookup(codes[i:i + batch_size].astype(np.int32))), "float32")
            )
            for i in range(0, len(codes), batch_size)
        ]
        return np.concatenate(out) if out else np.zeros((0, self.input_dim), np.float32)

    def initialize_linear_paths(self, x):
        """Sets the linear skips to a PCA basis whose components are allocated to the heads
        so that every head gets a similar share of the variance ("eigenvalue allocation",
        as in OPQ's non-parametric initialisation), and zeroes the MLP branches' output
        layers. The model then starts as a PQ on a balanced rotation — a rotated product
        quantizer — and training learns non-linear corrections on top of that geometry.
        The encoder's linear path is kept fixed (not trained): moving it moves every latent at
        once, and the codes with them."""
        if not self.linear_skip:
            raise ValueError("initialize_linear_paths needs linear_skip=True")
        x = self._check(x, "initialize_linear_paths input") * self._scale
        centered = x - x.mean(0)
        eigval, eigvec = np.linalg.eigh(centered.T @ centered / len(x))
        order = np.argsort(eigval)[::-1]
        head_dim = self.latent_dim // self.num_heads
        per_head = min(head_dim, -(-self.input_dim // self.num_heads))
        log_var = np.zeros(self.num_heads)
        filled = [[] for _ in range(self.num_heads)]
        for i in order:
            open_heads = [h for h in range(self.num_heads) if len(filled[h]) < per_head]
            if not open_heads:
                break
            h = min(open_heads, key=lambda j: log_var[j])
            filled[h].append(i)
            log_var[h] += np.log(max(eigval[i], 1e-12))
        w = np.zeros((self.input_dim, self.latent_dim), np.float32)
        if self.residual:  # every level sees the whole space: the plain PCA basis
            filled = [list(order[: self.latent_dim])]
            head_dim = 0
        for h, comps in enumerate(filled):
            w[:, h * head_dim: h * head_dim + len(comps)] = eigvec[:, comps]
        self.encoder_skip.kernel.assign(w)
        self.encoder_skip.trainable = False
        self.freeze_linear_encoder = True
        self.decoder_skip.kernel.assign(w.T.copy())
        for mlp in (self.encoder, self.decoder):
            out = mlp.layers[-1]
            out.kernel.assign(np.zeros(out.kernel.shape, np.float32))
            out.bias.assign(np.zeros(out.bias.shape, np.float32))

    def initialize_codebooks(self, x, iterations: int = 20, seed: int = 0, method: str = "kmeans",
                             rq_beam: int = 32):
        """Every head's codebook from the encoder outputs of a data sample: k-means per head
        (residual k-means in residual mode), or with `method="faiss_rq"` (residual mode) the
        centroids of FAISS's `ResidualQuantizer` trained with beam search `rq_beam`, so that the
        model starts at the classical quantizer's quality and training fine-tunes from there."""
        if method == "kmeans":
            self.quantizer.initialize_codebook(self.latents(x), iterations, seed)
            return
        if method != "faiss_rq" or not self.residual:
            raise UserError(f"initialize_codebooks: method must be 'kmeans', or 'faiss_rq' with residual=True; "
                            f"got {method!r} (residual={self.residual})")
        from kerasvq.layers.faiss_init import residual_codebooks

        z = self.latents(x)
        self.quantizer.set_codes(residual_codebooks(z, self.num_heads, self.codebook_size, rq_beam))

    def get_config(self):
        config = super().get_config()
        config.update(
            input_dim=self.input_dim,
            hidden_dim=self.hidden_dim,
            latent_dim=self.latent_dim,
            num_heads=self.num_heads,
            codebook_size=self.codebook_size,
            dropout=self.dropout,
            decay=self.decay,
            commitment_cost=self.commitment_cost,
            cosine_codebooks=self.cosine_codebooks,
            gradient=self.gradient,
            orthogonal_weight=self.orthogonal_weight,
            entropy_weight=self.entropy_weight,
            reconstruction_loss=self.reconstruction_loss,
            data_variance=self.data_variance,
            linear_skip=self.linear_skip,
            residual=self.residual,
            freeze_linear_encoder=self.freeze_linear_encoder,
            pca_init=self.pca_init,
            kmeans_init=self.kmeans_init,
            dead_code_threshold=self.dead_code_threshold,
            beam_size=self.beam_size,
            conditioning_dim=self.conditioning_dim,
            conditioning_candidates=self.conditioning_candidates,
            ranking_weight=self.ranking_weight,
            ranking_temperature=self.ranking_temperature,
        )
        return config

    # ---- the plain fit path initializes like the production runner ---------------------------
    def fit(self, *args, **kwargs):
        """`keras.Model.fit`, after the PCA start of the linear paths (`pca_init`).

        The PCA runs on up to `PCA_SAMPLE` rows of the training input (an array, a
        `PyDataset` or a `tf.data.Dataset`) unless the linear paths or the codebooks were
        initialized explicitly first: moving the latents afterwards would strand codebooks
        fitted to the old ones. The codebooks then follow by the quantizer's own k-means.
        """
        if self._needs_pca_start():
            sample = first_rows(FIT_SIGNATURE.bind(self, *args, **kwargs).arguments.get("x"), self.PCA_SAMPLE)
            if sample is None:
                warnings.warn("VQVAE.fit: the linear paths start from their random init (pca_init needs an "
                              "array, a PyDataset or a tf.data.Dataset as x); call model.initialize_linear_paths(x) "
                              "first for the PCA start", stacklevel=2)
            else:
                self.initialize_linear_paths(sample)
        return super().fit(*args, **kwargs)

    PCA_SAMPLE = 8192

    def _needs_pca_start(self) -> bool:
        if not (self.linear_skip and self.pca_init) or self.freeze_linear_encoder:
            return False
        if not self.built:
            self.build()
        return float(ops.convert_to_numpy(self.quantizer.initialized)) < 0.5

    def codebook_heads(self) -> list[tuple[VectorQuantizer, list[str]]]:
        """The quantizer and its heads' names, for `CodebookMonitor` and the health check."""
        return [(self.quantizer, [f"head{h}" for h in range(self.num_heads)])]

    @staticmethod
    def default_model_path(name: str = "vqvae-wiki") -> Path:
        """The newest finished run's .keras file under versions/<name>/models/ (files still
        being written, `.`-prefixed or `.partial`, are skipped); one-line error if none."""
        folder = version_dir(name) / "models"
        runs = sorted(
            (p for p in folder.rglob("*.keras") if p.is_file() and not p.name.startswith(".") and ".partial" not in p.name),
            key=lambda p: p.stat().st_mtime,
        ) if folder.is_dir() else []
        if not runs:
            raise UserError(f"{folder}: no trained VQ-VAE; train one with "
                            f"'kerasvq vqvae train --config versions/{name}/config.json'")
        return runs[-1]

    @classmethod
    def load_default(cls, name: str = "vqvae-wiki") -> "VQVAE":
        """The production model, `default_model_path(name)` loaded."""
        return keras.saving.load_model(cls.default_model_path(name))
