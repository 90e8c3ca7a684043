"""Keras layers; every one is registered for `.keras` serialization."""

from kerasvq.layers.causal_self_attention import CausalSelfAttention
from kerasvq.layers.collaborative_experts import CollaborativeExperts
from kerasvq.layers.grouped_feature_encoder import GroupedFeatureEncoder
from kerasvq.layers.hashed_dropout import HashedDropout
from kerasvq.layers.llama_decoder import LlamaDecoder
from kerasvq.layers.one_pass_layer_normalization import OnePassLayerNormalization
from kerasvq.layers.rotary_embedding import RotaryEmbedding
from kerasvq.layers.sinusoidal_position_encoding import SinusoidalPositionEncoding
from kerasvq.layers.swiglu import SwiGLU
from kerasvq.layers.token_embedding import TokenEmbedding
from kerasvq.layers.top_k_moe import TopKMoE
from kerasvq.layers.transformer_decoder import TransformerDecoder
from kerasvq.layers.vector_quantizer import VectorQuantizer
