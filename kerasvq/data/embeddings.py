"""Embedding files: HDF5 or `.npy` matrices of sentence vectors, read in chunks, checked.

Files are opened lazily (h5py datasets, `np.load(mmap_mode="r")`), so a file larger than
memory is never loaded whole: `iter_batches` yields contiguous chunks, `take` gathers rows.
Every chunk read is checked for the expected width and for NaN/inf rows, which are reported
with their row indices.

Example:
    >>> source = EmbeddingFile("sentences.h5", dim=384)
    >>> len(source), source.dim
    (27900, 384)
    >>> for batch in source.iter_batches(4096): ...
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from kerasvq.common.errors import UserError

DEFAULT_DATASET = "embeddings"


def _h5_datasets(f) -> list[str]:
    import h5py

    names = []
    f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    return names


def check_finite(block: np.ndarray, where: str, offset: int = 0) -> None:
    """Raises a UserError naming the rows (global indices) that hold NaN or inf."""
    bad = np.flatnonzero(~np.isfinite(block).all(axis=1))
    if bad.size:
        rows = ", ".join(str(int(i) + offset) for i in bad[:10])
        more = f" and {bad.size - 10} more" if bad.size > 10 else ""
        raise UserError(f"{where}: NaN or inf values in rows {rows}{more}")


def check_width(shape, dim: int | None, where: str) -> None:
    if len(shape) != 2:
        raise UserError(f"{where}: expected a 2-D matrix (rows, {dim or 'dim'}), got shape {tuple(shape)}")
    if dim is not None and shape[1] != dim:
        raise UserError(f"{where}: expected embedding width {dim}, got {shape[1]}")


class EmbeddingFile:
    """A read-only view of an `.h5`/`.hdf5` dataset or an `.npy` file of shape (rows, dim)."""

    def __init__(self, path, dim: int | None = None, dataset: str = DEFAULT_DATASET):
        self.path = Path(path)
        if not self.path.is_file():
            raise UserError(f"{self.path}: file not found; expected an .h5 or .npy embedding file")
        self.where = str(self.path)
        suffix = self.path.suffix.lower()
        if suffix in (".h5", ".hdf5"):
            import h5py

            try:
                self._file = h5py.File(self.path, "r")
            except OSError as e:
                raise UserError(f"{self.path}: not a readable HDF5 file ({e})") from None
            if dataset not in self._file or not hasattr(self._file[dataset], "shape"):
                present = ", ".join(_h5_datasets(self._file)) or "none"
                raise UserError(f"{self.path}: no dataset '{dataset}' (datasets present: {present})")
            self._data = self._file[dataset]
            self.where = f"{self.path}:{dataset}"
        elif suffix == ".npy":
            self._file = None
            try:
                self._data = np.load(self.path, mmap_mode="r")
            except ValueError as e:
                raise UserError(f"{self.path}: not a readable .npy file ({e})") from None
        else:
            raise UserError(f"{self.path}: unknown embedding file type; expected .h5, .hdf5 or .npy")
        check_width(self._data.shape, dim, self.where)
        self.dim = int(self._data.shape[1])

    def __len__(self) -> int:
        return int(self._data.shape[0])

    def read(self, start: int, stop: int) -> np.ndarray:
        block = np.asarray(self._data[start:stop], dtype=np.float32)
        check_finite(block, self.where, start)
        return block

    def take(self, indices) -> np.ndarray:
        """Rows at `indices` (any order), read in sorted order as HDF5 requires."""
        indices = np.asarray(indices, dtype=np.int64)
        order = np.argsort(indices)
        rows = np.asarray(self._data[indices[order]], dtype=np.float32)
        out = np.empty_like(rows)
        out[order] = rows
        bad = np.flatnonzero(~np.isfinite(out).all(axis=1))
        if bad.size:
            try:
                check_finite(out[bad[:1]], self.where, int(indices[bad[0]]))
            except UserError as e:
                # Kept so the caller can say this line when a data pipeline (tf.data, a
                # PyDataset worker) re-raises it wrapped in its own error type.
                self.error = e
                raise
        return out

    error: UserError | None = None

    @contextlib.contextmanager
    def raising_own_errors(self):
        """Inside it, a failure caused by this file's bad rows comes out as the UserError
        that named them, not as the framework's wrapper of it (TensorFlow's UnknownError)."""
        try:
            yield
        except Exception:
            if self.error is not None:
                raise self.error from None
            raise

    def iter_batches(self, batch_size: int, start: int = 0, stop: int | None = None):
        stop = len(self) if stop is None else stop
        for i in range(start, stop, batch_size):
            yield self.read(i, min(i + batch_size, stop))

    def load(self) -> np.ndarray:
        """The whole matrix in memory (checked); for files known to fit."""
        return self.read(0, len(self))

    def close(self):
        if self._file is not None:
            self._file.close()


def load_embeddings(path, dim: int | None = None, dataset: str = DEFAULT_DATASET) -> np.ndarray:
    source = EmbeddingFile(path, dim, dataset)
    try:
        return source.load()
    finally:
        source.close()


def split_indices(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random train/test split of `n` rows, each half sorted (fast contiguous-ish reads)."""
    order = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_fraction))
    return np.sort(order[n_test:]), np.sort(order[:n_test])


RECALL_K = 10


def check_split_sizes(path, train_rows: int, test_rows: int, codebook_size: int) -> None:
    """Stops with one line when a split is too small for what the run does with it.

    The train split seeds every codebook by k-means, so it needs at least `codebook_size`
    rows; the test split scores recall@10 with each query left out of its own neighbours, so
    it needs `RECALL_K` + 1 rows.
    """
    total = train_rows + test_rows
    if train_rows < codebook_size:
        raise UserError(f"{path}: {total} rows give a train split of {train_rows}; k-means needs at "
                        f"least {codebook_size} (model.codebook_size) training rows")
    if test_rows < RECALL_K + 1:
        raise UserError(f"{path}: {total} rows give a test split of {test_rows}; recall@{RECALL_K} needs "
                        f"at least {RECALL_K + 1} (raise data.test_fraction or add rows)")


class EmbeddingWriter:
    """Appends vectors (and their texts) to an HDF5 file, resumably.

    Rows go to `<out>.partial` first; `rows_done` says how many a previous interrupted run
    wrote, and `finish()` renames the file into place.
    """

    def __init__(self, path, dim: int, dataset: str = DEFAULT_DATASET, attrs: dict | None = None):
        import h5py

        self.path = Path(path)
        self.partial = self.path.with_name(self.path.name + ".partial")
        self.dataset = dataset
        self._file = h5py.File(self.partial, "a")
        if dataset not in self._file:
            self._file.create_dataset(dataset, shape=(0, dim), maxshape=(None, dim), dtype="float32", chunks=(1024, dim))
            self._file.create_dataset("texts", shape=(0,), maxshape=(None,), dtype=h5py.string_dtype(), chunks=(1024,))
        check_width(self._file[dataset].shape, dim, str(self.partial))
        for key, value in (attrs or {}).items():
            self._file.attrs[key] = value
        self.rows_done = int(self._file[dataset].shape[0])

    def append(self, vectors: np.ndarray, texts: list[str]) -> None:
        data, text = self._file[self.dataset], self._file["texts"]
        n = data.shape[0]
        data.resize(n + len(vectors), axis=0)
        data[n:] = vectors
        text.resize(n + len(texts), axis=0)
        text[n:] = texts
        self._file.flush()
        self.rows_done = n + len(vectors)

    def finish(self) -> Path:
        self._file.close()
        os.replace(self.partial, self.path)
        return self.path
