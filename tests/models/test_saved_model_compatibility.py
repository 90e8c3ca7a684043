"""Models saved by an earlier kerasvq load into today's classes and compute the same thing.

`data/vqvae_8cbaa53.keras` is a tiny VQVAE (linear skips, k-means codebooks, 2 epochs) saved
before the quantizer kept its in-layer k-means and dead-code state.

`data/transformer_lm_92c4202.keras` is a tiny TransformerLM (LayerNorm weights moved away from
their init so that they matter) saved at commit 92c4202, when its blocks still used
`keras.layers.LayerNormalization`; the logits it gave then are stored beside it.
"""

from pathlib import Path

import keras
import numpy as np
import pytest

import kerasvq.models  # noqa: F401  (registers the classes)

DATA = Path(__file__).resolve().parents[1] / "fixtures"
pytestmark = pytest.mark.backend_neutral


def test_transformer_lm_saved_at_92c4202_gives_the_same_logits():
    model = keras.saving.load_model(DATA / "transformer_lm_92c4202.keras")
    ids = (np.arange(40).reshape(2, 20) * 7) % 300
    expected = np.load(DATA / "transformer_lm_92c4202_logits.npy")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(ids)), expected, atol=1e-5)


def test_vqvae_saved_at_8cbaa53_gives_the_same_codes_and_decodings():
    """Saved before the quantizer had its k-means-init state: loads as initialized, same output."""
    model = keras.saving.load_model(DATA / "vqvae_8cbaa53.keras")
    x = np.load(DATA / "vqvae_8cbaa53_inputs.npy")
    np.testing.assert_array_equal(model.encode(x), np.load(DATA / "vqvae_8cbaa53_codes.npy"))
    np.testing.assert_allclose(model.decode(model.encode(x)), np.load(DATA / "vqvae_8cbaa53_decoded.npy"), atol=1e-5)
