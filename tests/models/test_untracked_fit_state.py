"""The per-step JAX training state is stored untracked, and fit still trains and syncs."""

import keras
import numpy as np
import pytest

from kerasvq.models.transformer_lm import TransformerLM

pytestmark = pytest.mark.backend_neutral


def _tiny_model():
    model = TransformerLM(vocab_size=50, seq_len=8, d_model=16, num_layers=1, num_heads=2, d_ff=32)
    model(np.zeros((1, 8), "int32"))
    return model


def test_fit_state_is_stored_as_given_and_other_attributes_are_still_tracked():
    model = _tiny_model()
    state = {"trainable_variables": [v.value for v in model.trainable_variables]}
    model._jax_state = state
    assert model._jax_state is state  # tracked, it would have become a TrackedDict copy
    model.other = {"numbers": [1, 2]}
    assert type(model.other).__name__ == "TrackedDict"


class WeightsEveryStep(keras.callbacks.Callback):
    """Reads a weight after every step: on JAX that syncs the state Keras keeps in _jax_state."""

    def __init__(self):
        super().__init__()
        self.values = []

    def on_train_batch_end(self, batch, logs=None):
        self.values.append(keras.ops.convert_to_numpy(self.model.token_embedding.embeddings).copy())


def test_fit_trains_and_callbacks_see_every_steps_weights():
    model = _tiny_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x = rng.integers(0, 50, (12, 8)).astype("int32")
    y = rng.integers(0, 50, (12, 8)).astype("int32")
    seen = WeightsEveryStep()
    model.fit(x, y, batch_size=4, epochs=1, callbacks=[seen], verbose=0)
    assert len(seen.values) == 3
    assert not np.allclose(seen.values[0], seen.values[1])
    assert not np.allclose(seen.values[1], seen.values[2])
    np.testing.assert_array_equal(seen.values[-1], keras.ops.convert_to_numpy(model.token_embedding.embeddings))
