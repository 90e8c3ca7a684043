"""The fault table of issue 22, one test per row, on tiny runs: kills (`kill -9` of a
subprocess at a hook), damaged checkpoints, NaN losses, refused overwrites, read-only and
full disks. Each asserts the exit code, a single `error:` line naming the file or folder,
and that what the user had before is byte-identical afterwards."""

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kerasvq.cli import main
from helpers.run_helpers import CrashAtEpoch
from kerasvq.config.lm import load_lm_config
from kerasvq.training.run_paths import RunPaths
from kerasvq.training import lifecycle
from kerasvq.training.run import train_language_model

KILL_AT = Path(__file__).with_name("kill_at.py")
LM_SETS = ["--set", "train.epochs=3", "--set", "data.max_docs=200"]


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def strict(path: Path) -> dict:
    def refuse(constant):
        raise ValueError(f"{path}: bare {constant} in JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


def one_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err[-2000:]
    return lines[0]


def killed(hook: str, n: int, args: list[str]) -> subprocess.CompletedProcess:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(Path(__file__).parents[2]))
    result = subprocess.run([sys.executable, str(KILL_AT), hook, str(n), *args], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == -9, result.stderr[-2000:]
    return result


def lm_history(cfg, run="main"):
    return strict(RunPaths(cfg.name, run).history)


# -- row 1: kill -9 while the backup is written ------------------------------------------------
def test_kill_during_backup_write_resumes_from_the_last_complete_one(tiny_lm_config, capsys):
    config = tiny_lm_config()
    cfg = load_lm_config(config, ["train.epochs=3", "data.max_docs=200"])
    killed("weights", 2, ["train", "--config", str(config), *LM_SETS])  # dies writing epoch 2's
    paths = RunPaths(cfg.name, "main")
    assert [p.name for p in sorted(paths.backup.glob("epoch-*"))] == ["epoch-00001"]
    assert lm_history(cfg)["status"] == "running" and len(lm_history(cfg)["epochs"]) == 1
    assert main(["train", "--config", str(config), *LM_SETS]) == 0
    assert "resuming run 'main'" in capsys.readouterr().out
    record = lm_history(cfg)
    assert record["status"] == "finished" and [e["epoch"] for e in record["epochs"]] == [1, 2, 3]


def test_truncated_newest_backup_falls_back_to_the_previous_generation(tiny_lm_config):
    cfg = load_lm_config(tiny_lm_config(), ["train.epochs=3", "data.max_docs=200"])
    with pytest.raises(KeyboardInterrupt):
        train_language_model(cfg, "main", extra_callbacks=[CrashAtEpoch(2)], log=lambda m: None, verbose=0)
    newest = RunPaths(cfg.name, "main").backup / "epoch-00002" / "weights.weights.h5"
    newest.write_bytes(newest.read_bytes()[:1000])  # what a kill mid-write would have left
    messages = []
    train_language_model(cfg, "main", log=messages.append, verbose=0)
    assert any("epoch-00002: unreadable checkpoint" in m for m in messages)
    assert any("resuming run 'main' of tiny after epoch 1" in m for m in messages)
    assert [e["epoch"] for e in lm_history(cfg)["epochs"]] == [1, 2, 3]


# -- row 2: kill -9 of hvqvae train ---------------------------------------------------------------
def hvq_config(tmp_path, epochs=3):
    from helpers.vq_data import TINY_LEVELS, demo_data
    from kerasvq.data.features import write_features

    values, registry = demo_data(300)
    write_features(tmp_path / "demo.h5", values, registry)
    path = tmp_path / "hvq.json"
    path.write_text(json.dumps({
        "name": "hvq", "data": {"features": str(tmp_path / "demo.h5")},
        "families": {"default": {"hidden_dims": [16], "output_dim": 16}},
        "model": {"levels": TINY_LEVELS[:2]}, "train": {"epochs": epochs, "batch_size": 64}}))
    return path


def test_kill_of_hvqvae_train_resumes(kerasvq_home, capsys):
    path = hvq_config(kerasvq_home)
    killed("weights", 2, ["hvqvae", "train", "--config", str(path)])
    assert main(["hvqvae", "train", "--config", str(path), "--resume"]) == 0
    out = capsys.readouterr().out
    assert "resuming HVQ-VAE run hvq after epoch 1" in out and "trained epochs 2..3" in out
    history = strict(kerasvq_home / "versions/hvq/logs/train_hvqvae.json")
    assert history["status"] == "finished" and [e["epoch"] for e in history["epochs"]] == [1, 2, 3]


# -- row 3: NaN loss ------------------------------------------------------------------------------
def test_nan_loss_fails_the_run_names_the_step_and_saves_no_model(tiny_lm_config, capsys):
    config = tiny_lm_config()
    assert main(["train", "--config", str(config), *LM_SETS, "--set", "train.learning_rate=1e6"]) == 2
    line = one_error_line(capsys.readouterr().err)
    cfg = load_lm_config(config)
    paths = RunPaths(cfg.name, "main")
    assert str(paths.history) in line and "at step" in line and "no model was saved" in line
    record = strict(paths.history)
    assert record["status"] == "failed" and record["epochs"] == [] and not paths.model.exists()


def test_nan_in_a_later_epoch_keeps_the_last_good_checkpoint(tiny_lm_config, capsys):
    import keras

    class PoisonAtEpoch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                v = self.model.trainable_variables[0]
                v.assign(v * np.nan)

    cfg = load_lm_config(tiny_lm_config(), ["train.epochs=3", "data.max_docs=200"])
    with pytest.raises(Exception, match="epoch 2.*kept the checkpoint of epoch 1"):
        train_language_model(cfg, "main", extra_callbacks=[PoisonAtEpoch()], log=lambda m: None, verbose=0)
    record = lm_history(cfg)
    assert record["status"] == "failed" and [e["epoch"] for e in record["epochs"]] == [1]
    paths = RunPaths(cfg.name, "main")
    assert (paths.backup / "epoch-00001").is_dir() and not paths.model.exists()


# -- row 4: vqvae train over a finished run; kill during its final save --------------------------
def vq_config(tmp_path, epochs=2):
    from helpers.vq_data import small_vqvae_config

    small_vqvae_config(tmp_path, epochs=epochs)
    return tmp_path / "c.json"


def test_kill_during_the_final_vqvae_save_keeps_the_run(tmp_path, capsys):
    config, out = vq_config(tmp_path), tmp_path / "run"
    args = ["vqvae", "train", "--config", str(config), "--out", str(out)]
    killed("model", 1, args)
    model = out / "models" / "vqvae.keras"
    assert not model.exists()  # the half-written file was a temporary, never the model
    assert main(args) == 0
    assert "trained epochs 3..2" in capsys.readouterr().out  # nothing left to train: just saved
    assert strict(out / "logs" / "train_vqvae.json")["status"] == "finished"
    before = snapshot(out)
    assert main(args) == 2
    assert "already finished" in one_error_line(capsys.readouterr().err)
    assert snapshot(out) == before


def test_kill_mid_vqvae_run_resumes_at_the_last_finished_epoch(tmp_path, capsys):
    config, out = vq_config(tmp_path, epochs=3), tmp_path / "run"
    args = ["vqvae", "train", "--config", str(config), "--out", str(out)]
    killed("weights", 2, args)
    assert main(args) == 0
    assert "trained epochs 2..3" in capsys.readouterr().out


# -- row 4c: --overwrite with a config that fails -----------------------------------------------
@pytest.mark.parametrize("bad", ["train.batch_size=100000", "train.learning_rate=1e6"])
def test_overwrite_that_fails_leaves_the_old_run_byte_identical(trained_tiny_lm, monkeypatch, capsys, bad):
    config, home, run = trained_tiny_lm
    monkeypatch.setenv("KERASVQ_HOME", str(home))
    before = snapshot(home / "versions")
    assert main(["train", "--config", str(config), "--run-name", run, "--overwrite", "--set", bad]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert ("batch_size" in line) if "batch" in bad else ("at step" in line)
    assert snapshot(home / "versions") == before


# -- row 4d: kill or full disk between the backup and the history -------------------------------
def test_kill_between_backup_and_history_loses_no_epoch(tiny_lm_config):
    config = tiny_lm_config()
    cfg = load_lm_config(config, ["train.epochs=3", "data.max_docs=200"])
    killed("history", 2, ["train", "--config", str(config), *LM_SETS])
    assert len(lm_history(cfg)["epochs"]) == 1  # epoch 2 is in the backup only
    assert main(["train", "--config", str(config), *LM_SETS]) == 0
    assert [e["epoch"] for e in lm_history(cfg)["epochs"]] == [1, 2, 3]


def full_disk_at(monkeypatch, predicate):
    """`write_json` and checkpoint saves raise ENOSPC when `predicate(path)` is true."""
    write = lifecycle.write_json

    def write_json(path, data):
        if predicate(Path(path)):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return write(path, data)

    monkeypatch.setattr(lifecycle, "write_json", write_json)
    import kerasvq.training.callbacks  # HistoryWriter imports it at call time

    return write_json


def test_full_disk_at_the_history_write_is_one_line_and_resumes(tiny_lm_config, monkeypatch, capsys):
    config = tiny_lm_config()
    cfg = load_lm_config(config, ["train.epochs=3", "data.max_docs=200"])
    paths = RunPaths(cfg.name, "main")
    writes = {"n": 0}

    def second_epoch_history(path):
        if path == paths.history and (paths.backup / "epoch-00002").is_dir():
            writes["n"] += 1
            return writes["n"] == 1
        return False

    full_disk_at(monkeypatch, second_epoch_history)
    assert main(["train", "--config", str(config), *LM_SETS]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(paths.history.parent) in line and "no space left" in line and "epoch 2" in line
    monkeypatch.undo()
    monkeypatch.setenv("KERASVQ_HOME", str(config.parent))
    assert main(["train", "--config", str(config), *LM_SETS]) == 0
    assert [e["epoch"] for e in lm_history(cfg)["epochs"]] == [1, 2, 3]


# -- rows 7 and 8: read-only output folder, full disk during training --------------------------
def read_only_under(monkeypatch, root: Path):
    """Creating folders or files under `root` fails with EROFS, as on a read-only mount."""
    mkstemp, mkdir = lifecycle.tempfile.mkstemp, Path.mkdir

    def refuse(path):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    def read_only_mkstemp(*args, dir=None, **kwargs):
        if dir is not None and str(dir).startswith(str(root)):
            refuse(Path(dir) / "tmp")
        return mkstemp(*args, dir=dir, **kwargs)

    def read_only_mkdir(self, *args, **kwargs):
        if str(self).startswith(str(root)) and not self.is_dir():
            refuse(self)
        return mkdir(self, *args, **kwargs)

    monkeypatch.setattr(lifecycle.tempfile, "mkstemp", read_only_mkstemp)
    monkeypatch.setattr(Path, "mkdir", read_only_mkdir)


def test_read_only_output_folder_is_one_line_and_writes_nothing(tiny_lm_config, kerasvq_home, monkeypatch, capsys):
    config = tiny_lm_config()
    versions = kerasvq_home / "versions"
    read_only_under(monkeypatch, versions)
    before = snapshot(kerasvq_home)
    assert main(["train", "--config", str(config), *LM_SETS]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "read-only file system" in line and str(versions) in line
    assert snapshot(kerasvq_home) == before and not versions.exists()


def test_read_only_vqvae_output_is_one_line(tmp_path, monkeypatch, capsys):
    config, out = vq_config(tmp_path), tmp_path / "run"
    read_only_under(monkeypatch, out)
    before = snapshot(tmp_path)
    assert main(["vqvae", "train", "--config", str(config), "--out", str(out)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "read-only file system" in line and str(out) in line
    assert snapshot(tmp_path) == before and not out.exists()


def test_full_disk_during_a_checkpoint_keeps_the_previous_one(tiny_lm_config, monkeypatch, capsys):
    import keras

    config = tiny_lm_config()
    cfg = load_lm_config(config, ["train.epochs=3", "data.max_docs=200"])
    paths = RunPaths(cfg.name, "main")
    save_weights = keras.Model.save_weights

    def full(self, filepath, *a, **k):
        if "epoch-00002" in str(filepath):
            Path(filepath).write_bytes(b"\0" * 100)  # a partial file, then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(filepath))
        return save_weights(self, filepath, *a, **k)

    monkeypatch.setattr(keras.Model, "save_weights", full)
    assert main(["train", "--config", str(config), *LM_SETS]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "no space left on device" in line and "kept the checkpoint of epoch 1" in line
    assert str(paths.backup) in line
    assert sorted(p.name for p in paths.backup.iterdir()) == ["epoch-00001"]  # no half-written one
    assert [e["epoch"] for e in lm_history(cfg)["epochs"]] == [1]
    monkeypatch.undo()
    monkeypatch.setenv("KERASVQ_HOME", str(config.parent))
    assert main(["train", "--config", str(config), *LM_SETS]) == 0
    assert [e["epoch"] for e in lm_history(cfg)["epochs"]] == [1, 2, 3]
