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
from kerasvq.data.embeddings import EmbeddingFile, check_split_sizes, split_indices
from kerasvq.data.windows import EpochOrderedDataset
from kerasvq.common.errors import UserError
from kerasvq.common.paths import version_dir
from kerasvq.training.distribution import plan_replicas


class EmbeddingBatches(EpochOrderedDataset):
    """Shuffled batches of rows `indices` of an `EmbeddingFile`, read on demand.

    The row order of epoch e is a function of (seed, e), so a resumed run (which calls
    `set_epoch`) reads the batches of the uninterrupted one.
    """

    def __init__(self, source: EmbeddingFile, indices, batch_size: int, seed: int = 0, **kwargs):
        super().__init__(indices, seed=seed, **kwargs)
        self.source, self.batch_size = source, batch_size

    def __len__(self):
        return int(np.ceil(len(self.items) / self.batch_size))

    def __getitem__(self, i):
        return self.source.take(self.order[i * self.batch_size:(i + 1) * self.batch_size])


def vqvae_files(out_dir: Path):
    """The files of the VQ-VAE run in `out_dir`, for the run lifecycle."""
    from kerasvq.training.lifecycle import RunFiles

    return RunFiles(f"VQ-VAE run in {out_dir}", out_dir / "models" / "vqvae.keras",
                    out_dir / "models" / "config.json", out_dir / "logs" / "train_vqvae.json",
                    out_dir / "logs" / "tensorboard", out_dir / "logs" / "backup" / "vqvae",
                    others=(out_dir / "results" / "train_summary.json",))


def history_arrays(epochs: list[dict]) -> dict:
    """Per-epoch history records as Keras-style {metric: [value per epoch]}."""
    skip = {"epoch", "learning_rate", "steps", "seconds"}
    keys = [k for k in (epochs[0] if epochs else {}) if k not in skip]
    return {k: [e.get(k) for e in epochs] for k in keys}


def build_model(cfg, data_variance: float):
    from kerasvq.models.vqvae import VQVAE

    model = VQVAE(**dataclasses.asdict(cfg.model), data_variance=data_variance, pca_init=cfg.train.pca_init)
    model.build()
    model.compile(optimizer=keras.optimizers.Adam(cfg.train.learning_rate, clipnorm=cfg.train.clipnorm))
    return model


