"""Config → trained VQ-VAE: streamed training from an embedding file, k-means init, resets.

Training reads the train split batch by batch from the HDF5/.npy file (a `PyDataset` over
shuffled row indices), so files larger than memory are never loaded whole; only the k-means
sample and the logging sample are held in memory.

Example:
    >>> model, summary = train_vqvae(load_vqvae_config("versions/vqvae-wiki/config.json"))
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

import keras
import numpy as np

from kerasvq.config.base import save_json, to_dict
from kerasvq.data.embeddings import EmbeddingFile, split_indices
from kerasvq.paths import version_dir
from kerasvq.training.distribution import plan_replicas


class EmbeddingBatches(keras.utils.PyDataset):
    """Shuffled batches of rows `indices` of an `EmbeddingFile`, read on demand."""

    def __init__(self, source: EmbeddingFile, indices, batch_size: int, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.source, self.indices, self.batch_size = source, np.asarray(indices), batch_size
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(self.indices)

    def __len__(self):
        return int(np.ceil(len(self.indices) / self.batch_size))

    def __getitem__(self, i):
        return self.source.take(self.order[i * self.batch_size:(i + 1) * self.batch_size])

    def on_epoch_end(self):
        self.order = self.rng.permutation(self.indices)


def build_model(cfg, data_variance: float):
    from kerasvq.models.vqvae import VQVAE

    model = VQVAE(**dataclasses.asdict(cfg.model), data_variance=data_variance, pca_init=cfg.train.pca_init)
    model.build()
    model.compile(optimizer=keras.optimizers.Adam(cfg.train.learning_rate, clipnorm=cfg.train.clipnorm))
    return model


def train_vqvae(cfg, out_dir: Path | None = None, verbose: int = 2):
    """Trains per `cfg`; writes models/, logs/ and results/train_summary.json under out_dir."""
    from kerasvq.training.codebook_reset import CodebookReset
    from kerasvq.training.vq_logging import CodebookLogger

    out_dir = Path(out_dir or version_dir(cfg.name))
    replicas = plan_replicas(cfg.train, state_in_forward=True)
    if verbose:
        print(replicas.describe())
    keras.utils.set_random_seed(cfg.train.seed)
    source = EmbeddingFile(os.path.expanduser(cfg.data.embeddings), cfg.model.input_dim, cfg.data.dataset)
    train_idx, test_idx = split_indices(len(source), cfg.data.test_fraction, cfg.data.split_seed)
    rng = np.random.default_rng(cfg.train.seed)
    sample = source.take(np.sort(rng.choice(train_idx, min(len(train_idx), cfg.train.kmeans_sample), replace=False)))
    log_x = source.take(np.sort(rng.choice(test_idx, min(len(test_idx), cfg.train.log_sample), replace=False)))
    data_variance = float(sample.var(axis=0).sum() / sample.shape[1] + (sample.mean(0) ** 2).mean())
    # Every batch, the last partial one too, must split evenly over the devices.
    fit_idx = train_idx[:len(train_idx) - len(train_idx) % replicas.replicas]
    with replicas.scope():
        model = build_model(cfg, data_variance)
        if cfg.train.pca_init:
            model.initialize_linear_paths(sample)
        if cfg.train.kmeans_init:
            model.initialize_codebooks(sample, seed=cfg.train.seed)
        callbacks = [CodebookLogger(log_x, logdir=out_dir / "logs" / "tensorboard", verbose=verbose)]
        if cfg.train.reset_every:
            callbacks.append(CodebookReset(cfg.train.reset_every, cfg.train.reset_max_unused_steps,
                                           cfg.train.reset_min_usage, cfg.train.seed))
        start = time.time()
        history = model.fit(
            EmbeddingBatches(source, fit_idx, cfg.train.batch_size, cfg.train.seed),
            epochs=cfg.train.epochs, verbose=verbose, callbacks=callbacks,
            shuffle=False,  # the batches shuffle their rows per epoch from train.seed
        )
    seconds = time.time() - start
    (out_dir / "models").mkdir(parents=True, exist_ok=True)
    model_path = out_dir / "models" / "vqvae.keras"
    model.save(model_path)
    save_json(out_dir / "models" / "config.json", to_dict(cfg))
    summary = {
        "train_rows": int(len(train_idx)), "test_rows": int(len(test_idx)),
        "training_seconds": seconds, "epochs": cfg.train.epochs,
        "codes_reseeded": int(callbacks[-1].total_reseeded) if cfg.train.reset_every else 0,
        "data_variance": data_variance, "model": str(model_path), "distribution": replicas.summary(),
        "history": {k: [float(v) for v in vals] for k, vals in history.history.items()},
    }
    save_json(out_dir / "results" / "train_summary.json", summary)
    source.close()
    return model, summary


def evaluate_run(cfg, out_dir: Path | None = None, model_path=None, baselines: bool = True,
                 num_queries: int = 1000) -> dict:
    """Held-out metrics of a trained model (and FAISS baselines) → results/evaluation.json + PNG."""
    from kerasvq.errors import UserError
    from kerasvq.metrics.vq_evaluation import evaluate_quantizers, plot_rank_frequency
    from kerasvq.models.vqvae import VQVAE  # noqa: F401  (registers the class for loading)

    out_dir = Path(out_dir or version_dir(cfg.name))
    model_path = Path(model_path or out_dir / "models" / "vqvae.keras")
    if not model_path.is_file():
        raise UserError(f"{model_path}: model not found; run 'kerasvq vqvae train' first")
    model = keras.saving.load_model(model_path)
    source = EmbeddingFile(os.path.expanduser(cfg.data.embeddings), model.input_dim, cfg.data.dataset)
    train_idx, test_idx = split_indices(len(source), cfg.data.test_fraction, cfg.data.split_seed)
    x_train, x_test = source.take(train_idx), source.take(test_idx)
    start = time.time()
    model.encode(x_test)
    encode_seconds = time.time() - start
    codes = {}
    methods = evaluate_quantizers(model, x_train, x_test, num_queries, baselines, codes)
    results = {
        "embeddings": cfg.data.embeddings, "train_rows": len(train_idx), "test_rows": len(test_idx),
        "num_queries": num_queries, "recall_definition": "raw query vs decoded test vectors, cosine, self excluded",
        "encode_vectors_per_second": len(x_test) / encode_seconds, "methods": methods,
    }
    summary_path = out_dir / "results" / "train_summary.json"
    if summary_path.is_file():
        results["training_seconds"] = json.loads(summary_path.read_text())["training_seconds"]
    save_json(out_dir / "results" / "evaluation.json", results)
    plot_rank_frequency(codes, model.codebook_size, out_dir / "results" / "rank_frequency.png")
    source.close()
    return results
