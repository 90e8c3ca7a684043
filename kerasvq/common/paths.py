"""Where kerasvq keeps caches and run outputs.

Downloads and built corpora go to the cache (`$KERASVQ_CACHE`, default
`~/.cache/kerasvq`); run outputs go to `versions/<name>/` under the project root
(`$KERASVQ_HOME`, default the current directory).

Example:
    >>> version_dir("v5-transformer")
    PosixPath('versions/v5-transformer')
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    path = Path(os.environ.get("KERASVQ_CACHE", Path.home() / ".cache" / "kerasvq"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def version_dir(name: str) -> Path:
    return Path(os.environ.get("KERASVQ_HOME", ".")) / "versions" / name
