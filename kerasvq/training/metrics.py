"""Language-model training metrics computed from the unsmoothed loss.

Example:
    >>> model.compile(..., metrics=[CrossEntropy(), Perplexity()])
"""

import keras
from keras import ops

from kerasvq.training.losses import token_cross_entropy


@keras.saving.register_keras_serializable(package="kerasvq")
class CrossEntropy(keras.metrics.Mean):
    """Mean unsmoothed cross-entropy per token, in nats."""

    def __init__(self, name="cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)

    def update_state(self, y_true, y_pred, sample_weight=None):
        return super().update_state(token_cross_entropy(y_true, y_pred), sample_weight)


@keras.saving.register_keras_serializable(package="kerasvq")
class Perplexity(CrossEntropy):
    """exp(mean unsmoothed cross-entropy): label smoothing never inflates it."""

    def __init__(self, name="perplexity", **kwargs):
        super().__init__(name=name, **kwargs)

    def result(self):
        return ops.exp(super().result())
