"""Column groups (category → column indices) for per-category tokenizers.

Groups come from the registry (`groups_from_registry`: each category's mean/std/cv columns
together), from the data (`groups_by_correlation`: spectral clustering of |correlation|, for
files whose registry categories are not trusted), or from a JSON file written by `save_groups`:

    {"num_features": 360, "group_indices": {"temporal": [0, 1, ...], ...}}

`validate_groups` insists that the groups cover every column exactly once.

Example:
    >>> groups = groups_from_registry(read_features("demo.h5").registry)
    >>> save_groups("groups.json", groups, num_features=360)
    >>> load_groups("groups.json", num_features=360)["temporal"][:3]
    [0, 1, 2]
"""

from __future__ import annotations

import numbers

import numpy as np

from kerasvq.config.base import load_json, save_json
from kerasvq.common.errors import UserError


def groups_from_registry(registry) -> dict[str, list[int]]:
    """Category → sorted column indices, categories in order of first appearance."""
    groups: dict[str, list[int]] = {name: [] for name in registry.category_names()}
    for i, category in enumerate(registry.categories):
        groups[category].append(i)
    return groups


def _kmeans(points: np.ndarray, k: int, rng: np.random.Generator, restarts: int = 10, steps: int = 100):
    """Plain k-means++ with restarts; returns the labels of the lowest-inertia run."""
    best, best_inertia = None, np.inf
    for _ in range(restarts):
        centers = [points[rng.integers(len(points))]]
        for _ in range(k - 1):
            d2 = np.min(((points[:, None] - np.array(centers)[None]) ** 2).sum(-1), axis=1)
            centers.append(points[rng.choice(len(points), p=d2 / d2.sum())] if d2.sum() > 0
                           else points[rng.integers(len(points))])
        centers = np.array(centers)
        for _ in range(steps):
            labels = ((points[:, None] - centers[None]) ** 2).sum(-1).argmin(1)
            new = np.array([points[labels == j].mean(0) if np.any(labels == j) else centers[j] for j in range(k)])
            if np.allclose(new, centers):
                break
            centers = new
        inertia = ((points - centers[labels]) ** 2).sum()
        if inertia < best_inertia:
            best, best_inertia = labels, inertia
    return best


def groups_by_correlation(values: np.ndarray, num_groups: int, seed: int = 0) -> dict[str, list[int]]:
    """The `auto` mode: spectral clustering of columns on |Pearson correlation|.

    Affinity |corr| between columns (constant columns get none), normalized Laplacian,
    k-means on the row-normalized top `num_groups` eigenvectors. Groups are named
    `group_0, group_1, ...` in order of their first column.
    """
    values = np.asarray(values, dtype=np.float64)
    n_features = values.shape[1]
    if not 1 <= num_groups <= n_features:
        raise UserError(f"num_groups must be between 1 and the feature count {n_features}, got {num_groups}")
    centered = values - values.mean(axis=0)
    norms = np.linalg.norm(centered, axis=0)
    scaled = centered / np.where(norms > 0, norms, 1.0)
    affinity = np.abs(scaled.T @ scaled)
    np.fill_diagonal(affinity, 0.0)
    degree = affinity.sum(axis=1)
    inv_sqrt = np.where(degree > 0, 1.0 / np.sqrt(np.maximum(degree, 1e-12)), 0.0)
    _, vectors = np.linalg.eigh(inv_sqrt[:, None] * affinity * inv_sqrt[None, :])
    embedding = vectors[:, -num_groups:]
    lengths = np.linalg.norm(embedding, axis=1, keepdims=True)
    embedding = embedding / np.where(lengths > 0, lengths, 1.0)
    labels = _kmeans(embedding, num_groups, np.random.default_rng(seed))
    order = sorted(set(labels.tolist()), key=lambda label: int(np.flatnonzero(labels == label)[0]))
    return {f"group_{g}": np.flatnonzero(labels == label).tolist() for g, label in enumerate(order)}


