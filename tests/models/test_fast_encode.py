"""`FastEncoder` gives exactly `VQVAE.encode`'s codes (product and residual heads)."""

import numpy as np
import pytest

from kerasvq.models.fast_encode import FastEncoder
from kerasvq.models.vqvae import VQVAE


@pytest.mark.parametrize("residual", [False, True])
def test_fast_encode_equals_keras_encode(residual):
    rng = np.random.default_rng(0)
    model = VQVAE(input_dim=24, hidden_dim=32, latent_dim=16, num_heads=4, codebook_size=16,
                  residual=residual, data_variance=1.0 / 24)
    model.build()
    width = 16 if residual else 4
    model.quantizer.set_codes(rng.normal(size=(4, 16, width)).astype(np.float32))
    x = rng.normal(size=(3000, 24)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    fast = FastEncoder(model, chunk_rows=512)
    codes, ties = fast.encode(x, return_ties=True)
    assert codes.dtype == np.uint8 and codes.shape == (3000, 4)
    np.testing.assert_array_equal(codes, model.encode(x))
    assert ties < 300  # the fallback is for near-ties only, not the common case
    fast.tie_tolerance = 0.0  # without the fallback the NumPy path alone agrees on almost every row
    assert (fast.encode(x) != model.encode(x)).any(axis=1).mean() < 0.01
