"""A pre-LayerNorm GPT-style decoder block: causal self-attention and a GELU feed-forward.

Example:
    >>> block = TransformerDecoder(num_heads=8, d_ff=1024, dropout=0.1)
    >>> y = block(keras.random.normal((2, 16, 256)))                        # (2, 16, 256)
    >>> y, cache = block(x_step, cache=cache, cache_update_index=5)          # generation
"""

import keras
from keras import ops

from kerasvq.layers.causal_self_attention import CausalSelfAttention
from kerasvq.layers.hashed_dropout import HashedDropout
from kerasvq.layers.initializers import clone_initializer
from kerasvq.layers.one_pass_layer_normalization import OnePassLayerNormalization
from kerasvq.layers.tanh_gelu import tanh_gelu


@keras.saving.register_keras_serializable(package="kerasvq")
class TransformerDecoder(keras.layers.Layer):
    """x + Dropout(Attention(LN(x))), then x + Dropout(FFN(LN(x))).

    Args:
        num_heads: attention heads.
        d_ff: hidden width of the feed-forward network.
        dropout: residual dropout after attention and after the feed-forward network
            (`HashedDropout`: the mask is computed inside the kernel that applies it).
        rotary: rotary position embeddings inside attention.
        layer_norm_epsilon: LayerNorm epsilon.
        approximate_gelu: the feed-forward GELU uses GPT-2's tanh approximation (True) or the
            exact erf form (False). The tanh form is what GPT-2 and keras-hub's GPT2 use and
            is cheaper (a faster v5 training step: docs/performance.md). Configs saved before this argument existed load with the
            exact form they were trained with. The tanh form runs as `tanh_gelu`, whose
            backward pass recomputes from the FFN's pre-activation.
        kernel_initializer: for every kernel but the two residual output projections.
        output_kernel_initializer: for the residual output projections (GPT-2 scales it
            down with depth so the residual stream's variance stays bounded).
        Every kernel gets its own clone of its initializer (`clone_initializer`).
    """

    def __init__(
        self,
        num_heads,
        d_ff,
        dropout=0.0,
        rotary=False,
        layer_norm_epsilon=1e-5,
        approximate_gelu=True,
        kernel_initializer="glorot_uniform",
        output_kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.approximate_gelu = approximate_gelu
        self.num_heads = num_heads
        self.d_ff = d_ff
        self.dropout = dropout
        self.rotary = rotary
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.output_kernel_initializer = keras.initializers.get(output_kernel_initializer)

    def build(self, input_shape):
        width = input_shape[-1]
        policy = self.dtype_policy
        self.attention_norm = OnePassLayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=policy, name="attention_norm"
        )
        self.attention = CausalSelfAttention(
            self.num_heads,
            rotary=self.rotary,
            kernel_initializer=clone_initializer(self.kernel_initializer, "attention"),
            output_kernel_initializer=clone_initializer(self.output_kernel_initializer, "attention"),
            dtype=policy,
            name="attention",
        )
        self.ffn_norm = OnePassLayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=policy, name="ffn_norm"
        )
        self.ffn_hidden = keras.layers.Dense(
            self.d_ff, kernel_initializer=clone_initializer(self.kernel_initializer, "ffn_hidden"),
            dtype=policy, name="ffn_hidden",
        )
        self.ffn_output = keras.layers.Dense(
            width, kernel_initializer=clone_initializer(self.output_kernel_initializer, "ffn_output"),
            dtype=policy,
            name="ffn_output",
        )
        self.residual_dropout = HashedDropout(self.dropout, dtype=policy, name="residual_dropout")
        for layer in (self.attention_norm, self.attention, self.ffn_norm, self.ffn_hidden):
            layer.build(input_shape)
        self.ffn_output.build((*input_shape[:-1], self.d_ff))

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
        hidden = self.ffn_hidden(self.ffn_norm(x))
        hidden = tanh_gelu(hidden) if self.approximate_gelu else ops.gelu(hidden, approximate=False)
        hidden = self.ffn_output(hidden)
        x = x + self.residual_dropout(hidden, training=training)
        return x if extra is None else (x, extra)

    @classmethod
    def from_config(cls, config):
        return super().from_config({"approximate_gelu": False, **config})

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "d_ff": self.d_ff,
            "dropout": self.dropout,
            "rotary": self.rotary,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "approximate_gelu": self.approximate_gelu,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "output_kernel_initializer": keras.initializers.serialize(self.output_kernel_initializer),
        }
