"""Fixed sinusoidal position encodings ("Attention Is All You Need"), no weights.

Example:
    >>> enc = SinusoidalPositionEncoding()
    >>> enc(token_embeddings, start_index=0).shape     # same shape as the input
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kerasvq")
class SinusoidalPositionEncoding(keras.layers.Layer):
    """Returns the (batch-broadcast) position encodings for a (batch, seq, dim) input."""

    def __init__(self, max_wavelength=10000, **kwargs):
        super().__init__(**kwargs)
        self.max_wavelength = max_wavelength

    def call(self, x, start_index=0):
        seq_len, dim = ops.shape(x)[1], ops.shape(x)[2]
        positions = ops.cast(ops.arange(seq_len) + start_index, "float32")[:, None]
        rates = 1.0 / ops.power(
            float(self.max_wavelength), ops.cast(2 * (ops.arange(dim) // 2), "float32") / dim
        )
        angles = positions * rates[None, :]
        even = ops.cast(ops.arange(dim) % 2 == 0, "float32")
        encoding = even * ops.sin(angles) + (1.0 - even) * ops.cos(angles)
        return ops.cast(ops.broadcast_to(encoding[None], ops.shape(x)), self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "max_wavelength": self.max_wavelength}
