"""Keras layers; every one is registered for `.keras` serialization."""

from kerasvq.layers.causal_self_attention import CausalSelfAttention
from kerasvq.layers.rotary_embedding import RotaryEmbedding
from kerasvq.layers.sinusoidal_position_encoding import SinusoidalPositionEncoding
from kerasvq.layers.transformer_decoder import TransformerDecoder
