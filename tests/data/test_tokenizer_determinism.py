"""Two tokenizer trainings on the same corpus and seed write the same file."""

import hashlib

import pytest

from kerasvq.data.tokenizer import Tokenizer


def training_lines(path, limit=3000):
    lines = [line for line in open(path, encoding="utf-8").read().splitlines() if line.strip()]
    return lines[:limit]


def file_hash(tokenizer):
    return hashlib.sha256(tokenizer.model_path.read_bytes()).hexdigest()


def test_same_corpus_and_seed_give_the_same_file_in_any_folder(ptbr_corpus, tmp_path):
    docs = training_lines(ptbr_corpus)
    first = Tokenizer.train(docs, tmp_path / "a", vocab_size=800, seed=7)
    second = Tokenizer.train(docs, tmp_path / "b" / "elsewhere", vocab_size=800, seed=7)
    assert first.sha256 == second.sha256 == file_hash(second)
    assert list((tmp_path / "a").iterdir()) == [first.model_path]  # no temporary left behind
    other_seed = Tokenizer.train(docs, tmp_path / "c", vocab_size=800, seed=8, sample_sentences=1500)
    assert other_seed.sha256 != first.sha256


def test_the_thread_count_is_not_taken_from_the_machine(ptbr_corpus, tmp_path, monkeypatch):
    # sentencepiece's result depends on its thread count; the count must not follow os.cpu_count().
    docs = training_lines(ptbr_corpus)
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    one_core = Tokenizer.train(docs, tmp_path / "one", vocab_size=800)
    monkeypatch.setattr("os.cpu_count", lambda: 64)
    many_cores = Tokenizer.train(docs, tmp_path / "many", vocab_size=800)
    assert one_core.sha256 == many_cores.sha256


def test_sample_bound_below_the_minimum_is_one_line(tmp_path):
    from kerasvq.common.errors import UserError
    from kerasvq.config.lm import DataConfig

    with pytest.raises(UserError, match="data.tokenizer_sample_sentences"):
        DataConfig(tokenizer_sample_sentences=10).validate()
