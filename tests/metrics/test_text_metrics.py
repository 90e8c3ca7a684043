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


def test_human_chunks_spread_over_all_texts():
    chunks = human_chunks(["um " * 100, "dois " * 100], 10, max_chunks=2)
    assert chunks == [" ".join(["um"] * 10), " ".join(["dois"] * 10)]
    assert human_chunks(["curto demais"], 10) == []


def test_single_samples_must_also_fall_outside_human_spread(lexicon):
    human = {"word_validity": 0.95, "mean_word_length": 5.0, "seq_rep_4": 0.0, "distinct_2": 1.0,
             "word_validity_p05": 0.80, "distinct_2_p05": 0.9, "seq_rep_4_p95": 0.05}
    sample = {"word_validity": 0.83, "mean_word_length": 5.0, "seq_rep_4": 0.0, "distinct_2": 1.0}
    assert verdict(sample, human)["label"] == "ok"  # within the spread of human chunks
    assert verdict(sample, human, single=False)["label"] == "gibberish"  # a mean 0.12 below human
