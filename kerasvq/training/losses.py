"""Sparse cross-entropy with label smoothing (Keras 3.15 has it only for dense labels).

With smoothing ε over V classes the target is (1-ε)·onehot + ε/V, so
loss = (1-ε)·(-log p_target) + ε·mean_v(-log p_v), computed from logits in float32.

Example:
    >>> loss = SparseCategoricalCrossentropyWithSmoothing(label_smoothing=0.1)
    >>> loss(targets, logits)          # targets (batch, seq) ints, logits (batch, seq, vocab)
"""

import keras
from keras import ops


def token_cross_entropy(y_true, logits):
    """Unsmoothed per-token cross-entropy in nats (float32), same shape as `y_true`."""
    log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
    target = ops.expand_dims(ops.cast(y_true, "int32"), -1)
    return -ops.squeeze(ops.take_along_axis(log_probs, target, axis=-1), -1)


@keras.saving.register_keras_serializable(package="kerasvq")
class SparseCategoricalCrossentropyWithSmoothing(keras.losses.Loss):
    """Cross-entropy from logits against integer targets, with optional label smoothing."""

    def __init__(self, label_smoothing=0.0, name="smoothed_cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        log_probs = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)
        target = ops.expand_dims(ops.cast(y_true, "int32"), -1)
        nll = -ops.squeeze(ops.take_along_axis(log_probs, target, axis=-1), -1)
        if not self.label_smoothing:
            return nll
        uniform = -ops.mean(log_probs, axis=-1)
        return (1.0 - self.label_smoothing) * nll + self.label_smoothing * uniform

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}
