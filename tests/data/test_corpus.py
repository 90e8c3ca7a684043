"""Reading user corpora (.txt, .jsonl, .gz, folders), splitting and resolving them."""

from __future__ import annotations

import gzip
import json

import pytest

from kerasvq.data.corpus import read_documents, resolve_corpus, split_documents
from kerasvq.common.errors import UserError


def _write(path, text: str | bytes, gz: bool = False):
    data = text.encode("utf-8") if isinstance(text, str) else text
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.mark.parametrize("gz", [False, True])
def test_reads_txt_one_document_per_line(tmp_path, gz):
    name = "c.txt.gz" if gz else "c.txt"
    text = "\ufeffPrimeiro documento.\n\n   \r\nSegundo documento.  \r\n"
    path = _write(tmp_path / name, text, gz)
    corpus = read_documents(path)
    assert corpus.documents == ["Primeiro documento.", "Segundo documento."]
    assert corpus.skipped_non_utf8 == 0 and corpus.files == [path] and corpus.words == 4


@pytest.mark.parametrize("gz", [False, True])
def test_reads_jsonl_text_field(tmp_path, gz):
    lines = [json.dumps({"text": "Olá mundo", "id": 1}), "", json.dumps({"text": "  "}),
             json.dumps({"text": "Tchau"}, ensure_ascii=False)]
    path = _write(tmp_path / ("c.jsonl.gz" if gz else "c.jsonl"), "\n".join(lines) + "\n", gz)
    assert read_documents(path).documents == ["Olá mundo", "Tchau"]


def test_reads_folder_recursively_in_sorted_order(tmp_path):
    _write(tmp_path / "b.txt", "de b\n")
    (tmp_path / "sub").mkdir()
    _write(tmp_path / "sub" / "a.jsonl.gz", json.dumps({"text": "de sub/a"}) + "\n", gz=True)
    _write(tmp_path / "a.txt", "de a\n")
    _write(tmp_path / "notes.md", "ignorado\n")
    _write(tmp_path / ".hidden.txt", "oculto\n")
    corpus = read_documents(tmp_path)
    assert corpus.documents == ["de a", "de b", "de sub/a"]
    assert [f.name for f in corpus.files] == ["a.txt", "b.txt", "a.jsonl.gz"]


def test_non_utf8_lines_are_skipped_and_counted(tmp_path):
    path = _write(tmp_path / "c.txt", "bom\n".encode() + b"ruim \xe9 latin-1\n" + b"\xff\xfe\n"
                  + "também bom\n".encode())
    corpus = read_documents(path)
    assert corpus.documents == ["bom", "também bom"]
    assert corpus.skipped_non_utf8 == 2


def test_max_docs_stops_early_across_files(tmp_path):
    _write(tmp_path / "a.txt", "1\n2\n3\n")
    _write(tmp_path / "b.txt", "4\n")
    corpus = read_documents(tmp_path, max_docs=2)
    assert corpus.documents == ["1", "2"] and len(corpus.files) == 1
    assert len(read_documents(tmp_path, max_docs=10)) == 4


@pytest.mark.parametrize("content, message", [
    ('{"text": "ok"}\n{"texto": "sem campo"}\n', r"c\.jsonl:2: expected a JSON object"),
    ('{"text": 3}\n', r"c\.jsonl:1: expected a JSON object with a string field 'text'"),
    ('{"text": "ok"}\nnão é json\n', r"c\.jsonl:2: not valid JSON"),
])
def test_jsonl_errors_name_file_and_line(tmp_path, content, message):
    path = _write(tmp_path / "c.jsonl", content)
    with pytest.raises(UserError, match=message):
        read_documents(path)


def test_user_errors_are_one_line_and_name_the_path(tmp_path):
    cases = [
        (tmp_path / "missing.txt", "corpus not found"),
        (_write(tmp_path / "empty.txt", "\n  \n"), "has no documents"),
        (_write(tmp_path / "only_bad.txt", b"\xff\n"), "1 non-UTF-8 lines skipped"),
        (_write(tmp_path / "c.csv", "a,b\n"), "unsupported corpus file"),
        (_write(tmp_path / "bad.txt.gz", b"not gzip at all"), "not a valid gzip file"),
    ]
    (tmp_path / "empty_dir").mkdir()
    cases.append((tmp_path / "empty_dir", "folder has no .txt/.jsonl files"))
    for path, message in cases:
        with pytest.raises(UserError, match=message) as info:
            read_documents(path)
        assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_split_has_no_leakage_and_is_deterministic():
    docs = [f"documento {i % 150}" for i in range(400)]  # many duplicates
    train, val = split_documents(docs, val_fraction=0.1, seed=7)
    assert not set(train) & set(val)
    assert sorted(train + val) == sorted(set(docs))
    assert len(val) == 15
    assert split_documents(list(reversed(docs)), 0.1, seed=7) == (train, val)
    assert split_documents(docs, 0.1, seed=8) != (train, val)


def test_split_keeps_one_document_per_side_or_fails():
    train, val = split_documents(["a", "b"], val_fraction=0.01, seed=0)
    assert len(train) == len(val) == 1
    for docs, fraction in [(["a", "a", "a"], 0.5), (["a", "b"], 0.9), (["a", "b"], 0.0)]:
        with pytest.raises(UserError):
            split_documents(docs, fraction, seed=0)


def test_resolve_corpus_user_path(tmp_path):
    path = _write(tmp_path / "c.txt", "x\n")
    assert resolve_corpus(str(path)) == path
    with pytest.raises(UserError, match="nope.txt: corpus not found"):
        resolve_corpus(str(tmp_path / "nope.txt"))


def test_corpus_stats_command(tmp_path, capsys):
    from kerasvq.cli import main

    path = _write(tmp_path / "c.txt", "um dois três\n".encode() + b"\xff\n" + "quatro\n".encode())
    assert main(["corpus", "stats", str(path)]) == 0
    out = capsys.readouterr().out
    assert "documents:              2" in out and "words:                  4" in out
    assert "non-UTF-8 lines skipped: 1" in out
    assert main(["corpus", "stats", str(tmp_path / "none.txt")]) == 2


def test_resolve_default_uses_a_current_cached_corpus(tmp_path, monkeypatch, capsys):
    from kerasvq.data.default_corpus import BUILDER_VERSION, default_corpus_path, stats_path

    monkeypatch.setenv("KERASVQ_CACHE", str(tmp_path))
    path = default_corpus_path()
    path.parent.mkdir(parents=True)
    path.write_text("um documento\n", encoding="utf-8")
    stats_path(path).write_text(json.dumps({"builder_version": BUILDER_VERSION}))
    assert resolve_corpus("default") == path
    assert capsys.readouterr().out == ""
