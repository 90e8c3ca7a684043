"""Tabular feature files: an HDF5 samples × features matrix plus a per-column registry.

Layout of one file (all paths configurable through `dataset`):

- `<dataset>` (default `/features/sdf/aggregated/features`): float32 matrix (samples, features).
- `<dataset>_registry`: a compound dataset with one row per column and the utf-8 string fields
  `name`, `category` (semantic group such as `temporal`) and `aggregation` (`mean`, `std`,
  `cv`, ...), in column order.
- `/latents/<category>` (optional, synthetic data only): the known latent factors
  (samples, factors) the features were generated from; `read_latents` returns them.

Reading checks everything a training run relies on and raises a one-line `UserError`
otherwise: missing file, dataset or registry, registry length ≠ feature count, NaN/inf.

Example:
    >>> write_features("demo.h5", values, registry)
    >>> table = read_features("demo.h5")
    >>> table.values.shape, table.registry.category_names()
    ((4000, 360), ('temporal', 'causality', ...))
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kerasvq.common.errors import UserError
from kerasvq.config.hvqvae import DEFAULT_FEATURES_DATASET

LATENTS_GROUP = "/latents"
_REGISTRY_FIELDS = ("name", "category", "aggregation")


@dataclass(frozen=True)
class FeatureRegistry:
    """Name, semantic category and aggregation of every column, in column order."""

    names: tuple[str, ...]
    categories: tuple[str, ...]
    aggregations: tuple[str, ...]

    def __post_init__(self):
        if not len(self.names) == len(self.categories) == len(self.aggregations):
            raise UserError(f"feature registry: names, categories and aggregations differ in length "
                            f"({len(self.names)}, {len(self.categories)}, {len(self.aggregations)})")

    def __len__(self) -> int:
        return len(self.names)

    def category_names(self) -> tuple[str, ...]:
        """Distinct categories in order of first appearance."""
        return tuple(dict.fromkeys(self.categories))


@dataclass
class FeatureTable:
    """A checked feature matrix (float32, samples × features) and its registry."""

    values: np.ndarray
    registry: FeatureRegistry
    path: str
    dataset: str


def registry_path(dataset: str) -> str:
    return f"{dataset.rstrip('/')}_registry"


def check_features(values: np.ndarray, registry: FeatureRegistry, where: str) -> None:
    """Shape, registry length and finiteness; errors name the first bad row and column."""
    if values.ndim != 2:
        raise UserError(f"{where}: expected a 2-D matrix (samples, features), got shape {values.shape}")
    if values.shape[1] != len(registry):
        raise UserError(f"{where}: feature count mismatch: the matrix has {values.shape[1]} columns "
                        f"but the registry lists {len(registry)} features")
    if values.shape[0] == 0:
        raise UserError(f"{where}: no samples; expected at least one row")
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.flatnonzero(bad.any(axis=1))[0])
        col = int(np.flatnonzero(bad[row])[0])
        raise UserError(f"{where}: non-finite value ({values[row, col]}) at row {row}, column {col} "
                        f"('{registry.names[col]}'); {int(bad.sum())} non-finite values in all")


def write_features(path, values, registry: FeatureRegistry, dataset: str = DEFAULT_FEATURES_DATASET,
                   latents: dict[str, np.ndarray] | None = None, overwrite: bool = False) -> Path:
    """Writes the matrix, its registry and optional latents atomically (temporary file + rename)."""
    import h5py

    path = Path(path)
    if path.exists() and not overwrite:
        raise UserError(f"{path}: already exists; pass overwrite=True (--overwrite) to replace it")
    values = np.asarray(values, dtype=np.float32)
    check_features(values, registry, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            f.create_dataset(dataset, data=values, chunks=(min(len(values), 1024), values.shape[1]))
            text = h5py.string_dtype("utf-8")
            rows = np.array(list(zip(registry.names, registry.categories, registry.aggregations)),
                            dtype=[(field, text) for field in _REGISTRY_FIELDS])
            f.create_dataset(registry_path(dataset), data=rows)
            if latents:
                group = f.create_group(LATENTS_GROUP, track_order=True)
                for category, factors in latents.items():
                    group.create_dataset(category, data=np.asarray(factors, dtype=np.float32))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _open(path: Path):
    import h5py

    if not path.is_file():
        raise UserError(f"{path}: file not found; expected an HDF5 feature file")
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise UserError(f"{path}: not a readable HDF5 file ({e})") from None


def read_registry(f, dataset: str, where: str) -> FeatureRegistry:
    name = registry_path(dataset)
    if name not in f:
        raise UserError(f"{where}: no feature registry '{name}' for dataset '{dataset}'; "
                        f"expected a (name, category, aggregation) table next to the features")
    rows = f[name][()]
    fields = rows.dtype.names or ()
    missing = [field for field in _REGISTRY_FIELDS if field not in fields]
    if missing:
        raise UserError(f"{where}: feature registry '{name}' lacks the field(s) {', '.join(missing)}")
    return FeatureRegistry(*(tuple(_text(v) for v in rows[field]) for field in _REGISTRY_FIELDS))


def read_features(path, dataset: str = DEFAULT_FEATURES_DATASET) -> FeatureTable:
    """Loads and checks the matrix at `dataset` and its registry (see the module docstring)."""
    import h5py

    path = Path(path)
    with _open(path) as f:
        if dataset not in f or not isinstance(f[dataset], h5py.Dataset):
            raise UserError(f"{path}: no dataset '{dataset}' in the file; pass the path of the features matrix")
        values = np.asarray(f[dataset][()], dtype=np.float32)
        registry = read_registry(f, dataset, str(path))
    check_features(values, registry, f"{path}:{dataset}")
    return FeatureTable(values=values, registry=registry, path=str(path), dataset=dataset)


def read_latents(path) -> dict[str, np.ndarray]:
    """The known latent factors (category → (samples, factors)) stored by the demo generator."""
    path = Path(path)
    with _open(path) as f:
        if LATENTS_GROUP not in f:
            raise UserError(f"{path}: no '{LATENTS_GROUP}' group; only generated demo files carry latents")
        return {name: np.asarray(ds[()], dtype=np.float32) for name, ds in f[LATENTS_GROUP].items()}


def fit_normalization(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and std; a (near-)constant column gets std 1 so it normalizes to 0."""
    values = np.asarray(values, dtype=np.float64)
    mean = values.mean(axis=0)
    std = values.std(axis=0)
    std = np.where(std <= 1e-7 * np.maximum(np.abs(mean), 1.0), 1.0, std)
    return mean.astype(np.float32), std.astype(np.float32)


def normalize(values: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return ((np.asarray(values, dtype=np.float32) - mean) / std).astype(np.float32)
