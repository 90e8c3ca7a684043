"""Training callbacks that work on every backend.

- `TensorBoardLogger`: epoch metrics (train and validation) and the learning rate, written
  with the TensorFlow-free `SummaryWriter`.
- `HistoryWriter`: a per-epoch history JSON (with the train/val gap), rewritten atomically
  (strict JSON) after every epoch by the run lifecycle's `RunState`, once that epoch's
  checkpoint is written, so an interrupted run still leaves its curve behind.
- `StopAtStep`: ends training after a fixed number of optimizer steps (`train.max_steps`).
- `WallClockBudget`: ends training a fixed number of minutes after its first step, with a
  progress line and ETA (`kerasvq train --quick`).

Example:
    >>> model.fit(..., callbacks=[TensorBoardLogger(logdir), HistoryWriter(path, header)])
"""

from __future__ import annotations

import time

import keras
from keras import ops

from kerasvq.training.tensorboard import SummaryWriter


def current_learning_rate(optimizer) -> float:
    return float(ops.convert_to_numpy(optimizer.learning_rate))


def async_safe(*callbacks):
    """Marks callbacks whose per-batch hooks read only `logs` (never model variables).

    Keras's JAX trainer dispatches batch-end callbacks on a background thread only when every
    callback is marked so; otherwise it converts the logs to floats after every step, which
    stalls the host until the GPU finishes (a v5 step took about three times as long:
    docs/performance.md). Keras's own `BackupAndRestore`/`ModelCheckpoint` saving per epoch,
    `TerminateOnNaN` and `ProgbarLogger` qualify but are not marked by Keras.
    """
    for callback in callbacks:
        callback.async_safe = True
    return list(callbacks)


class StepCounter(keras.callbacks.Callback):
    """Tracks the global optimizer step from the batch indices Keras passes to callbacks.

    Per-batch callbacks must not read model or optimizer variables: on JAX that forces a
    full state sync every step and costs most of the GPU's throughput.
    """

    async_safe = True

    def on_train_begin(self, logs=None):
        self.step = int(ops.convert_to_numpy(self.model.optimizer.iterations))

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = self.step

    def on_train_batch_end(self, batch, logs=None):
        # With steps_per_execution > 1, `batch` is the index of the last step run.
        self.step = self._epoch_start + batch + 1


class TensorBoardLogger(keras.callbacks.Callback):
    """Writes `train/` and `validation/` scalars under `logdir` at the end of every epoch.

    It has no per-batch hook on purpose: on JAX, per-batch work on Keras's asynchronous
    callback thread raced with buffer donation ("Buffer has been deleted or donated"), and a
    synchronous per-batch hook stalls the GPU every step.
    """

    def __init__(self, logdir):
        super().__init__()
        self.logdir = str(logdir)
        self._train = self._val = None

    def on_train_begin(self, logs=None):
        self._train = SummaryWriter(f"{self.logdir}/train")
        self._val = SummaryWriter(f"{self.logdir}/validation")

    def on_epoch_end(self, epoch, logs=None):
        step = epoch + 1
        for key, value in (logs or {}).items():
            if key.startswith("val_"):
                self._val.scalar(f"epoch/{key[4:]}", value, step)
            else:
                self._train.scalar(f"epoch/{key}", value, step)
        self._train.scalar("epoch/learning_rate", current_learning_rate(self.model.optimizer), step)
        self._train.flush()
        self._val.flush()

    def on_train_end(self, logs=None):
        for writer in (self._train, self._val):
            if writer is not None:
                writer.close()


