"""Metrics: codebook balance and reconstruction quality of quantizers."""

from kerasvq.metrics.codebook import codebook_stats, code_counts, kmeans, zipf_fit
from kerasvq.metrics.reconstruction import neighbour_recall, reconstruction_stats
