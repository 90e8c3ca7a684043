"""Data-parallel training (train.distribution) on virtual CPU devices, one process per backend.

The device count has to be fixed before the backend starts, so each backend runs
tests/helpers/distribution_worker.py in a fresh interpreter: JAX with 4 host devices
(XLA_FLAGS=--xla_force_host_platform_device_count=4), TensorFlow with 2 logical CPUs.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers.configs import write_tiny_lm_config
from kerasvq.cli import main

WORKER = Path(__file__).resolve().parents[1] / "helpers" / "distribution_worker.py"


@pytest.fixture(scope="module")
def inputs(ptbr_corpus, tmp_path_factory):
    """A tiny LM config on the real corpus and a small embedding file, in a shared home (the
    tokenizer is trained once for both backends)."""
    home = tmp_path_factory.mktemp("distribution")
    config = write_tiny_lm_config(home, ptbr_corpus, data={"max_docs": 200})
    rng = np.random.default_rng(0)
    x = rng.standard_normal((608, 24)).astype("float32")  # 480 training rows: 7.5 batches of 64
    np.save(home / "x.npy", x / np.linalg.norm(x, axis=1, keepdims=True))
    return home, config


def run_worker(inputs, backend, replicas, env):
    home, config = inputs
    out = home / f"{backend}.json"
    root = str(WORKER.parents[2])  # the repository
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "KERAS_BACKEND": backend, "KERASVQ_HOME": str(home), "PYTHONPATH": path, **env}
    result = subprocess.run(
        [sys.executable, str(WORKER), str(replicas), str(config), str(home / "x.npy"), str(out)],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return json.loads(out.read_text())


def check_lm(result, replicas):
    one, many = result["lm_none"], result["lm_data_parallel"]
    assert many["distribution"]["replicas"] == replicas
    assert many["distribution"]["per_device_batch"] * replicas == many["distribution"]["global_batch"] == 16
    # Dropout is 0, so the same global batches give the same losses, float summation order
    # aside: Adam's first steps (≈ lr·sign(g)) turn last-bit gradient differences into
    # differences of order 1e-5 of the loss by the fourth step.
    np.testing.assert_allclose(many["losses"], one["losses"], rtol=1e-4)
    assert len(one["losses"]) == 4 and one["losses"][-1] < one["losses"][0]
    # Validation uses a multiple of `replicas` windows: a few windows fewer at most.
    assert abs(many["val_loss"] - one["val_loss"]) < 1e-3
    # Every variable is held whole and identical on every device (replicated).
    assert set(map(tuple, many["layout"].values())) == {(replicas, True)}
    assert set(map(tuple, one["layout"].values())) == {(1, True)}
    assert "train.batch_size" in result["uneven_error"] and f"({2 * replicas + 1})" in result["uneven_error"]
    assert f"({replicas})" in result["uneven_error"]


@pytest.mark.skipif(sys.platform == "win32", reason="XLA host devices")
def test_jax_data_parallel_matches_one_device(inputs):
    pytest.importorskip("jax")
    result = run_worker(inputs, "jax", 4, {
        "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=4"})
    check_lm(result, 4)
    one, many = result["vq_none"], result["vq_data_parallel"]
    assert many["distribution"]["replicas"] == 4 and many["distribution"]["per_device_batch"] == 16
    # The SPMD step sees the global batch: the same EMA codebook, counts and dead-code state...
    np.testing.assert_allclose(many["state"]["codebook"], one["state"]["codebook"], atol=1e-5)
    np.testing.assert_allclose(many["state"]["ema_count"], one["state"]["ema_count"], rtol=1e-5)
    assert many["state"]["steps_unused"] == one["state"]["steps_unused"]
    # ...the same codebook usage statistics, and every device holds the same copy of the state.
    for key in ("val_min_usage", "val_max_share", "val_mean_perplexity"):
        np.testing.assert_allclose(many["history"][key], one["history"][key], rtol=1e-4)
    np.testing.assert_allclose(many["history"]["loss"], one["history"]["loss"], rtol=1e-4)
    assert set(map(tuple, many["layout"].values())) == {(4, True)}


def test_tensorflow_mirrored_matches_one_device(inputs):
    result = run_worker(inputs, "tensorflow", 2, {"CUDA_VISIBLE_DEVICES": ""})
    check_lm(result, 2)
    assert "KERAS_BACKEND=jax" in result["vq_error"] and "\n" not in result["vq_error"]


def test_cli_flag_selects_data_parallel_and_checks_devices(inputs, capsys, monkeypatch):
    home, config = inputs
    monkeypatch.setenv("KERASVQ_HOME", str(home))
    assert main(["train", "--config", str(config), "--distribution", "data_parallel",
                 "--set", "train.devices=64"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "train.devices" in err and "64" in err and "\n" not in err


@pytest.mark.backend_neutral
def test_state_assigning_models_need_jax_for_data_parallel():
    import keras

    from kerasvq.config.lm import TrainConfig
    from kerasvq.common.errors import UserError
    from kerasvq.training.distribution import plan_replicas

    train = TrainConfig(batch_size=8, distribution="data_parallel", devices=1)
    assert plan_replicas(train).per_device_batch == 8
    if keras.backend.backend() == "tensorflow":
        with pytest.raises(UserError, match="KERAS_BACKEND=jax"):
            plan_replicas(train, state_in_forward=True)
    else:
        assert plan_replicas(train, state_in_forward=True).replicas == 1
    assert plan_replicas(TrainConfig(batch_size=7)).describe().startswith("distribution none: 1 replica")