class HistoryWriter(keras.callbacks.Callback):
    """Keeps `path` (JSON) up to date: the run header plus one record per finished epoch.

    Args:
        path: the history JSON file.
        header: fixed information about the run (config, data sizes, tokenizer hash).
        tokens_per_step: training tokens per optimizer step, for tokens/s.
        bits_per_byte_factor: validation tokens / validation UTF-8 bytes / ln 2, so that
            val_cross_entropy (nats per token) × factor = bits per byte, a number that
            compares across tokenizers.
    """

    def __init__(self, path, header, tokens_per_step=None, bits_per_byte_factor=None):
        super().__init__()
        self.path = path
        self.header = header
        self.tokens_per_step = tokens_per_step
        self.bits_per_byte_factor = bits_per_byte_factor
        self.epochs = []  # set by the lifecycle from the restored checkpoint
        self.on_write = None  # called with the epochs after every write (e.g. a CSV copy)

    def on_train_begin(self, logs=None):
        self.write("running")

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()
        self._start_step = int(ops.convert_to_numpy(self.model.optimizer.iterations))

    def record(self, epoch, logs) -> dict:
        """The history record of the epoch that just ended (not yet in `epochs`)."""
        logs = {k: float(v) for k, v in (logs or {}).items()}
        seconds = time.perf_counter() - self._start
        steps = int(ops.convert_to_numpy(self.model.optimizer.iterations)) - self._start_step
        record = {"epoch": epoch + 1, **logs}
        if "cross_entropy" in logs and "val_cross_entropy" in logs:
            record["gap"] = logs["val_cross_entropy"] - logs["cross_entropy"]
        if self.bits_per_byte_factor and "val_cross_entropy" in logs:
            record["val_bits_per_byte"] = logs["val_cross_entropy"] * self.bits_per_byte_factor
        tokens = steps * self.tokens_per_step / seconds if seconds and self.tokens_per_step else None
        record.update(learning_rate=current_learning_rate(self.model.optimizer), steps=steps,
                      seconds=seconds, **({"train_tokens_per_second": tokens} if self.tokens_per_step else {}))
        return record

    def finish(self, status, **extra):
        self.write(status, **extra)

    def write(self, status, **extra):
        from kerasvq.training.lifecycle import write_json

        write_json(self.path, {**self.header, "status": status, **extra, "epochs": self.epochs})
        if self.on_write is not None:
            self.on_write(self.epochs)


class StopAtStep(StepCounter):
    """Stops training once the optimizer has taken `max_steps` steps.

    Synchronous (not async-safe), so that the stop lands exactly on `max_steps`.
    """

    async_safe = False

    def __init__(self, max_steps):
        super().__init__()
        self.max_steps = max_steps

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        if self.step >= self.max_steps:
            self.model.stop_training = True


class WallClockBudget(keras.callbacks.Callback):
    """Stops training `minutes` after its first step; logs progress with an ETA.

    The clock starts at the end of the first step, so data loading and compilation are not
    counted. The ETA is the earlier of the budget's end and `total_steps` at the current pace.
    Synchronous (not async-safe), so that the stop lands on the step that crossed the budget.

    Args:
        minutes: the training budget.
        total_steps: the steps planned without a budget (for the ETA).
        log: where the progress lines go.
        every_seconds: seconds between progress lines.
    """

    def __init__(self, minutes: float, total_steps: int, log=print, every_seconds: float = 30.0):
        super().__init__()
        self.seconds = 60.0 * minutes
        self.total_steps = total_steps
        self.log = log
        self.every_seconds = every_seconds
        self._start = None
        self.steps = 0
        self.stopped_at = None

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        self.steps += 1
        if self._start is None:
            self._start = self._last = now
            self._first_step = int(ops.convert_to_numpy(self.model.optimizer.iterations))
            return
        elapsed = now - self._start
        if elapsed >= self.seconds:
            self.stopped_at = self._first_step + self.steps - 1
            self.model.stop_training = True
            self.log(f"time budget of {self.seconds / 60:.1f} min reached after {self.steps} steps; "
                     "stopping after validation")
            return
        if now - self._last >= self.every_seconds:
            self._last = now
            pace = elapsed / (self.steps - 1)
            left = min(self.seconds - elapsed, pace * max(self.total_steps - self._first_step - self.steps, 0))
            loss = (logs or {}).get("loss")
            self.log(f"step {self._first_step + self.steps}/{self.total_steps}"
                     + (f", loss {float(loss):.3f}" if loss is not None else "")
                     + f", {elapsed / 60:.1f} of {self.seconds / 60:.1f} min, {1 / pace:.2f} steps/s, "
                     f"ETA {left / 60:.1f} min (+ validation)")
