"""Token streams cut into overlapping training windows, batched by sequences.

Each window holds seq_len + 1 tokens: inputs are its first seq_len tokens, targets the last
seq_len (shifted by one). Batch size always counts sequences; steps per epoch follow from the
number of windows, so nothing has to be guessed or truncated.

Example:
    >>> stream = token_stream(tokenizer.encode(docs), eos_id=tokenizer.eos_id)
    >>> count_windows(len(stream), seq_len=256, stride=128)
    1234
    >>> batches = WindowDataset(stream, seq_len=256, stride=128, batch_size=32, shuffle=True)
    >>> x, y = batches[0]                  # int32 (32, 256) each; y[:, :-1] == x[:, 1:]
"""

from __future__ import annotations

import math

import keras
import numpy as np


def token_stream(encoded_docs, eos_id: int, dtype=np.uint16) -> np.ndarray:
    """Concatenates documents, each followed by the end-of-sequence token."""
    if np.iinfo(dtype).max < eos_id:
        raise ValueError(f"{np.dtype(dtype).name} cannot hold token id {eos_id}")
    pieces = []
    for ids in encoded_docs:
        pieces.append(np.asarray(ids, dtype=dtype))
        pieces.append(np.asarray([eos_id], dtype=dtype))
    return np.concatenate(pieces) if pieces else np.zeros((0,), dtype=dtype)


def count_windows(num_tokens: int, seq_len: int, stride: int) -> int:
    """How many windows of seq_len + 1 tokens start every `stride` tokens."""
    if num_tokens < seq_len + 1:
        return 0
    return (num_tokens - seq_len - 1) // stride + 1


class EpochOrderedDataset(keras.utils.PyDataset):
    """A `PyDataset` over `items` (window starts, row indices) whose order in epoch e is a
    function of (seed, e) alone: a resumed run calls `set_epoch` and reads the batches of the
    uninterrupted run.

    Args:
        items: 1-D array of what the batches are cut from, in their unshuffled order.
        seed: the shuffle seed.
        shuffle: permute `items` every epoch; False keeps their order.
        **kwargs: passed to `PyDataset` (workers, use_multiprocessing, ...).
    """

    def __init__(self, items, seed: int = 0, shuffle: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.items = np.asarray(items)
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0
        self.order = self._epoch_order()

    def _epoch_order(self):
        if not self.shuffle:
            return self.items
        return np.random.default_rng([self.seed, self.epoch]).permutation(self.items)

    def set_epoch(self, epoch: int):
        """Uses the order of `epoch` (0-based) from now on."""
        if epoch != self.epoch:
            self.epoch = epoch
            self.order = self._epoch_order()

    def on_epoch_end(self):
        self.set_epoch(self.epoch + 1)


class WindowDataset(EpochOrderedDataset):
    """Batches of (inputs, targets) windows read from a uint16 token stream.

    Args:
        stream: 1-D token ids (a NumPy array or memmap).
        seq_len: tokens per input sequence.
        stride: tokens between the starts of consecutive windows.
        batch_size: sequences per batch.
        shuffle: reshuffle window order every epoch; the order is a function of (`seed`,
            epoch), so a resumed run that calls `set_epoch` sees the uninterrupted run's order.
        drop_remainder: drop the last partial batch (training) or keep it (evaluation).
        windows_multiple_of: use only a multiple of this many windows, so that every batch,
            a last partial one included, splits evenly over that many devices.
        max_windows: use at most this many windows, evenly spaced over the stream (a bounded
            validation sample); None uses all.
    """

    def __init__(self, stream, seq_len, stride, batch_size, shuffle=False, seed=0,
                 drop_remainder=True, windows_multiple_of=1, max_windows=None, **kwargs):
        self.stream = stream
        self.seq_len = seq_len
        self.batch_size = batch_size
        self.drop_remainder = drop_remainder
        self.num_windows = count_windows(len(stream), seq_len, stride)
        starts = np.arange(self.num_windows, dtype=np.int64) * stride
        if max_windows is not None and max_windows < self.num_windows:
            starts = starts[np.linspace(0, self.num_windows - 1, max_windows).round().astype(np.int64)]
            self.num_windows = len(starts)
        self.num_windows -= self.num_windows % windows_multiple_of
        self.starts = starts[:self.num_windows]
        super().__init__(self.starts, seed=seed, shuffle=shuffle, **kwargs)

    def __len__(self):
        if self.drop_remainder:
            return self.num_windows // self.batch_size
        return math.ceil(self.num_windows / self.batch_size)

    def __getitem__(self, index):
        starts = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        windows = np.stack([self.stream[s : s + self.seq_len + 1] for s in starts]).astype(np.int32)
        return windows[:, :-1], windows[:, 1:]
