"""Config → trained `HierarchicalVQVAE` (resumable) → results JSON.

A run keeps its resumable state in `train.checkpoint_dir` (default
versions/<name>/checkpoints/):
    run.json             features file, feature and sample counts, normalization (train split)
    group_indices.json   the category mapping ({"num_features", "group_indices"})
    backup/              Keras BackupAndRestore: weights (EMA codebooks included), optimizer
                         state and the last finished epoch
`--resume` reloads all three, so the run continues at the next epoch with the same mapping
and normalization; a fresh `train` refuses to start over an existing checkpoint. Outputs:
models/hvqvae.keras, results/train_summary.json, logs/history.csv and TensorBoard scalars,
and `evaluate` writes results/evaluation.json.

Example:
    >>> cfg = load_hvqvae_config("versions/hvqvae-demo/config.yaml")
    >>> model, summary = train_hvqvae(cfg)
    >>> results = evaluate_hvqvae(cfg)
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import keras
import numpy as np

from kerasvq.config.base import load_json, save_json, to_dict
from kerasvq.data.embeddings import split_indices
from kerasvq.data.feature_groups import groups_by_correlation, groups_from_registry, load_groups, save_groups
from kerasvq.data.features import fit_normalization, read_features
from kerasvq.errors import UserError
from kerasvq.paths import version_dir


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


def train_hvqvae(cfg, resume: bool = False, verbose: int = 2):
    """Trains (or with `resume`, continues) the run of `cfg`; returns (model, summary)."""
    from kerasvq.training.callbacks import TensorBoardLogger
    from kerasvq.training.codebook_reset import CodebookReset

    out_dir, ckpt = version_dir(cfg.name), cfg.checkpoint_dir
    state_path, model_path = ckpt / "run.json", version_dir(cfg.name) / "models" / "hvqvae.keras"
    if resume and not state_path.is_file():
        raise UserError(f"{state_path}: no checkpointed run to resume; train without --resume first")
    if not resume and (state_path.is_file() or model_path.exists()):
        raise UserError(f"{state_path if state_path.is_file() else model_path}: a run already exists; "
                        "pass --resume to continue it, or remove it to start over")
    keras.utils.set_random_seed(cfg.train.seed)
    table, train_idx, test_idx = load_table(cfg)
    groups = resolve_groups(cfg, table, train_idx)
    x_train = table.values[train_idx]
    if resume:
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
    restored = (ckpt / "backup" / "training_metadata.json").is_file()  # else nothing to restore yet
    if cfg.train.kmeans_init and not restored:
        rng = np.random.default_rng(cfg.train.seed)
        sample = x_train[np.sort(rng.choice(len(x_train), min(len(x_train), cfg.train.kmeans_sample), replace=False))]
        model.initialize_codebooks(sample, seed=cfg.train.seed)
    (out_dir / "logs").mkdir(parents=True, exist_ok=True)
    callbacks = [
        keras.callbacks.BackupAndRestore(str(ckpt / "backup"), delete_checkpoint=False),
        keras.callbacks.CSVLogger(str(out_dir / "logs" / "history.csv"), append=resume),
        TensorBoardLogger(out_dir / "logs" / "tensorboard"),
    ]
    if cfg.train.reset_every:
        callbacks.append(CodebookReset(cfg.train.reset_every, cfg.train.reset_max_unused_steps,
                                       cfg.train.reset_min_usage, cfg.train.seed))
    start = time.time()
    history = model.fit(x_train, epochs=cfg.train.epochs, batch_size=cfg.train.batch_size, shuffle=True,
                        verbose=verbose, callbacks=callbacks)
    seconds = time.time() - start
    model_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = model_path.with_name(".hvqvae.partial.keras")
    model.save(tmp)
    os.replace(tmp, model_path)
    save_groups(model_path.parent / "group_indices.json", groups, table.values.shape[1])
    summary = {
        "features": table.path, "train_rows": int(len(train_idx)), "test_rows": int(len(test_idx)),
        "epochs": cfg.train.epochs, "epochs_run": len(history.epoch), "first_epoch": (history.epoch or [cfg.train.epochs])[0] + 1,
        "resumed": resume, "training_seconds": seconds, "model": str(model_path),
        "codes_reseeded": int(callbacks[-1].total_reseeded) if cfg.train.reset_every else 0,
        "history": {k: [float(v) for v in vals] for k, vals in history.history.items()},
    }
    save_json(out_dir / "results" / "train_summary.json", summary)
    return model, summary


def evaluate_hvqvae(cfg, model_path=None) -> dict:
    """Test-split metrics of the trained model (and the PCA baseline) → results/evaluation.json."""
    import kerasvq.models  # noqa: F401  (registers the model classes)
    from kerasvq.metrics.hvqvae import hvqvae_metrics
    from kerasvq.model_file import load_keras_model

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
    results = hvqvae_metrics(model, table.values[train_idx], table.values[test_idx])
    results.update(features=table.path, model=str(model_path), evaluation_seconds=time.time() - start)
    summary_path = out_dir / "results" / "train_summary.json"
    if summary_path.is_file():
        results["training_seconds"] = load_json(summary_path)["training_seconds"]
    save_json(out_dir / "results" / "evaluation.json", results)
    return results
