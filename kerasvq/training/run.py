"""Config → data → model → fit → artifacts: the one training path every LM run takes.

Example:
    >>> cfg = load_lm_config("versions/v5-transformer/config.json", ["train.epochs=1"])
    >>> result = train_language_model(cfg, run_name="v5_fixed")
    >>> result["best_val_loss"]
"""

from __future__ import annotations

import math
import os
import sys
import time

import keras

from kerasvq.config.base import load_json, to_dict
from kerasvq.config.lm import LMConfig
from kerasvq.data.lm_data import load_lm_data
from kerasvq.data.windows import WindowDataset, count_windows
from kerasvq.common.errors import UserError
from kerasvq.training.routing_logger import RoutingLogger
from kerasvq.models.build import build_language_model
from kerasvq.training.run_paths import RunPaths
from kerasvq.generation.sampling import SamplingConfig
from kerasvq.training.callbacks import (HistoryWriter, StopAtStep, TensorBoardLogger, WallClockBudget,
                                        async_safe)
from kerasvq.training.distribution import plan_replicas
from kerasvq.training.lifecycle import Run, write_json
from kerasvq.training.losses import SparseCategoricalCrossentropyWithSmoothing
from kerasvq.training.metrics import CrossEntropy
from kerasvq.training.optimizers import adamw_for
from kerasvq.training.sample_text import SampleTextLogger
from kerasvq.training.schedules import warmup_cosine
from kerasvq.training.xla_flags import use_training_xla_flags

# Written to TensorBoard's text tab as greedy continuations at epoch ends (at most 10 times).
SAMPLE_PROMPTS = [
    "O setor de infraestrutura logística brasileira debate",
    "Na manhã desta segunda-feira, o Banco Central anunciou",
    "Para instalar o programa, abra o terminal e",
]


def plan_steps(cfg: LMConfig, train_tokens: int) -> dict:
    """Windows, steps per epoch, total and warmup steps, all derived from the data."""
    d, t = cfg.data, cfg.train
    windows = count_windows(train_tokens, d.seq_len, d.stride)
    steps_per_epoch = windows // t.batch_size
    if steps_per_epoch < 1:
        raise UserError(
            f"train.batch_size: {t.batch_size} sequences per batch but the training split has only "
            f"{windows} windows of {d.seq_len + 1} tokens ({train_tokens} tokens); batch_size "
            "counts sequences, not tokens"
        )
    planned = t.epochs * steps_per_epoch
    total = min(planned, t.max_steps) if t.max_steps else planned
    warmup = round(t.warmup_fraction * total)
    if warmup >= total:
        raise UserError(f"train.warmup_fraction: {warmup} warmup steps ≥ {total} total steps")
    return {
        "train_windows": windows,
        "steps_per_epoch": steps_per_epoch,
        "planned_steps": planned,
        "total_steps": total,
        "epochs_to_run": math.ceil(total / steps_per_epoch),
        "warmup_steps": warmup,
        "tokens_per_step": t.batch_size * d.seq_len,
        "capped_by_max_steps": total < planned,
    }


def compile_for_training(model, cfg: LMConfig, total_steps: int, warmup_steps: int):
    """Compiles `model` with the config's optimizer, schedule, loss and metrics."""
    t = cfg.train
    schedule = warmup_cosine(t.learning_rate, total_steps, warmup_steps, t.min_lr_ratio)
    model.compile(
        optimizer=adamw_for(model, schedule, t.weight_decay, t.beta_1, t.beta_2, t.clipnorm),
        loss=SparseCategoricalCrossentropyWithSmoothing(t.label_smoothing),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy"), CrossEntropy(report_perplexity=True)],
        steps_per_execution=t.steps_per_execution,
    )


def _check_resume(paths: RunPaths, resolved: dict):
    """A resumed run must have the same config and tokenizer as the interrupted one."""
    if not paths.resolved_config.is_file():
        return
    previous = load_json(paths.resolved_config)
    for key in ("config", "tokenizer"):
        if previous.get(key) != resolved[key]:
            raise UserError(
                f"{paths.resolved_config}: the interrupted run used a different {key} "
                f"(e.g. seq_len or tokenizer); use another --run-name or --overwrite"
            )


