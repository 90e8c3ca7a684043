"""One run lifecycle for every model family: claim, checkpoint, resume, finish or fail.

A run is a set of files (`RunFiles`): the model, its resolved config, a history JSON,
TensorBoard logs, a backup folder and whatever else the family writes. `Run` owns them:

- **claim**: a finished run is never replaced without `overwrite`; with it, the old run's
  files are moved aside (`.<name>.replaced` next to each) and restored if the new run fails
  before its first finished epoch, deleted once it has one. Before anything is written the
  output folders are checked to be writable.
- **checkpoint**: after every finished epoch, one *generation* `backup/epoch-NNNNN/` holds the
  weights (optimizer state included), the best weights so far and `state.json` (the history's
  epochs, best value, patience counter, stateful callbacks). It is written in a temporary
  folder and renamed into place, the two newest are kept; the history JSON is written from
  it afterwards, so an epoch is in both or in neither.
- **resume**: `restore(model)` loads the newest readable generation (falling back to the one
  before when the newest is damaged) and returns the epoch to continue from.
- **finish/fail**: the model is saved atomically (temporary file + `os.replace`); a run whose
  loss turns NaN or infinite is marked `failed`, keeps its last good generation and raises
  one line naming the step. A read-only or full disk becomes one line naming the folder and
  what was kept.

Example:
    >>> run = Run(paths.files(), overwrite=False, log=print)
    >>> with run:
    ...     initial_epoch = run.restore(model)
    ...     state = run.callback(history, monitor="val_loss", patience=2)
    ...     model.fit(..., initial_epoch=initial_epoch, callbacks=[..., history, state])
    ...     run.finish(model, state)
"""

from __future__ import annotations

import dataclasses
import errno
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import keras
import numpy as np

from kerasvq.common.errors import UserError
from kerasvq.common.temp_files import temp_prefix
from kerasvq.config.base import save_json, strict_json

DISK_ERRORS = {errno.EROFS: "read-only file system", errno.ENOSPC: "no space left on device",
               errno.EACCES: "permission denied", errno.EDQUOT: "disk quota exceeded"}
KEEP_GENERATIONS = 2


@dataclasses.dataclass(frozen=True)
class RunFiles:
    """Where one run's artifacts live.

    Args:
        name: the run's name in messages (e.g. "run 'main' of v5-transformer").
        model: the `.keras` file the run produces.
        resolved_config: the config JSON the run was started with.
        history: the history JSON (status and one record per finished epoch).
        tensorboard: the run's TensorBoard folder.
        backup: the folder of checkpoint generations.
        others: further files or folders that belong to the run (summaries, CSV logs).
    """

    name: str
    model: Path
    resolved_config: Path
    history: Path
    tensorboard: Path
    backup: Path
    others: tuple = ()

    def all(self) -> list[Path]:
        return [self.model, self.resolved_config, self.history, self.tensorboard, self.backup,
                *self.others]


def _remove(path: Path):
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


def _temporary_sibling(path: Path, suffix: str) -> Path:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path.name), suffix=suffix)
    os.close(fd)
    return Path(tmp)


def write_json(path, data) -> Path:
    """Strict JSON written atomically (`kerasvq.config.base.save_json`). Every JSON file of a run
    goes through here, so the fault tests can fail a run's writes in one place."""
    return save_json(path, data)


