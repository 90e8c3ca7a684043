"""What the decode kernels take from a model: plain arrays and a few static numbers.

A model that can be decoded by `kerasvq.kernels.fused_decode_step` and
`kerasvq.kernels.persistent_decode` offers `decode_weights()` returning a `DecodeWeights`
(today `kerasvq.models.transformer_lm.TransformerLM`); the kernels read nothing else of the
model, so they import nothing from `kerasvq.models` and the model's layer names and private
helpers stay free to change. The structure describes one architecture, a pre-LayerNorm GPT
block with additive positions and the tanh GELU; a model of another architecture raises
`ValueError` from `decode_weights()` saying why, instead of returning weights the kernels
would run with the wrong math.

Call `decode_weights()` inside the trace that runs the kernels: under `jax.jit` over a
`keras.StatelessScope` (as `kerasvq.generation.generate` compiles) the arrays are then the traced
values of the model's variables, not copies made once.

Example:
    >>> weights = model.decode_weights()
    >>> weights.d_model, len(weights.blocks), weights.head_transposed
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional


class NormWeights(NamedTuple):
    """A LayerNorm: gamma and beta (d,), and its epsilon (a Python float, static)."""

    gamma: Any
    beta: Any
    epsilon: float


class DenseWeights(NamedTuple):
    """A Dense layer: kernel (in, out) and bias (out,) or None."""

    kernel: Any
    bias: Optional[Any]


class BlockWeights(NamedTuple):
    """One pre-LayerNorm GPT block: x + attention(LN(x)), then x + FFN(LN(x))."""

    attention_norm: NormWeights
    qkv: DenseWeights
    """(d, 3d): queries, keys, values, each laid out head after head."""
    attention_output: DenseWeights
    ffn_norm: NormWeights
    ffn_hidden: DenseWeights
    """(d, d_ff), followed by the tanh GELU."""
    ffn_output: DenseWeights


class DecodeWeights(NamedTuple):
    """Everything a decode kernel reads of a language model."""

    token_embedding: Any
    """(vocab, d) token vectors, in the variables' dtype (cast to `compute_dtype` when added)."""
    positions: Any
    """(seq_len, d) position vectors in `compute_dtype`, as the model adds them to the token
    vectors (learned or sinusoidal: the kernels need not know which)."""
    blocks: tuple
    """One `BlockWeights` per block, first block first."""
    final_norm: NormWeights
    output_head: Optional[Any]
    """(d, vocab) vocabulary projection, or None when it is tied to `token_embedding`."""
    num_heads: int
    compute_dtype: str

    @property
    def vocab_size(self) -> int:
        return int(self.token_embedding.shape[0])

    @property
    def d_model(self) -> int:
        return int(self.token_embedding.shape[1])

    @property
    def d_ff(self) -> int:
        return int(self.blocks[0].ffn_hidden.kernel.shape[1])

    @property
    def head_dim(self) -> int:
        return self.d_model // self.num_heads

    @property
    def head_transposed(self) -> bool:
        """Whether the vocabulary projection is the (vocab, d) token table (tied embeddings)
        rather than a (d, vocab) kernel."""
        return self.output_head is None

    @property
    def vocabulary_head(self):
        """The vocabulary projection's weights: (vocab, d) when tied, else (d, vocab)."""
        return self.token_embedding if self.output_head is None else self.output_head


def _power_of_two(n):
    return n > 0 and n & (n - 1) == 0


def unsupported_reason(weights: DecodeWeights, cache_length: int) -> Optional[str]:
    """Why the kernels cannot run these weights with a cache of `cache_length` slots (a
    string), or None when they can: the tiles need power-of-two widths and cache length, and
    FFN and vocabulary widths in multiples of 16."""
    for name, value in (("d_model", weights.d_model), ("head_dim", weights.head_dim),
                        ("cache length", cache_length)):
        if not _power_of_two(value):
            return f"{name} {value} is not a power of two"
    for name, value in (("d_ff", weights.d_ff), ("vocab_size", weights.vocab_size)):
        if value % 16:
            return f"{name} {value} is not a multiple of 16"
    return None
