"""Real grouped feature tables that scikit-learn ships inside its wheel, in the feature-file layout.

The hierarchical VQ-VAE needs tables whose columns come in semantic groups. The synthetic
demo's categories are independent by construction; a real table's are not, which is what
this module is for. Nothing is downloaded: the tables are files inside the installed
scikit-learn package (`pip install kerasvq[sklearn]`).

- `breast_cancer` (Wisconsin diagnostic, 569 rows × 30 columns): ten measurements of a cell
  nucleus image (radius, texture, perimeter, area, smoothness, compactness, concavity,
  concave points, symmetry, fractal dimension), each aggregated three ways over the nuclei of
  one image: `mean`, `se` (standard error) and `worst` (mean of the three largest). Category =
  measurement, aggregation = mean/se/worst: the same shape as the demo's per-window
  aggregations, and real groups (the three columns of one measurement describe one quantity),
  with strong correlation across groups (radius, perimeter and area are nearly functions of
  each other). sklearn's `wine` (13 unrelated chemical measurements) and `diabetes` (age,
  sex, bmi, blood pressure, six serum values) have no such grouping, so they are not offered.

Example:
    >>> values, registry = sklearn_table("breast_cancer")
    >>> values.shape, registry.category_names()[:3]
    ((569, 30), ('radius', 'texture', 'perimeter'))
"""

from __future__ import annotations

import numpy as np

from kerasvq.common.errors import UserError
from kerasvq.data.features import FeatureRegistry

SKLEARN_TABLES = ("breast_cancer",)


def _load_sklearn(name: str):
    try:
        from sklearn import datasets
    except ImportError:
        raise UserError(f"features sklearn {name}: scikit-learn is not installed; "
                        "pip install scikit-learn (or kerasvq[sklearn])") from None
    return getattr(datasets, f"load_{name}")()


def _breast_cancer_column(name: str) -> tuple[str, str, str]:
    """'mean radius' / 'radius error' / 'worst radius' → (column name, category, aggregation)."""
    if name.startswith("mean "):
        measure, aggregation = name[len("mean "):], "mean"
    elif name.startswith("worst "):
        measure, aggregation = name[len("worst "):], "worst"
    elif name.endswith(" error"):
        measure, aggregation = name[:-len(" error")], "se"
    else:
        raise UserError(f"breast_cancer: unexpected column name {name!r} in this scikit-learn version")
    category = measure.replace(" ", "_")
    return f"{category}.{aggregation}", category, aggregation


def sklearn_table(name: str) -> tuple[np.ndarray, FeatureRegistry]:
    """(values float32 (rows, columns), registry with categories and aggregations) of a shipped table."""
    if name not in SKLEARN_TABLES:
        raise UserError(f"features sklearn: unknown table {name!r}; expected one of {', '.join(SKLEARN_TABLES)}")
    bunch = _load_sklearn(name)
    columns = [_breast_cancer_column(str(c)) for c in bunch.feature_names]
    registry = FeatureRegistry(*(tuple(part) for part in zip(*columns)))
    return np.asarray(bunch.data, np.float32), registry
