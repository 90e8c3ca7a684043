import json
import math
import shutil

import keras
import numpy as np
import pytest

from kerasvq.cli import main
from kerasvq.config.lm import load_lm_config
from kerasvq.data.tokenizer import Tokenizer
from kerasvq.common.errors import UserError
from kerasvq.evaluation.trained_model import load_trained_model
from kerasvq.training.run_paths import RunPaths
from kerasvq.training.run import train_language_model
from helpers.run_helpers import CrashAtEpoch

quiet = dict(log=lambda m: None, verbose=0)


def history(cfg, run):
    return json.loads(RunPaths(cfg.name, run).history.read_text())


@pytest.fixture
def shared_run(trained_tiny_lm, monkeypatch):
    config, home, run = trained_tiny_lm
    monkeypatch.setenv("KERASVQ_HOME", str(home))
    return load_lm_config(config), run


def test_end_to_end_training_on_real_text_lowers_val_loss(shared_run):
    cfg, run = shared_run
    record = history(cfg, run)
    losses = [e["val_cross_entropy"] for e in record["epochs"]]
    assert record["status"] == "finished" and len(losses) == 3
    assert losses[-1] < losses[0] < math.log(cfg.data.vocab_size)
    assert {"gap", "val_perplexity", "learning_rate", "train_tokens_per_second"} <= set(record["epochs"][0])
    paths = RunPaths(cfg.name, run)
    assert any(paths.tensorboard.rglob("events.out.tfevents*"))
    model, resolved, tokenizer = load_trained_model(paths.model)
    assert resolved["tokenizer"]["sha256"] == tokenizer.sha256 and model.seq_len == 32
    assert resolved["steps"]["tokens_per_step"] == 16 * 32


def test_finished_run_is_never_overwritten_without_flag(shared_run):
    cfg, run = shared_run
    paths = RunPaths(cfg.name, run)
    before = paths.model.read_bytes(), paths.history.read_text()
    with pytest.raises(UserError, match="already finished"):
        train_language_model(cfg, run, **quiet)
    assert (paths.model.read_bytes(), paths.history.read_text()) == before


def test_loading_with_a_different_tokenizer_is_an_error(shared_run, tmp_path, monkeypatch):
    cfg, run = shared_run
    copy = tmp_path / "versions"
    shutil.copytree(RunPaths(cfg.name, run).root.parent, copy)
    paths_model = copy / cfg.name / "models" / f"{run}.keras"
    tokenizer_file = next((copy / cfg.name / "mappings").glob("*.model"))
    docs = [line for line in open(cfg.data.corpus, encoding="utf-8")][:300]
    other = Tokenizer.train(docs, tmp_path / "other", vocab_size=512, model_type="bpe")
    shutil.copy(other.model_path, tokenizer_file)
    with pytest.raises(UserError, match="differs"):
        load_trained_model(paths_model)


class EpochRecorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


def test_interrupted_run_resumes_at_the_next_epoch(tiny_lm_config):
    cfg = load_lm_config(tiny_lm_config(), ["train.epochs=3", "data.max_docs=200"])
    with pytest.raises(KeyboardInterrupt):
        train_language_model(cfg, "resume", extra_callbacks=[CrashAtEpoch(2)], **quiet)
    assert history(cfg, "resume")["status"] == "running"
    changed = load_lm_config(tiny_lm_config(), ["train.epochs=3", "data.max_docs=200",
                                                "data.seq_len=16", "data.stride=16"])
    with pytest.raises(UserError, match="different config"):
        train_language_model(changed, "resume", **quiet)
    recorder = EpochRecorder()
    train_language_model(cfg, "resume", extra_callbacks=[recorder], **quiet)
    assert recorder.epochs == [2]
    assert [e["epoch"] for e in history(cfg, "resume")["epochs"]] == [1, 2, 3]


@pytest.mark.backend_neutral
def test_max_steps_cap_is_logged_and_recorded(tiny_lm_config):
    cfg = load_lm_config(tiny_lm_config(), ["train.max_steps=3", "data.max_docs=200"])
    messages = []
    train_language_model(cfg, "capped", log=messages.append, verbose=0)
    assert any("caps training at 3" in m for m in messages)
    record = history(cfg, "capped")
    assert record["steps"]["capped_by_max_steps"] and record["epochs"][0]["steps"] == 3


