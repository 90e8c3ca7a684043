"""`CodebookMonitor`: per-epoch codebook usage per head, and a warning when a head collapses.

Usage comes from the quantizers' own counters, so it costs nothing per step and needs no
validation data: `steps_unused` is reset to 0 whenever a code is chosen in a training step,
so a code was used during the epoch exactly when its `steps_unused` is below the number of
steps the epoch ran (the optimizer's iteration count). Every epoch the share of used codes of
each head is added to the epoch's `logs` (`codebook_usage/<head>`, so it lands in the
history), printed as one line when `fit` is verbose, and below `min_usage` a one-line
`CodebookCollapseWarning` names the head and the remedy.

`MonitoredFit` (mixed into `VQVAE` and `HierarchicalVQVAE`) adds the monitor to every `fit`
that does not already carry one, so the plain `compile` + `fit` path reports collapse
without the user adding a callback.

Example:
    >>> history = model.fit(x, x, epochs=8)          # VQVAE: monitor added by fit
    >>> history.history["codebook_usage/head0"][-1]
    0.98
"""

from __future__ import annotations

import inspect
import warnings

import keras
import numpy as np
from keras import ops

from kerasvq.layers.vector_quantizer import VectorQuantizer

REMEDY = ("remedy: keep the quantizer's kmeans_init=True and dead_code_threshold>0 (the defaults), "
          "or call model.initialize_codebooks(x) before fit and add kerasvq.training.CodebookReset")


def find_quantizers(model) -> list[VectorQuantizer]:
    """Every `VectorQuantizer` inside `model` (nested layers included), once each."""
    found = []

    def visit(layer):
        if isinstance(layer, VectorQuantizer):
            found.append(layer)
        for child in getattr(layer, "_layers", []) or []:
            visit(child)

    visit(model)
    return list({id(q): q for q in found}.values())


class CodebookCollapseWarning(UserWarning):
    """A codebook head used fewer codes in a training epoch than the monitor's threshold."""


def codebook_heads(model) -> list[tuple[object, list[str]]]:
    """(quantizer, one name per head) for every quantizer of `model`; the model may name
    them itself with a `codebook_heads()` method."""
    if hasattr(model, "codebook_heads"):
        return model.codebook_heads()
    return [(vq, [f"{vq.name}_head{h}" for h in range(vq.num_heads)]) for vq in find_quantizers(model)]


class CodebookMonitor(keras.callbacks.Callback):
    """Logs each head's share of codes used per epoch; warns below `min_usage`.

    Args:
        min_usage: share of a head's codes below which the epoch's usage is a collapse.
        verbose: print the usage line each epoch; None follows `fit`'s verbose.
    """

    def __init__(self, min_usage: float = 0.1, verbose: int | None = None):
        super().__init__()
        self.min_usage = float(min_usage)
        self.verbose = verbose
        self._start = 0

    def _iterations(self) -> int:
        if keras.backend.backend() == "jax":
            self.model.jax_state_sync()  # the JAX loop keeps state outside the variables
        return int(ops.convert_to_numpy(self.model.optimizer.iterations))

    def on_epoch_begin(self, epoch, logs=None):
        self._start = self._iterations()

    def epoch_usage(self, steps: int) -> dict[str, float]:
        usage = {}
        for vq, names in codebook_heads(self.model):
            used = ops.convert_to_numpy(vq.steps_unused) < steps  # (heads, codes)
            usage.update({name: float(np.mean(used[h])) for h, name in enumerate(names)})
        return usage

    def on_epoch_end(self, epoch, logs=None):
        steps = self._iterations() - self._start
        if steps <= 0:
            return
        usage = self.epoch_usage(steps)
        if logs is not None:
            logs.update({f"codebook_usage/{name}": u for name, u in usage.items()})
        verbose = self.params.get("verbose", 1) if self.verbose is None else self.verbose
        if verbose:
            print(f"codebook usage, epoch {epoch + 1}: " + ", ".join(f"{n} {u:.3f}" for n, u in usage.items()))
        collapsed = [(n, u) for n, u in usage.items() if u < self.min_usage]
        if collapsed:
            heads = ", ".join(f"{n} {u:.1%}" for n, u in collapsed)
            warnings.warn(f"codebook collapse in epoch {epoch + 1}: {heads} of codes used "
                          f"(< {self.min_usage:.0%}); {REMEDY}", CodebookCollapseWarning, stacklevel=2)


FIT_SIGNATURE = inspect.signature(keras.Model.fit)


class MonitoredFit:
    """Mix in before `keras.Model`: every `fit` carries a `CodebookMonitor` unless it has one."""

    def fit(self, *args, **kwargs):
        bound = FIT_SIGNATURE.bind(self, *args, **kwargs)
        callbacks = list(bound.arguments.get("callbacks") or [])
        if not any(isinstance(c, CodebookMonitor) for c in callbacks):
            callbacks.append(CodebookMonitor())
        bound.arguments["callbacks"] = callbacks
        arguments = dict(bound.arguments)
        arguments.pop("self")
        extra = arguments.pop("kwargs", {})
        return super().fit(**arguments, **extra)
