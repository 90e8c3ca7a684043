"""Keras models; every one is registered for `.keras` serialization."""

from kerasvq.models.lstm_lm import LSTMLM
from kerasvq.models.transformer_lm import TransformerLM
from kerasvq.models.vqvae import VQVAE
from kerasvq.models.hierarchical_vqvae import HierarchicalVQVAE
