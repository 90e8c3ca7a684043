"""TensorBoard logging of expert routing for top-k MoE / MoC language models, once per epoch.

Example:
    >>> model.fit(..., callbacks=[RoutingLogger("versions/moc-moc/logs/tensorboard/run1")])
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from kerasvq.metrics.moe import expert_layers, routing_snapshot
from kerasvq.training.tensorboard import SummaryWriter


class RoutingLogger(keras.callbacks.Callback):
    """Logs the main loss, the router loss and expert usage separately to TensorBoard, at the
    end of every epoch (train/ and validation/ folders):

    - `epoch/loss/main`: the unsmoothed `cross_entropy` metric (and `val_cross_entropy`);
    - `epoch/perplexity`: exp(loss/main), never from the total loss;
    - `epoch/loss/aux`: the model's `aux_loss` metric, the router loss the expert layers added
      (averaged over layers), mean over the epoch's steps;
    - `epoch/experts/layer_i/expert_j`: share of the epoch's top-k assignments per expert (from
      the layers' cumulative `expert_assignments`, read once per epoch);
    - `epoch/experts/layer_i/dropped_last_step` (top-k MoE): capacity drops in the last step.

    No per-batch hook on purpose, like `TensorBoardLogger`: on JAX, per-batch work on Keras's
    asynchronous callback thread races with buffer donation, and a synchronous one stalls the
    device every step.

    Args:
        logdir: TensorBoard folder; writes `train/` and `validation/` under it.
    """

    async_safe = True

    def __init__(self, logdir):
        super().__init__()
        self.logdir = str(logdir)
        self._writers = None

    def _counts(self):
        return [np.asarray(ops.convert_to_numpy(layer.expert_assignments)) for layer in expert_layers(self.model)]

    def on_train_begin(self, logs=None):
        self._writers = {
            "train": SummaryWriter(f"{self.logdir}/train"),
            "validation": SummaryWriter(f"{self.logdir}/validation"),
        }
        self._epoch_counts = self._counts()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        step = epoch + 1
        for split, key in (("train", "cross_entropy"), ("validation", "val_cross_entropy")):
            if key in logs:
                main = float(logs[key])
                self._writers[split].scalar("epoch/loss/main", main, step)
                self._writers[split].scalar("epoch/perplexity", math.exp(min(main, 50.0)), step)
        writer = self._writers["train"]
        if "aux_loss" in logs:
            writer.scalar("epoch/loss/aux", float(logs["aux_loss"]), step)
        counts = self._counts()
        for i, (now, before) in enumerate(zip(counts, self._epoch_counts)):
            delta = now - before
            if delta.sum() > 0:
                for j, share in enumerate(delta / delta.sum()):
                    writer.scalar(f"epoch/experts/layer_{i}/expert_{j}", float(share), step)
        self._epoch_counts = counts
        for i, dropped in enumerate(routing_snapshot(self.model)["dropped_fraction"]):
            writer.scalar(f"epoch/experts/layer_{i}/dropped_last_step", dropped, step)
        for w in self._writers.values():
            w.flush()

    def on_train_end(self, logs=None):
        for writer in (self._writers or {}).values():
            writer.close()
