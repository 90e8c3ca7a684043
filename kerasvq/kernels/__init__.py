"""Hand-written GPU kernels (Pallas, JAX only) for paths where XLA's fusions leave speed on the
table: today the single-token Transformer decode step (`fused_decode_step`)."""
