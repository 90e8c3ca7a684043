"""Auxiliary router losses for the mixture-of-experts layers (`TopKMoE`, `CollaborativeExperts`).

All functions take float32 tensors and return float32 scalars; `keras.ops` only.

Example:
    >>> probs = keras.ops.full((6, 4), 0.25)
    >>> float(switch_balance_loss(probs, keras.ops.array([[0], [1], [2], [3], [0], [1]]), 4))
    1.0
"""

from __future__ import annotations

import math

from keras import ops


def expert_counts(top_k_indices, num_experts: int):
    """How many hard top-k assignments went to each expert: (num_experts,) float32."""
    flat = ops.reshape(top_k_indices, (-1,))
    return ops.sum(ops.one_hot(flat, num_experts, dtype="float32"), axis=0)


def expert_fractions(top_k_indices, num_experts: int):
    """Share of the hard top-k assignments that went to each expert: (num_experts,), sums to 1."""
    counts = expert_counts(top_k_indices, num_experts)
    return counts / ops.sum(counts)


def switch_balance_loss(router_probs, top_k_indices, num_experts: int):
    """Switch-Transformer balance loss N·Σᵢ fᵢ·Pᵢ; equals 1 when routing is uniform.

    `router_probs` (tokens, N) is the softmax over all experts, `top_k_indices` (tokens, k) the
    hard choices; fᵢ counts assignments (all k slots), Pᵢ is the mean router probability.
    """
    fractions = expert_fractions(top_k_indices, num_experts)
    mean_probs = ops.mean(ops.reshape(router_probs, (-1, num_experts)), axis=0)
    return num_experts * ops.sum(fractions * mean_probs)


def router_z_loss(router_logits):
    """ST-MoE router z-loss: mean over tokens of logsumexp(logits)², keeps logits small."""
    return ops.mean(ops.square(ops.logsumexp(router_logits, axis=-1)))


def switch_aux_loss(router_logits, router_probs, top_k_indices, num_experts: int,
                    balance_weight: float, z_weight: float):
    """The top-k router's auxiliary loss: weighted Switch balance loss plus router z-loss."""
    return (balance_weight * switch_balance_loss(router_probs, top_k_indices, num_experts)
            + z_weight * router_z_loss(router_logits))


def attention_entropy(attention_weights):
    """Mean entropy (nats) of attention rows; `attention_weights` (..., q, k) sums to 1 over k."""
    w = ops.cast(attention_weights, "float32")
    return ops.mean(-ops.sum(w * ops.log(w + 1e-8), axis=-1))


def unbiased_variance(values):
    """Sample variance with Bessel's correction over a 1-D tensor (torch.var's default)."""
    n = values.shape[-1]
    centred = values - ops.mean(values)
    return ops.sum(ops.square(centred)) / (n - 1)


def faithful_moc_aux_loss(fusion_weights, router_probs, num_experts: int):
    """The reference MoC loss, before its global weight: 0.01·diversity + 0.01·balance.

    diversity = −mean entropy of the fusion attention weights (head-averaged, (tokens, k, k));
    balance = unbiased variance over experts of the mean router probability.
    """
    diversity = -attention_entropy(fusion_weights)
    usage = ops.mean(ops.reshape(router_probs, (-1, num_experts)), axis=0)
    return 0.01 * diversity + 0.01 * unbiased_variance(usage)


def faithful_moc_aux_bounds(num_experts: int, top_k: int, weight: float) -> tuple[float, float]:
    """Closed-form range of `weight · faithful_moc_aux_loss`.

    Entropy over k fusion targets lies in [0, ln k]; the unbiased variance of a probability
    vector over N experts lies in [0, 1/N] (reached by a one-hot mean usage).
    Example: (8, 2, 0.01) → (-6.93e-05, 1.25e-05).
    """
    return (-weight * 0.01 * math.log(top_k), weight * 0.01 / num_experts)
