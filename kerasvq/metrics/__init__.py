"""Metrics: language-model numbers (`lm`), degeneration metrics on generated text (`text`),
codebook balance (`codebook`) and reconstruction quality (`reconstruction`) of quantizers."""

from kerasvq.metrics.codebook import codebook_stats, code_counts, zipf_fit
from kerasvq.metrics.reconstruction import neighbour_recall, reconstruction_stats
