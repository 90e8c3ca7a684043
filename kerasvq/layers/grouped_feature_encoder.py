"""`GroupedFeatureEncoder`: one MLP per feature group (category) over that group's columns.

The input is a (batch, num_features) matrix; group `g` owns the columns `groups[g]` (gathered
with `ops.take`), and its MLP maps them to an `output_dim`-wide vector. Every group uses the
default encoder settings unless `overrides[g]` replaces some of them (`hidden_dims`,
`output_dim`, `dropout`, `activation`, `batch_norm`). The output is a list with one
(batch, output_dim_g) tensor per group, in the order of `groups`.

Example:
    >>> enc = GroupedFeatureEncoder({"temporal": [0, 1, 2], "causality": [3, 4]},
    ...                             hidden_dims=[16], output_dim=8)
    >>> [h.shape for h in enc(np.zeros((4, 5), "float32"))]
    [TensorShape([4, 8]), TensorShape([4, 8])]
"""

from __future__ import annotations

import keras
from keras import ops

ENCODER_KEYS = ("hidden_dims", "output_dim", "dropout", "activation", "batch_norm")


def mlp_layers(hidden_dims, output_dim, dropout, activation, batch_norm, name, dtype):
    """Dense → [BatchNorm] → activation → [Dropout] per hidden width, then a Dense output."""
    layers = []
    for i, width in enumerate(hidden_dims):
        layers.append(keras.layers.Dense(width, name=f"{name}_dense_{i}", dtype=dtype))
        if batch_norm:
            layers.append(keras.layers.BatchNormalization(name=f"{name}_bn_{i}", dtype=dtype))
        layers.append(keras.layers.Activation(activation, name=f"{name}_act_{i}", dtype=dtype))
        if dropout:
            layers.append(keras.layers.Dropout(dropout, name=f"{name}_dropout_{i}", dtype=dtype))
    layers.append(keras.layers.Dense(output_dim, name=f"{name}_out", dtype=dtype))
    return keras.Sequential(layers, name=name)


@keras.saving.register_keras_serializable(package="kerasvq")
class GroupedFeatureEncoder(keras.layers.Layer):
    """Per-group MLP encoders over column subsets of a feature matrix.

    Args:
        groups: {group name: list of column indices}; every group non-empty.
        hidden_dims: default hidden widths of each group's MLP.
        output_dim: default width of each group's output.
        dropout: default dropout after each hidden layer.
        activation: default activation (any Keras activation name).
        batch_norm: default: BatchNormalization after each hidden Dense.
        overrides: {group name: {setting: value}} replacing defaults for that group.
    """

    def __init__(self, groups, hidden_dims=(128,), output_dim: int = 64, dropout: float = 0.0,
                 activation: str = "gelu", batch_norm: bool = False, overrides=None, **kwargs):
        super().__init__(**kwargs)
        self.groups = {str(g): [int(i) for i in cols] for g, cols in groups.items()}
        empty = [g for g, cols in self.groups.items() if not cols]
        if empty:
            raise ValueError(f"GroupedFeatureEncoder: group {empty[0]!r} has no columns")
        self.hidden_dims = [int(w) for w in hidden_dims]
        self.output_dim = int(output_dim)
        self.dropout = float(dropout)
        self.activation = activation
        self.batch_norm = bool(batch_norm)
        self.overrides = {str(g): dict(o) for g, o in (overrides or {}).items()}
        unknown = sorted(set(self.overrides) - set(self.groups))
        if unknown:
            raise ValueError(f"GroupedFeatureEncoder: overrides name unknown group {unknown[0]!r}")
        for g, o in self.overrides.items():
            bad = sorted(set(o) - set(ENCODER_KEYS))
            if bad:
                raise ValueError(f"GroupedFeatureEncoder: override {g}.{bad[0]} is not one of {ENCODER_KEYS}")

    def settings(self, group: str) -> dict:
        """The encoder settings of one group (defaults with its overrides applied)."""
        base = dict(hidden_dims=self.hidden_dims, output_dim=self.output_dim, dropout=self.dropout,
                    activation=self.activation, batch_norm=self.batch_norm)
        return {**base, **self.overrides.get(group, {})}

    @property
    def output_dims(self) -> list[int]:
        return [int(self.settings(g)["output_dim"]) for g in self.groups]

    def build(self, input_shape):
        width = input_shape[-1]
        top = max(max(cols) for cols in self.groups.values())
        if width is not None and top >= width:
            raise ValueError(f"GroupedFeatureEncoder: column index {top} out of range for {width} features")
        self.encoders = []
        for g, cols in self.groups.items():
            mlp = mlp_layers(**self.settings(g), name=f"encoder_{g}", dtype=self.dtype_policy)
            mlp.build((None, len(cols)))
            self.encoders.append(mlp)

    def call(self, inputs, training=None):
        return [
            mlp(ops.take(inputs, cols, axis=1), training=training)
            for mlp, cols in zip(self.encoders, self.groups.values())
        ]

    def compute_output_shape(self, input_shape):
        return [tuple(input_shape[:-1]) + (d,) for d in self.output_dims]

    def get_config(self):
        config = super().get_config()
        config.update(groups=self.groups, hidden_dims=self.hidden_dims, output_dim=self.output_dim,
                      dropout=self.dropout, activation=self.activation, batch_norm=self.batch_norm,
                      overrides=self.overrides)
        return config
