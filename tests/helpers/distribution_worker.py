"""Runs in a fresh process for tests/training/test_distribution.py: the device count must be fixed
before the backend starts (XLA_FLAGS for JAX, logical devices for TensorFlow).

    python tests/helpers/distribution_worker.py REPLICAS LM_CONFIG VQ_EMBEDDINGS OUT.json

Trains the tiny LM (and on JAX the tiny VQ-VAE) once on one device (distribution "none")
and once data-parallel over REPLICAS devices, and writes what the test compares to OUT.json.
"""

import json
import sys

import keras
import numpy as np

REPLICAS = int(sys.argv[1])
if keras.backend.backend() == "tensorflow":
    import tensorflow as tf

    tf.config.set_logical_device_configuration(
        tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * REPLICAS
    )

from kerasvq.config.base import save_json, to_dict  # noqa: E402
from kerasvq.config.lm import load_lm_config  # noqa: E402
from kerasvq.config.vqvae import VQVAEConfig, load_vqvae_config  # noqa: E402
from kerasvq.common.errors import UserError  # noqa: E402
from kerasvq.training.run_paths import RunPaths  # noqa: E402
from kerasvq.training.run import train_language_model  # noqa: E402
from kerasvq.training.vqvae_run import train_vqvae  # noqa: E402


def replica_copies(variable):
    """The value of `variable` as held on each device."""
    value = variable.value
    if keras.backend.backend() == "jax":
        return [np.asarray(shard.data) for shard in value.addressable_shards]
    if isinstance(value, tf.distribute.DistributedValues):
        return [v.numpy() for v in value.values]
    return [value.numpy()]


def layout(model):
    """Per variable: how many devices hold it, and whether all copies are equal and whole."""
    out = {}
    for v in model.variables:
        copies = replica_copies(v)
        same = all(c.shape == tuple(v.shape) and np.array_equal(c, copies[0]) for c in copies)
        out[v.path] = [len(copies), bool(same)]
    return out


class Recorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.losses = []

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(float(logs["loss"]))

    def on_train_end(self, logs=None):
        if keras.backend.backend() == "jax":
            self.model.jax_state_sync()
        self.layout = layout(self.model)


def lm(config, distribution):
    cfg = load_lm_config(config, [f"train.distribution={distribution}", "train.max_steps=4"])
    recorder = Recorder()
    run = f"{keras.backend.backend()}_{distribution}"
    train_language_model(cfg, run, log=lambda m: None, verbose=0, extra_callbacks=[recorder])
    history = json.loads(RunPaths(cfg.name, run).history.read_text())
    return {"losses": recorder.losses, "layout": recorder.layout,
            "distribution": history["distribution"], "val_loss": history["epochs"][-1]["val_loss"]}


def vq(embeddings, distribution, out):
    data = to_dict(VQVAEConfig())
    data["data"]["embeddings"] = embeddings
    data["model"].update(input_dim=24, hidden_dim=32, latent_dim=16, codebook_size=16, dropout=0.0)
    data["train"].update(epochs=1, batch_size=64, kmeans_sample=400, log_sample=100,
                         reset_every=3, distribution=distribution)
    save_json(f"{out}.{distribution}.json", data)
    model, summary = train_vqvae(load_vqvae_config(f"{out}.{distribution}.json"),
                                 f"{out}.{distribution}", verbose=0)
    quantizer = model.quantizer
    state = {name: replica_copies(getattr(quantizer, name))[0].tolist()
             for name in ("codebook", "ema_count", "steps_unused")}
    return {"state": state, "layout": layout(model), "history": summary["history"],
            "distribution": summary["distribution"]}


def main():
    config, embeddings, out = sys.argv[2:5]
    result = {"backend": keras.backend.backend()}
    for distribution in ("none", "data_parallel"):
        result[f"lm_{distribution}"] = lm(config, distribution)
        if keras.backend.backend() == "jax":
            result[f"vq_{distribution}"] = vq(embeddings, distribution, out)
    if keras.backend.backend() == "tensorflow":
        try:
            vq(embeddings, "data_parallel", out)
            result["vq_error"] = None
        except UserError as error:
            result["vq_error"] = str(error)
    try:  # the global batch must split evenly over the devices
        load = load_lm_config(config, ["train.distribution=data_parallel",
                                       f"train.batch_size={2 * REPLICAS + 1}"])
        train_language_model(load, "uneven", log=lambda m: None, verbose=0)
        result["uneven_error"] = None
    except UserError as error:
        result["uneven_error"] = str(error)
    with open(out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
