"""Text generation from a trained language model: `generate` (one decoder chosen per call: the Keras
reference, the fused XLA step or the persistent Pallas kernel from `kerasvq.kernels`) and the
sampling rules it applies to each new column (`sampling`)."""
