"""Shared helpers for the layer tests: backend-neutral gradients and .keras round trips."""

import keras
import numpy as np


def loss_and_gradients(layer, x, loss_fn, include_aux=True):
    """Gradients of `loss_fn(layer(x, training=True))` (+ the layer's added losses) with respect
    to every trainable variable, as numpy arrays keyed by variable path."""
    variables = layer.trainable_variables
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            y = layer(x, training=True)
            loss = loss_fn(y)
            if include_aux:
                loss = loss + sum(layer.losses)
        grads = tape.gradient(loss, variables)
    else:
        import jax

        non_trainable = [v.value for v in layer.non_trainable_variables]

        def f(trainable):
            training = {"training": True} if layer._call_has_training_arg else {}
            y, _, losses = layer.stateless_call(
                trainable, non_trainable, x, return_losses=True, **training
            )
            loss = loss_fn(y)
            if include_aux:
                loss = loss + sum(losses)
            return loss

        grads = jax.grad(f)([v.value for v in variables])
    return {v.path: np.asarray(keras.ops.convert_to_numpy(g)) for v, g in zip(variables, grads)}


def round_trip(layer, x, tmp_path):
    """Saves a one-layer model to .keras, loads it, returns (before, after) inference outputs."""
    model = keras.Sequential([keras.Input(x.shape[1:]), layer])
    before = keras.ops.convert_to_numpy(model(x, training=False))
    path = tmp_path / "layer.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    after = keras.ops.convert_to_numpy(loaded(x, training=False))
    return before, after


def far_codes_vqvae(x, seed=0):
    """The old collapse set up on `x` (1024 × 16 rows): a 2-head, 16-code VQVAE with the
    in-layer measures off, whose codes all start far from the data's latents."""
    from kerasvq.models.vqvae import VQVAE

    model = VQVAE(input_dim=16, hidden_dim=32, latent_dim=16, num_heads=2, codebook_size=16,
                  dropout=0.0, data_variance=9.0, kmeans_init=False, dead_code_threshold=0.0)
    model.build()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    z = model.latents(x)
    far = np.broadcast_to(z.reshape(-1, 2, 8).mean(0)[:, None] + 100.0, (2, 16, 8)).copy()
    far += np.random.default_rng(seed).standard_normal(far.shape).astype("float32")
    model.quantizer.set_codes(far.astype("float32"))
    return model


def outputs_before_and_after_a_later_change(layer, x, position):
    """The layer's outputs for `x` and for `x` with every position from `position` on moved by
    +3: a causal layer gives the same rows before `position`. Returns (y, y_changed) arrays."""
    changed = x.copy()
    changed[:, position:] += 3.0
    return (keras.ops.convert_to_numpy(layer(x)), keras.ops.convert_to_numpy(layer(changed)))
