"""Sparse cross-entropy with label smoothing (Keras 3.15 has it only for dense labels).

With smoothing ε over V classes the target is (1-ε)·onehot + ε/V, so
loss = (1-ε)·(-log p_target) + ε·mean_v(-log p_v), computed from logits in float32.

Both terms are written with the log-normalizer `logsumexp(logits)`:
-log p_target = lse - logit_target and mean_v(-log p_v) = lse - mean_v(logit_v). The target
logit is picked with a one-hot product rather than a gather: XLA fuses the comparison into
the reduction, and the gradient is elementwise (softmax minus target) instead of a
scatter-add into a zero (tokens, vocabulary) buffer; the training step is faster than with
log_softmax and take_along_axis (docs/performance.md).

Example:
    >>> loss = SparseCategoricalCrossentropyWithSmoothing(label_smoothing=0.1)
    >>> loss(targets, logits)          # targets (batch, seq) ints, logits (batch, seq, vocab)
"""

import keras
from keras import ops


def cross_entropy_terms(y_true, logits):
    """(per-token -log p_target, per-token log-normalizer), both float32, shaped like `y_true`."""
    logits = ops.cast(logits, "float32")
    log_normalizer = ops.logsumexp(logits, axis=-1)
    target = ops.one_hot(ops.cast(y_true, "int32"), ops.shape(logits)[-1], dtype="float32")
    return log_normalizer - ops.sum(logits * target, axis=-1), log_normalizer


def token_cross_entropy(y_true, logits):
    """Unsmoothed per-token cross-entropy in nats (float32), same shape as `y_true`."""
    return cross_entropy_terms(y_true, logits)[0]


@keras.saving.register_keras_serializable(package="kerasvq")
class SparseCategoricalCrossentropyWithSmoothing(keras.losses.Loss):
    """Cross-entropy from logits against integer targets, with optional label smoothing."""

    def __init__(self, label_smoothing=0.0, name="smoothed_cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        logits = ops.cast(y_pred, "float32")
        nll, log_normalizer = cross_entropy_terms(y_true, logits)
        if not self.label_smoothing:
            return nll
        uniform = log_normalizer - ops.mean(logits, axis=-1)
        return (1.0 - self.label_smoothing) * nll + self.label_smoothing * uniform

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}
