"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def ptbr_corpus() -> Path:
    """A small real pt-BR corpus (one document per line, about 150k characters of
    dante-corpora news, monographs and tweets), built through the real PyPI-only corpus
    builder on first use and cached under the kerasvq cache. Needs PyPI, not apt."""
    from kerasvq.data.default_corpus import small_ptbr_corpus

    return small_ptbr_corpus()
