"""The training XLA flags reach XLA_FLAGS only on JAX, only before JAX starts, never over the user's."""

import os
import subprocess
import sys

import keras
import pytest

from kerasvq.training import xla_flags
from kerasvq.training.xla_flags import TRAINING_XLA_FLAGS, use_training_xla_flags


@pytest.fixture
def jax_not_started(monkeypatch):
    monkeypatch.setattr(keras.config, "backend", lambda: "jax")
    monkeypatch.setattr(xla_flags, "jax_backend_started", lambda: False)


def test_adds_the_flags_after_the_users_own(jax_not_started):
    environ = {"XLA_FLAGS": "--xla_dump_to=/tmp/dump"}
    assert use_training_xla_flags(environ) == list(TRAINING_XLA_FLAGS)
    assert environ["XLA_FLAGS"] == " ".join(["--xla_dump_to=/tmp/dump", *TRAINING_XLA_FLAGS])
    assert use_training_xla_flags(environ) == []  # idempotent


def test_a_flag_the_user_set_is_left_alone(jax_not_started):
    environ = {"XLA_FLAGS": "--xla_gpu_enable_triton_gemm=true --xla_dump_to=/tmp/dump"}
    assert use_training_xla_flags(environ) == []
    assert environ["XLA_FLAGS"] == "--xla_gpu_enable_triton_gemm=true --xla_dump_to=/tmp/dump"


def test_nothing_once_jax_has_started_or_on_other_backends(monkeypatch):
    monkeypatch.setattr(xla_flags, "jax_backend_started", lambda: True)
    monkeypatch.setattr(keras.config, "backend", lambda: "jax")
    environ = {}
    assert use_training_xla_flags(environ) == [] and environ == {}
    monkeypatch.setattr(xla_flags, "jax_backend_started", lambda: False)
    monkeypatch.setattr(keras.config, "backend", lambda: "tensorflow")
    assert use_training_xla_flags(environ) == [] and environ == {}


def test_importing_the_training_path_does_not_start_jax():
    # The flags only work if nothing imported before `train_language_model` runs touches a device.
    pytest.importorskip("jax")
    code = ("import kerasvq.cli, kerasvq.training.run, kerasvq.commands.train; "
            "from kerasvq.training.xla_flags import jax_backend_started; "
            "assert not jax_backend_started(), 'JAX started at import'")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
