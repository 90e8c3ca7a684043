"""Config → trained `HierarchicalVQVAE` (resumable) → results JSON.

A run keeps its resumable state in `train.checkpoint_dir` (default
versions/<name>/checkpoints/):
    run.json             features file, feature and sample counts, normalization (train split)
    group_indices.json   the category mapping ({"num_features", "group_indices"})
    backup/              the run lifecycle's checkpoint generations (weights with the EMA
                         codebooks, optimizer state, history, reset state), kept when finished
A killed run continues at its last finished epoch when `train` is run again; `--resume`
continues a finished run with more epochs (same mapping and normalization); `--overwrite`
starts over. Outputs: models/hvqvae.keras, results/train_summary.json,
logs/train_hvqvae.json and logs/history.csv (one line per finished epoch) and TensorBoard
scalars, and `evaluate` writes results/evaluation.json.

Example:
    >>> cfg = load_hvqvae_config("versions/hvqvae-demo/config.yaml")
    >>> model, summary = train_hvqvae(cfg)
    >>> results = evaluate_hvqvae(cfg)
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import keras
import numpy as np

from kerasvq.config.base import load_json, save_json, to_dict
from kerasvq.data.embeddings import split_indices
from kerasvq.data.feature_groups import groups_by_correlation, groups_from_registry, load_groups, save_groups
from kerasvq.data.features import fit_normalization, read_features
from kerasvq.data.windows import EpochOrderedDataset
from kerasvq.common.errors import UserError
from kerasvq.common.paths import version_dir


def load_table(cfg):
    """The feature table and its (train, test) row indices."""
    table = read_features(os.path.expanduser(cfg.data.features), cfg.data.dataset)
    train_idx, test_idx = split_indices(len(table.values), cfg.train.test_fraction, cfg.train.seed)
    if not len(train_idx) or not len(test_idx):
        raise UserError(f"{table.path}: {len(table.values)} samples are too few for a train/test split")
    return table, train_idx, test_idx


def resolve_groups(cfg, table, train_idx) -> dict[str, list[int]]:
    """The category mapping per `data.category_mapping`."""
    d, num_features = cfg.data, table.values.shape[1]
    if d.category_mapping == "registry":
        return groups_from_registry(table.registry)
    if d.category_mapping == "auto":
        return groups_by_correlation(table.values[train_idx], d.num_groups, seed=cfg.train.seed)
    path = Path(d.category_mapping_file).expanduser() if d.category_mapping == "file" else (
        cfg.checkpoint_dir / "group_indices.json")
    if not path.is_file():
        raise UserError(f"{path}: category mapping file not found (data.category_mapping={d.category_mapping})")
    return load_groups(path, num_features)


def _check_resume(state: dict, state_path: Path, table, groups):
    num_samples, num_features = table.values.shape
    if state["num_features"] != num_features:
        raise UserError(f"{state_path}: feature count mismatch: the checkpointed run has {state['num_features']} "
                        f"features, {table.path} has {num_features}")
    if state["num_samples"] != num_samples:
        raise UserError(f"{state_path}: the checkpointed run had {state['num_samples']} samples, "
                        f"{table.path} has {num_samples}; resume needs the same data")
    saved = load_groups(state_path.parent / "group_indices.json", num_features)
    if saved != groups:
        changed = next(g for g in list(saved) + list(groups) if saved.get(g) != groups.get(g))
        raise UserError(f"{state_path.parent / 'group_indices.json'}: the category mapping differs from the "
                        f"checkpointed run's (category {changed!r}); use data.category_mapping=checkpoint")


def build_hvqvae(cfg, groups, num_features: int, mean, std):
    from kerasvq.models.hierarchical_vqvae import HierarchicalVQVAE

    unknown = sorted(set(cfg.families.overrides) - set(groups))
    if unknown:
        raise UserError(f"field 'families.overrides.{unknown[0]}': no such category (have {', '.join(groups)})")
    model = HierarchicalVQVAE(groups, num_features, **cfg.model_kwargs())
    model.build()
    model.set_normalization(mean, std)
    model.compile(optimizer=keras.optimizers.Adam(cfg.train.learning_rate))
    return model


class ArrayBatches(EpochOrderedDataset):
    """Batches of `x` in an order that is a function of (seed, epoch), the last one partial,
    so that a resumed run (which calls `set_epoch`) reads the uninterrupted run's batches."""

    def __init__(self, x, batch_size: int, seed: int = 0, **kwargs):
        super().__init__(np.arange(len(x)), seed=seed, **kwargs)
        self.x, self.batch_size = x, batch_size

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, i):
        return self.x[np.sort(self.order[i * self.batch_size:(i + 1) * self.batch_size])]


