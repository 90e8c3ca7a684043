"""Language-model numbers that compare across tokenizers.

Token perplexity depends on how text is cut into tokens, so a 4000-piece model and a
32000-piece model (or v4 and v5 on different tokenizers) cannot be compared by it. Summed
negative log-likelihood can: divided by the text's UTF-8 bytes (bits per byte) or its words
(word-level perplexity) it measures the same text whatever the tokenizer.

Example:
    >>> lm_metrics(total_nats=6931.5, tokens=2000, correct=700, num_bytes=8000, num_words=1500)["bits_per_byte"]
    1.25
"""

from __future__ import annotations

import math


def lm_metrics(total_nats: float, tokens: int, correct: int, num_bytes: int, num_words: int) -> dict:
    """Loss and perplexities from the summed unsmoothed cross-entropy (nats) of `tokens`
    predictions over a text of `num_bytes` UTF-8 bytes and `num_words` whitespace words."""
    if tokens < 1 or num_bytes < 1 or num_words < 1:
        raise ValueError("need at least one token, byte and word")
    loss = total_nats / tokens
    return {
        "loss_nats": loss,
        "perplexity": math.exp(loss),
        "bits_per_token": loss / math.log(2),
        "token_accuracy": correct / tokens,
        "bits_per_byte": total_nats / num_bytes / math.log(2),
        "word_perplexity": math.exp(total_nats / num_words),
        "tokens_per_word": tokens / num_words,
        "bytes_per_token": num_bytes / tokens,
    }