def save_model(model, path) -> Path:
    """`model.save(path)` through a temporary file, so `path` is the old model or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_sibling(path, ".keras")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _aside(path: Path) -> Path:
    return path.with_name(f".{path.name}.replaced")


def _seed_states(model) -> list:
    """The model's `SeedGenerator` states (dropout and other random layers), which Keras
    leaves out of saved weights; without them a resumed run draws other random numbers."""
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]


def _stateful(callbacks):
    """Callbacks that carry state across epochs (`run_state()` / `restore_run_state()`)."""
    return {f"{type(c).__name__}_{i}": c for i, c in enumerate(callbacks)
            if hasattr(c, "run_state") and hasattr(c, "restore_run_state")}


class Run:
    """The lifecycle of one training run; a context manager around claim → fit → finish.

    Args:
        files: the run's `RunFiles`.
        overwrite: replace a finished run (moved aside until the new one has an epoch).
        allow_finished: continue a finished run (its last generation) instead of refusing.
        keep_backup: keep the last generation when the run finishes (so it can be continued).
        refuse_hint: what the refusal message tells the user to do.
        refusal: the whole refusal message after the model path (instead of the default).
        log: where progress lines go.
    """

    def __init__(self, files: RunFiles, overwrite: bool = False, allow_finished: bool = False,
                 keep_backup: bool = False,
                 refuse_hint: str = "pass --overwrite or choose another --run-name", refusal=None,
                 log=print):
        self.files = files
        self.overwrite = overwrite
        self.allow_finished = allow_finished
        self.keep_backup = keep_backup
        self.refusal = refusal or f"{files.name} already finished; {refuse_hint}"
        self.log = log
        self._aside = []
        self.generation = None  # the restored generation's state
        self.activity = "starting the run"

    # -- claim -------------------------------------------------------------------------
    def finished(self) -> bool:
        if self.files.history.is_file():
            try:
                return json.loads(self.files.history.read_text(encoding="utf-8")).get("status") == "finished"
            except (json.JSONDecodeError, UnicodeDecodeError):
                return False
        return self.files.model.is_file()  # a model without a history: a run of an older version

    def claim_check(self):
        """Refuses a finished run and checks the folders are writable; changes nothing of an
        existing run, so it can run before the (slower) validation of data and model."""
        try:
            self._restore_interrupted_overwrite()
            if self.finished() and not self.allow_finished and not self.overwrite:
                raise UserError(f"{self.files.model}: {self.refusal}")
            for folder in sorted({p.parent for p in self.files.all()}):
                self._check_writable(folder)
        except OSError as e:
            if e.errno not in DISK_ERRORS:
                raise
            raise self._disk_error(e) from None

    def claim(self):
        """`claim_check`, then (with `overwrite`) moves the old run aside."""
        self.claim_check()
        if self.overwrite:
            for path in self.files.all():
                if path.exists():
                    _remove(_aside(path))
                    os.replace(path, _aside(path))
                    self._aside.append(path)
            if self._aside:
                self.log(f"moved the old {self.files.name} aside; it is deleted once the new run "
                         "finishes an epoch and restored if it fails before")

    def _restore_interrupted_overwrite(self):
        """A `--overwrite` killed before its first epoch: bring the old run back."""
        asides = [p for p in self.files.all() if _aside(p).exists()]
        if not asides:
            return
        if self._generations():
            for path in asides:
                _remove(_aside(path))
            return
        for path in self.files.all():
            if _aside(path).exists():
                _remove(path)
                os.replace(_aside(path), path)
        self.log(f"restored the {self.files.name} that an interrupted --overwrite had moved aside")

    def _check_writable(self, folder: Path):
        self.activity = f"creating {folder}"
        folder.mkdir(parents=True, exist_ok=True)
        probe = _temporary_sibling(folder / "probe", ".tmp")
        probe.unlink()

    def _drop_aside(self):
        for path in self._aside:
            _remove(_aside(path))
        self._aside = []

    def _restore_aside(self):
        for path in self._aside:
            _remove(path)
            os.replace(_aside(path), path)
        if self._aside:
            self.log(f"the old {self.files.name} was restored")
        self._aside = []

    def __enter__(self):
        try:
            self.claim()
        except OSError as e:
            self._restore_aside()
            if e.errno not in DISK_ERRORS:
                raise
            raise self._disk_error(e) from None
        return self

    def __exit__(self, kind, error, tb):
        if error is None:
            self._drop_aside()
            return False
        if self._aside and not self._generations():
            self._restore_aside()
        else:
            self._drop_aside()
        if isinstance(error, OSError) and error.errno in DISK_ERRORS:
            raise self._disk_error(error) from None
        return False

    def _disk_error(self, error: OSError) -> UserError:
        where = error.filename or self.files.model.parent
        gens = self._generations()
        kept = (f"kept the checkpoint of epoch {gens[0][0]} in {self.files.backup} (re-run the same "
                "command to resume)" if gens else "no epoch had finished, nothing of this run was kept")
        if self.files.model.is_file():
            kept += f"; {self.files.model} is unchanged"
        return UserError(f"{where}: {DISK_ERRORS[error.errno]} while {self.activity}; {kept}")

    # -- generations -------------------------------------------------------------------
    def _generations(self) -> list[tuple[int, Path]]:
        """Committed generations, newest first."""
        if not self.files.backup.is_dir():
            return []
        found = []
        for p in self.files.backup.iterdir():
            if p.is_dir() and p.name.startswith("epoch-") and (p / "state.json").is_file():
                try:
                    found.append((int(p.name[6:]), p))
                except ValueError:
                    continue
        return sorted(found, reverse=True)

    def latest_state(self) -> dict | None:
        """The newest readable generation's state.json (None for a fresh run)."""
        for _, folder in self._generations():
            try:
                return json.loads((folder / "state.json").read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
        return None

    def restore(self, model) -> int:
        """Loads the newest readable generation into `model`; returns the epoch to start at."""
        for epoch, folder in self._generations():
            try:
                state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
                if model.optimizer is not None and not model.optimizer.built:
                    model.optimizer.build(model.trainable_variables)
                model.load_weights(folder / "weights.weights.h5")
                seeds = _seed_states(model)
                if len(seeds) == len(state.get("seed_generators", [])):
                    for variable, value in zip(seeds, state["seed_generators"]):
                        variable.assign(np.asarray(value, dtype=variable.dtype))
            except Exception as e:  # a damaged generation: fall back to the one before
                self.log(f"{folder}: unreadable checkpoint ({' '.join(str(e).split())[:120]}); "
                         "trying the one before")
                continue
            self.generation = dict(state, folder=str(folder))
            self.log(f"resuming {self.files.name} after epoch {epoch} from {folder}")
            return epoch
        return 0

    def _commit(self, model, state: dict):
        """Writes generation `state['epoch']` atomically and keeps the two newest."""
        backup, epoch = self.files.backup, state["epoch"]
        state = dict(state, seed_generators=[
            keras.ops.convert_to_numpy(v).tolist() for v in _seed_states(model)])
        backup.mkdir(parents=True, exist_ok=True)
        final = backup / f"epoch-{epoch:05d}"
        tmp = Path(tempfile.mkdtemp(dir=backup, prefix=f".epoch-{epoch:05d}."))
        try:
            model.save_weights(tmp / "weights.weights.h5")
            if state.get("best_epoch") == epoch:
                _link_or_copy(tmp / "weights.weights.h5", tmp / "best.weights.h5")
            elif state.get("best_epoch"):
                previous = self._generations()
                if previous and (previous[0][1] / "best.weights.h5").is_file():
                    _link_or_copy(previous[0][1] / "best.weights.h5", tmp / "best.weights.h5")
            with open(tmp / "state.json", "w", encoding="utf-8") as f:
                json.dump(strict_json(state), f, indent=1, allow_nan=False)
            _remove(final)
            os.replace(tmp, final)
        finally:
            _remove(tmp)
        for _, old in self._generations()[KEEP_GENERATIONS:]:
            _remove(old)
        for stale in backup.glob(".epoch-*"):
            _remove(stale)
        self._drop_aside()  # the new run now has a finished epoch: the old one goes

    def best_weights(self) -> Path | None:
        gens = self._generations()
        path = gens[0][1] / "best.weights.h5" if gens else None
        return path if path is not None and path.is_file() else None

    # -- fit ---------------------------------------------------------------------------
    def callback(self, history, monitor: str | None = None, patience: int | None = None,
                 stateful=(), datasets=()) -> "RunState":
        """The callback that checkpoints this run; put it last, after `history`."""
        return RunState(self, history, monitor, patience, list(stateful), list(datasets))

    def finish(self, model, state: "RunState", **extra) -> dict | None:
        """Saves the model (the best epoch's weights when a monitor is set); returns the epoch
        record the history names, after marking the history finished."""
        if state.failure:
            kept = (f"kept the checkpoint of epoch {state.epochs[-1]['epoch']} in {self.files.backup}"
                    if state.epochs else "no epoch had finished, so no checkpoint was kept")
            state.history.finish("failed", failure=state.failure)
            raise UserError(f"{self.files.history}: {state.failure}; the run is marked failed, {kept}; "
                            "no model was saved")
        if not state.epochs:
            state.history.finish("failed", failure="stopped before finishing an epoch")
            raise UserError(f"{self.files.history}: training stopped before finishing an epoch")
        best = state.best_record()
        if state.monitor and best["epoch"] != state.epochs[-1]["epoch"]:
            model.load_weights(self.best_weights())
        self.activity = f"saving {self.files.model}"
        save_model(model, self.files.model)
        state.history.finish("finished", best_epoch=best["epoch"], model=str(self.files.model), **extra)
        if not self.keep_backup:
            _remove(self.files.backup)
        return best


def _link_or_copy(source: Path, target: Path):
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


class RunState(keras.callbacks.Callback):
    """Commits a generation after every finished epoch; stops on NaN and on patience.

    Its per-batch hook reads only `logs` (async-safe on JAX). It replaces Keras's
    `BackupAndRestore`, `ModelCheckpoint`, `EarlyStopping` and `TerminateOnNaN`, whose states
    (best value, patience counter, best weights) did not survive a resume.
    """

    async_safe = True

    def __init__(self, run: Run, history, monitor, patience, stateful, datasets):
        super().__init__()
        self.run, self.history, self.monitor, self.patience = run, history, monitor, patience
        self.stateful = _stateful(stateful)
        self.datasets = datasets
        self.failure = None
        g = run.generation or {}
        self.epochs = list(g.get("history", []))
        self.best = g.get("best")
        self.best_epoch = g.get("best_epoch")
        self.wait = g.get("wait", 0)
        for key, callback in self.stateful.items():
            if key in g.get("callbacks", {}):
                callback.restore_run_state(g["callbacks"][key])
        history.epochs = list(self.epochs)

    def on_epoch_begin(self, epoch, logs=None):
        for dataset in self.datasets:
            dataset.set_epoch(epoch)
        self._epoch, self._batch = epoch, 0

    def on_train_batch_end(self, batch, logs=None):
        self._batch = batch + 1
        loss = (logs or {}).get("loss")
        if self.failure is None and loss is not None and not math.isfinite(float(loss)):
            step = self._batch + sum(e.get("steps") or 0 for e in self.epochs)
            self.failure = (f"loss became {float(loss)} at step {step} (epoch {self._epoch + 1}, "
                            f"batch {self._batch})")
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.failure:
            return
        logs = logs or {}
        bad = [k for k, v in logs.items() if isinstance(v, (int, float, np.floating)) and not math.isfinite(v)]
        if bad:
            self.failure = f"{bad[0]} became {float(logs[bad[0]])} at the end of epoch {epoch + 1}"
            self.model.stop_training = True
            return
        record = self.history.record(epoch, logs)
        if self.monitor:
            value = float(logs[self.monitor])
            if self.best is None or value < self.best:
                self.best, self.best_epoch, self.wait = value, epoch + 1, 0
            else:
                self.wait += 1
        state = {"epoch": epoch + 1, "history": self.epochs + [record], "best": self.best,
                 "best_epoch": self.best_epoch, "wait": self.wait,
                 "callbacks": {k: c.run_state() for k, c in self.stateful.items()}}
        self.run.activity = f"saving the checkpoint of epoch {epoch + 1} in {self.run.files.backup}"
        self.run._commit(self.model, state)
        self.epochs.append(record)
        self.history.epochs = list(self.epochs)
        self.run.activity = f"writing {self.run.files.history}"
        self.history.write("running")
        self.run.activity = f"training epoch {epoch + 2}"
        if self.monitor and self.patience is not None and self.wait >= self.patience and epoch > 0:
            self.model.stop_training = True

    def best_record(self) -> dict:
        if self.monitor and self.best_epoch:
            return next(e for e in self.epochs if e["epoch"] == self.best_epoch)
        return self.epochs[-1]
