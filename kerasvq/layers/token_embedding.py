"""`TokenEmbedding`: a Keras `Embedding` whose gradient is a float32 sum per token id.

The gradient of a table lookup adds every position's upstream gradient into its token's row.
Under mixed precision Keras looks rows up in the autocast bfloat16 table, so that scatter-add
runs in bfloat16, and on a GPU real text makes it slow: frequent tokens (punctuation, "de",
the end-of-document token) send thousands of additions to the same rows: a v5 training step
on real pt-BR windows took more than twice as long as on uniformly random tokens. The same
lookup from the float32 table, whose gradient is a float32 scatter-add, is about three times
faster, but reading the table past autocast needs Keras's private `AutocastScope`.

`gradient="segment_sum"` (what "auto", the default, means) casts the upstream gradient to
float32 and sums it per id of the flattened batch with `ops.segment_sum`: on a GPU a little
faster than "one_hot_matmul" (the `one_hot(ids)ᵀ @ upstream` product this layer used before)
and about three times faster than "scatter"; on a CPU as fast as Keras's scatter
(docs/performance.md has the timings). "one_hot_matmul" and "scatter" (Keras's own lookup
gradient) remain as options. The forward pass is always a lookup.

Example:
    >>> embedding = TokenEmbedding(4000, 256, dtype="mixed_bfloat16")
    >>> embedding(keras.ops.ones((2, 8), "int32")).shape
    (2, 8, 256)
"""

import keras
from keras import ops

GRADIENTS = ("auto", "segment_sum", "one_hot_matmul", "scatter")


@keras.saving.register_keras_serializable(package="kerasvq")
class TokenEmbedding(keras.layers.Embedding):
    """`keras.layers.Embedding` plus `gradient`: "auto" (= "segment_sum", the default),
    "segment_sum", "one_hot_matmul" or "scatter"."""

    def __init__(self, input_dim, output_dim, gradient="auto", **kwargs):
        if gradient not in GRADIENTS:
            raise ValueError(f"gradient must be one of {GRADIENTS}, got {gradient!r}")
        super().__init__(input_dim, output_dim, **kwargs)
        self.gradient = gradient

    def call(self, inputs):
        gradient = "segment_sum" if self.gradient == "auto" else self.gradient
        if gradient == "scatter" or self.lora_enabled or self.quantization_mode:
            return super().call(inputs)
        ids = ops.cast(inputs, "int32")
        compute_dtype = self.compute_dtype

        @ops.custom_gradient
        def lookup(table):
            def grad(*args, upstream=None):
                if upstream is None:  # JAX passes the upstream gradient positionally
                    (upstream,) = args
                flat_ids = ops.reshape(ids, (-1,))
                if gradient == "segment_sum":
                    rows = ops.cast(ops.reshape(upstream, (-1, self.output_dim)), "float32")
                    table_grad = ops.segment_sum(rows, flat_ids, num_segments=self.input_dim)
                else:
                    one_hot = ops.one_hot(flat_ids, self.input_dim, dtype=compute_dtype)
                    rows = ops.cast(ops.reshape(upstream, (-1, self.output_dim)), compute_dtype)
                    table_grad = ops.matmul(ops.transpose(one_hot), rows)
                return ops.cast(table_grad, table.dtype)

            return ops.take(table, ids, axis=0), grad

        # A tensor, not the variable: TensorFlow's custom_gradient would otherwise ask for
        # gradients of the variables the function reads.
        return ops.cast(lookup(ops.copy(self.embeddings)), compute_dtype)

    def get_config(self):
        return {**super().get_config(), "gradient": self.gradient}
