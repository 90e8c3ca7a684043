"""Re-runs every `backend_neutral` test in a fresh process on the JAX backend.

Keras picks its backend once per process, so the JAX pass needs its own interpreter.
"""

import os
import subprocess
import sys

import keras
import pytest


@pytest.mark.skipif(keras.backend.backend() == "jax", reason="already on JAX")
def test_backend_neutral_tests_pass_on_jax():
    pytest.importorskip("jax")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-m", "backend_neutral", "-W", "ignore::DeprecationWarning",
         os.path.dirname(os.path.dirname(os.path.abspath(__file__)))],  # all of tests/
        env=env, capture_output=True, text=True, timeout=1200,
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr[-2000:]
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in summary, summary