def train_language_model(cfg: LMConfig, run_name: str, overwrite=False, verbose=None,
                         extra_callbacks=(), log=print, budget_minutes: float | None = None,
                         val_windows: int | None = None) -> dict:
    """Trains `cfg`'s model; returns the best epoch's history record (also saved as JSON).

    Args:
        budget_minutes: stop training this many minutes after its first step (None: no limit).
        val_windows: validate on this many evenly spaced windows of the val split (None: all).
    """
    added = use_training_xla_flags()  # before anything below starts JAX
    if added:
        log(f"XLA_FLAGS += {' '.join(added)}")
    paths = RunPaths(cfg.name, run_name)
    run = Run(paths.files(), overwrite=overwrite, log=log)
    run.claim_check()  # refuse a finished run before reading any data
    # Checked before any data is read; MoE/MoC layers assign routing statistics mid-step.
    replicas = plan_replicas(cfg.train, state_in_forward=cfg.model.ffn != "dense")
    log(replicas.describe())
    keras.utils.set_random_seed(cfg.train.seed)
    mappings = RunPaths(cfg.data.tokenizer_version or cfg.name, run_name).mappings
    data = load_lm_data(cfg, mappings, log=log)
    steps = plan_steps(cfg, len(data.train_stream))
    if steps["capped_by_max_steps"]:
        log(f"WARNING: train.max_steps={cfg.train.max_steps} caps training at "
            f"{steps['total_steps']} of {steps['planned_steps']} planned steps "
            f"({steps['total_steps'] / steps['steps_per_epoch']:.2f} of {cfg.train.epochs} epochs)")
    resolved = {
        "config": to_dict(cfg),
        "tokenizer": {
            "version": cfg.data.tokenizer_version or cfg.name,
            "file": data.tokenizer.model_path.name,
            "sha256": data.tokenizer.sha256,
        },
        "data": data.summary(),
        "steps": steps,
        "distribution": replicas.summary(),
        "xla_flags": os.environ.get("XLA_FLAGS", "") if keras.config.backend() == "jax" else None,
    }
    if budget_minutes is not None or val_windows is not None:
        resolved["budget"] = {"minutes": budget_minutes, "val_windows": val_windows}
    # Everything above is validated before the old run (with --overwrite) is moved aside.
    with run:
        _check_resume(paths, resolved)
        with replicas.scope():  # building, compile and fit: data-parallel when the config asks
            return _build_and_fit(cfg, run, paths, data, resolved, verbose, extra_callbacks, log,
                                  budget_minutes, val_windows)


def _build_and_fit(cfg, run, paths, data, resolved, verbose, extra_callbacks, log,
                   budget_minutes, val_windows):
    """Builds, compiles and fits the model (inside the caller's distribution scope), saves it
    and returns the best epoch's record."""
    steps, replicas = resolved["steps"], resolved["distribution"]["replicas"]
    run_name = paths.run
    model = build_language_model(cfg)
    resolved["parameters"] = int(model.count_params())
    write_json(paths.resolved_config, resolved)
    log(f"model: {type(model).__name__} with {resolved['parameters']:,} parameters; "
        f"{steps['steps_per_epoch']} steps/epoch × {steps['epochs_to_run']} epochs, "
        f"{steps['tokens_per_step']:,} tokens per step ({cfg.train.batch_size} sequences × "
        f"{cfg.data.seq_len})")

    t = cfg.train
    compile_for_training(model, cfg, steps["total_steps"], steps["warmup_steps"])
    train_batches = WindowDataset(data.train_stream, cfg.data.seq_len, cfg.data.stride,
                                  t.batch_size, shuffle=True, seed=t.seed)
    val_batches = WindowDataset(data.val_stream, cfg.data.seq_len, cfg.data.seq_len,
                                t.batch_size, drop_remainder=False, windows_multiple_of=replicas,
                                max_windows=val_windows)
    if len(val_batches) == 0:
        raise UserError(
            f"data.val_fraction: the validation split has {len(data.val_stream)} tokens, fewer "
            f"than one window of {cfg.data.seq_len + 1}"
        )
    summary = resolved["data"]
    history = HistoryWriter(paths.history, {"run": run_name, "version": cfg.name, **resolved},
                            steps["tokens_per_step"],
                            summary["val_tokens"] / summary["val_bytes"] / math.log(2))
    if verbose is None:  # a progress bar for terminals, one line per epoch for log files
        verbose = 1 if sys.stdout.isatty() else 2
    initial_epoch = run.restore(model)
    train_batches.set_epoch(initial_epoch)
    budget = [WallClockBudget(budget_minutes, steps["total_steps"], log)] if budget_minutes else []
    state = run.callback(history, monitor="val_loss", patience=t.early_stopping_patience,
                         datasets=[train_batches])
    callbacks = async_safe(*([keras.callbacks.ProgbarLogger()] if verbose else [])) + [
        TensorBoardLogger(paths.tensorboard),
        SampleTextLogger(paths.tensorboard / "samples", data.tokenizer, SAMPLE_PROMPTS,
                         SamplingConfig(greedy=True, max_new_tokens=min(40, cfg.data.seq_len // 2)),
                         every=math.ceil(steps["epochs_to_run"] / 10)),
        *([RoutingLogger(paths.tensorboard)] if cfg.model.ffn != "dense" else []),
        *budget,
        history,
        *extra_callbacks,
    ]
    if steps["capped_by_max_steps"]:
        callbacks.append(StopAtStep(steps["total_steps"]))
    callbacks.append(state)  # last: it checkpoints the epoch once every other callback logged it
    start = time.perf_counter()
    # shuffle=False: the windows are already shuffled per epoch from (train.seed, epoch); a
    # second shuffle of the batch order by Keras would differ between one device and several.
    if initial_epoch < steps["epochs_to_run"] and not (initial_epoch and _stopped_early(state, t)):
        model.fit(train_batches, validation_data=val_batches, epochs=steps["epochs_to_run"],
                  initial_epoch=initial_epoch, callbacks=callbacks, verbose=verbose, shuffle=False)
    best = run.finish(model, state, wall_seconds=time.perf_counter() - start)
    log(f"TensorBoard: tensorboard --logdir {paths.tensorboard.parent}")
    log(f"saved {paths.model} (best epoch {best['epoch']}: val_loss {best['val_loss']:.4f}, "
        f"val perplexity {best['val_perplexity']:.2f})")
    return best


def _stopped_early(state, t) -> bool:
    """The restored run had already run out of patience (killed while saving its model)."""
    return state.wait >= t.early_stopping_patience
