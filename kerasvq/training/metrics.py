"""Language-model training metrics computed from the unsmoothed loss.

`CrossEntropy(report_perplexity=True)` reports both from one pass over the logits (the
log-normalizer over the vocabulary is the metric's only expensive part, a small share of a
training step: docs/performance.md).

Example:
    >>> model.compile(..., metrics=[CrossEntropy(report_perplexity=True)])
    >>> # logs "cross_entropy" and "perplexity"; CrossEntropy() + Perplexity() log the same
"""

import keras
from keras import ops

from kerasvq.training.losses import token_cross_entropy


@keras.saving.register_keras_serializable(package="kerasvq")
class CrossEntropy(keras.metrics.Mean):
    """Mean unsmoothed cross-entropy per token, in nats; with `report_perplexity`, the result
    is `{name: cross-entropy, "perplexity": exp(cross-entropy)}`."""

    def __init__(self, name="cross_entropy", report_perplexity=False, **kwargs):
        super().__init__(name=name, **kwargs)
        self.report_perplexity = report_perplexity

    def update_state(self, y_true, y_pred, sample_weight=None):
        return super().update_state(token_cross_entropy(y_true, y_pred), sample_weight)

    def result(self):
        mean = super().result()
        if self.report_perplexity:
            return {self.name: mean, "perplexity": ops.exp(mean)}
        return mean

    def get_config(self):
        return {**super().get_config(), "report_perplexity": self.report_perplexity}


@keras.saving.register_keras_serializable(package="kerasvq")
class Perplexity(CrossEntropy):
    """exp(mean unsmoothed cross-entropy): label smoothing never inflates it."""

    def __init__(self, name="perplexity", **kwargs):
        super().__init__(name=name, **kwargs)

    def result(self):
        return ops.exp(super().result())