def train_vqvae(cfg, out_dir: Path | None = None, verbose: int = 2, overwrite: bool = False,
                extra_callbacks=()):
    """Trains per `cfg`; writes models/, logs/ and results/train_summary.json under out_dir.

    A run killed mid-way resumes at its last finished epoch when started again; a finished
    run is replaced only with `overwrite`.
    """
    from kerasvq.training.callbacks import HistoryWriter
    from kerasvq.training.codebook_reset import CodebookReset, reset_count
    from kerasvq.training.lifecycle import Run, write_json
    from kerasvq.training.vq_logging import CodebookLogger

    out_dir = Path(out_dir or version_dir(cfg.name))
    log = print if verbose else (lambda message: None)
    run = Run(vqvae_files(out_dir), overwrite=overwrite, log=log,
              refuse_hint="pass --overwrite or choose another --out")
    run.claim_check()
    files = run.files
    replicas = plan_replicas(cfg.train, state_in_forward=True)
    log(replicas.describe())
    keras.utils.set_random_seed(cfg.train.seed)
    source = EmbeddingFile(os.path.expanduser(cfg.data.embeddings), cfg.model.input_dim, cfg.data.dataset)
    train_idx, test_idx = split_indices(len(source), cfg.data.test_fraction, cfg.data.split_seed)
    check_split_sizes(cfg.data.embeddings, len(train_idx), len(test_idx), cfg.model.codebook_size)
    rng = np.random.default_rng(cfg.train.seed)
    sample = source.take(np.sort(rng.choice(train_idx, min(len(train_idx), cfg.train.kmeans_sample), replace=False)))
    log_x = source.take(np.sort(rng.choice(test_idx, min(len(test_idx), cfg.train.log_sample), replace=False)))
    data_variance = float(sample.var(axis=0).sum() / sample.shape[1] + (sample.mean(0) ** 2).mean())
    # Every batch, the last partial one too, must split evenly over the devices.
    fit_idx = train_idx[:len(train_idx) - len(train_idx) % replicas.replicas]
    resolved = to_dict(cfg)
    with run, replicas.scope():
        if files.resolved_config.is_file() and run.latest_state() is not None:
            from kerasvq.config.base import load_json

            if load_json(files.resolved_config) != resolved:
                raise UserError(f"{files.resolved_config}: the interrupted run used a different config; "
                                "pass --overwrite to start over or use another --out")
        write_json(files.resolved_config, resolved)
        model = build_model(cfg, data_variance)
        if cfg.train.pca_init:  # before restoring: it decides which weights are trainable
            model.initialize_linear_paths(sample)
        initial_epoch = run.restore(model)
        if cfg.train.kmeans_init and not initial_epoch:
            model.initialize_codebooks(sample, seed=cfg.train.seed, method=cfg.train.codebook_init,
                                       rq_beam=cfg.train.rq_beam)
        batches = EmbeddingBatches(source, fit_idx, cfg.train.batch_size, cfg.train.seed)
        batches.set_epoch(initial_epoch)
        callbacks = [CodebookLogger(log_x, logdir=files.tensorboard, verbose=verbose)]
        if cfg.train.reset_every:
            callbacks.append(CodebookReset(cfg.train.reset_every, cfg.train.reset_max_unused_steps,
                                           cfg.train.reset_min_usage, cfg.train.seed))
        history = HistoryWriter(files.history, {"run": files.name, "config": resolved,
                                                "distribution": replicas.summary()})
        state = run.callback(history, stateful=callbacks, datasets=[batches])
        start = time.time()
        if initial_epoch < cfg.train.epochs:
            with source.raising_own_errors():
                model.fit(batches, epochs=cfg.train.epochs, initial_epoch=initial_epoch, verbose=verbose,
                          callbacks=[*callbacks, history, *extra_callbacks, state],
                          shuffle=False)  # the batches shuffle their rows per epoch from (seed, epoch)
        seconds = time.time() - start
        run.finish(model, state, wall_seconds=seconds)
        summary = {
            "train_rows": int(len(train_idx)), "test_rows": int(len(test_idx)),
            "training_seconds": sum(e["seconds"] for e in state.epochs), "epochs": cfg.train.epochs,
            "first_epoch": initial_epoch + 1, "codes_reseeded": reset_count(callbacks),
            "data_variance": data_variance, "model": str(files.model), "distribution": replicas.summary(),
            "history": history_arrays(state.epochs),
        }
        write_json(out_dir / "results" / "train_summary.json", summary)
    source.close()
    log(f"{files.name}: finished epoch {state.epochs[-1]['epoch']} of {cfg.train.epochs}, "
        f"loss {state.epochs[-1]['loss']:.4f}, {summary['codes_reseeded']} codes re-seeded → {files.model}")
    return model, summary


def evaluate_run(cfg, out_dir: Path | None = None, model_path=None, baselines: bool = True,
                 num_queries: int = 1000) -> dict:
    """Held-out metrics of a trained model (and FAISS baselines) → results/evaluation.json + PNG."""
    from kerasvq.metrics.vq_evaluation import evaluate_quantizers, plot_rank_frequency
    from kerasvq.models.model_file import load_keras_model
    from kerasvq.models.vqvae import VQVAE  # noqa: F401  (registers the class for loading)

    out_dir = Path(out_dir or version_dir(cfg.name))
    model_path = Path(model_path or out_dir / "models" / "vqvae.keras")
    if not model_path.is_file():
        raise UserError(f"{model_path}: model not found; run 'kerasvq vqvae train' first")
    model = load_keras_model(model_path, "kerasvq vqvae train")
    source = EmbeddingFile(os.path.expanduser(cfg.data.embeddings), model.input_dim, cfg.data.dataset)
    train_idx, test_idx = split_indices(len(source), cfg.data.test_fraction, cfg.data.split_seed)
    check_split_sizes(cfg.data.embeddings, len(train_idx), len(test_idx), model.codebook_size)
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
