"""Attention heatmaps of a prompt: one PNG per layer, one panel per head.

Example:
    >>> paths = attention_maps(model, tokenizer, "O setor de infraestrutura", "report/attention")
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from keras import ops

from kerasvq.common.errors import UserError
from kerasvq.evaluation.plots import plot_attention_layer


def prompt_attention(model, tokenizer, prompt: str, start_with_eos: bool = True):
    """(pieces, [per layer (heads, S, S) numpy array]) for one prompt."""
    if not hasattr(model, "attention_weights"):
        raise UserError(f"{type(model).__name__} has no attention to show (only Transformer models do)")
    ids = tokenizer.encode([prompt])[0]
    if start_with_eos:
        ids = [tokenizer.eos_id] + list(ids)
    ids = ids[-int(model.seq_len):]
    pieces = [tokenizer.id_to_piece(i) for i in ids]
    weights = model.attention_weights(ops.convert_to_tensor(np.asarray([ids], "int32")))
    return pieces, [ops.convert_to_numpy(w)[0] for w in weights]


def attention_maps(model, tokenizer, prompt: str, out_dir, prefix: str = "attention") -> list[Path]:
    """Writes `<prefix>_layer<i>.png` for every layer into `out_dir`; returns the paths."""
    pieces, layers = prompt_attention(model, tokenizer, prompt)
    return [
        plot_attention_layer(w, pieces, Path(out_dir) / f"{prefix}_layer{i}.png",
                             f"layer {i}: attention of “{prompt}”")
        for i, w in enumerate(layers)
    ]