def hvqvae_files(cfg):
    """The files of `cfg`'s run, for the run lifecycle."""
    from kerasvq.training.lifecycle import RunFiles

    out, ckpt = version_dir(cfg.name), cfg.checkpoint_dir
    return RunFiles(f"HVQ-VAE run {cfg.name}", out / "models" / "hvqvae.keras", ckpt / "run.json",
                    out / "logs" / "train_hvqvae.json", out / "logs" / "tensorboard", ckpt / "backup",
                    others=(ckpt / "group_indices.json", out / "models" / "group_indices.json",
                            out / "results" / "train_summary.json", out / "logs" / "history.csv"))


def write_history_csv(path: Path, epochs: list[dict]):
    """`epochs` as Keras's CSVLogger writes them (0-based epoch, then the sorted metrics)."""
    from kerasvq.config.base import strict_json

    keys = sorted(k for k in (epochs[0] if epochs else {}) if k not in ("epoch", "learning_rate", "steps", "seconds"))
    lines = [",".join(["epoch", *keys])]
    lines += [",".join([str(e["epoch"] - 1), *(str(strict_json(e.get(k))) for k in keys)]) for e in epochs]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)


def train_hvqvae(cfg, resume: bool = False, verbose: int = 2, overwrite: bool = False, extra_callbacks=()):
    """Trains (or continues) the run of `cfg`; returns (model, summary).

    Args:
        resume: continue a finished run (with more epochs); a killed run continues anyway.
        overwrite: replace an existing run.
    """
    from kerasvq.training.callbacks import HistoryWriter, TensorBoardLogger
    from kerasvq.training.codebook_reset import CodebookReset, reset_count
    from kerasvq.training.lifecycle import Run

    files = hvqvae_files(cfg)
    out_dir, ckpt = version_dir(cfg.name), cfg.checkpoint_dir
    state_path, model_path = files.resolved_config, files.model
    if resume and not state_path.is_file():
        raise UserError(f"{state_path}: no checkpointed run to resume; train without --resume first")
    log = print if verbose else (lambda message: None)
    run = Run(files, overwrite=overwrite and not resume, allow_finished=resume, keep_backup=True, log=log,
              refusal="a run already exists; pass --resume to continue it with more epochs, or "
                      "--overwrite to start over")
    run.claim_check()
    keras.utils.set_random_seed(cfg.train.seed)
    table, train_idx, test_idx = load_table(cfg)
    groups = resolve_groups(cfg, table, train_idx)
    x_train = table.values[train_idx]
    for message in cfg.model.oversized_levels(len(train_idx)):
        warnings.warn(f"{cfg.name}: {message}", stacklevel=2)
    with run:
        if state_path.is_file():  # a run to continue (killed, or finished with --resume)
            state = load_json(state_path)
            _check_resume(state, state_path, table, groups)
            mean, std = np.asarray(state["mean"], np.float32), np.asarray(state["std"], np.float32)
        else:
            mean, std = fit_normalization(x_train)
            save_groups(ckpt / "group_indices.json", groups, table.values.shape[1])
            save_json(state_path, {"features": table.path, "dataset": table.dataset,
                                   "num_samples": int(table.values.shape[0]), "num_features": int(table.values.shape[1]),
                                   "mean": mean.tolist(), "std": std.tolist(), "config": to_dict(cfg)})
        model = build_hvqvae(cfg, groups, table.values.shape[1], mean, std)
        initial_epoch = run.restore(model)
        if cfg.train.kmeans_init and not initial_epoch:
            rng = np.random.default_rng(cfg.train.seed)
            sample = x_train[np.sort(rng.choice(len(x_train), min(len(x_train), cfg.train.kmeans_sample), replace=False))]
            model.initialize_codebooks(sample, seed=cfg.train.seed)
        resets = [CodebookReset(cfg.train.reset_every, cfg.train.reset_max_unused_steps,
                                cfg.train.reset_min_usage, cfg.train.seed)] if cfg.train.reset_every else []
        history = HistoryWriter(files.history, {"run": files.name, "config": to_dict(cfg)})
        csv_path = out_dir / "logs" / "history.csv"
        history.on_write = lambda epochs: write_history_csv(csv_path, epochs)
        batches = ArrayBatches(x_train, cfg.train.batch_size, cfg.train.seed)
        batches.set_epoch(initial_epoch)
        state = run.callback(history, stateful=resets, datasets=[batches])
        start = time.time()
        if initial_epoch < cfg.train.epochs:
            model.fit(batches, epochs=cfg.train.epochs, initial_epoch=initial_epoch, shuffle=False,
                      verbose=verbose, callbacks=[TensorBoardLogger(files.tensorboard), *resets, history,
                                                  *extra_callbacks, state])
        seconds = time.time() - start
        run.finish(model, state, wall_seconds=seconds)
        save_groups(model_path.parent / "group_indices.json", groups, table.values.shape[1])
        this_session = [e for e in state.epochs if e["epoch"] > initial_epoch]
        summary = {
            "features": table.path, "train_rows": int(len(train_idx)), "test_rows": int(len(test_idx)),
            "epochs": cfg.train.epochs, "epochs_run": len(this_session), "first_epoch": initial_epoch + 1,
            "resumed": bool(initial_epoch), "training_seconds": seconds, "model": str(model_path),
            "codes_reseeded": reset_count(resets),
            "history": {k: [e.get(k) for e in this_session] for k in (this_session[0] if this_session else {})
                        if k not in ("epoch", "learning_rate", "steps", "seconds")},
        }
        save_json(out_dir / "results" / "train_summary.json", summary)
    log(f"{files.name}: finished epoch {state.epochs[-1]['epoch']} of {cfg.train.epochs}, loss "
        f"{state.epochs[-1]['loss']:.4f}, {summary['codes_reseeded']} codes re-seeded → {model_path}")
    return model, summary


