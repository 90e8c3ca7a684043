"""Reading, splitting and locating corpora.

A corpus is a `.txt` file (one document per line), a `.jsonl` file (one JSON object with a
string `text` field per line), either one gzipped (`.txt.gz`, `.jsonl.gz`), or a folder of
such files (read recursively in sorted order; other files in it are ignored). Lines that are
not valid UTF-8 are skipped and counted, empty documents dropped.

Example:
    >>> corpus = read_documents(resolve_corpus("default"), max_docs=1000)
    >>> train, val = split_documents(corpus.documents, val_fraction=0.05, seed=0)
    >>> corpus.skipped_non_utf8
    0
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import logging
import random
import zlib
from pathlib import Path

from kerasvq.common.errors import UserError

SUFFIXES = (".txt", ".jsonl", ".txt.gz", ".jsonl.gz")


@dataclasses.dataclass
class Corpus:
    """Documents read from `files`; `skipped_non_utf8` lines could not be decoded."""

    documents: list[str]
    skipped_non_utf8: int
    files: list[Path]

    def __len__(self) -> int:
        return len(self.documents)

    def __iter__(self):
        return iter(self.documents)

    def __getitem__(self, index):
        return self.documents[index]

    @property
    def words(self) -> int:
        return sum(len(d.split()) for d in self.documents)


def _suffix(path: Path) -> str | None:
    name = path.name.lower()
    for suffix in sorted(SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return suffix
    return None


def _corpus_files(path: Path) -> list[Path]:
    if not path.exists():
        raise UserError(f"{path}: corpus not found; expected a .txt/.jsonl file (maybe .gz) "
                        "or a folder of them")
    if path.is_dir():
        return sorted(f for f in path.rglob("*") if f.is_file() and _suffix(f)
                      and not any(part.startswith(".") for part in f.relative_to(path).parts))
    if _suffix(path) is None:
        raise UserError(f"{path}: unsupported corpus file; expected one of {', '.join(SUFFIXES)}")
    return [path]


def _read_file(path: Path, documents: list[str], max_docs: int | None) -> int:
    """Appends the documents of one file; returns the number of non-UTF-8 lines skipped."""
    suffix = _suffix(path)
    is_jsonl = suffix.startswith(".jsonl")
    opener = gzip.open if suffix.endswith(".gz") else open
    skipped = 0
    try:
        with opener(path, "rb") as f:
            for line_no, raw in enumerate(f, start=1):
                if max_docs is not None and len(documents) >= max_docs:
                    break
                try:
                    line = raw.decode("utf-8-sig" if line_no == 1 else "utf-8")
                except UnicodeDecodeError:
                    skipped += 1
                    continue
                if is_jsonl:
                    if not line.strip():
                        continue
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError as e:
                        raise UserError(f"{path}:{line_no}: not valid JSON ({e.msg})") from None
                    text = record.get("text") if isinstance(record, dict) else None
                    if not isinstance(text, str):
                        raise UserError(f"{path}:{line_no}: expected a JSON object with a "
                                        "string field 'text'")
                else:
                    text = line
                text = text.strip()
                if text:
                    documents.append(text)
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise UserError(f"{path}: not a valid gzip file ({e})") from None
    return skipped


def read_documents(path: str | Path, max_docs: int | None = None) -> Corpus:
    """Reads a corpus file or folder (at most `max_docs` documents)."""
    path = Path(path).expanduser()
    if max_docs is not None and max_docs < 1:
        raise UserError(f"max_docs must be at least 1, got {max_docs}")
    files = _corpus_files(path)
    documents: list[str] = []
    skipped = 0
    read = []
    for f in files:
        if max_docs is not None and len(documents) >= max_docs:
            break
        skipped += _read_file(f, documents, max_docs)
        read.append(f)
    if not documents:
        what = "folder has no .txt/.jsonl files with" if path.is_dir() and not files else "has no"
        raise UserError(f"{path}: corpus {what} documents (non-empty UTF-8 lines)"
                        + (f"; {skipped} non-UTF-8 lines skipped" if skipped else ""))
    if skipped:
        logging.getLogger(__name__).warning(
            "%s: skipped %d lines that are not valid UTF-8", path, skipped)
    return Corpus(documents, skipped, read)


def split_documents(docs: list[str], val_fraction: float, seed: int
                    ) -> tuple[list[str], list[str]]:
    """Splits unique documents into (train, val): duplicates are removed first, so no document
    is on both sides; the split depends only on the set of documents and `seed`.

    Example:
        >>> split_documents(["a", "b", "c", "d", "a"], 0.25, seed=0)[1]
        ['c']
    """
    if not 0.0 < val_fraction < 1.0:
        raise UserError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction}")
    unique = sorted(set(docs))
    n_val = max(1, round(len(unique) * val_fraction))
    if len(unique) < 2 or n_val >= len(unique):
        raise UserError(f"corpus has {len(unique)} distinct documents: too few to keep at least "
                        f"one on each side of a {val_fraction} validation split")
    random.Random(seed).shuffle(unique)
    return unique[n_val:], unique[:n_val]


def resolve_corpus(spec: str | Path) -> Path:
    """'default' -> the cached default pt-BR corpus (built on first use); else the user path."""
    if str(spec) == "default":
        from kerasvq.data.default_corpus import (
            build_default_corpus,
            default_corpus_path,
            is_current,
        )

        path = default_corpus_path()
        if not is_current(path):
            print(f"building the default pt-BR corpus into {path} (first use; about 2 minutes: "
                  "downloads Debian docs and dante-corpora)")
            build_default_corpus(path)
        return path
    path = Path(spec).expanduser()
    if not path.exists():
        raise UserError(f"{path}: corpus not found; give 'default' or a .txt/.jsonl file "
                        "(maybe .gz) or a folder of them")
    return path
