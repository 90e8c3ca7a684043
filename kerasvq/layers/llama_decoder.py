"""A Llama-style pre-RMSNorm decoder block whose feed-forward is dense SwiGLU, top-k MoE or MoC."""

import keras

from kerasvq.layers.causal_self_attention import CausalSelfAttention
from kerasvq.layers.collaborative_experts import CollaborativeExperts
from kerasvq.layers.initializers import clone_initializer
from kerasvq.layers.swiglu import SwiGLU
from kerasvq.layers.top_k_moe import TopKMoE

FFN_KINDS = ("dense", "moe", "moc")


@keras.saving.register_keras_serializable(package="kerasvq")
class LlamaDecoder(keras.layers.Layer):
    """x + Dropout(Attention(RMSNorm(x))), then x + Dropout(FFN(RMSNorm(x))).

    Attention is causal, rotary, bias-free and grouped-query (`num_kv_heads`); RMSNorm uses
    epsilon 1e-5. The FFN is one of:
    - `"dense"`: `SwiGLU(d_ff)`;
    - `"moe"`: `TopKMoE(num_experts, top_k, expert_d_ff)` (Mixtral-style, Switch balance loss);
    - `"moc"`: `CollaborativeExperts(num_experts, top_k, expert_d_ff, num_heads)`.
    Expert layers add their auxiliary loss with `add_loss` in training; pass `aux_loss_weight`
    already divided by the number of blocks to get the average over layers.

    Args:
        num_heads, num_kv_heads: query and key/value heads.
        d_ff: SwiGLU width of the dense FFN.
        ffn: "dense", "moe" or "moc".
        num_experts, top_k, expert_d_ff: the expert layers' shape (expert_d_ff defaults to d_ff).
        aux_loss: "faithful" or "switch" (MoC only; top-k MoE always uses "switch").
        aux_loss_weight, router_z_loss_weight, router_temperature: router loss settings.
        capacity_factor, eval_capacity_factor: top-k MoE dispatch capacity (None: dropless).
        dropout: residual dropout (and dropout inside the expert layers).
        rope_max_wavelength: RoPE base.
        kernel_initializer, output_kernel_initializer: every kernel / residual output kernels
            (default N(0, 0.02) / the kernel's); each sub-layer gets its own clones.

    Example:
        >>> block = LlamaDecoder(num_heads=4, num_kv_heads=2, d_ff=64, ffn="moc", num_experts=4)
        >>> block(keras.ops.ones((2, 5, 32))).shape
        (2, 5, 32)
    """

    def __init__(
        self,
        num_heads,
        num_kv_heads=None,
        d_ff=1024,
        ffn="dense",
        num_experts=8,
        top_k=2,
        expert_d_ff=None,
        aux_loss="faithful",
        aux_loss_weight=0.01,
        router_z_loss_weight=1e-3,
        router_temperature=1.0,
        capacity_factor=1.25,
        eval_capacity_factor=None,
        dropout=0.0,
        rope_max_wavelength=10000,
        norm_epsilon=1e-5,
        kernel_initializer=None,
        output_kernel_initializer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if ffn not in FFN_KINDS:
            raise ValueError(f"ffn must be one of {FFN_KINDS}, got {ffn!r}")
        self.num_heads = num_heads
        self.num_kv_heads = num_kv_heads or num_heads
        self.d_ff = d_ff
        self.ffn = ffn
        self.num_experts = num_experts
        self.top_k = top_k
        self.expert_d_ff = expert_d_ff or d_ff
        self.aux_loss = aux_loss
        self.aux_loss_weight = aux_loss_weight
        self.router_z_loss_weight = router_z_loss_weight
        self.router_temperature = router_temperature
        self.capacity_factor = capacity_factor
        self.eval_capacity_factor = eval_capacity_factor
        self.dropout = dropout
        self.rope_max_wavelength = rope_max_wavelength
        self.norm_epsilon = norm_epsilon
        self.kernel_initializer = keras.initializers.get(
            kernel_initializer or keras.initializers.RandomNormal(stddev=0.02)
        )
        self.output_kernel_initializer = keras.initializers.get(
            output_kernel_initializer or keras.initializers.serialize(self.kernel_initializer)
        )

    def _initializers(self, name):
        """Fresh clones for the sub-layer `name`, which clones them again per weight."""
        return {
            "kernel_initializer": clone_initializer(self.kernel_initializer, name),
            "output_kernel_initializer": clone_initializer(self.output_kernel_initializer, name),
        }

    def build(self, input_shape):
        policy = self.dtype_policy
        self.attention_norm = keras.layers.RMSNormalization(
            epsilon=self.norm_epsilon, dtype=policy, name="attention_norm"
        )
        self.attention = CausalSelfAttention(
            self.num_heads,
            num_kv_heads=self.num_kv_heads,
            use_bias=False,
            rotary=True,
            rope_max_wavelength=self.rope_max_wavelength,
            dtype=policy,
            name="attention",
            **self._initializers("attention"),
        )
        self.ffn_norm = keras.layers.RMSNormalization(
            epsilon=self.norm_epsilon, dtype=policy, name="ffn_norm"
        )
        if self.ffn == "dense":
            self.feed_forward = SwiGLU(
                self.d_ff, dtype=policy, name="feed_forward", **self._initializers("feed_forward")
            )
        elif self.ffn == "moe":
            self.feed_forward = TopKMoE(
                self.num_experts,
                self.top_k,
                self.expert_d_ff,
                capacity_factor=self.capacity_factor,
                eval_capacity_factor=self.eval_capacity_factor,
                aux_loss_weight=self.aux_loss_weight,
                router_z_loss_weight=self.router_z_loss_weight,
                dropout=self.dropout,
                dtype=policy,
                name="feed_forward",
                **self._initializers("feed_forward"),
            )
        else:
            self.feed_forward = CollaborativeExperts(
                self.num_experts,
                self.top_k,
                self.expert_d_ff,
                self.num_heads,
                router_temperature=self.router_temperature,
                aux_loss=self.aux_loss,
                aux_loss_weight=self.aux_loss_weight,
                router_z_loss_weight=self.router_z_loss_weight,
                dropout=self.dropout,
                dtype=policy,
                name="feed_forward",
                **self._initializers("feed_forward"),
            )
        self.residual_dropout = keras.layers.Dropout(self.dropout, dtype=policy)
        for layer in (self.attention_norm, self.attention, self.ffn_norm, self.feed_forward):
            layer.build(input_shape)

    def call(self, x, cache=None, cache_update_index=0, training=None, return_attention_scores=False):
        """Returns the block output, plus the updated cache when `cache` is given, or the
        attention scores when `return_attention_scores` is set."""
        extra = None
        attended = self.attention(
            self.attention_norm(x),
            cache=cache,
            cache_update_index=cache_update_index,
            return_attention_scores=return_attention_scores,
        )
        if cache is not None or return_attention_scores:
            attended, extra = attended
        x = x + self.residual_dropout(attended, training=training)
        hidden = self.feed_forward(self.ffn_norm(x), training=training)
        x = x + self.residual_dropout(hidden, training=training)
        return x if extra is None else (x, extra)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        serialize = keras.initializers.serialize
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "num_kv_heads": self.num_kv_heads,
            "d_ff": self.d_ff,
            "ffn": self.ffn,
            "num_experts": self.num_experts,
            "top_k": self.top_k,
            "expert_d_ff": self.expert_d_ff,
            "aux_loss": self.aux_loss,
            "aux_loss_weight": self.aux_loss_weight,
            "router_z_loss_weight": self.router_z_loss_weight,
            "router_temperature": self.router_temperature,
            "capacity_factor": self.capacity_factor,
            "eval_capacity_factor": self.eval_capacity_factor,
            "dropout": self.dropout,
            "rope_max_wavelength": self.rope_max_wavelength,
            "norm_epsilon": self.norm_epsilon,
            "kernel_initializer": serialize(self.kernel_initializer),
            "output_kernel_initializer": serialize(self.output_kernel_initializer),
        }
