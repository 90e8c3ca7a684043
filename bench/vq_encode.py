"""Encode throughput: VQ-VAE `encode` vs FAISS PQ `compute_codes`, same CPU, same vectors.

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
    from kerasvq.models.vqvae import VQVAE  # noqa: F401  (registers the class for loading)

    source = EmbeddingFile(args.embeddings)
    x = source.read(0, min(args.rows, len(source)))
    model = keras.saving.load_model(args.model)
    pq = faiss.ProductQuantizer(x.shape[1], model.num_heads, int(np.log2(model.codebook_size)))
    pq.train(x)
    rows = [
        ("kerasvq VQVAE.encode", best_rate(lambda: model.encode(x, batch_size=args.batch_size), len(x))),
        ("faiss PQ compute_codes", best_rate(lambda: pq.compute_codes(x), len(x))),
    ]
    print(f"{len(x)} vectors × {x.shape[1]}, backend {keras.backend.backend()}, faiss threads {faiss.omp_get_max_threads()}")
    print(f"{'method':26s} {'vectors/s':>12s}")
    for name, rate in rows:
        print(f"{name:26s} {rate:12.0f}")


if __name__ == "__main__":
    main()
