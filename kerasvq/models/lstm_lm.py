"""The v4 baseline: a stacked LSTM language model.

Example:
    >>> model = LSTMLM(vocab_size=4000, seq_len=192, units=512, num_layers=2, dropout=0.1)
    >>> logits = model(token_ids)                       # (batch, seq, vocab), float32
    >>> state = model.init_cache(batch_size=2)
    >>> logits, state = model.call_with_cache(prompt_ids, state, cache_update_index=0)
"""

import keras
from keras import ops

from kerasvq.layers.initializers import clone_initializer
from kerasvq.layers.token_embedding import TokenEmbedding
from kerasvq.models.untracked_fit_state import UntrackedFitState


INITIALIZATIONS = ("pytorch", "keras")


def _initializers(initialization, units):
    """Keyword arguments for the embedding, the LSTM layers and the output head, as templates:
    `_fresh` gives each layer its own clones, so no two weights share a draw."""
    if initialization == "keras":
        return {}, {}, {}
    bound = 1.0 / units**0.5
    uniform = keras.initializers.RandomUniform(-bound, bound)
    return (
        {"embeddings_initializer": keras.initializers.RandomNormal(stddev=1.0)},
        {"kernel_initializer": uniform, "recurrent_initializer": uniform,
         "bias_initializer": uniform, "unit_forget_bias": False},
        {"kernel_initializer": uniform, "bias_initializer": uniform},
    )


def _fresh(arguments, name):
    """`arguments` of the layer `name` with every initializer replaced by its own clone."""
    return {
        key: clone_initializer(value, f"{name}/{key}")
        if isinstance(value, keras.initializers.Initializer) else value
        for key, value in arguments.items()
    }


@keras.saving.register_keras_serializable(package="kerasvq")
class LSTMLM(UntrackedFitState, keras.Model):
    """Embedding → Dropout → `num_layers` × (LSTM → Dropout) → vocabulary logits.

    The generation "cache" is the recurrent state, so the same sampling code drives this
    model and `TransformerLM`.

    Args:
        vocab_size: tokenizer vocabulary size.
        seq_len: the training context length (recorded; LSTMs accept any length).
        units: embedding size and units of every LSTM layer.
        num_layers: stacked LSTM layers.
        dropout: dropout after the embedding and after each LSTM layer.
        tie_embeddings: reuse the token embedding as the output projection.
        initialization: "pytorch" (default): embedding N(0, 1); LSTM weights, biases and the
            output projection U(±1/√units), no forget-gate bias of 1, as PyTorch's
            `nn.Embedding`/`nn.LSTM`/`nn.Linear` start. "keras": Keras's defaults
            (embedding U(±0.05), Glorot/orthogonal LSTM weights, forget-gate bias 1).
            With the v4 recipe (2 epochs) on the default corpus "pytorch" reached a clearly
            lower val bits/byte than "keras" (docs/results.md): the small Keras embedding
            gives the LSTM almost no input signal early in a short run. ("pytorch" was
            measured before each LSTM layer got its own draw, when the layers started as
            copies.)
    """

    def __init__(self, vocab_size, seq_len, units=512, num_layers=2, dropout=0.1,
                 tie_embeddings=False, initialization="pytorch", **kwargs):
        super().__init__(**kwargs)
        if initialization not in INITIALIZATIONS:
            raise ValueError(f"initialization must be one of {INITIALIZATIONS}, got {initialization!r}")
        self.vocab_size = vocab_size
        self.seq_len = seq_len
        self.units = units
        self.num_layers = num_layers
        self.dropout = dropout
        self.tie_embeddings = tie_embeddings
        self.initialization = initialization

    @property
    def recurrent_dtype(self):
        """The LSTM layers' policy: float32 when the model computes in bfloat16.

        cuDNN's LSTM kernels take no bfloat16 (JAX's GPU path stops with "Unknown output
        type bfloat16"), and a bfloat16 cell state loses the small updates it accumulates over
        a long window, so the recurrence runs in float32 and only the embedding and the
        vocabulary projection use bfloat16.
        """
        if self.dtype_policy.compute_dtype == "bfloat16":
            return "float32"
        return self.dtype_policy

    def build(self, input_shape=None):
        policy = self.dtype_policy
        embedding_init, lstm_init, head_init = _initializers(self.initialization, self.units)
        self.token_embedding = TokenEmbedding(
            self.vocab_size, self.units, dtype=policy, name="token_embedding", **_fresh(embedding_init, "token_embedding")
        )
        self.token_embedding.build((None, None))
        self.lstms = []
        for i in range(self.num_layers):
            lstm = keras.layers.LSTM(
                self.units, return_sequences=True, return_state=True, dtype=self.recurrent_dtype,
                name=f"lstm_{i}",
                **_fresh(lstm_init, f"lstm_{i}"),
            )
            lstm.build((None, None, self.units))
            self.lstms.append(lstm)
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=policy)
        self.output_head = None
        if not self.tie_embeddings:
            self.output_head = keras.layers.Dense(self.vocab_size, dtype=policy, name="output_head",
                                                  **_fresh(head_init, "output_head"))
            self.output_head.build((None, None, self.units))
        self.built = True

    def _run(self, token_ids, states, training):
        x = self.dropout_layer(self.token_embedding(token_ids), training=training)
        new_states = []
        for i, lstm in enumerate(self.lstms):
            initial = None if states is None else [states[i, 0], states[i, 1]]
            x, h, c = lstm(x, initial_state=initial, training=training)
            x = self.dropout_layer(x, training=training)
            new_states.append(ops.stack([h, c], axis=0))
        if self.tie_embeddings:
            logits = ops.matmul(x, ops.transpose(ops.cast(self.token_embedding.embeddings, x.dtype)))
        else:
            logits = self.output_head(x)
        return ops.cast(logits, "float32"), ops.stack(new_states, axis=0)

    def call(self, token_ids, training=None):
        return self._run(token_ids, None, training)[0]

    def init_cache(self, batch_size, max_length=None):
        """Zero recurrent state: (layers, 2 (h, c), batch, units). `max_length` is unused."""
        if not self.built:
            self.build()
        return ops.zeros((self.num_layers, 2, batch_size, self.units), dtype=self.lstms[0].compute_dtype)

    def call_with_cache(self, token_ids, cache, cache_update_index):
        """Continues from the recurrent state `cache`; returns (logits, new state)."""
        return self._run(token_ids, cache, training=False)

    def get_config(self):
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "seq_len": self.seq_len,
            "units": self.units,
            "num_layers": self.num_layers,
            "dropout": self.dropout,
            "tie_embeddings": self.tie_embeddings,
            "initialization": self.initialization,
        }
