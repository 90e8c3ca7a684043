"""Models saved by an earlier kerasvq load into today's classes and compute the same thing.

`data/transformer_lm_92c4202.keras` is a tiny TransformerLM (LayerNorm weights moved away from
their init so that they matter) saved at commit 92c4202, when its blocks still used
`keras.layers.LayerNormalization`; the logits it gave then are stored beside it.
"""

from pathlib import Path

import keras
import numpy as np
import pytest

import kerasvq.models  # noqa: F401  (registers the classes)

DATA = Path(__file__).parent / "data"
pytestmark = pytest.mark.backend_neutral


def test_transformer_lm_saved_at_92c4202_gives_the_same_logits():
    model = keras.saving.load_model(DATA / "transformer_lm_92c4202.keras")
    ids = (np.arange(40).reshape(2, 20) * 7) % 300
    expected = np.load(DATA / "transformer_lm_92c4202_logits.npy")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(ids)), expected, atol=1e-5)
