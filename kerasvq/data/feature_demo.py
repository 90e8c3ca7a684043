"""A synthetic "state descriptor" feature table with known latent structure per category.

Each of the six categories has its own independent latent factors (standard normal,
`latent_factors` per category). A random two-layer tanh network per category maps them to
`base_features_per_category` base signals; every base signal yields three aggregated
columns, the way a per-window feature is summarized over a sample:

- `<category>.<k>.mean`: a positive log-normal-like level or a signed level with an offset,
  on its own scale (scales span 1e-2..1e3, so normalization matters),
- `<category>.<k>.std`: a positive spread driven by the same latents through other output
  weights of the same network,
- `<category>.<k>.cv`: std / |mean|, with the heavy tail clipped at the 99th percentile.

Columns are ordered aggregation-major (all means, then all stds, then all cvs, each by
category), so a category's 3 × `base_features_per_category` columns are not one range.

Noise (`noise` × the column's spread, multiplicative for positive columns) is added before the
cv is formed. Four or more latents per category under a nonlinear map mean three linear PCA
coefficients per category cannot capture the category, while a small nonlinear
autoencoder can. Deterministic for a seed.

Example:
    >>> values, registry, latents = make_demo_features(num_samples=2000, seed=0)
    >>> values.shape, len(registry.category_names()), latents["temporal"].shape
    ((2000, 360), 6, (2000, 4))
"""

from __future__ import annotations

import numpy as np

from kerasvq.data.features import FeatureRegistry
from kerasvq.common.errors import UserError

DEMO_CATEGORIES = ("temporal", "causality", "invariant_drift", "operator_sensitivity", "nonlinear", "integrated")
AGGREGATIONS = ("mean", "std", "cv")


def _standardize(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(axis=0)) / x.std(axis=0)


def _category_columns(z: np.ndarray, num_base: int, noise: float, hidden: int, rng: np.random.Generator):
    """The (samples, 3 * num_base) mean/std/cv block of one category from its latents `z`."""
    n, k = z.shape
    w1 = rng.normal(0.0, 1.6 / np.sqrt(k), size=(k, hidden))
    b1 = rng.normal(0.0, 0.5, size=hidden)
    h = np.tanh(z @ w1 + b1)
    level = _standardize(h @ rng.normal(size=(hidden, num_base)))
    spread = _standardize(h @ rng.normal(size=(hidden, num_base)))

    scale = 10.0 ** rng.uniform(-2, 3, size=num_base)
    positive = rng.random(num_base) < 0.5
    offset = rng.uniform(2.5, 4.0, size=num_base) * rng.choice([-1.0, 1.0], size=num_base)
    mean = np.where(positive, np.exp(0.6 * level), offset + level) * scale
    mean = mean + noise * mean.std(axis=0) * rng.normal(size=(n, num_base)) * ~positive
    mean = mean * np.exp(noise * rng.normal(size=(n, num_base)) * positive)

    std = scale * rng.uniform(0.2, 1.0, size=num_base) * np.log1p(np.exp(spread))
    std = std * np.exp(noise * rng.normal(size=(n, num_base)))

    cv = std / np.maximum(np.abs(mean), 1e-3 * scale)
    cv = np.minimum(cv, np.percentile(cv, 99, axis=0))
    return np.concatenate([mean, std, cv], axis=1)


def make_demo_features(num_samples: int = 4000, base_features_per_category: int = 20, latent_factors: int = 4,
                       noise: float = 0.05, seed: int = 0, hidden: int = 12,
                       categories: tuple[str, ...] = DEMO_CATEGORIES):
    """Returns (values float32 (samples, categories × base × 3), registry, latents per category)."""
    if num_samples < 2 or base_features_per_category < 1 or latent_factors < 1 or noise < 0:
        raise UserError(f"demo features: need num_samples >= 2, base features >= 1, latent factors >= 1 and "
                        f"noise >= 0 (got {num_samples}, {base_features_per_category}, {latent_factors}, {noise})")
    rng = np.random.default_rng(seed)
    nb = base_features_per_category
    blocks, latents = {}, {}
    for category in categories:
        z = rng.standard_normal((num_samples, latent_factors))
        latents[category] = z.astype(np.float32)
        blocks[category] = _category_columns(z, nb, noise, hidden, rng)
    # Aggregation-major column order (all means, then all stds, then all cvs), as aggregated
    # feature files are usually laid out: a category's columns are not one contiguous range.
    order = [(agg, category) for agg in range(len(AGGREGATIONS)) for category in categories]
    values = np.concatenate([blocks[c][:, a * nb:(a + 1) * nb] for a, c in order], axis=1).astype(np.float32)
    names = tuple(f"{c}.{k:02d}.{AGGREGATIONS[a]}" for a, c in order for k in range(nb))
    cats = tuple(c for a, c in order for _ in range(nb))
    aggs = tuple(AGGREGATIONS[a] for a, c in order for _ in range(nb))
    return values, FeatureRegistry(names, cats, aggs), latents
