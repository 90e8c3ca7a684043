"""A Portuguese word list and a word tokenizer, for "share of generated words that exist".

The list is pyspellchecker's Portuguese frequency list (≈417k forms), joined with Debian's
`wbrazilian` (/usr/share/dict/brazilian, ≈275k inflected forms and place names) when that
file is installed or `fetch_wbrazilian()` copied it into the kerasvq cache. Everything is
lowercased. Measured word validity (pyspellchecker alone / with wbrazilian): porttinari news
0.947 / 0.958, petrogold academic 0.917 / 0.932, danteshots tweets 0.940 / 0.951, random
letter strings 0.017 / 0.019.

Tokenisation (`words`) keeps only what a reader would call a word: runs of letters
(accented letters included), joined by inner hyphens or apostrophes ("guarda-chuva",
"programem-se", "d'água"). URLs, e-mail addresses, @mentions, #hashtags and any token
containing a digit are dropped, so numbers and links never count for or against a model.

Example:
    >>> lex = load_lexicon()
    >>> words("O guarda-chuva custa R$ 20,00 em https://x.com.")
    ['o', 'guarda-chuva', 'custa', 'r', 'em']
    >>> lex.is_word("guarda-chuva"), lex.is_word("xqzt")
    (True, False)
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from kerasvq.common.errors import UserError
from kerasvq.common.paths import cache_dir

SYSTEM_WORDLIST = Path("/usr/share/dict/brazilian")

_DROP = re.compile(r"(?:https?://|www\.)\S+|\S+@\S+\.\S+|[@#]\w+")
# A word: letters, optionally joined by single inner hyphens/apostrophes. Tokens glued to a
# digit ("20kg", "2a") are matched as a whole by the second branch and discarded.
_TOKEN = re.compile(r"[^\W\d_]+(?:[-'’][^\W\d_]+)*|\w*\d\w*")


def words(text: str) -> list[str]:
    """Lowercased word tokens of `text` (see the module docstring for what counts)."""
    text = _DROP.sub(" ", text)
    return [
        t.lower().replace("’", "'")
        for t in _TOKEN.findall(text)
        if not any(c.isdigit() for c in t) and "_" not in t
    ]


class Lexicon:
    """A set of lowercase Portuguese word forms.

    A hyphenated or apostrophe-joined token counts as a word when the whole form is listed or
    every part is (pronoun clitics "fala-se", "dá-lhe" are rarely listed whole).
    """

    def __init__(self, forms, sources=()):
        self.forms = frozenset(forms)
        self.sources = tuple(sources)

    def __len__(self):
        return len(self.forms)

    def is_word(self, token: str) -> bool:
        token = token.lower()
        if token in self.forms:
            return True
        parts = re.split(r"[-']", token)
        return len(parts) > 1 and all(p in self.forms for p in parts if p)

    def known_fraction(self, tokens: list[str]) -> float:
        """Share of `tokens` that are words; NaN for an empty list."""
        if not tokens:
            return float("nan")
        return sum(self.is_word(t) for t in tokens) / len(tokens)


def _read_wordlist(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8", errors="replace")
    return {line.strip().lower() for line in text.splitlines() if line.strip()}


def cached_wordlist() -> Path:
    return cache_dir() / "wordlists" / "brazilian"


def fetch_wbrazilian(log=print) -> Path | None:
    """Copies Debian's `wbrazilian` list into the kerasvq cache (`apt-get download`, no
    install); returns its path, or None (with a logged reason) where apt is unavailable."""
    from kerasvq.data.sources.debian import apt_download, cached_deb

    target = cached_wordlist()
    if target.is_file():
        return target
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        log("wbrazilian: apt-get or dpkg-deb not found; using pyspellchecker's list alone")
        return None
    deb_dir = cache_dir() / "debian" / "debs"
    deb_dir.mkdir(parents=True, exist_ok=True)
    deb = cached_deb(deb_dir, "wbrazilian")
    if deb is None:
        error = apt_download("wbrazilian", deb_dir)
        if error:
            log(f"wbrazilian: {error}; using pyspellchecker's list alone")
            return None
        deb = cached_deb(deb_dir, "wbrazilian")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True, capture_output=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(tmp) / "usr/share/dict/brazilian", target)
    return target


def _wordlist_paths(extra_paths=()) -> list[Path]:
    candidates = [SYSTEM_WORDLIST, cached_wordlist()]
    found = [p for p in candidates if p.is_file()]
    for p in map(Path, extra_paths):
        if not p.is_file():
            raise UserError(f"{p}: word list not found; expected a text file with one word per line")
        found.append(p)
    return found


@functools.lru_cache(maxsize=4)
def load_lexicon(include_system: bool = True, extra_paths: tuple[str, ...] = ()) -> Lexicon:
    """The pyspellchecker Portuguese list, plus `wbrazilian` and `extra_paths` when given.

    Cached per argument set; loading takes about a second.
    """
    try:
        from spellchecker import SpellChecker
    except ImportError as err:
        raise UserError(
            "pyspellchecker is not installed; `pip install pyspellchecker` (the 'analysis' extra) "
            "to measure the share of real Portuguese words"
        ) from err
    forms = {w.lower() for w in SpellChecker(language="pt").word_frequency.dictionary}
    sources = ["pyspellchecker:pt"]
    paths = _wordlist_paths(extra_paths) if include_system else [Path(p) for p in extra_paths]
    for path in paths:
        forms |= _read_wordlist(path)
        sources.append(str(path))
    return Lexicon(forms, sources)
