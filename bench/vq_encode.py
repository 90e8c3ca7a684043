"""Encode throughput: VQ-VAE `encode` (Keras path and `FastEncoder`) vs FAISS PQ, OPQ, RQ, RQ beam 32 and LSQ, same vectors.

The Keras row runs on the backend's default device (KERAS_BACKEND=jax on a GPU: the GPU).

Example:
    $ python bench/vq_encode.py --model versions/vqvae-wiki/models/vqvae.keras --embeddings en.h5
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def best_rate(fn, n, repeats=3):
    fn()  # warm-up (tracing, allocation)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return n / min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--embeddings", required=True)
    parser.add_argument("--rows", type=int, default=8192)
    parser.add_argument("--batch-size", type=int, default=4096)
    args = parser.parse_args()

    import faiss
    import keras
    import numpy as np

    from kerasvq.data.embeddings import EmbeddingFile
    from kerasvq.models.fast_encode import FastEncoder
    from kerasvq.models.model_file import load_keras_model
    from kerasvq.models.vqvae import VQVAE  # noqa: F401  (registers the class for loading)

    source = EmbeddingFile(args.embeddings)
    x = source.read(0, min(args.rows, len(source)))
    model = load_keras_model(args.model, "kerasvq vqvae train", compile=False)
    d, m, nbits = x.shape[1], model.num_heads, int(np.log2(model.codebook_size))
    fast = FastEncoder(model)
    rows = [
        ("kerasvq VQVAE.encode", best_rate(lambda: model.encode(x, batch_size=args.batch_size), len(x))),
        ("kerasvq FastEncoder (CPU)", best_rate(lambda: fast.encode(x), len(x))),
    ]
    pq = faiss.ProductQuantizer(d, m, nbits)
    pq.train(x)
    opq = faiss.OPQMatrix(d, m)
    opq.train(x)
    opq_pq = faiss.ProductQuantizer(d, m, nbits)
    opq_pq.train(opq.apply(x))
    rq, rq32, lsq = faiss.ResidualQuantizer(d, m, nbits), faiss.ResidualQuantizer(d, m, nbits), faiss.LocalSearchQuantizer(d, m, nbits)
    rq32.max_beam_size = 32
    for q in (rq, rq32, lsq):
        q.train(x)
    rows += [
        ("faiss PQ compute_codes", best_rate(lambda: pq.compute_codes(x), len(x))),
        ("faiss OPQ+PQ", best_rate(lambda: opq_pq.compute_codes(opq.apply(x)), len(x))),
        ("faiss RQ (beam 5)", best_rate(lambda: rq.compute_codes(x), len(x))),
        ("faiss RQ beam 32", best_rate(lambda: rq32.compute_codes(x), len(x))),
        ("faiss LSQ", best_rate(lambda: lsq.compute_codes(x), len(x))),
    ]
    device = "cpu"
    if keras.backend.backend() == "jax":
        import jax

        device = str(jax.devices()[0])
    print(f"{len(x)} vectors × {d}, backend {keras.backend.backend()} on {device}, faiss threads {faiss.omp_get_max_threads()}")
    print(f"{'method':26s} {'vectors/s':>12s}")
    for name, rate in rows:
        print(f"{name:26s} {rate:12.0f}")


if __name__ == "__main__":
    main()
