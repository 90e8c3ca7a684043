"""XLA options that make the training step faster on a GPU under JAX.

XLA reads the `XLA_FLAGS` environment variable once, when JAX first touches a device, so
`use_training_xla_flags` has to run before any JAX computation: `train_language_model` calls
it first thing, and the training benches call it before building a model. A flag whose name
is already in `XLA_FLAGS` is left as the user set it, which is also how to opt out:
`XLA_FLAGS=--xla_gpu_enable_triton_gemm=true kerasvq train ...`.

`--xla_gpu_enable_triton_gemm=false` sends every matmul to cuBLAS instead of letting XLA
fuse some of them, with their neighbouring elementwise ops, into Triton kernels; the v5
training step was faster with it and gave the same losses (docs/performance.md). Generation
does not use it: the decode step's small matmuls are slower in cuBLAS.

Example:
    >>> use_training_xla_flags()          # before the first JAX computation
    ['--xla_gpu_enable_triton_gemm=false']
"""

from __future__ import annotations

import os
import re

import keras

TRAINING_XLA_FLAGS = ("--xla_gpu_enable_triton_gemm=false",)


def jax_backend_started() -> bool:
    """Whether JAX has started its backends (and so has read XLA_FLAGS already)."""
    try:
        from jax._src import xla_bridge
    except ImportError:  # a JAX without this private module: assume it is too late
        return True
    return xla_bridge.backends_are_initialized()


def use_training_xla_flags(environ=None) -> list[str]:
    """Adds each of `TRAINING_XLA_FLAGS` whose name `XLA_FLAGS` does not set yet; returns the
    flags added. Does nothing on other backends, or once JAX has started (it would not read
    them any more)."""
    environ = os.environ if environ is None else environ
    if keras.config.backend() != "jax":
        return []
    current = environ.get("XLA_FLAGS", "")
    missing = [flag for flag in TRAINING_XLA_FLAGS
               if not re.search(rf"{re.escape(flag.split('=')[0])}(=|\s|$)", current)]
    if not missing or jax_backend_started():
        return []
    environ["XLA_FLAGS"] = " ".join([current, *missing]).strip()
    return missing