def group_labels(groups: dict[str, list[int]], num_features: int) -> np.ndarray:
    """Column → group number (order of `groups`); -1 for columns in no group."""
    labels = np.full(num_features, -1, dtype=np.int64)
    for g, indices in enumerate(groups.values()):
        labels[np.asarray(indices, dtype=np.int64)] = g
    return labels


def group_agreement(found: dict[str, list[int]], truth: dict[str, list[int]], num_features: int) -> dict:
    """Purity (share of columns in their found group's majority true group) and adjusted Rand index."""
    a, b = group_labels(found, num_features), group_labels(truth, num_features)
    table = np.zeros((a.max() + 2, b.max() + 2), dtype=np.int64)
    np.add.at(table, (a + 1, b + 1), 1)
    purity = table.max(axis=1).sum() / num_features

    def pairs(x):
        return (x * (x - 1) / 2).sum()

    index, rows, cols = pairs(table), pairs(table.sum(1)), pairs(table.sum(0))
    expected = rows * cols / pairs(np.array([num_features]))
    maximum = (rows + cols) / 2
    ari = 1.0 if maximum == expected else (index - expected) / (maximum - expected)
    return {"purity": float(purity), "adjusted_rand": float(ari)}


def validate_groups(groups, num_features: int, source: str) -> dict[str, list[int]]:
    """Checks that `groups` maps names to int column lists covering 0..num_features-1 exactly once."""
    if not isinstance(groups, dict) or not groups:
        raise UserError(f"{source}: group_indices must be a non-empty mapping of category → column indices")
    owner: dict[int, str] = {}
    clean: dict[str, list[int]] = {}
    for category, indices in groups.items():
        if not isinstance(indices, (list, tuple)) or not indices:
            raise UserError(f"{source}: category '{category}' must list at least one column index")
        for index in indices:
            if isinstance(index, bool) or not isinstance(index, numbers.Integral):
                raise UserError(f"{source}: category '{category}' has a non-integer column index {index!r}")
            index = int(index)
            if not 0 <= index < num_features:
                raise UserError(f"{source}: category '{category}' has column index {index} out of range "
                                f"0..{num_features - 1} ({num_features} features)")
            if index in owner:
                where = "twice" if owner[index] == category else f"and in '{owner[index]}'"
                raise UserError(f"{source}: column {index} is in category '{category}' {where}; "
                                f"each column belongs to exactly one category")
            owner[index] = category
        clean[str(category)] = sorted(int(i) for i in indices)
    if len(owner) != num_features:
        missing = [i for i in range(num_features) if i not in owner]
        shown = ", ".join(map(str, missing[:10])) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise UserError(f"{source}: feature count mismatch: the groups cover {len(owner)} columns but there "
                        f"are {num_features} features; columns in no category: {shown}")
    return clean


def save_groups(path, groups: dict[str, list[int]], num_features: int):
    """Validates, then writes `{"num_features": N, "group_indices": {...}}` atomically."""
    groups = validate_groups(groups, num_features, str(path))
    return save_json(path, {"num_features": int(num_features), "group_indices": groups})


def load_groups(path, num_features: int) -> dict[str, list[int]]:
    """Reads a groups JSON and checks it against the feature count of the data it will be used on."""
    data = load_json(path)
    if "group_indices" not in data:
        raise UserError(f"{path}: no 'group_indices'; expected {{\"num_features\": N, \"group_indices\": {{...}}}}")
    stored = data.get("num_features", num_features)
    if isinstance(stored, bool) or not isinstance(stored, int):
        raise UserError(f"{path}: num_features must be an integer, got {stored!r}")
    if stored != num_features:
        raise UserError(f"{path}: feature count mismatch: the groups were made for {stored} features "
                        f"but the data has {num_features}")
    return validate_groups(data["group_indices"], num_features, str(path))