@pytest.mark.parametrize("problem", ["missing", "empty", "bad_utf8_only"])
def test_cli_bad_corpus_is_one_line_with_exit_2(tiny_lm_config, kerasvq_home, capsys, problem):
    corpus = kerasvq_home / "corpus.txt"
    if problem == "empty":
        corpus.write_text("")
    elif problem == "bad_utf8_only":
        corpus.write_bytes(b"\xff\xfe bad\n\xc3\x28\n")
    config = tiny_lm_config()
    assert main(["train", "--config", str(config), "--corpus", str(corpus)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and str(corpus) in err and "\n" not in err


def test_cli_bad_config_field_is_one_line_with_exit_2(tiny_lm_config, capsys):
    assert main(["train", "--config", str(tiny_lm_config()), "--set", "model.num_heads=5"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "num_heads" in err and "\n" not in err


@pytest.mark.backend_neutral
def test_several_steps_per_execution_train_the_same_steps(tiny_lm_config):
    # `train.steps_per_execution` only changes how often the host hands over control: the
    # same steps on the same batches give the same validation loss.
    losses = {}
    for spe in (1, 4):
        cfg = load_lm_config(tiny_lm_config(), [f"train.steps_per_execution={spe}", "train.epochs=1",
                                                "data.max_docs=200"])
        train_language_model(cfg, f"spe{spe}", **quiet)
        record = history(cfg, f"spe{spe}")
        assert record["epochs"][0]["steps"] == record["steps"]["steps_per_epoch"]
        losses[spe] = record["epochs"][0]["val_loss"]
    assert losses[4] == pytest.approx(losses[1], rel=1e-4)


def _val_loss_of_saved_model(cfg, run):
    from kerasvq.data.lm_data import load_lm_data
    from kerasvq.data.windows import WindowDataset

    model, _, _ = load_trained_model(RunPaths(cfg.name, run).model, compile=True)
    data = load_lm_data(cfg, RunPaths(cfg.name, run).mappings, log=lambda m: None)
    batches = WindowDataset(data.val_stream, cfg.data.seq_len, cfg.data.seq_len, cfg.train.batch_size,
                            drop_remainder=False)
    return model.evaluate(batches, verbose=0, return_dict=True)["loss"]


class SpoilFromEpoch(keras.callbacks.Callback):
    """Adds seeded noise to every weight at the start of each epoch from `epoch` on: later
    epochs get worse, so the best epoch comes before them (a deterministic stand-in for
    overfitting)."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch >= self.epoch:
            rng = np.random.default_rng(epoch)
            for v in self.model.trainable_variables:
                v.assign(v + rng.normal(0, 0.3, v.shape).astype("float32"))


def test_resumed_run_reproduces_the_uninterrupted_one(tiny_lm_config):
    # Epochs 3 on are spoiled: the best epoch (2) comes before the kill (after epoch 3), so
    # the best value, the best weights and the patience counter must all survive the resume.
    sets = ["train.epochs=6", "data.max_docs=200", "train.early_stopping_patience=2"]
    cfg = load_lm_config(tiny_lm_config(), sets)
    train_language_model(cfg, "whole", extra_callbacks=[SpoilFromEpoch(2)], **quiet)
    with pytest.raises(KeyboardInterrupt):
        train_language_model(cfg, "killed", extra_callbacks=[CrashAtEpoch(3), SpoilFromEpoch(2)], **quiet)
    train_language_model(cfg, "killed", extra_callbacks=[SpoilFromEpoch(2)], **quiet)
    whole, killed = history(cfg, "whole"), history(cfg, "killed")
    keys = ("epoch", "loss", "val_loss", "learning_rate")
    assert [e[k] for e in killed["epochs"] for k in keys] == pytest.approx(
        [e[k] for e in whole["epochs"] for k in keys], rel=1e-5)
    assert whole["best_epoch"] == killed["best_epoch"] == 2 and len(whole["epochs"]) == 4
    best = next(e for e in killed["epochs"] if e["epoch"] == killed["best_epoch"])
    assert _val_loss_of_saved_model(cfg, "killed") == pytest.approx(best["val_loss"], rel=1e-4)


def test_time_budget_stops_training_and_logs_progress(tiny_lm_config):
    from kerasvq.training.callbacks import WallClockBudget

    cfg = load_lm_config(tiny_lm_config(), ["train.epochs=200", "data.max_docs=200"])
    messages = []
    budget = WallClockBudget(0.05, total_steps=10_000, log=messages.append, every_seconds=0.5)
    best = train_language_model(cfg, "budget", log=lambda m: None, verbose=0, extra_callbacks=[budget],
                                val_windows=8)
    record = history(cfg, "budget")
    assert record["status"] == "finished" and budget.stopped_at is not None
    assert len(record["epochs"]) < 200 and best["epoch"] <= len(record["epochs"])
    assert any("time budget of 0.1 min reached" in m for m in messages)
    assert any("ETA" in m for m in messages)
    assert record["budget"] == {"minutes": None, "val_windows": 8}
