"""Mixture of Collaborative Experts (MoC): experts attend to each other before routing and
refine each other after it, all within one token."""

from __future__ import annotations

import keras
from keras import ops

from kerasvq.layers import moe_losses
from kerasvq.layers.initializers import clone_initializer
from kerasvq.layers.swiglu import SwiGLU, expert_initializers


@keras.saving.register_keras_serializable(package="kerasvq")
class CollaborativeExperts(keras.layers.Layer):
    """MoC feed-forward, per token x (B, S, D):

    1. all E SwiGLU experts (D→F→D) run on every token → (B, S, E, D);
    2. router contextualisation: multi-head self-attention across the E expert outputs of the
       token (no mask, no positions), residual + RMSNorm, mean over experts, linear router with
       bias → E logits / `router_temperature`;
    3. top-k; gates = softmax over the k selected logits (float32);
    4. gather the k selected *raw* expert outputs;
    5. collaborative fusion: multi-head attention across those k outputs (its weights, averaged
       over heads, feed the diversity loss), residual + RMSNorm, refinement FFN (D→2D→D, ReLU)
       with residual;
    6. gated sum over k, output projection D→D (no bias).

    Mixing is only across experts of one token, never across positions: causal by construction.
    Compute: all E experts plus two attentions run on every token (no sparsity).

    Auxiliary loss, added with `add_loss` in training only:
    - `aux_loss="faithful"` (the reference): `aux_loss_weight·(0.01·diversity + 0.01·balance)`,
      diversity = −mean entropy of the fusion attention weights, balance = unbiased variance over
      experts of the mean router probability (see `moe_losses.faithful_moc_aux_bounds`);
    - `aux_loss="switch"`: `aux_loss_weight·N·Σfᵢ·Pᵢ + router_z_loss_weight·z-loss`.
    Monitoring values live in non-trainable variables, updated in training: `last_aux_loss` (the
    value added), `expert_fraction` (share of top-k assignments per expert, last step) and
    `expert_assignments` (cumulative assignment counts per expert).

    Args:
        num_experts: E.
        top_k: experts kept per token.
        hidden_dim: inner width F of each SwiGLU expert.
        num_heads: heads of both expert attentions (D must be divisible by it).
        router_temperature: logits are divided by it before top-k and softmax.
        aux_loss: "faithful" or "switch".
        aux_loss_weight: w (already divided by the number of MoC layers if the model wants the
            layer average).
        router_z_loss_weight: z-loss weight, used by `aux_loss="switch"` only.
        kernel_initializer / output_kernel_initializer: for every kernel / for the residual
            output kernels (expert down-projections and, in MoC, the output projection).
        dropout: dropout in the attentions, the refinement FFN and on expert outputs.

    Example:
        >>> moc = CollaborativeExperts(num_experts=4, top_k=2, hidden_dim=32, num_heads=2)
        >>> moc(keras.ops.ones((2, 5, 16))).shape
        (2, 5, 16)
    """

    def __init__(
        self,
        num_experts,
        top_k,
        hidden_dim,
        num_heads,
        router_temperature=1.0,
        aux_loss="faithful",
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
        if aux_loss not in ("faithful", "switch"):
            raise ValueError(f"aux_loss must be 'faithful' or 'switch', got {aux_loss!r}")
        if router_temperature <= 0:
            raise ValueError(f"router_temperature must be positive, got {router_temperature}")
        self.num_experts = int(num_experts)
        self.top_k = int(top_k)
        self.hidden_dim = int(hidden_dim)
        self.num_heads = int(num_heads)
        self.router_temperature = float(router_temperature)
        self.aux_loss = aux_loss
        self.aux_loss_weight = float(aux_loss_weight)
        self.router_z_loss_weight = float(router_z_loss_weight)
        self.dropout = float(dropout)
        self.kernel_initializer, self.output_kernel_initializer = expert_initializers(
            kernel_initializer, output_kernel_initializer
        )

    def build(self, input_shape):
        d = input_shape[-1]
        if d % self.num_heads:
            raise ValueError(f"model width {d} is not divisible by num_heads {self.num_heads}")
        init = lambda name: clone_initializer(self.kernel_initializer, name)  # noqa: E731
        output_init = lambda name: clone_initializer(self.output_kernel_initializer, name)  # noqa: E731
        policy = self.dtype_policy
        self.experts = SwiGLU(
            self.hidden_dim,
            num_experts=self.num_experts,
            dropout=self.dropout,
            kernel_initializer=init("experts"),
            output_kernel_initializer=output_init("experts"),
            dtype=policy,
            name="experts",
        )
        self.experts.build((None, d))

        def attention(name, length):
            initializer = init(name)
            layer = keras.layers.MultiHeadAttention(
                self.num_heads,
                d // self.num_heads,
                dropout=self.dropout,
                kernel_initializer=initializer,
                dtype=policy,
                name=name,
            )
            layer.build((None, length, d), (None, length, d))
            if isinstance(initializer.get_config().get("seed"), int):
                # MultiHeadAttention rebuilds its initializer from the config for each of its
                # projections, so an int seed would start query, key, value and output equal.
                for part in ("query", "key", "value", "output"):
                    kernel = getattr(layer, f"_{part}_dense").kernel
                    kernel.assign(clone_initializer(initializer, part)(kernel.shape, kernel.dtype))
            return layer

        self.router_attention = attention("router_attention", self.num_experts)
        self.router_norm = keras.layers.RMSNormalization(epsilon=1e-5, dtype=policy, name="router_norm")
        self.router_norm.build((None, self.num_experts, d))
        # The router runs in float32 whatever the policy: its logits pick the experts.
        self.router = keras.layers.Dense(
            self.num_experts, kernel_initializer=init("router"), dtype="float32", name="router"
        )
        self.router.build((None, d))

        self.fusion_attention = attention("fusion_attention", self.top_k)
        self.fusion_norm = keras.layers.RMSNormalization(epsilon=1e-5, dtype=policy, name="fusion_norm")
        self.fusion_norm.build((None, self.top_k, d))
        self.refine_in = keras.layers.Dense(
            2 * d, activation="relu", kernel_initializer=init("refine_in"), dtype=policy,
            name="refine_in",
        )
        self.refine_in.build((None, self.top_k, d))
        self.refine_dropout = keras.layers.Dropout(self.dropout, dtype=policy)
        self.refine_out = keras.layers.Dense(
            d, kernel_initializer=init("refine_out"), dtype=policy, name="refine_out"
        )
        self.refine_out.build((None, self.top_k, 2 * d))
        self.output_projection = keras.layers.Dense(
            d, use_bias=False, kernel_initializer=output_init("output_projection"), dtype=policy,
            name="output_projection",
        )
        self.output_projection.build((None, d))

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

    def route(self, expert_outputs, training=None):
        """(T, E, D) expert outputs → float32 router logits (T, E), already temperature-scaled."""
        context = self.router_attention(expert_outputs, expert_outputs, training=training)
        context = self.router_norm(context + expert_outputs)
        return self.router(ops.mean(context, axis=1)) / self.router_temperature

    def call(self, inputs, training=None, return_details=False):
        d = inputs.shape[-1]
        flat = ops.reshape(inputs, (-1, d))
        expert_outputs = self.experts(flat, training=training)  # (T, E, D)
        logits = self.route(expert_outputs, training=training)
        top_logits, top_indices = ops.top_k(logits, self.top_k)
        gates = ops.softmax(ops.cast(top_logits, "float32"), axis=-1)
        probs = ops.softmax(ops.cast(logits, "float32"), axis=-1)

        selected = ops.take_along_axis(expert_outputs, top_indices[:, :, None], axis=1)  # (T, k, D)
        fused, scores = self.fusion_attention(
            selected, selected, return_attention_scores=True, training=training
        )
        fusion_weights = ops.mean(ops.cast(scores, "float32"), axis=1)  # (T, k, k)
        fused = self.fusion_norm(fused + selected)
        refined = fused + self.refine_out(
            self.refine_dropout(self.refine_in(fused), training=training)
        )
        combined = ops.sum(refined * ops.cast(gates, refined.dtype)[:, :, None], axis=1)
        outputs = ops.reshape(self.output_projection(combined), ops.shape(inputs))

        if training:
            aux = self.auxiliary_loss(logits, probs, top_indices, fusion_weights)
            self.add_loss(aux)
            self.last_aux_loss.assign(aux)
            counts = moe_losses.expert_counts(top_indices, self.num_experts)
            self.expert_fraction.assign(counts / ops.sum(counts))
            self.expert_assignments.assign_add(counts)
        if return_details:
            return outputs, {
                "logits": logits,
                "probs": probs,
                "top_indices": top_indices,
                "gates": gates,
                "fusion_weights": fusion_weights,
            }
        return outputs

    def auxiliary_loss(self, logits, probs, top_indices, fusion_weights):
        """The weighted auxiliary loss this layer adds in training (float32 scalar)."""
        e = self.num_experts
        if self.aux_loss == "faithful":
            return self.aux_loss_weight * moe_losses.faithful_moc_aux_loss(fusion_weights, probs, e)
        return moe_losses.switch_aux_loss(logits, probs, top_indices, e,
                                          self.aux_loss_weight, self.router_z_loss_weight)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_experts=self.num_experts,
            top_k=self.top_k,
            hidden_dim=self.hidden_dim,
            num_heads=self.num_heads,
            router_temperature=self.router_temperature,
            aux_loss=self.aux_loss,
            aux_loss_weight=self.aux_loss_weight,
            router_z_loss_weight=self.router_z_loss_weight,
            dropout=self.dropout,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            output_kernel_initializer=keras.initializers.serialize(self.output_kernel_initializer),
        )
        return config
