"""Degeneration metrics for generated text, judged against held-out human text.

Perplexity cannot tell fluent text from gibberish (the old v5 had the better perplexity and
wrote broken words), so samples are also scored on the surface:

- `distinct_n`: unique n-grams / all n-grams (Li et al., 2016). Low = the same phrases again.
- `seq_rep_n`: 1 − unique / all n-grams inside one sequence (Welleck et al., 2019). A sample
  that loops a phrase scores near 1; human prose of ~100 words scores ≈ 0.0–0.02 at n = 4.
- `word_validity`: share of word tokens found in a Portuguese word list (`lexicon`).
  Human pt-BR news ≈ 0.95, random letter strings ≈ 0.02.
- `mean_word_length`: characters per word token. Glued or broken subword pieces shift it.

All of them depend on text length and genre, so they mean something only next to the same
numbers on human text of the same length from the same corpus: `human_baseline` cuts the
validation text into chunks as long as the samples, and `verdict` compares against it.

Example:
    >>> m = text_metrics("a casa a casa a casa a casa a casa a casa", lexicon)
    >>> m["seq_rep_4"] > 0.5
    True
"""

from __future__ import annotations

import math
import re

import numpy as np

from kerasvq.metrics.lexicon import Lexicon, words

METRIC_NAMES = ("distinct_1", "distinct_2", "distinct_3", "seq_rep_4", "word_validity", "mean_word_length", "num_words")

# Thresholds of `verdict`, relative to the human baseline (see its docstring).
GIBBERISH_VALIDITY_DROP = 0.10
GIBBERISH_SOFT_VALIDITY_DROP = 0.05
GIBBERISH_WORD_LENGTH_RATIO = 0.25
REPETITION_SEQ_REP_RISE = 0.20
REPETITION_DISTINCT_2_RATIO = 0.6

_NGRAM_TOKEN = re.compile(r"\w+(?:[-'’]\w+)*")


def ngram_tokens(text: str) -> list[str]:
    """Lowercased tokens for n-gram statistics: words and numbers, punctuation dropped."""
    return [t.lower() for t in _NGRAM_TOKEN.findall(text)]


def _ngrams(tokens, n):
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(token_lists: list[list[str]], n: int) -> float:
    """Unique n-grams over all n-grams, pooled over `token_lists`; NaN when there are none."""
    grams = [g for tokens in token_lists for g in _ngrams(tokens, n)]
    return len(set(grams)) / len(grams) if grams else float("nan")


def seq_rep_n(tokens: list[str], n: int = 4) -> float:
    """1 − unique/all n-grams of ONE sequence; NaN when it has fewer than n tokens."""
    grams = _ngrams(tokens, n)
    return 1.0 - len(set(grams)) / len(grams) if grams else float("nan")


def mean_word_length(word_tokens: list[str]) -> float:
    return float(np.mean([len(w) for w in word_tokens])) if word_tokens else float("nan")


def text_metrics(text: str, lexicon: Lexicon) -> dict:
    """Every metric of `METRIC_NAMES` for one text."""
    toks = ngram_tokens(text)
    wtoks = words(text)
    return {
        "distinct_1": distinct_n([toks], 1),
        "distinct_2": distinct_n([toks], 2),
        "distinct_3": distinct_n([toks], 3),
        "seq_rep_4": seq_rep_n(toks, 4),
        "word_validity": lexicon.known_fraction(wtoks),
        "mean_word_length": mean_word_length(wtoks),
        "num_words": len(wtoks),
    }


def _nanmean(values):
    values = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(values)) if values else float("nan")


def aggregate_metrics(texts: list[str], lexicon: Lexicon) -> dict:
    """Means of the per-text metrics over `texts` (each text weighs the same), plus
    `corpus_distinct_{1,2,3}`: distinct-n pooled over all texts (diversity across samples)."""
    per_text = [text_metrics(t, lexicon) for t in texts]
    out = {name: _nanmean([m[name] for m in per_text]) for name in METRIC_NAMES}
    token_lists = [ngram_tokens(t) for t in texts]
    for n in (1, 2, 3):
        out[f"corpus_distinct_{n}"] = distinct_n(token_lists, n)
    out["num_texts"] = len(texts)
    return out


def human_chunks(texts: list[str], words_per_chunk: int, max_chunks: int = 200) -> list[str]:
    """`max_chunks` chunks of `words_per_chunk` whitespace words, spread evenly over `texts`
    (documents concatenated in order; corpora are often grouped by source, so the first
    chunks alone would describe one genre), so human text is scored at sample length."""
    if words_per_chunk < 1:
        raise ValueError("words_per_chunk must be at least 1")
    all_words = [w for text in texts for w in text.split()]
    count = len(all_words) // words_per_chunk
    picks = np.unique(np.linspace(0, count - 1, min(count, max_chunks)).round().astype(int)) if count else []
    return [" ".join(all_words[i * words_per_chunk : (i + 1) * words_per_chunk]) for i in picks]


