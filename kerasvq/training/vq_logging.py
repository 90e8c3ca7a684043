"""`CodebookLogger`: per-epoch codebook and reconstruction statistics, to logs and TensorBoard.

At the end of every epoch the model (a `VQVAE`) encodes and decodes a fixed validation
sample; per-head usage, perplexity, normalized entropy, max code share and Zipf α/R², plus
cosine, relative error, MSE and recall@10, are added to the epoch's `logs` (so they land in
the history) and written with `kerasvq.training.tensorboard.SummaryWriter`, together with a
histogram of code counts per head.

Example:
    >>> logger = CodebookLogger(x_val[:2000], logdir="versions/vqvae-wiki/logs/tensorboard")
    >>> model.fit(ds, epochs=20, callbacks=[logger])
"""

from __future__ import annotations

import keras
import numpy as np

from kerasvq.metrics.codebook import code_counts, codebook_stats
from kerasvq.metrics.reconstruction import reconstruction_stats


def epoch_stats(model, x, num_queries: int = 500) -> dict:
    """Flat dict of codebook + reconstruction statistics of `model` on `x`."""
    codes = model.encode(x)
    stats = codebook_stats(codes, model.codebook_size)
    flat = {k: v for k, v in stats.items() if k != "per_head"}
    for h, head in enumerate(stats["per_head"]):
        for key, value in head.items():
            flat[f"head{h}/{key}"] = value
    flat.update(reconstruction_stats(x, model.decode(codes), num_queries=min(num_queries, len(x))))
    return flat, code_counts(codes, model.codebook_size)


class CodebookLogger(keras.callbacks.Callback):
    def __init__(self, x_val, logdir=None, num_queries: int = 500, verbose: int = 1):
        super().__init__()
        self.x_val = np.asarray(x_val, np.float32)
        self.logdir = logdir
        self.num_queries = num_queries
        self.verbose = verbose
        self.writer = None

    def on_train_begin(self, logs=None):
        if self.logdir is not None and self.writer is None:
            from kerasvq.training.tensorboard import SummaryWriter

            self.writer = SummaryWriter(self.logdir)

    def on_epoch_end(self, epoch, logs=None):
        if keras.backend.backend() == "jax":
            self.model.jax_state_sync()
        stats, counts = epoch_stats(self.model, self.x_val, self.num_queries)
        if logs is not None:
            logs.update({f"val_{k}": v for k, v in stats.items()})
        if self.writer is not None:
            for key, value in stats.items():
                self.writer.scalar(f"codebook/{key}", value, epoch)
            for key, value in (logs or {}).items():
                if not key.startswith("val_") or key == "val_loss":
                    self.writer.scalar(f"train/{key}", float(value), epoch)
            for h, c in enumerate(counts):
                self.writer.histogram(f"codes/head{h}", np.repeat(np.arange(len(c)), c), epoch, bins=len(c))
            self.writer.flush()
        if self.verbose:
            print(
                f"\n  codebook: min usage {stats['min_usage']:.3f}, max share {stats['max_share']:.3f}, "
                f"perplexity {stats['mean_perplexity']:.1f} | cosine {stats['cosine']:.3f}, "
                f"rel. error {stats['relative_error']:.3f}, recall@10 {stats['recall_at_10']:.3f}"
            )

    def on_train_end(self, logs=None):
        if self.writer is not None:
            self.writer.close()
