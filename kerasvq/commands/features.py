"""`kerasvq features make-demo|sklearn|discover`: synthetic or shipped real feature tables and
their column groups.

Example:
    $ kerasvq features make-demo --out demo.h5 --samples 4000
    $ kerasvq features sklearn breast_cancer --out breast_cancer.h5
    $ kerasvq features discover --features demo.h5 --out groups.json
    $ kerasvq features discover --features demo.h5 --out auto.json --mode auto --num-groups 6
"""

from __future__ import annotations

from pathlib import Path

from kerasvq.common.errors import UserError


def register(subparsers):
    from kerasvq.data.features import DEFAULT_FEATURES_DATASET

    p = subparsers.add_parser("features", help="demo feature tables and per-category column groups")
    sub = p.add_subparsers(dest="action", required=True)
    demo = sub.add_parser("make-demo", help="write a synthetic 6-category feature table with known latents")
    demo.add_argument("--out", required=True, help="HDF5 file to write")
    demo.add_argument("--samples", type=int, default=4000)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--dataset", default=DEFAULT_FEATURES_DATASET)
    demo.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    demo.set_defaults(func=run_make_demo)

    real = sub.add_parser("sklearn", help="write a real grouped table that scikit-learn ships (no download)")
    real.add_argument("table", help="breast_cancer (10 measurements × mean/se/worst)")
    real.add_argument("--out", required=True, help="HDF5 file to write")
    real.add_argument("--dataset", default=DEFAULT_FEATURES_DATASET)
    real.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    real.set_defaults(func=run_sklearn)

    disc = sub.add_parser("discover", help="write the category → column indices JSON of a feature file")
    disc.add_argument("--features", required=True, help="HDF5 feature file (matrix + registry)")
    disc.add_argument("--dataset", default=DEFAULT_FEATURES_DATASET)
    disc.add_argument("--out", required=True, help="groups JSON to write")
    disc.add_argument("--mode", choices=["registry", "auto"], default="registry",
                      help="registry: the registry's categories; auto: cluster columns by |correlation|")
    disc.add_argument("--num-groups", type=int, default=None,
                      help="auto mode: number of groups (default: the registry's category count)")
    disc.add_argument("--seed", type=int, default=0)
    disc.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    disc.set_defaults(func=run_discover)


def _refuse_existing(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise UserError(f"{path}: already exists; pass --overwrite to replace it")


def run_make_demo(args) -> int:
    from kerasvq.data.feature_demo import make_demo_features
    from kerasvq.data.features import write_features

    out = Path(args.out)
    _refuse_existing(out, args.overwrite)
    if args.samples < 2:
        raise UserError(f"--samples must be at least 2, got {args.samples}")
    values, registry, latents = make_demo_features(num_samples=args.samples, seed=args.seed)
    write_features(out, values, registry, dataset=args.dataset, latents=latents, overwrite=args.overwrite)
    categories = registry.category_names()
    print(f"{values.shape[0]} samples × {values.shape[1]} features → {out}:{args.dataset}")
    print(f"{len(categories)} categories: {', '.join(categories)}")
    return 0


def run_sklearn(args) -> int:
    from kerasvq.data.features import write_features
    from kerasvq.data.sklearn_tables import sklearn_table

    out = Path(args.out)
    _refuse_existing(out, args.overwrite)
    values, registry = sklearn_table(args.table)
    write_features(out, values, registry, dataset=args.dataset, overwrite=args.overwrite)
    categories = registry.category_names()
    aggregations = tuple(dict.fromkeys(registry.aggregations))
    print(f"{values.shape[0]} samples × {values.shape[1]} features → {out}:{args.dataset}")
    print(f"{len(categories)} categories × {len(aggregations)} aggregations ({', '.join(aggregations)}): "
          f"{', '.join(categories)}")
    return 0


def run_discover(args) -> int:
    from kerasvq.data.feature_groups import group_agreement, groups_by_correlation, groups_from_registry, save_groups
    from kerasvq.data.features import read_features

    out = Path(args.out)
    _refuse_existing(out, args.overwrite)
    table = read_features(args.features, args.dataset)
    num_features = table.values.shape[1]
    registry_groups = groups_from_registry(table.registry)
    if args.mode == "registry":
        groups = registry_groups
    else:
        k = len(registry_groups) if args.num_groups is None else args.num_groups
        groups = groups_by_correlation(table.values, k, seed=args.seed)
    save_groups(out, groups, num_features)
    width = max(len(name) for name in groups)
    for name, indices in groups.items():
        print(f"{name:{width}s} {len(indices):5d} columns")
    print(f"{len(groups)} groups cover all {num_features} columns once → {out}")
    if args.mode == "auto":
        agreement = group_agreement(groups, registry_groups, num_features)
        print(f"agreement with the registry categories: purity {agreement['purity']:.3f}, "
              f"adjusted Rand {agreement['adjusted_rand']:.3f}")
    return 0
