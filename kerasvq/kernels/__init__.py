"""Hand-written GPU kernels (Pallas, JAX only) for paths where XLA's fusions leave speed on the
table: the single-token Transformer decode step (`fused_decode_step`) and the whole greedy
loop as one persistent kernel (`persistent_decode`). They take a model's `decode_weights()`
(`decode_weights.DecodeWeights`, plain arrays) and nothing else of it."""
