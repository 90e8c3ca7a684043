"""English sentences from Debian's English documentation, for embedding and VQ evaluation.

Fetches `debian-handbook` and `debian-reference-en` with `apt-get download` into the
kerasvq cache (or uses .debs the user points at), extracts the English HTML, and optionally
man pages, strips markup, splits into sentences, filters fragments and code, and dedupes.

Example:
    >>> sentences = build_english_sentences(max_sentences=30000)
    >>> len(sentences) >= 20000
    True
"""

from __future__ import annotations

import gzip
import random
import html.parser
import re
import subprocess
import tempfile
from pathlib import Path

from kerasvq.common.errors import UserError
from kerasvq.common.paths import cache_dir

DEBIAN_PACKAGES = ("debian-handbook", "debian-reference-en")
_SKIP_TAGS = {"script", "style", "pre", "code", "head", "title", "kbd", "samp", "table"}
_BLOCK_TAGS = {"p", "div", "li", "dd", "dt", "h1", "h2", "h3", "h4", "h5", "td", "br", "tr", "blockquote"}
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")
_WORD = re.compile(r"[A-Za-z]+")


class _TextExtractor(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = []
        self._current: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in _SKIP_TAGS:
            self._skip += 1
        if tag in _BLOCK_TAGS:
            self._flush()

    def handle_endtag(self, tag):
        if tag in _SKIP_TAGS and self._skip:
            self._skip -= 1
        if tag in _BLOCK_TAGS:
            self._flush()

    def handle_data(self, data):
        if not self._skip:
            self._current.append(data)

    def _flush(self):
        text = " ".join("".join(self._current).split())
        if text:
            self.blocks.append(text)
        self._current = []

    def close(self):
        super().close()
        self._flush()


def html_blocks(text: str) -> list[str]:
    """Paragraph-like text blocks of an HTML page, without code, tables or scripts."""
    parser = _TextExtractor()
    parser.feed(text)
    parser.close()
    return parser.blocks


def roff_blocks(text: str) -> list[str]:
    """Paragraphs of a man page's roff source: requests dropped, font escapes removed."""
    blocks, current = [], []
    for line in text.splitlines():
        if line.startswith((".", "'")):
            if current:
                blocks.append(" ".join(current))
                current = []
            continue
        line = re.sub(r"\\f[0-9BIRP]|\\f\(..|\\\(..|\\[&|^-]|\\[*]\(..|\\[*].", "", line)
        line = line.replace("\\-", "-").replace("\\e", "\\").strip()
        if line:
            current.append(line)
        elif current:
            blocks.append(" ".join(current))
            current = []
    if current:
        blocks.append(" ".join(current))
    return blocks


def is_prose(sentence: str) -> bool:
    """Keeps sentences that read like English prose, not code, paths or fragments."""
    if not 30 <= len(sentence) <= 300 or sentence[-1] not in ".!?":
        return False
    words = _WORD.findall(sentence)
    if len(words) < 5:
        return False
    letters = sum(len(w) for w in words)
    if letters < 0.6 * len(sentence):
        return False
    return not re.search(r"[{}<>$=|]|/\w+/|\w+\(\)", sentence)


def split_sentences(blocks) -> list[str]:
    out = []
    for block in blocks:
        for s in _SENTENCE_END.split(block):
            s = s.strip()
            if is_prose(s):
                out.append(s)
    return out


def fetch_deb(package: str, into: Path) -> Path:
    """Downloads `package`'s .deb with `apt-get download` into `into`, once."""
    into.mkdir(parents=True, exist_ok=True)
    found = sorted(into.glob(f"{package}_*.deb"))
    if found:
        return found[-1]
    try:
        subprocess.run(["apt-get", "download", package], cwd=into, check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as e:
        raise UserError(
            f"apt-get download {package}: failed ({e}); run 'apt-get update' or pass --deb-dir with the .deb"
        ) from None
    return sorted(into.glob(f"{package}_*.deb"))[-1]


def _extract(deb: Path, into: Path) -> Path:
    out = into / deb.stem
    if not out.exists():
        into.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=into))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp)], check=True)
        tmp.rename(out)
    return out


def debian_doc_blocks(deb_dir: Path | None = None) -> list[str]:
    """Text blocks of the English Debian handbook and Debian reference."""
    work = cache_dir() / "debs"
    blocks = []
    for package in DEBIAN_PACKAGES:
        deb = None
        if deb_dir is not None:
            found = sorted(Path(deb_dir).glob(f"{package}_*.deb"))
            deb = found[-1] if found else None
        root = _extract(deb or fetch_deb(package, work), work)
        pages = sorted(root.glob("usr/share/doc/debian-handbook/html/en-US/*.html"))
        pages += sorted(root.glob("usr/share/debian-reference/*.en.html"))
        for page in pages:
            blocks += html_blocks(page.read_text(encoding="utf-8", errors="replace"))
    return blocks


def man_page_sentences(man_dir: Path = Path("/usr/share/man"), per_page: int = 15) -> list[str]:
    """Sentences of the English man pages under `man_dir` (sections 1-8), at most `per_page`
    from each page so that families of near-identical pages do not dominate."""
    out = []
    files = sorted(p for p in man_dir.glob("man[1-8]/*") if p.is_file() and not p.is_symlink())
    for path in files:
        try:
            raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        except (OSError, gzip.BadGzipFile):
            continue
        out += split_sentences(roff_blocks(raw.decode("utf-8", errors="replace")))[:per_page]
    return out


def build_english_sentences(max_sentences: int | None = None, deb_dir=None, man_pages: bool = True) -> list[str]:
    """Deduplicated English prose sentences: Debian docs first, then man pages."""
    seen, out = set(), []
    sources = [lambda: split_sentences(debian_doc_blocks(deb_dir))]
    if man_pages:
        # a seeded shuffle spreads a capped sample over all pages instead of the first names
        sources.append(lambda: random.Random(0).sample(man_page_sentences(), k=len(man_page_sentences())))
    for source in sources:
        for s in source():
            key = s.lower()
            if key not in seen:
                seen.add(key)
                out.append(s)
        if max_sentences is not None and len(out) >= max_sentences:
            break
    return out[:max_sentences]