def human_baseline(texts: list[str], lexicon: Lexicon, words_per_chunk: int, max_chunks: int = 200) -> dict:
    """`aggregate_metrics` of human text cut to the samples' length (see `human_chunks`), plus
    the spread of single chunks: `word_validity_p05`, `distinct_2_p05` (5th percentiles) and
    `seq_rep_4_p95` (95th), which `verdict` uses to judge single samples."""
    chunks = human_chunks(texts, words_per_chunk, max_chunks)
    if not chunks:
        raise ValueError("no human text to build a baseline from")
    out = aggregate_metrics(chunks, lexicon)
    per_chunk = [text_metrics(c, lexicon) for c in chunks]
    for name, q in (("word_validity", 5), ("distinct_2", 5), ("seq_rep_4", 95)):
        values = [m[name] for m in per_chunk if not math.isnan(m[name])]
        out[f"{name}_p{q:02d}"] = float(np.percentile(values, q)) if values else float("nan")
    out["words_per_chunk"] = words_per_chunk
    return out


def verdict(metrics: dict, human: dict, single: bool = True) -> dict:
    """Labels `metrics` of one sample (`single`) or a mean over samples against `human`.

    Returns {"label": "ok" | "gibberish" | "repetitive" | "gibberish+repetitive",
    "reasons": [...]}. Thresholds, all relative to the human numbers:

    - gibberish: word validity more than 0.10 below the human mean (human news ≈ 0.95, i.e.
      5% unknown words; 0.85 means three times as many non-words, while a model writing broken
      subword glue lands well below 0.8); or more than 0.05 below with mean word length off
      by over 25% (broken words are glued fragments, too long, or stray pieces, too short).
    - repetitive: seq-rep-4 more than 0.20 above the human mean (human ≈ 0.0–0.02 at this
      length; a 10-word phrase looped over 60 words scores ≈ 0.8); or distinct-2 below
      0.6 × the human mean.

    A single sample is short and noisy (on the default corpus, 40-word human chunks vary from
    code-like to prose), so it must also fall beyond the human chunks' own 5th/95th
    percentile to be flagged (so about 5% of human chunks are flagged: measured 6–7% on 3000
    held-out 20–60-word chunks of the default corpus); a mean over many samples, far less
    noisy, is judged by the margins alone.
    Missing values (NaN, e.g. an empty sample) never pass as ok.
    """

    def low(name, margin_value):
        limit = margin_value
        if single and not math.isnan(human.get(f"{name}_p05", float("nan"))):
            limit = min(limit, human[f"{name}_p05"])
        return limit

    reasons = []
    gib = rep = False
    v, hv = metrics["word_validity"], human["word_validity"]
    if math.isnan(v):
        reasons.append("no words to check")
        gib = True
    else:
        wl, hwl = metrics["mean_word_length"], human["mean_word_length"]
        length_off = abs(wl / hwl - 1.0) if hwl else 0.0
        if v < low("word_validity", hv - GIBBERISH_VALIDITY_DROP):
            gib = True
            reasons.append(f"word validity {v:.3f} vs human {hv:.3f}")
        elif v < low("word_validity", hv - GIBBERISH_SOFT_VALIDITY_DROP) and length_off > GIBBERISH_WORD_LENGTH_RATIO:
            gib = True
            reasons.append(f"word validity {v:.3f} vs human {hv:.3f} and mean word length {wl:.2f} vs {hwl:.2f}")
    r, hr = metrics["seq_rep_4"], human["seq_rep_4"]
    rep_limit = hr + REPETITION_SEQ_REP_RISE
    if single and not math.isnan(human.get("seq_rep_4_p95", float("nan"))):
        rep_limit = max(rep_limit, human["seq_rep_4_p95"])
    if not math.isnan(r) and r > rep_limit:
        rep = True
        reasons.append(f"seq-rep-4 {r:.3f} vs human {hr:.3f}")
    d2, hd2 = metrics["distinct_2"], human["distinct_2"]
    if not math.isnan(d2) and d2 < low("distinct_2", REPETITION_DISTINCT_2_RATIO * hd2):
        rep = True
        reasons.append(f"distinct-2 {d2:.3f} vs human {hd2:.3f}")
    label = "+".join(name for name, flag in (("gibberish", gib), ("repetitive", rep)) if flag) or "ok"
    return {"label": label, "reasons": reasons}
