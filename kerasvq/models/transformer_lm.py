"""The v5 decoder-only Transformer language model.

Example:
    >>> model = TransformerLM(vocab_size=4000, seq_len=256, d_model=256, num_layers=4,
    ...                       num_heads=8, d_ff=1024, dropout=0.1)
    >>> logits = model(token_ids)                       # (batch, seq, vocab), float32
    >>> cache = model.init_cache(batch_size=2, max_length=64)
    >>> logits, cache = model.call_with_cache(prompt_ids, cache, cache_update_index=0)
"""

import math

import keras
from keras import ops

from kerasvq.kernels.decode_weights import BlockWeights, DecodeWeights, DenseWeights, NormWeights
from kerasvq.layers.hashed_dropout import HashedDropout
from kerasvq.layers.initializers import clone_initializer
from kerasvq.layers.llama_decoder import LlamaDecoder
from kerasvq.layers.one_pass_layer_normalization import OnePassLayerNormalization
from kerasvq.layers.sinusoidal_position_encoding import SinusoidalPositionEncoding
from kerasvq.layers.token_embedding import TokenEmbedding
from kerasvq.layers.transformer_decoder import TransformerDecoder
from kerasvq.models.untracked_fit_state import UntrackedFitState


@keras.saving.register_keras_serializable(package="kerasvq")
class TransformerLM(UntrackedFitState, keras.Model):
    """Token embedding (+ positions) → decoder blocks → LayerNorm → vocabulary logits.

    Inputs longer than `seq_len` are rejected, never truncated. Weights follow GPT-2's
    initialization: normal(0, 0.02), residual output projections scaled by 1/sqrt(2·layers);
    every weight is its own draw (`clone_initializer`), fixed by `keras.utils.set_random_seed`.

    Args:
        vocab_size: tokenizer vocabulary size.
        seq_len: the longest context the model accepts.
        d_model, num_layers, num_heads, d_ff: the shape.
        dropout: embedding and residual dropout.
        positions: "learned", "sinusoidal" or "rotary".
        tie_embeddings: reuse the token embedding as the output projection.
        approximate_gelu: gpt blocks' feed-forward GELU in GPT-2's tanh form (True) or the
            exact erf form (False, what models saved before this argument used; they load
            with it).
        block: "gpt" (`TransformerDecoder`) or "llama" (`LlamaDecoder`: RMSNorm, rotary,
            bias-free GQA attention; needs positions="rotary"; final norm is RMSNorm too).
        num_kv_heads: llama only, key/value heads (None = num_heads).
        ffn: llama only, "dense" (SwiGLU of width d_ff), "moe" or "moc".
        expert_options: llama only, extra `LlamaDecoder` arguments (num_experts, top_k,
            expert_d_ff, aux_loss, aux_loss_weight, ...); aux_loss_weight is divided by
            num_layers so the added router losses sum to their average over layers.
    """

    def __init__(
        self,
        vocab_size,
        seq_len,
        d_model=256,
        num_layers=4,
        num_heads=8,
        d_ff=1024,
        dropout=0.1,
        positions="learned",
        tie_embeddings=True,
        block="gpt",
        num_kv_heads=None,
        ffn="dense",
        expert_options=None,
        approximate_gelu=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if positions not in ("learned", "sinusoidal", "rotary"):
            raise ValueError(f"positions must be learned, sinusoidal or rotary, got {positions!r}")
        self.vocab_size = vocab_size
        self.seq_len = seq_len
        self.d_model = d_model
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.d_ff = d_ff
        self.dropout = dropout
        self.positions = positions
        self.tie_embeddings = tie_embeddings
        if block not in ("gpt", "llama"):
            raise ValueError(f"block must be gpt or llama, got {block!r}")
        if block == "llama" and positions != "rotary":
            raise ValueError("block='llama' needs positions='rotary'")
        self.block = block
        self.num_kv_heads = num_kv_heads
        self.ffn = ffn
        self.expert_options = dict(expert_options or {})
        self.approximate_gelu = approximate_gelu
        # The router losses the expert layers add, logged apart from the main loss ("aux_loss").
        self.aux_loss_tracker = (
            keras.metrics.Mean(name="aux_loss") if block == "llama" and ffn != "dense" else None
        )

    def build(self, input_shape=None):
        policy = self.dtype_policy
        # Templates only: each layer below gets its own clone (and clones it per weight).
        normal = keras.initializers.RandomNormal(stddev=0.02)
        residual = keras.initializers.RandomNormal(stddev=0.02 / math.sqrt(2 * self.num_layers))
        init = lambda name: clone_initializer(normal, name)  # noqa: E731
        residual_init = lambda name: clone_initializer(residual, name)  # noqa: E731
        self.token_embedding = TokenEmbedding(
            self.vocab_size, self.d_model, embeddings_initializer=init("token_embedding"), dtype=policy,
            name="token_embedding",
        )
        self.token_embedding.build((None, None))
        self.position_embedding = None
        if self.positions == "learned":
            self.position_embedding = keras.layers.Embedding(
                self.seq_len, self.d_model, embeddings_initializer=init("position_embedding"),
                dtype=policy,
                name="position_embedding",
            )
            self.position_embedding.build((None,))
        elif self.positions == "sinusoidal":
            self.position_embedding = SinusoidalPositionEncoding(dtype=policy, name="position_encoding")
        self.embedding_dropout = HashedDropout(self.dropout, dtype=policy, name="embedding_dropout")
        self.blocks = []
        for i in range(self.num_layers):
            if self.block == "llama":
                block = self._llama_block(i, init, residual_init)
                block.build((None, None, self.d_model))
                self.blocks.append(block)
                continue
            block = TransformerDecoder(
                self.num_heads,
                self.d_ff,
                dropout=self.dropout,
                rotary=self.positions == "rotary",
                approximate_gelu=self.approximate_gelu,
                kernel_initializer=init(f"block_{i}"),
                output_kernel_initializer=residual_init(f"block_{i}"),
                dtype=policy,
                name=f"block_{i}",
            )
            block.build((None, None, self.d_model))
            self.blocks.append(block)
        if self.block == "llama":
            self.final_norm = keras.layers.RMSNormalization(epsilon=1e-5, dtype=policy, name="final_norm")
        else:
            self.final_norm = OnePassLayerNormalization(epsilon=1e-5, dtype=policy, name="final_norm")
        self.final_norm.build((None, None, self.d_model))
        self.output_head = None
        if not self.tie_embeddings:
            self.output_head = keras.layers.Dense(
                self.vocab_size, use_bias=False, kernel_initializer=init("output_head"),
                dtype=policy, name="output_head",
            )
            self.output_head.build((None, None, self.d_model))
        self.built = True

    def _llama_block(self, index, init, residual_init):
        options = dict(self.expert_options)
        options["aux_loss_weight"] = options.get("aux_loss_weight", 0.01) / self.num_layers
        return LlamaDecoder(
            self.num_heads,
            num_kv_heads=self.num_kv_heads,
            d_ff=self.d_ff,
            ffn=self.ffn,
            dropout=self.dropout,
            kernel_initializer=init(f"block_{index}"),
            output_kernel_initializer=residual_init(f"block_{index}"),
            dtype=self.dtype_policy,
            name=f"block_{index}",
            **options,
        )

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = super().compute_loss(x, y, y_pred, sample_weight=sample_weight, training=training)
        if self.aux_loss_tracker is not None and training and self.losses:
            self.aux_loss_tracker.update_state(ops.sum(ops.stack(self.losses)))
        return loss

    def _check_length(self, length):
        if isinstance(length, int) and length > self.seq_len:
            raise ValueError(
                f"input has {length} tokens but the model's seq_len is {self.seq_len}; "
                "it never truncates silently"
            )

    def _embed(self, token_ids, start_index, training):
        x = self.token_embedding(token_ids)
        if self.positions == "learned":
            positions = ops.arange(ops.shape(token_ids)[1]) + start_index
            x = x + self.position_embedding(positions)[None]
        elif self.positions == "sinusoidal":
            x = x + self.position_embedding(x, start_index=start_index)
        return self.embedding_dropout(x, training=training)

    def _logits(self, x):
        x = self.final_norm(x)
        if self.tie_embeddings:
            kernel = ops.cast(self.token_embedding.embeddings, x.dtype)
            logits = ops.matmul(x, ops.transpose(kernel))
        else:
            logits = self.output_head(x)
        # Softmax and the loss run in float32 even under mixed precision.
        return ops.cast(logits, "float32")

    def call(self, token_ids, training=None):
        self._check_length(token_ids.shape[1])
        x = self._embed(token_ids, 0, training)
        for block in self.blocks:
            x = block(x, training=training)
        return self._logits(x)

    def init_cache(self, batch_size, max_length=None):
        """An empty KV cache: one tensor per layer, (2, batch, max_length, kv_heads, head_dim)
        holding keys then values."""
        max_length = max_length or self.seq_len
        self._check_length(max_length)
        if not self.built:
            self.build()
        head_dim = self.d_model // self.num_heads
        kv_heads = self.num_kv_heads or self.num_heads
        shape = (2, batch_size, max_length, kv_heads, head_dim)
        return tuple(ops.zeros(shape, dtype=self.compute_dtype) for _ in range(self.num_layers))

    def call_with_cache(self, token_ids, cache, cache_update_index):
        """Runs `token_ids` placed at `cache_update_index`; returns (logits, updated cache)."""
        x = self._embed(token_ids, cache_update_index, training=False)
        updated = []
        for block, layer_cache in zip(self.blocks, cache):
            x, layer_cache = block(x, cache=layer_cache, cache_update_index=cache_update_index)
            updated.append(layer_cache)
        return self._logits(x), tuple(updated)

    def decode_weights(self) -> DecodeWeights:
        """The weights as the decode kernels of `kerasvq.kernels` take them, for inference
        (dropout off). Call it inside the trace that runs the kernels, so the arrays are the
        traced values of the variables.

        Raises ValueError, saying why, for a model the kernels' math does not cover: llama
        blocks, rotary positions, the exact (erf) GELU.
        """
        if self.block != "gpt":
            raise ValueError(f"block={self.block!r}; only 'gpt' blocks are fused")
        if self.positions == "rotary":
            raise ValueError("rotary positions are not fused")
        if not self.approximate_gelu:
            raise ValueError("the exact (erf) GELU is not fused")
        if not self.built:
            self.build()
        tensor = ops.convert_to_tensor

        def dense(layer):
            return DenseWeights(tensor(layer.kernel), tensor(layer.bias) if layer.use_bias else None)

        def norm(layer):
            return NormWeights(tensor(layer.gamma), tensor(layer.beta), float(layer.epsilon))

        # The same vectors `_embed` adds, for every position at once.
        if self.positions == "learned":
            positions = self.position_embedding(ops.arange(self.seq_len))
        else:
            positions = self.position_embedding(ops.zeros((1, self.seq_len, self.d_model), self.compute_dtype))[0]
        blocks = tuple(
            BlockWeights(norm(b.attention_norm), dense(b.attention.qkv_dense), dense(b.attention.output_dense),
                         norm(b.ffn_norm), dense(b.ffn_hidden), dense(b.ffn_output))
            for b in self.blocks
        )
        return DecodeWeights(
            token_embedding=tensor(self.token_embedding.embeddings),
            positions=positions,
            blocks=blocks,
            final_norm=norm(self.final_norm),
            output_head=None if self.tie_embeddings else tensor(self.output_head.kernel),
            num_heads=int(self.num_heads),
            compute_dtype=self.compute_dtype,
        )

    def attention_weights(self, token_ids):
        """Attention weights of every layer: a list of (batch, heads, seq, seq) arrays."""
        self._check_length(token_ids.shape[1])
        if not self.built:
            self.build()
        x = self._embed(token_ids, 0, training=False)
        weights = []
        for block in self.blocks:
            x, scores = block(x, return_attention_scores=True)
            weights.append(scores)
        return weights

    def get_config(self):
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "seq_len": self.seq_len,
            "d_model": self.d_model,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "d_ff": self.d_ff,
            "dropout": self.dropout,
            "positions": self.positions,
            "tie_embeddings": self.tie_embeddings,
            "block": self.block,
            "num_kv_heads": self.num_kv_heads,
            "ffn": self.ffn,
            "expert_options": self.expert_options,
            "approximate_gelu": self.approximate_gelu,
        }

    @classmethod
    def from_config(cls, config):
        return super().from_config({"approximate_gelu": False, **config})
