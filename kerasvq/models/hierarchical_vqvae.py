"""`HierarchicalVQVAE`: a few discrete tokens per feature category at coarse → fine levels.

Structure (C categories, L levels):
- normalization: the input is raw features; `(x − mean) / std` with the training split's
  statistics, stored in the model (`set_normalization`). Everything below, including the
  reconstruction, is in normalized units.
- `GroupedFeatureEncoder`: one MLP per category over its columns → h_c.
- levels: level l holds ONE `VectorQuantizer(num_heads=C, codebook_size=K_l)`, i.e. one
  codebook per category. Category c's residual r_c (r_c = h_c at the first level) is
  projected down to the level's width, quantized, projected back up, and subtracted, so each
  finer level quantizes what the coarser ones left: r_c ← r_c − up_{l,c}(q_{l,c}).
- the category's embedding e_c = Σ_l up_{l,c}(q_{l,c}) (its quantized encoding); one MLP
  decoder per category maps e_c back to the category's columns.

Losses (add_loss): reconstruction MSE (normalized features); each quantizer's commitment
loss (β = `commitment_cost`); `orthogonality_weight` × the mean squared cross-correlation
between categories' embeddings e_c over the batch (categories should carry unrelated
signals, not copies of each other); `informativeness_weight` × the mean reconstruction MSE
from each proper prefix of levels (coarse only, coarse + medium, ...), so that the coarse
tokens carry most of the information and every added level refines it.

Example:
    >>> model = HierarchicalVQVAE({"temporal": [0, 1, 2], "causality": [3, 4, 5]}, num_features=6)
    >>> model.compile(optimizer="adam")
    >>> model.set_normalization(x.mean(0), x.std(0))
    >>> model.initialize_codebooks(x)                 # k-means per level, on residuals
    >>> model.fit(x, epochs=10, batch_size=128)
    >>> codes = model.encode(x)                       # (N, levels, categories) int32
    >>> coarse = model.decode_codes(codes, levels=1)  # normalized features from coarse tokens
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from kerasvq.data.feature_groups import validate_groups
from kerasvq.common.errors import UserError
from kerasvq.layers.grouped_feature_encoder import GroupedFeatureEncoder, mlp_layers
from kerasvq.layers.vector_quantizer import VectorQuantizer, cross_correlation_loss
from kerasvq.models.untracked_fit_state import UntrackedFitState
from kerasvq.models.codebook_monitor import MonitoredFit

DEFAULT_LEVELS = (
    {"name": "coarse", "dim": 32, "codebook_size": 128},
    {"name": "medium", "dim": 16, "codebook_size": 256},
    {"name": "fine", "dim": 8, "codebook_size": 512},
)


@keras.saving.register_keras_serializable(package="kerasvq")
class HierarchicalVQVAE(MonitoredFit, UntrackedFitState, keras.Model):
    """Grouped encoder → per-level, per-category residual VQ → per-category decoders.

    Args:
        groups: {category: column indices}, covering 0..num_features-1 exactly once.
        num_features: input width.
        levels: list of {"name", "dim", "codebook_size"}, coarse first.
        encoder: default `GroupedFeatureEncoder` settings (hidden_dims, output_dim, dropout,
            activation, batch_norm); decoders mirror the hidden widths.
        encoder_overrides: {category: settings} per category.
        commitment_cost: β of every quantizer's commitment loss.
        decay: EMA decay of the codebooks.
        orthogonality_weight: weight of the between-categories cross-correlation loss.
        informativeness_weight: weight of the prefix-of-levels reconstruction loss.
    """

    def __init__(self, groups, num_features: int, levels=DEFAULT_LEVELS, encoder=None,
                 encoder_overrides=None, commitment_cost: float = 0.45, decay: float = 0.99,
                 orthogonality_weight: float = 0.1, informativeness_weight: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        self.num_features = int(num_features)
        self.groups = validate_groups(dict(groups), self.num_features, "HierarchicalVQVAE groups")
        self.levels = [dict(name=str(l["name"]), dim=int(l["dim"]), codebook_size=int(l["codebook_size"]))
                       for l in levels]
        if not self.levels:
            raise UserError("levels: at least one level is needed")
        self.encoder_settings = dict(encoder or {})
        self.encoder_overrides = {str(g): dict(o) for g, o in (encoder_overrides or {}).items()}
        self.commitment_cost = float(commitment_cost)
        self.decay = float(decay)
        self.orthogonality_weight = float(orthogonality_weight)
        self.informativeness_weight = float(informativeness_weight)
        self.category_names = list(self.groups)
        order = np.concatenate([self.groups[g] for g in self.category_names])
        self._inverse_order = np.argsort(order).astype("int32")

        dtype = self.dtype_policy
        self.encoder = GroupedFeatureEncoder(self.groups, overrides=self.encoder_overrides,
                                             name="encoder", dtype=dtype, **self.encoder_settings)
        self.quantizers, self.down, self.up = [], [], []
        for level in self.levels:
            n = level["name"]
            self.quantizers.append(VectorQuantizer(
                num_heads=len(self.groups), codebook_size=level["codebook_size"], decay=self.decay,
                commitment_cost=self.commitment_cost, name=f"vq_{n}", dtype=dtype))
            self.down.append([keras.layers.Dense(level["dim"], name=f"down_{n}_{g}", dtype=dtype)
                              for g in self.category_names])
            self.up.append([keras.layers.Dense(d, name=f"up_{n}_{g}", dtype=dtype)
                            for g, d in zip(self.category_names, self.encoder.output_dims)])
        self.decoders = []
        for g in self.category_names:
            s = self.encoder.settings(g)
            self.decoders.append(mlp_layers(
                list(reversed(s["hidden_dims"])), len(self.groups[g]), s["dropout"], s["activation"],
                s["batch_norm"], name=f"decoder_{g}", dtype=dtype))

    def build(self, input_shape=None):
        self.feature_mean = self.add_weight(name="feature_mean", shape=(self.num_features,),
                                            initializer="zeros", trainable=False, dtype="float32", autocast=False)
        self.feature_std = self.add_weight(name="feature_std", shape=(self.num_features,),
                                           initializer="ones", trainable=False, dtype="float32", autocast=False)
        self.encoder.build((None, self.num_features))
        dims = self.encoder.output_dims
        for level, vq, down, up in zip(self.levels, self.quantizers, self.down, self.up):
            vq.build((None, len(self.groups) * level["dim"]))
            for c, d in enumerate(dims):
                down[c].build((None, d))
                up[c].build((None, level["dim"]))
        for c, d in enumerate(dims):
            self.decoders[c].build((None, d))
        self.built = True

    # ---- stages ---------------------------------------------------------------------------
    def _normalize(self, x):
        x = ops.cast(x, "float32")
        return (x - self.feature_mean) / self.feature_std

    def _split(self, q, level):
        d = self.levels[level]["dim"]
        return [q[:, c * d:(c + 1) * d] for c in range(len(self.groups))]

    def _level_inputs(self, residuals, level):
        return ops.concatenate([self.down[level][c](r) for c, r in enumerate(residuals)], axis=-1)

    def _up(self, q, level):
        return [self.up[level][c](part) for c, part in enumerate(self._split(q, level))]

    def _decode(self, embeddings, training=None):
        parts = [dec(e, training=training) for dec, e in zip(self.decoders, embeddings)]
        return ops.take(ops.concatenate(parts, axis=-1), self._inverse_order, axis=1)

    def _forward(self, x, training=None, quantize=None):
        """Normalized x, and per level the categories' up-projected quantized vectors.

        `quantize(vq, z)` returns the quantized vector for the level input z; the default
        calls the quantizer (losses and, in training, EMA updates)."""
        quantize = quantize or (lambda vq, z: vq(z, training=training)[0])
        xn = self._normalize(x)
        residuals = self.encoder(xn, training=training)
        per_level = []
        for level, vq in enumerate(self.quantizers):
            ups = self._up(quantize(vq, self._level_inputs(residuals, level)), level)
            residuals = [r - u for r, u in zip(residuals, ups)]
            per_level.append(ups)
        return xn, per_level

    @staticmethod
    def _prefix_embeddings(per_level, levels):
        return [sum(ups[c] for ups in per_level[:levels]) for c in range(len(per_level[0]))]

    def call(self, x, training=None):
        xn, per_level = self._forward(x, training=training)
        embeddings = self._prefix_embeddings(per_level, len(self.levels))
        x_hat = self._decode(embeddings, training=training)
        self.add_loss(ops.mean(ops.square(xn - ops.cast(x_hat, "float32"))))
        if self.orthogonality_weight > 0 and len(self.groups) > 1:
            self.add_loss(self.orthogonality_weight * cross_correlation_loss(embeddings))
        if self.informativeness_weight > 0 and len(self.levels) > 1:
            partial = [
                ops.mean(ops.square(xn - ops.cast(self._decode(self._prefix_embeddings(per_level, k), training), "float32")))
                for k in range(1, len(self.levels))
            ]
            self.add_loss(self.informativeness_weight * sum(partial) / len(partial))
        return x_hat

    # ---- numpy API ------------------------------------------------------------------------
    def set_normalization(self, mean, std):
        """Stores the training split's per-feature mean and std (`fit_normalization`)."""
        self.feature_mean.assign(np.asarray(mean, np.float32))
        self.feature_std.assign(np.asarray(std, np.float32))

    def normalize(self, x) -> np.ndarray:
        return ops.convert_to_numpy(self._normalize(self._check(x)))

    def _check(self, x) -> np.ndarray:
        x = np.asarray(x, np.float32)
        if x.ndim != 2 or x.shape[1] != self.num_features:
            raise UserError(f"expected features of shape (N, {self.num_features}), got {x.shape}")
        bad = np.argwhere(~np.isfinite(x))
        if len(bad):
            raise UserError(f"NaN or inf feature at row {bad[0][0]}, column {bad[0][1]}")
        return x

    def _batched(self, fn, x, batch_size):
        outs = [fn(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
        return [np.concatenate([o[j] for o in outs]) for j in range(len(outs[0]))]

    def encode(self, x, batch_size: int = 2048) -> np.ndarray:
        """Raw features (N, num_features) → codes (N, levels, categories) int32."""
        x = self._check(x)
        codes = []

        def quantize(vq, z):
            c = vq.get_codes(z)
            codes.append(ops.convert_to_numpy(c))
            return vq.lookup(c)

        def run(chunk):
            codes.clear()
            self._forward(chunk, training=False, quantize=quantize)
            return [np.stack(codes, axis=1)]

        return self._batched(run, x, batch_size)[0].astype(np.int32)

    def decode_codes(self, codes, levels: int | None = None, batch_size: int = 2048) -> np.ndarray:
        """Codes (N, levels, categories) → normalized features (N, num_features) from the
        first `levels` levels (all by default; 1 = coarse tokens only)."""
        codes = np.asarray(codes)
        want = (len(self.levels), len(self.groups))
        if codes.ndim != 3 or codes.shape[1:] != want:
            raise UserError(f"decode_codes: expected codes of shape (N, {want[0]}, {want[1]}), got {codes.shape}")
        levels = len(self.levels) if levels is None else int(levels)
        if not 1 <= levels <= len(self.levels):
            raise UserError(f"decode_codes: levels must be in 1..{len(self.levels)}, got {levels}")
        for l in range(levels):
            k = self.levels[l]["codebook_size"]
            if codes[:, l].min() < 0 or codes[:, l].max() >= k:
                raise UserError(f"decode_codes: level {self.levels[l]['name']!r} codes out of range 0..{k - 1}")

        def run(chunk):
            per_level = [self._up(self.quantizers[l].lookup(chunk[:, l]), l) for l in range(levels)]
            x_hat = self._decode(self._prefix_embeddings(per_level, levels), training=False)
            return [ops.convert_to_numpy(ops.cast(x_hat, "float32"))]

        return self._batched(run, codes.astype(np.int32), batch_size)[0]

    def category_embeddings(self, x, batch_size: int = 2048) -> list[np.ndarray]:
        """Raw features → each category's quantized embedding e_c, a list of (N, d_c) arrays."""
        x = self._check(x)

        def run(chunk):
            _, per_level = self._forward(chunk, training=False,
                                         quantize=lambda vq, z: vq.lookup(vq.get_codes(z)))
            return [ops.convert_to_numpy(ops.cast(e, "float32"))
                    for e in self._prefix_embeddings(per_level, len(self.levels))]

        return self._batched(run, x, batch_size)

    def initialize_codebooks(self, x, iterations: int = 20, seed: int = 0):
        """k-means of every level's codebooks, coarse first, each on the residuals the
        already initialized coarser levels leave on the sample `x` (raw features)."""
        x = self._check(x)
        xn = self._normalize(x)
        residuals = self.encoder(xn, training=False)
        for level, vq in enumerate(self.quantizers):
            z = self._level_inputs(residuals, level)
            vq.initialize_codebook(ops.convert_to_numpy(ops.cast(z, "float32")), iterations, seed + 97 * level)
            ups = self._up(vq.lookup(vq.get_codes(z)), level)
            residuals = [r - u for r, u in zip(residuals, ups)]

    def codebook_heads(self) -> list[tuple[VectorQuantizer, list[str]]]:
        """Each level's quantizer and its heads' names (`<level>/<category>`), for
        `CodebookMonitor` and the health check."""
        return [(vq, [f"{level['name']}/{c}" for c in self.category_names])
                for level, vq in zip(self.levels, self.quantizers)]

    def get_config(self):
        config = super().get_config()
        config.update(groups=self.groups, num_features=self.num_features, levels=self.levels,
                      encoder=self.encoder_settings, encoder_overrides=self.encoder_overrides,
                      commitment_cost=self.commitment_cost, decay=self.decay,
                      orthogonality_weight=self.orthogonality_weight,
                      informativeness_weight=self.informativeness_weight)
        return config
