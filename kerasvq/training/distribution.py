"""Data-parallel training on the devices of one host, through the backend's own engine.

`train.distribution: "data_parallel"` trains one model on several accelerators:
- JAX: `keras.distribution.DataParallel` — variables replicated, the batch sharded along its
  first axis, one SPMD program per step (XLA inserts the all-reduces), so every statistic a
  layer computes over the batch is already a global one;
- TensorFlow: `tf.distribute.MirroredStrategy` — one copy of the step per device; Keras
  scales the loss and all-reduces the gradients. Models whose layers update state in the
  forward pass (the VectorQuantizer's EMA codebooks, MoE/MoC routing statistics) are refused
  there: keeping that state equal across replicas needs a cross-replica step mid-forward
  (`merge_call`, for a collective or an aggregated assign), which interleaves the replicas'
  threads, and Keras 3 keeps `add_loss` terms in per-layer lists those threads share, so the
  replicas' losses mix (tried with an all-gather of the VQ batch: the VQ-VAE's first-step loss
  became 0.51 instead of 0.35). Train those on JAX, where the step is one SPMD program.

`train.batch_size` is always the GLOBAL batch; each device gets `batch_size / replicas`.
The backend fork lives only here; training code enters `plan_replicas(...).scope()` around
model building, compile and fit.

Example:
    >>> plan = plan_replicas(cfg.train)     # checks the batch early, before any data is read
    >>> plan.replicas, plan.per_device_batch
    (2, 128)
    >>> with plan.scope():
    ...     model = build_language_model(cfg)
    ...     compile_for_training(model, cfg, total, warmup)
    ...     model.fit(batches)
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools

import keras

from kerasvq.common.errors import UserError


@dataclasses.dataclass
class ReplicaPlan:
    mode: str
    replicas: int
    global_batch: int
    per_device_batch: int
    devices: list

    def describe(self) -> str:
        return (f"distribution {self.mode}: {self.replicas} replica(s) × batch {self.per_device_batch} "
                f"per device = global batch {self.global_batch} ({', '.join(self.devices)})")

    def summary(self) -> dict:
        return dataclasses.asdict(self)

    @contextlib.contextmanager
    def scope(self):
        """Model building, compile and fit inside this block run data-parallel (or unchanged
        for mode "none"); the previous distribution or strategy is back in place after it."""
        if self.mode == "none":
            yield self
        elif keras.backend.backend() == "tensorflow":
            with _mirrored_strategy(tuple(self.devices)).scope():
                yield self
        elif keras.backend.backend() == "jax":
            with keras.distribution.DataParallel(devices=self.devices).scope():
                yield self
        else:
            raise UserError(f"field 'train.distribution': data_parallel needs the jax or "
                            f"tensorflow backend, not {keras.backend.backend()}")


@functools.cache
def _mirrored_strategy(devices: tuple):
    """One MirroredStrategy per device set and process: every new one would start its
    collective keys at the same number, and a second strategy's all-reduces would then
    collide with the first one's (TensorFlow "Collective instance ... expected type")."""
    import tensorflow as tf

    return tf.distribute.MirroredStrategy(list(devices))


def _visible_devices() -> list[str]:
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return [d.name for d in (tf.config.list_logical_devices("GPU")
                                 or tf.config.list_logical_devices("CPU"))]
    return keras.distribution.list_devices()


def plan_replicas(train_cfg, state_in_forward: bool = False) -> ReplicaPlan:
    """Devices, replica count and per-device batch for a `train` config section.

    `state_in_forward`: the model assigns variables in `call` (EMA codebooks, MoE routing
    statistics); refused on TensorFlow (see the module docstring).
    """
    mode, batch = train_cfg.distribution, train_cfg.batch_size
    if mode == "none":
        return ReplicaPlan(mode, 1, batch, batch, ["default"])
    if state_in_forward and keras.backend.backend() == "tensorflow":
        raise UserError("field 'train.distribution': data_parallel of a model whose layers "
                        "assign state mid-step (EMA codebooks, MoE/MoC routing) needs "
                        "KERAS_BACKEND=jax (TensorFlow's MirroredStrategy mixes the replicas' "
                        "add_loss terms then)")
    visible = _visible_devices()
    count = train_cfg.devices or len(visible)
    if count > len(visible):
        raise UserError(f"field 'train.devices' asks for {count} devices but only {len(visible)} "
                        f"are visible ({', '.join(visible)})")
    if batch % count:
        raise UserError(f"field 'train.batch_size' ({batch}) must be divisible by the replica count "
                        f"({count}): it is the global batch, split evenly over the devices")
    return ReplicaPlan(mode, count, batch, batch // count, visible[:count])
