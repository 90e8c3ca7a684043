"""Causal multi-head self-attention with a fused QKV projection, GQA, RoPE and a KV cache.

Uses `keras.ops.dot_product_attention`, which dispatches to cuDNN flash attention on JAX for
bfloat16/float16 inputs. Attention-probability dropout is not applied (the fused kernels have
none); regularize with residual dropout instead.

Example:
    >>> attention = CausalSelfAttention(num_heads=8)
    >>> y = attention(keras.random.normal((2, 16, 256)))          # (2, 16, 256)
    >>> cache = keras.ops.zeros((2, 2, 64, 8, 32))   # (keys/values, batch, max_len, kv_heads, head_dim)
    >>> y, cache = attention(x_step, cache=cache, cache_update_index=5)
"""

import keras
from keras import ops

from kerasvq.layers.initializers import clone_initializer
from kerasvq.layers.rotary_embedding import RotaryEmbedding


@keras.saving.register_keras_serializable(package="kerasvq")
class CausalSelfAttention(keras.layers.Layer):
    """Each position attends to itself and earlier positions only.

    Args:
        num_heads: query heads; the model width must be divisible by it.
        num_kv_heads: key/value heads (grouped-query attention); defaults to `num_heads`.
        use_bias: biases in the QKV and output projections.
        rotary: apply rotary position embeddings to queries and keys.
        rope_max_wavelength: RoPE base.
        kernel_initializer / output_kernel_initializer: for the QKV and output projections;
            each projection gets its own clone (`clone_initializer`), so they never start equal.
    """

    def __init__(
        self,
        num_heads,
        num_kv_heads=None,
        use_bias=True,
        rotary=False,
        rope_max_wavelength=10000,
        kernel_initializer="glorot_uniform",
        output_kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.num_kv_heads = num_kv_heads or num_heads
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"num_heads ({num_heads}) must be a multiple of num_kv_heads ({num_kv_heads})"
            )
        self.use_bias = use_bias
        self.rotary = rotary
        self.rope_max_wavelength = rope_max_wavelength
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.output_kernel_initializer = keras.initializers.get(output_kernel_initializer)

    def build(self, input_shape):
        width = input_shape[-1]
        if width % self.num_heads:
            raise ValueError(f"width {width} is not divisible by num_heads {self.num_heads}")
        self.head_dim = width // self.num_heads
        qkv_width = (self.num_heads + 2 * self.num_kv_heads) * self.head_dim
        self.qkv_dense = keras.layers.Dense(
            qkv_width,
            use_bias=self.use_bias,
            kernel_initializer=clone_initializer(self.kernel_initializer, "qkv"),
            dtype=self.dtype_policy,
            name="qkv",
        )
        self.qkv_dense.build(input_shape)
        self.output_dense = keras.layers.Dense(
            width,
            use_bias=self.use_bias,
            kernel_initializer=clone_initializer(self.output_kernel_initializer, "output"),
            dtype=self.dtype_policy,
            name="output",
        )
        self.output_dense.build((*input_shape[:-1], width))
        if self.rotary:
            self.rotary_embedding = RotaryEmbedding(self.rope_max_wavelength, dtype=self.dtype_policy)

    def _project(self, x, start_index):
        batch, seq = ops.shape(x)[0], ops.shape(x)[1]
        qkv = self.qkv_dense(x)
        q_width = self.num_heads * self.head_dim
        kv_width = self.num_kv_heads * self.head_dim
        query = ops.reshape(qkv[..., :q_width], (batch, seq, self.num_heads, self.head_dim))
        key = ops.reshape(
            qkv[..., q_width : q_width + kv_width], (batch, seq, self.num_kv_heads, self.head_dim)
        )
        value = ops.reshape(qkv[..., q_width + kv_width :], (batch, seq, self.num_kv_heads, self.head_dim))
        if self.rotary:
            query = self.rotary_embedding(query, start_index=start_index)
            key = self.rotary_embedding(key, start_index=start_index)
        return query, key, value

    def call(self, x, cache=None, cache_update_index=0, return_attention_scores=False):
        """Returns the attended output; with `cache` (2, batch, max_len, kv_heads, head_dim),
        keys then values, returns `(output, updated cache)`; with `return_attention_scores`,
        returns `(output, scores (batch, heads, q, k))`.

        Keys and values lead the cache's shape so that one `slice_update` writes both and
        `cache[0]`, `cache[1]` are contiguous: inside a compiled decode loop XLA updates the
        cache in place and reads it without copies (a cache stacked per step was copied whole
        at every token, a third of the step's GPU time at batch 32)."""
        batch, seq = ops.shape(x)[0], ops.shape(x)[1]
        query, key, value = self._project(x, cache_update_index if cache is not None else 0)
        mask = None
        if cache is not None:
            new = ops.cast(ops.stack([key, value]), cache.dtype)
            cache = ops.slice_update(cache, [0, 0, cache_update_index, 0, 0], new)
            key, value = cache[0], cache[1]
            query_positions = ops.arange(seq) + cache_update_index
            key_positions = ops.arange(ops.shape(key)[1])
            mask = (key_positions[None, :] <= query_positions[:, None])[None, None]
            key, value = ops.cast(key, query.dtype), ops.cast(value, query.dtype)
        if return_attention_scores:
            output, scores = self._explicit_attention(query, key, value, mask)
        else:
            output = ops.dot_product_attention(
                query, key, value, mask=mask, is_causal=cache is None
            )
        output = self.output_dense(ops.reshape(output, (batch, seq, self.num_heads * self.head_dim)))
        if return_attention_scores:
            return output, scores
        if cache is not None:
            return output, cache
        return output

    def _explicit_attention(self, query, key, value, mask):
        """The same attention, written out so the weights can be returned (for plots)."""
        groups = self.num_heads // self.num_kv_heads
        key = ops.repeat(key, groups, axis=2)
        value = ops.repeat(value, groups, axis=2)
        logits = ops.einsum("bqhd,bkhd->bhqk", ops.cast(query, "float32"), ops.cast(key, "float32"))
        logits = logits / ops.sqrt(float(self.head_dim))
        if mask is None:
            q_len, k_len = ops.shape(query)[1], ops.shape(key)[1]
            mask = (ops.arange(k_len)[None, :] <= ops.arange(q_len)[:, None])[None, None]
        logits = ops.where(mask, logits, -1e9)
        scores = ops.softmax(logits, axis=-1)
        output = ops.einsum("bhqk,bkhd->bqhd", scores, ops.cast(value, "float32"))
        return ops.cast(output, self.compute_dtype), scores

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "num_kv_heads": self.num_kv_heads,
            "use_bias": self.use_bias,
            "rotary": self.rotary,
            "rope_max_wavelength": self.rope_max_wavelength,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "output_kernel_initializer": keras.initializers.serialize(self.output_kernel_initializer),
        }
