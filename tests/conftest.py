"""Shared fixtures: a small real pt-BR corpus and tiny language-model configs."""

import pytest

from helpers.configs import write_tiny_lm_config


@pytest.fixture(scope="session")
def ptbr_corpus():
    """A small real pt-BR corpus (one document per line, about 150k characters of
    dante-corpora news, monographs and tweets), built through the real PyPI-only corpus
    builder on first use and cached under the kerasvq cache. Needs PyPI, not apt."""
    from kerasvq.data.default_corpus import small_ptbr_corpus

    return small_ptbr_corpus(log=lambda message: None)


@pytest.fixture
def kerasvq_home(tmp_path, monkeypatch):
    """Run outputs (versions/<name>/...) go to a fresh temporary folder."""
    monkeypatch.setenv("KERASVQ_HOME", str(tmp_path))
    return tmp_path


@pytest.fixture
def tiny_lm_config(ptbr_corpus, kerasvq_home):
    """A factory `make(name=..., data={...}, model={...}, train={...}) -> config path`."""
    return lambda **sections: write_tiny_lm_config(kerasvq_home, ptbr_corpus, **sections)


@pytest.fixture(scope="session")
def trained_tiny_lm(ptbr_corpus, tmp_path_factory):
    """One tiny Transformer LM trained for 3 epochs on the real corpus, shared by the tests
    that only read a finished run. Returns (config path, versions root, run name)."""
    from kerasvq.config.lm import load_lm_config
    from kerasvq.training.run import train_language_model

    home = tmp_path_factory.mktemp("trained")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KERASVQ_HOME", str(home))
        config = write_tiny_lm_config(home, ptbr_corpus, train={"epochs": 3})
        train_language_model(load_lm_config(config), "shared", log=lambda m: None, verbose=0)
    return config, home, "shared"
