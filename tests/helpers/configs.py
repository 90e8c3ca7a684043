"""Tiny but complete configs on the real test corpus, for tests that train."""

import json


def write_tiny_lm_config(folder, corpus, name="tiny", data=None, model=None, train=None):
    """Writes a tiny but complete LM config on the real corpus; returns its path."""
    config = {
        "name": name,
        "data": {"corpus": str(corpus), "max_docs": 400, "vocab_size": 512,
                 "seq_len": 32, "stride": 32, **(data or {})},
        "model": {"d_model": 32, "num_layers": 2, "num_heads": 4, "d_ff": 64,
                  "dropout": 0.0, **(model or {})},
        "train": {"batch_size": 16, "epochs": 2, "learning_rate": 3e-3,
                  "early_stopping_patience": 5, **(train or {})},
    }
    path = folder / f"{name}.json"
    path.write_text(json.dumps(config))
    return path
