"""Expert-routing monitoring and cost accounting for dense / top-k MoE / MoC language models.

- `expert_layers(model)`: the `TopKMoE` / `CollaborativeExperts` layers, in block order.
- `routing_snapshot(model)`: the router loss added in the last training step (summed over
  layers, i.e. the layer average, since each layer's weight is divided by the layer count) and
  each layer's share of assignments per expert (reads variables: not for per-step use).
- `forward_macs_per_token(...)` / `parameter_counts(model)`: analytic cost per token and
  total / active parameters.

The per-epoch TensorBoard callback built on these is `kerasvq.training.routing_logger`.

Example:
    >>> routing_snapshot(model)["expert_fraction"][0]
    >>> forward_macs_per_token(768, 12, 12, 2048, 50257, 1024, ffn="moc")["total"]
"""

from __future__ import annotations


import numpy as np
from keras import ops

from kerasvq.layers.collaborative_experts import CollaborativeExperts
from kerasvq.layers.top_k_moe import TopKMoE


def expert_layers(model) -> list:
    """Every `TopKMoE` / `CollaborativeExperts` layer inside `model`, in creation order."""
    return [
        layer
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, (TopKMoE, CollaborativeExperts))
    ]


def routing_snapshot(model) -> dict:
    """Router state after the last training step: aux loss added, expert shares, drops."""
    layers = expert_layers(model)
    if not layers:
        return {"aux_loss": 0.0, "expert_fraction": [], "expert_share_all_steps": [],
                "dropped_fraction": []}
    to_np = lambda v: np.asarray(ops.convert_to_numpy(v))
    return {
        "aux_loss": float(sum(float(to_np(layer.last_aux_loss)) for layer in layers)),
        "expert_fraction": [to_np(layer.expert_fraction).tolist() for layer in layers],
        "expert_share_all_steps": [
            (to_np(layer.expert_assignments) / max(float(to_np(layer.expert_assignments).sum()), 1.0)).tolist()
            for layer in layers
        ],
        "dropped_fraction": [
            float(to_np(layer.dropped_fraction)) for layer in layers if hasattr(layer, "dropped_fraction")
        ],
    }


def forward_macs_per_token(
    d_model, num_layers, num_heads, d_ff, vocab_size, seq_len, ffn="dense", num_kv_heads=None,
    num_experts=8, top_k=2, expert_d_ff=None,
) -> dict:
    """Multiply-accumulates per token of one forward pass, by part (training ≈ 3× this).

    Attention scores count the full context (`2·seq_len·d_model` per layer, the usual
    convention); the output head counts once. MoC runs all experts and two small attentions
    (over E expert outputs and over the k selected) on every token.
    """
    d, h = d_model, num_heads
    kv = num_kv_heads or num_heads
    head = d // h
    f_e = expert_d_ff or d_ff
    attention = d * (h + 2 * kv) * head + d * d + 2 * seq_len * d
    if ffn == "dense":
        feed_forward = 3 * d * d_ff
    elif ffn == "moe":
        feed_forward = d * num_experts + top_k * 3 * d * f_e
    elif ffn == "moc":
        e, k = num_experts, top_k
        experts = e * 3 * d * f_e
        router_attention = e * 4 * d * d + 2 * e * e * d
        fusion_attention = k * 4 * d * d + 2 * k * k * d
        refine = k * 2 * (d * 2 * d)
        feed_forward = experts + router_attention + d * e + fusion_attention + refine + d * d
    else:
        raise ValueError(f"ffn must be dense, moe or moc, got {ffn!r}")
    per_layer = attention + feed_forward
    output_head = d * vocab_size
    return {
        "attention_per_layer": attention,
        "ffn_per_layer": feed_forward,
        "output_head": output_head,
        "total": num_layers * per_layer + output_head,
    }


def parameter_counts(model) -> dict:
    """Total parameters and parameters active per token (top-k MoE runs k of E experts;
    dense and MoC run everything)."""
    # Trainable weights only: the routers' monitoring variables are not parameters.
    total = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    inactive = 0
    for layer in expert_layers(model):
        if isinstance(layer, TopKMoE):
            per_expert = (
                sum(int(np.prod(w.shape)) for w in layer.experts.trainable_weights) // layer.num_experts
            )
            inactive += (layer.num_experts - layer.top_k) * per_expert
    return {"total": total, "active_per_token": total - inactive}
