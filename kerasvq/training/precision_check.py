"""Does the fast path learn the same thing? Trains one config under several dtype policies.

Every run starts from the same seed, sees the same batches in the same order for the same
number of optimizer steps through `compile_for_training` (the path `kerasvq train` uses), and
is scored on the same validation windows with the unsmoothed cross-entropy. A second float32
seed gives the run-to-run noise that a policy's difference should be compared with.

Example:
    >>> rows = compare_policies(cfg, train_stream, val_stream, steps=200,
    ...                         policies=("float32", "mixed_bfloat16"), noise_seed=7)
    >>> [(r["policy"], round(r["val_cross_entropy"], 3)) for r in rows]
"""

from __future__ import annotations

import copy
import math

import keras

from kerasvq.config.lm import LMConfig
from kerasvq.data.windows import WindowDataset
from kerasvq.models.build import build_language_model
from kerasvq.training.callbacks import StopAtStep
from kerasvq.training.run import compile_for_training


def train_for_steps(cfg: LMConfig, train_stream, val_stream, steps: int, val_batches: int = 8) -> dict:
    """Trains `cfg`'s model for exactly `steps` steps; returns losses and the compute dtype."""
    keras.utils.set_random_seed(cfg.train.seed)
    model = build_language_model(cfg)
    compile_for_training(model, cfg, total_steps=steps, warmup_steps=max(1, steps // 20))
    # The data order is seeded apart from the model, so every policy and seed sees the same batches.
    train = WindowDataset(train_stream, cfg.data.seq_len, cfg.data.seq_len, cfg.train.batch_size,
                          shuffle=True, seed=0)
    history = model.fit(train, epochs=math.ceil(steps / len(train)), callbacks=[StopAtStep(steps)],
                        verbose=0)
    val = WindowDataset(val_stream, cfg.data.seq_len, cfg.data.seq_len, cfg.train.batch_size)
    scores = model.evaluate(val, steps=min(val_batches, len(val)), verbose=0, return_dict=True)
    return {
        "policy": cfg.train.dtype_policy,
        "seed": cfg.train.seed,
        "compute_dtype": model.compute_dtype,
        "train_loss": float(history.history["loss"][-1]),
        "val_cross_entropy": float(scores["cross_entropy"]),
    }


def compare_policies(cfg: LMConfig, train_stream, val_stream, steps: int,
                     policies=("float32", "mixed_bfloat16"), noise_seed: int | None = None,
                     val_batches: int = 8) -> list[dict]:
    """One `train_for_steps` row per policy, plus a float32 row with `noise_seed`.

    Each row gets `delta`: its val cross-entropy minus the first policy's.
    """
    runs = [(policy, cfg.train.seed) for policy in policies]
    if noise_seed is not None:
        runs.append((policies[0], noise_seed))
    rows = []
    for policy, seed in runs:
        run_cfg = copy.deepcopy(cfg)
        run_cfg.train.dtype_policy, run_cfg.train.seed = policy, seed
        rows.append(train_for_steps(run_cfg, train_stream, val_stream, steps, val_batches))
    for row in rows:
        row["delta"] = row["val_cross_entropy"] - rows[0]["val_cross_entropy"]
    return rows
