"""A listwise neighbour-ranking loss: the decoded vectors should rank a batch as the inputs do.

Recall@10 asks that a raw query's nearest decoded vectors be the decoded copies of its true
neighbours. Reconstruction error alone spends capacity evenly over all directions; this loss
(UNQ's idea of training the quantizer for the ranking it will be used for, in the
distillation form of a softmax over the batch) compares, for every query x_i of the batch,
the distribution softmax_j(cos(x_i, x_j) / τ) with softmax_j(cos(x_i, x̂_j) / τ), self
excluded, by their KL divergence. It is 0 when the decoded batch ranks every query's
neighbours with the same (tempered) similarities as the inputs.
"""

from __future__ import annotations

from keras import ops


def _unit(v):
    return v / ops.sqrt(ops.maximum(ops.sum(ops.square(v), axis=-1, keepdims=True), 1e-12))


def neighbour_ranking_loss(x, x_hat, temperature: float = 0.05):
    """Mean over the batch of KL(softmax(cos(x, x)/τ) ‖ softmax(cos(x, x̂)/τ)), diagonal excluded.

    Args:
        x: inputs (N, d).
        x_hat: their reconstructions (N, d).
        temperature: τ; smaller puts the weight on the nearest neighbours.
    """
    x, x_hat = _unit(ops.cast(x, "float32")), _unit(ops.cast(x_hat, "float32"))
    n = ops.shape(x)[0]
    off_diagonal = ops.logical_not(ops.cast(ops.eye(n), "bool"))
    mask = lambda s: ops.where(off_diagonal, s / temperature, -1e9)
    target = ops.softmax(mask(ops.matmul(x, ops.transpose(x))), axis=-1)
    log_pred = ops.log_softmax(mask(ops.matmul(x, ops.transpose(x_hat))), axis=-1)
    log_target = ops.log(ops.maximum(target, 1e-12))
    return ops.mean(ops.sum(ops.where(off_diagonal, target * (log_target - log_pred), 0.0), axis=-1))
