"""SwiGLU feed-forward (Llama's FFN), alone or as a bank of stacked experts."""

from __future__ import annotations

import keras
from keras import ops

from kerasvq.layers.initializers import clone_initializer

_LETTERS = "abcghijklmnopqrstuvwxyz"  # not d, e, f: used below


def default_kernel_initializer():
    """N(0, 0.02): the Llama/GPT-2 initialisation; also right for stacked (E, D, F) kernels,
    where Glorot would count the expert axis as receptive field and shrink the weights."""
    return keras.initializers.RandomNormal(stddev=0.02)


def expert_initializers(kernel_initializer=None, output_kernel_initializer=None):
    """(kernel, output kernel) initializers of the feed-forward layers: the kernel defaults to
    `default_kernel_initializer()`, the output kernel to the same as the kernel."""
    kernel = keras.initializers.get(kernel_initializer or default_kernel_initializer())
    output = keras.initializers.get(output_kernel_initializer or keras.initializers.serialize(kernel))
    return kernel, output


@keras.saving.register_keras_serializable(package="kerasvq")
class SwiGLU(keras.layers.Layer):
    """`down(silu(x·W_gate) ⊙ (x·W_up))`, no biases: D → hidden_dim → D.

    With `num_experts=E` the layer holds E independent SwiGLU experts as stacked kernels
    ((E, D, 2F) and (E, F, D), one einsum each, no per-expert layers). Then
    - `layer(x)` runs every expert on every input: (..., D) → (..., E, D);
    - `layer(x, dispatched=True)` takes inputs already sorted per expert: (E, C, D) → (E, C, D).

    Args:
        hidden_dim: F, the inner width of each expert.
        num_experts: None for one FFN, or the number of stacked experts.
        dropout: dropout on the output, in training only.
        kernel_initializer: initializer of the input kernel (default N(0, 0.02)).
        output_kernel_initializer: initializer of the down-projection (residual output)
            kernel; defaults to `kernel_initializer`. Each kernel gets its own clone
            (`clone_initializer`), so the two never start equal.

    Example:
        >>> SwiGLU(64)(keras.ops.ones((2, 5, 16))).shape
        (2, 5, 16)
        >>> SwiGLU(64, num_experts=4)(keras.ops.ones((2, 5, 16))).shape
        (2, 5, 4, 16)
    """

    def __init__(
        self,
        hidden_dim,
        num_experts=None,
        dropout=0.0,
        kernel_initializer=None,
        output_kernel_initializer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hidden_dim = int(hidden_dim)
        self.num_experts = None if num_experts is None else int(num_experts)
        self.dropout = float(dropout)
        self.kernel_initializer, self.output_kernel_initializer = expert_initializers(
            kernel_initializer, output_kernel_initializer
        )

    def build(self, input_shape):
        d = input_shape[-1]
        lead = () if self.num_experts is None else (self.num_experts,)
        self.gate_up_kernel = self.add_weight(
            name="gate_up_kernel",
            shape=lead + (d, 2 * self.hidden_dim),
            initializer=clone_initializer(self.kernel_initializer, "gate_up_kernel"),
        )
        self.down_kernel = self.add_weight(
            name="down_kernel",
            shape=lead + (self.hidden_dim, d),
            initializer=clone_initializer(self.output_kernel_initializer, "down_kernel"),
        )
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)

    def call(self, inputs, training=None, dispatched=False):
        if self.num_experts is None:
            h = ops.matmul(inputs, self.gate_up_kernel)
            gate, up = ops.split(h, 2, axis=-1)
            y = ops.matmul(ops.silu(gate) * up, self.down_kernel)
        elif dispatched:
            h = ops.einsum("ecd,edf->ecf", inputs, self.gate_up_kernel)
            gate, up = ops.split(h, 2, axis=-1)
            y = ops.einsum("ecf,efd->ecd", ops.silu(gate) * up, self.down_kernel)
        else:
            lead = _LETTERS[: len(inputs.shape) - 1]
            h = ops.einsum(f"{lead}d,edf->{lead}ef", inputs, self.gate_up_kernel)
            gate, up = ops.split(h, 2, axis=-1)
            y = ops.einsum(f"{lead}ef,efd->{lead}ed", ops.silu(gate) * up, self.down_kernel)
        return self.dropout_layer(y, training=training)

    def get_config(self):
        config = super().get_config()
        config.update(
            hidden_dim=self.hidden_dim,
            num_experts=self.num_experts,
            dropout=self.dropout,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            output_kernel_initializer=keras.initializers.serialize(self.output_kernel_initializer),
        )
        return config
