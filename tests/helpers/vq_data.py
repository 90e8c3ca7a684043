"""Small VQ-VAE and hierarchical VQ-VAE inputs shared by the model tests and the fault tests."""

import numpy as np

from kerasvq.config.base import save_json, to_dict
from kerasvq.config.vqvae import VQVAEConfig, load_vqvae_config

TINY_LEVELS = [{"name": "coarse", "dim": 8, "codebook_size": 16},
               {"name": "medium", "dim": 4, "codebook_size": 32},
               {"name": "fine", "dim": 4, "codebook_size": 64}]


def unit_rows(n=400, dim=24, seed=0):
    """`n` random unit-length rows of width `dim`."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype("float32")
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def demo_data(samples=400, seed=0):
    """The synthetic grouped-feature table: (values, registry)."""
    from kerasvq.data.feature_demo import make_demo_features

    values, registry, _ = make_demo_features(num_samples=samples, base_features_per_category=4, seed=seed)
    return values, registry


def small_vqvae_config(tmp_path, epochs=3, **train):
    """A 24-d VQ-VAE config over 600 unit rows, written to tmp_path/c.json and loaded back."""
    np.save(tmp_path / "x.npy", unit_rows(600))
    data = to_dict(VQVAEConfig())
    data["data"]["embeddings"] = str(tmp_path / "x.npy")
    data["model"].update(input_dim=24, hidden_dim=32, latent_dim=16, codebook_size=16)
    data["train"].update(epochs=epochs, batch_size=64, kmeans_sample=400, log_sample=100, reset_every=3,
                         **train)
    save_json(tmp_path / "c.json", data)
    return load_vqvae_config(tmp_path / "c.json")
