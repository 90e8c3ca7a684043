"""Sources of the default pt-BR corpus: Debian documentation packages and PyPI `dante-corpora`.

Each source module returns `Source`s: a name and its text as groups of units (a group is one
help page, man page, news article or tweet; a unit is a paragraph, sentence or tweet). The
builder in `kerasvq.data.default_corpus` filters and deduplicates units, then packs each
group into documents.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class Source:
    """Text of one source. `min_words`: shorter units are dropped as boilerplate."""

    name: str
    groups: list[list[str]]
    min_words: int = 5
