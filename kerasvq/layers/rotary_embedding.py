"""Rotary position embedding (RoPE) applied to query/key heads.

Example:
    >>> rope = RotaryEmbedding()
    >>> q = rope(keras.random.normal((2, 16, 8, 32)), start_index=0)   # (batch, seq, heads, head_dim)
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kerasvq")
class RotaryEmbedding(keras.layers.Layer):
    """Rotates pairs of features (first half with second half) by position-dependent angles.

    Args:
        max_wavelength: the base of the geometric progression of rotation frequencies.
    """

    def __init__(self, max_wavelength=10000, **kwargs):
        super().__init__(**kwargs)
        self.max_wavelength = max_wavelength

    def call(self, x, start_index=0):
        # x: (batch, seq, heads, head_dim); angles are computed in float32 for precision.
        seq_len, head_dim = ops.shape(x)[1], ops.shape(x)[-1]
        half = head_dim // 2
        inverse_freq = 1.0 / ops.power(
            float(self.max_wavelength), ops.arange(0, half, dtype="float32") / float(half)
        )
        positions = ops.cast(ops.arange(seq_len) + start_index, "float32")
        angles = ops.einsum("s,f->sf", positions, inverse_freq)[None, :, None, :]
        cos, sin = ops.cos(angles), ops.sin(angles)
        x1, x2 = ops.split(ops.cast(x, "float32"), 2, axis=-1)
        rotated = ops.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
        return ops.cast(rotated, x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "max_wavelength": self.max_wavelength}
