import math
import random

import pytest

from kerasvq.metrics.lexicon import Lexicon, load_lexicon, words
from kerasvq.metrics.text import (
    aggregate_metrics,
    distinct_n,
    human_baseline,
    human_chunks,
    ngram_tokens,
    seq_rep_n,
    text_metrics,
    verdict,
)

PROSE = (
    "O governo federal anunciou nesta segunda-feira um novo plano para ampliar o acesso "
    "das famílias ao saneamento básico. Segundo o ministério, as obras devem começar no "
    "próximo ano e atender cidades pequenas do interior, onde a falta de água tratada "
    "ainda provoca doenças. Os prefeitos pediram mais recursos e prazos realistas, "
    "porque muitas administrações não têm equipes técnicas para preparar os projetos."
)


@pytest.fixture(scope="module")
def lexicon():
    return load_lexicon()


def _random_letters(n_words, seed=0):
    rng = random.Random(seed)
    return " ".join(
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9)))
        for _ in range(n_words)
    )


def test_words_handles_accents_hyphens_numbers_and_links():
    text = "Ação! O guarda-chuva custa R$ 20,00 em https://x.com/a; fala-se d’água, 3a vez @ana #tag."
    assert words(text) == ["ação", "o", "guarda-chuva", "custa", "r", "em", "fala-se", "d'água", "vez"]


def test_lexicon_parts_of_hyphenated_words():
    lex = Lexicon({"fala", "se", "casa"})
    assert lex.is_word("fala-se") and lex.is_word("Casa")
    assert not lex.is_word("fala-xq")
    assert math.isnan(lex.known_fraction([]))


def test_dictionary_prose_is_valid_and_random_letters_are_not(lexicon):
    assert len(lexicon) > 400_000
    assert text_metrics(PROSE, lexicon)["word_validity"] > 0.95
    assert text_metrics(_random_letters(200), lexicon)["word_validity"] < 0.1


def test_repetition_metrics():
    looped = " ".join(["o mercado subiu hoje de novo"] * 10)
    toks = ngram_tokens(looped)
    assert seq_rep_n(toks, 4) > 0.8
    assert seq_rep_n(ngram_tokens(PROSE), 4) == 0.0
    assert distinct_n([toks], 1) == pytest.approx(6 / 60)
    assert distinct_n([["a", "b"], ["a", "b"]], 2) == 0.5
    assert math.isnan(seq_rep_n(["a", "b"], 4))


def test_human_chunks_and_aggregates(lexicon):
    chunks = human_chunks([PROSE, PROSE], 10, max_chunks=5)
    assert len(chunks) == 5 and all(len(c.split()) == 10 for c in chunks)
    agg = aggregate_metrics([PROSE, _random_letters(50)], lexicon)
    assert agg["num_texts"] == 2 and 0.4 < agg["word_validity"] < 0.6
    assert agg["corpus_distinct_1"] <= 1.0


def test_verdict_against_human_baseline(lexicon):
    human = human_baseline([PROSE] * 3, lexicon, words_per_chunk=30)
    assert verdict(text_metrics(PROSE, lexicon), human)["label"] == "ok"
    looped = " ".join(["o mercado subiu hoje de novo"] * 10)
    assert verdict(text_metrics(looped, lexicon), human)["label"] == "repetitive"
    bad = verdict(text_metrics(_random_letters(60), lexicon), human)
    assert bad["label"] == "gibberish" and "word validity" in bad["reasons"][0]
    assert verdict(text_metrics(_random_letters(10) + " " + _random_letters(10), lexicon), human)["label"] == "gibberish+repetitive"
    assert verdict(text_metrics("", lexicon), human)["label"] == "gibberish"
