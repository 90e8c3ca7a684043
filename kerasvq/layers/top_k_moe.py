"""Mixtral-style top-k mixture of SwiGLU experts with capacity-based sparse dispatch."""

from __future__ import annotations

import math

import keras
from keras import ops

from kerasvq.layers import moe_losses
from kerasvq.layers.initializers import clone_initializer
from kerasvq.layers.swiglu import SwiGLU, expert_initializers


@keras.saving.register_keras_serializable(package="kerasvq")
class TopKMoE(keras.layers.Layer):
    """Top-k mixture of experts: softmax router, top-k, renormalised gates, Switch balance loss.

    Each token goes to its k best experts; only those run (tokens are gathered into an
    (E, capacity, D) buffer, the experts run as one batched einsum, and results are scattered
    back), so compute per token is k experts, not E. An expert takes at most
    `capacity = ceil(tokens·k·capacity_factor / E)` assignments per batch, first choices before
    second choices; overflowing assignments contribute zero (the block's residual carries the
    token). `capacity_factor=None` never drops (capacity = tokens, at the cost of running
    every expert over a buffer as large as the batch).

    Causality: with a finite capacity, whether a token is dropped depends on the routing of
    the other tokens in the batch, later positions included (the usual capacity-based MoE
    leak, binary and small). Evaluation is dropless by default (`eval_capacity_factor=None`),
    so validation losses and generation are exactly causal.

    In training it adds `aux_loss_weight · N·Σfᵢ·Pᵢ + router_z_loss_weight · z-loss` with
    `add_loss`, and stores monitoring values in non-trainable variables: `last_aux_loss` (the
    value added), `expert_fraction` (share of assignments per expert, last step),
    `expert_assignments` (cumulative assignment counts per expert) and `dropped_fraction`.

    Args:
        num_experts: E.
        top_k: experts per token.
        hidden_dim: inner width F of each SwiGLU expert.
        capacity_factor: slack over a perfectly balanced load in training; None = dropless.
        eval_capacity_factor: the same outside training (default None: dropless).
        aux_loss_weight: weight of the Switch balance loss (already divided by the number of
            MoE layers if the model wants the layer average).
        router_z_loss_weight: weight of the router z-loss.
        kernel_initializer / output_kernel_initializer: for every kernel / for the residual
            output kernels (expert down-projections and, in MoC, the output projection).
        dropout: dropout on the expert outputs.

    Example:
        >>> moe = TopKMoE(num_experts=4, top_k=2, hidden_dim=32)
        >>> moe(keras.ops.ones((2, 5, 16))).shape
        (2, 5, 16)
    """

    def __init__(
        self,
        num_experts,
        top_k,
        hidden_dim,
        capacity_factor=1.25,
        eval_capacity_factor=None,
        aux_loss_weight=0.01,
        router_z_loss_weight=1e-3,
        dropout=0.0,
        kernel_initializer=None,
        output_kernel_initializer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not 1 <= top_k <= num_experts:
            raise ValueError(f"top_k must be in 1..num_experts ({num_experts}), got {top_k}")
        self.num_experts = int(num_experts)
        self.top_k = int(top_k)
        self.hidden_dim = int(hidden_dim)
        self.capacity_factor = None if capacity_factor is None else float(capacity_factor)
        self.eval_capacity_factor = (
            None if eval_capacity_factor is None else float(eval_capacity_factor)
        )
        self.aux_loss_weight = float(aux_loss_weight)
        self.router_z_loss_weight = float(router_z_loss_weight)
        self.dropout = float(dropout)
        self.kernel_initializer, self.output_kernel_initializer = expert_initializers(
            kernel_initializer, output_kernel_initializer
        )

    def build(self, input_shape):
        d = input_shape[-1]
        # The router runs in float32 whatever the policy: its logits pick the experts.
        self.router = keras.layers.Dense(
            self.num_experts,
            use_bias=False,
            kernel_initializer=clone_initializer(self.kernel_initializer, "router"),
            dtype="float32",
            name="router",
        )
        self.router.build((None, d))
        self.experts = SwiGLU(
            self.hidden_dim,
            num_experts=self.num_experts,
            dropout=self.dropout,
            kernel_initializer=clone_initializer(self.kernel_initializer, "experts"),
            output_kernel_initializer=clone_initializer(self.output_kernel_initializer, "experts"),
            dtype=self.dtype_policy,
            name="experts",
        )
        self.experts.build((None, d))
        self.last_aux_loss = self.add_weight(
            name="last_aux_loss", shape=(), initializer="zeros", trainable=False, dtype="float32"
        )
        self.expert_fraction = self.add_weight(
            name="expert_fraction",
            shape=(self.num_experts,),
            initializer="zeros",
            trainable=False,
            dtype="float32",
        )
        self.expert_assignments = self.add_weight(
            name="expert_assignments",
            shape=(self.num_experts,),
            initializer="zeros",
            trainable=False,
            dtype="float32",
        )
        self.dropped_fraction = self.add_weight(
            name="dropped_fraction", shape=(), initializer="zeros", trainable=False, dtype="float32"
        )

    def _capacity(self, tokens, factor):
        if factor is None:
            return tokens
        if isinstance(tokens, int):
            return max(1, min(tokens, math.ceil(tokens * self.top_k * factor / self.num_experts)))
        c = ops.cast(ops.ceil(ops.cast(tokens, "float32") * (self.top_k * factor / self.num_experts)), "int32")
        return ops.minimum(c, tokens)

    def route(self, tokens):
        """Router for (T, D) tokens → (logits, probs, top-k indices, renormalised gates), float32."""
        logits = self.router(tokens)
        probs = ops.softmax(logits, axis=-1)
        top_probs, top_indices = ops.top_k(probs, self.top_k)
        gates = top_probs / ops.sum(top_probs, axis=-1, keepdims=True)
        return logits, probs, top_indices, gates

    def call(self, inputs, training=None):
        d = inputs.shape[-1]
        e, k = self.num_experts, self.top_k
        flat = ops.reshape(inputs, (-1, d))
        tokens = ops.shape(flat)[0]
        logits, probs, top_indices, gates = self.route(flat)

        # Slot-major order (all first choices, then all second choices) sets dispatch priority.
        assignment = ops.reshape(ops.transpose(top_indices), (-1,))
        assigned = ops.one_hot(assignment, e, dtype="int32")
        position = ops.sum(ops.cumsum(assigned, axis=0) * assigned, axis=-1) - 1
        capacity = self._capacity(
            tokens, self.capacity_factor if training else self.eval_capacity_factor
        )
        keep = position < capacity
        overflow_slot = e * capacity
        slot = ops.where(keep, assignment * capacity + position, overflow_slot)

        repeated = ops.tile(flat, (k, 1))
        buffer = ops.segment_sum(repeated, slot, num_segments=overflow_slot + 1)
        buffer = ops.reshape(buffer[:-1], (e, capacity, d))
        expert_out = self.experts(buffer, training=training, dispatched=True)
        expert_out = ops.concatenate(
            [ops.reshape(expert_out, (-1, d)), ops.zeros((1, d), dtype=expert_out.dtype)], axis=0
        )
        gathered = ops.take(expert_out, slot, axis=0)
        slot_gates = ops.reshape(ops.transpose(gates), (-1,)) * ops.cast(keep, "float32")
        combined = gathered * ops.cast(slot_gates, gathered.dtype)[:, None]
        outputs = ops.sum(ops.reshape(combined, (k, -1, d)), axis=0)
        outputs = ops.reshape(outputs, ops.shape(inputs))

        if training:
            aux = moe_losses.switch_aux_loss(logits, probs, top_indices, e,
                                             self.aux_loss_weight, self.router_z_loss_weight)
            self.add_loss(aux)
            self.last_aux_loss.assign(aux)
            counts = moe_losses.expert_counts(top_indices, e)
            self.expert_fraction.assign(counts / ops.sum(counts))
            self.expert_assignments.assign_add(counts)
            self.dropped_fraction.assign(1.0 - ops.mean(ops.cast(keep, "float32")))
        return outputs

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_experts=self.num_experts,
            top_k=self.top_k,
            hidden_dim=self.hidden_dim,
            capacity_factor=self.capacity_factor,
            eval_capacity_factor=self.eval_capacity_factor,
            aux_loss_weight=self.aux_loss_weight,
            router_z_loss_weight=self.router_z_loss_weight,
            dropout=self.dropout,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            output_kernel_initializer=keras.initializers.serialize(self.output_kernel_initializer),
        )
        return config
