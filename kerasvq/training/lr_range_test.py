"""Learning-rate range test: train briefly while the learning rate grows exponentially.

The loss falls while the rate is useful and explodes once it is too large. The suggested peak
learning rate is where the smoothed loss falls fastest per decade of learning rate (Smith's
range test, as in fastai's `lr_find`); the rate at the loss minimum divided by 10 is reported
beside it as a more conservative rule.

Example:
    >>> result = lr_range_test(cfg, min_lr=1e-6, max_lr=1.0, steps=200)
    >>> result["suggested_lr"]
    0.0012
"""

from __future__ import annotations

import math

import keras
import numpy as np

from kerasvq.config.lm import LMConfig
from kerasvq.data.lm_data import load_lm_data
from kerasvq.data.windows import WindowDataset
from kerasvq.common.errors import UserError
from kerasvq.models.build import build_language_model
from kerasvq.training.run_paths import RunPaths
from kerasvq.training.losses import SparseCategoricalCrossentropyWithSmoothing
from kerasvq.training.optimizers import adamw_for


@keras.saving.register_keras_serializable(package="kerasvq")
class ExponentialRamp(keras.optimizers.schedules.LearningRateSchedule):
    """min_lr · (max_lr / min_lr) ** (step / steps)."""

    def __init__(self, min_lr, max_lr, steps):
        self.min_lr, self.max_lr, self.steps = min_lr, max_lr, steps

    def __call__(self, step):
        fraction = keras.ops.cast(step, "float32") / float(self.steps)
        return self.min_lr * keras.ops.power(self.max_lr / self.min_lr, fraction)

    def get_config(self):
        return {"min_lr": self.min_lr, "max_lr": self.max_lr, "steps": self.steps}


class _StepLosses(keras.callbacks.Callback):
    """Per-step losses, recovered from Keras's running epoch mean; stops on divergence."""

    def __init__(self, divergence_factor):
        super().__init__()
        self.divergence_factor = divergence_factor
        self.losses = []
        self._previous_mean = 0.0

    def on_train_batch_end(self, batch, logs=None):
        mean = float(logs["loss"])
        loss = (batch + 1) * mean - batch * self._previous_mean
        self._previous_mean = mean
        self.losses.append(loss)
        if not math.isfinite(loss) or loss > self.divergence_factor * min(self.losses):
            self.model.stop_training = True


def smooth(values, beta=0.9):
    """Bias-corrected exponential moving average."""
    out, average = [], 0.0
    for i, v in enumerate(values):
        average = beta * average + (1 - beta) * v
        out.append(average / (1 - beta ** (i + 1)))
    return np.array(out)


def suggest(lrs, losses, beta=0.9):
    """(steepest-descent lr, lr at the smoothed minimum / 10) from a range test's curve."""
    smoothed = smooth(losses, beta)
    best = int(np.argmin(smoothed))
    if best < 3:
        raise UserError("lr-find: the loss never fell; lower --min-lr or check the data")
    log_lrs = np.log10(lrs[: best + 1])
    slopes = np.gradient(smoothed[: best + 1], log_lrs)
    start = max(1, len(slopes) // 10)  # skip the noisy first steps
    steepest = start + int(np.argmin(slopes[start:]))
    return float(lrs[steepest]), float(lrs[best] / 10), smoothed


def lr_range_test(cfg: LMConfig, min_lr=1e-6, max_lr=1.0, steps=200, divergence_factor=4.0,
                  log=print) -> dict:
    """Runs the test on the config's real training windows; returns the curve and suggestions."""
    keras.utils.set_random_seed(cfg.train.seed)
    mappings = RunPaths(cfg.data.tokenizer_version or cfg.name, "lr-find").mappings
    data = load_lm_data(cfg, mappings, log=log)
    batches = WindowDataset(data.train_stream, cfg.data.seq_len, cfg.data.stride,
                            cfg.train.batch_size, shuffle=True, seed=cfg.train.seed)
    if len(batches) == 0:
        raise UserError("train.batch_size: the training split has fewer windows than one batch")
    model = build_language_model(cfg)
    t = cfg.train
    model.compile(
        optimizer=adamw_for(model, ExponentialRamp(min_lr, max_lr, steps), t.weight_decay,
                            t.beta_1, t.beta_2, t.clipnorm),
        loss=SparseCategoricalCrossentropyWithSmoothing(t.label_smoothing),
    )
    recorder = _StepLosses(divergence_factor)
    epochs = math.ceil(steps / len(batches))
    model.fit(batches, epochs=epochs, steps_per_epoch=min(steps, len(batches)),
              callbacks=[recorder], verbose=0)
    losses = np.array(recorder.losses[:steps])
    lrs = min_lr * (max_lr / min_lr) ** (np.arange(1, len(losses) + 1) / steps)
    steepest, minimum_over_10, smoothed = suggest(lrs, losses)
    return {
        "config": cfg.name,
        "batch_size": t.batch_size,
        "min_lr": min_lr,
        "max_lr": max_lr,
        "steps_run": int(len(losses)),
        "learning_rates": lrs.tolist(),
        "losses": losses.tolist(),
        "smoothed_losses": smoothed.tolist(),
        "suggested_lr": steepest,
        "min_loss_lr_over_10": minimum_over_10,
    }


def plot_lr_range_test(result: dict, path):
    """Saves loss vs learning rate (log scale) with both suggestions marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(result["learning_rates"], result["losses"], alpha=0.3, label="loss per step")
    ax.plot(result["learning_rates"], result["smoothed_losses"], label="smoothed")
    ax.axvline(result["suggested_lr"], color="tab:red", linestyle="--",
               label=f"steepest descent: {result['suggested_lr']:.2g}")
    ax.axvline(result["min_loss_lr_over_10"], color="tab:green", linestyle=":",
               label=f"minimum / 10: {result['min_loss_lr_over_10']:.2g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title(f"LR range test — {result['config']} (batch {result['batch_size']})")
    low = min(result["smoothed_losses"])
    ax.set_ylim(low - 0.5, result["smoothed_losses"][0] + 0.5)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
