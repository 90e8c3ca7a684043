"""Builds the language model a config describes.

Example:
    >>> model = build_language_model(load_lm_config("versions/v5-transformer/config.json"))
"""

from kerasvq.config.lm import LMConfig
from kerasvq.models.lstm_lm import LSTMLM
from kerasvq.models.transformer_lm import TransformerLM


def build_language_model(cfg: LMConfig):
    m, d = cfg.model, cfg.data
    dtype = cfg.train.dtype_policy
    if m.architecture == "lstm":
        model = LSTMLM(d.vocab_size, d.seq_len, units=m.d_model, num_layers=m.num_layers,
                       dropout=m.dropout, tie_embeddings=m.tie_embeddings, dtype=dtype)
    else:
        model = TransformerLM(
            d.vocab_size, d.seq_len, d_model=m.d_model, num_layers=m.num_layers,
            num_heads=m.num_heads, d_ff=m.d_ff, dropout=m.dropout, positions=m.positions,
            tie_embeddings=m.tie_embeddings, block=m.block, num_kv_heads=m.num_kv_heads,
            ffn=m.ffn, expert_options=m.expert_options() if m.block == "llama" else None,
            dtype=dtype,
        )
    model.build((None, d.seq_len))
    return model
