"""A model mixin that keeps Keras's per-step JAX training state out of attribute tracking.

Keras's JAX `fit` stores the new value of every variable in `model._jax_state` after each
execution (one step, or `steps_per_execution` steps). `Layer.__setattr__` then walks those
arrays, about 170 for v5 with its optimizer, looking for layers and variables to track; none
of them is one. That walk is host time spent while the GPU waits, a large share of a small
v5 step (docs/performance.md). The attribute is plain data
that Keras only reads back in `jax_state_sync`, so it is stored as it is.

Example:
    >>> class MyModel(UntrackedFitState, keras.Model): ...
"""

FIT_STATE_ATTRIBUTE = "_jax_state"


class UntrackedFitState:
    """Mix in before `keras.Model`: `model._jax_state` is assigned without tracking."""

    def __setattr__(self, name, value):
        if name == FIT_STATE_ATTRIBUTE:
            object.__setattr__(self, name, value)
            return
        super().__setattr__(name, value)