def evaluate_hvqvae(cfg, model_path=None) -> dict:
    """Test-split metrics of the trained model (and the equal-bits baselines) → results/evaluation.json."""
    import kerasvq.models  # noqa: F401  (registers the model classes)
    from kerasvq.metrics.hvqvae import hvqvae_metrics
    from kerasvq.models.model_file import load_keras_model

    out_dir = version_dir(cfg.name)
    model_path = Path(model_path or out_dir / "models" / "hvqvae.keras")
    if not model_path.is_file():
        raise UserError(f"{model_path}: model not found; run 'kerasvq hvqvae train' first")
    model = load_keras_model(model_path, "kerasvq hvqvae train")
    table, train_idx, test_idx = load_table(cfg)
    if table.values.shape[1] != model.num_features:
        raise UserError(f"{table.path}: feature count mismatch: the model expects {model.num_features} "
                        f"features, the file has {table.values.shape[1]}")
    start = time.time()
    results = hvqvae_metrics(model, table.values[train_idx], table.values[test_idx], seed=cfg.train.seed)
    results.update(features=table.path, model=str(model_path), evaluation_seconds=time.time() - start)
    summary_path = out_dir / "results" / "train_summary.json"
    if summary_path.is_file():
        results["training_seconds"] = load_json(summary_path)["training_seconds"]
    save_json(out_dir / "results" / "evaluation.json", results)
    return results
