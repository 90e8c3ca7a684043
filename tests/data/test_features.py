import itertools
import shutil

import h5py
import numpy as np
import pytest

from kerasvq.cli import main
from kerasvq.data.feature_demo import DEMO_CATEGORIES, make_demo_features
from kerasvq.data.feature_groups import groups_from_registry, load_groups
from kerasvq.data.features import (
    DEFAULT_FEATURES_DATASET,
    FeatureRegistry,
    fit_normalization,
    normalize,
    read_features,
    read_latents,
    write_features,
)
from kerasvq.common.errors import UserError


@pytest.fixture(scope="module")
def demo():
    return make_demo_features(num_samples=2000, seed=0)


@pytest.fixture
def demo_file(tmp_path, demo):
    values, registry, latents = demo
    return write_features(tmp_path / "demo.h5", values, registry, latents=latents)


def one_line_error(match, fn, *args, **kwargs):
    with pytest.raises(UserError, match=match) as info:
        fn(*args, **kwargs)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_round_trip_keeps_values_registry_and_latents(tmp_path, demo, demo_file):
    values, registry, latents = demo
    table = read_features(demo_file)
    assert table.values.dtype == np.float32 and table.values.shape == (2000, 360)
    np.testing.assert_array_equal(table.values, values)
    assert table.registry == registry and table.dataset == DEFAULT_FEATURES_DATASET
    assert table.registry.category_names() == DEMO_CATEGORIES and len(table.registry) == 360
    stored = read_latents(demo_file)
    assert tuple(stored) == DEMO_CATEGORIES
    np.testing.assert_array_equal(stored["nonlinear"], latents["nonlinear"])
    # any dataset path works, with its registry next to it
    other = write_features(tmp_path / "other.h5", values[:5, :3], FeatureRegistry(("a", "b", "c"), ("x", "x", "y"),
                           ("mean", "std", "cv")), dataset="/custom/matrix")
    assert read_features(other, "/custom/matrix").registry.names == ("a", "b", "c")
    assert not list(tmp_path.glob(".*.tmp"))


def test_write_refuses_to_overwrite_and_bad_values_leave_files_alone(tmp_path, demo, demo_file):
    values, registry, _ = demo
    before = demo_file.read_bytes()
    one_line_error(r"demo\.h5: already exists", write_features, demo_file, values, registry)
    bad = values.copy()
    bad[3, 7] = np.nan
    one_line_error(r"row 3, column 7 \('temporal\.07\.mean'\)", write_features, demo_file, bad, registry,
                   overwrite=True)
    one_line_error(r"359 columns but the registry lists 360", write_features, demo_file, values[:, 1:], registry,
                   overwrite=True)
    assert demo_file.read_bytes() == before and not list(tmp_path.glob(".*.tmp"))
    write_features(demo_file, values[:10], registry, overwrite=True)
    assert read_features(demo_file).values.shape == (10, 360)


def _edited_copy(src, dst, edit):
    shutil.copy(src, dst)
    with h5py.File(dst, "a") as f:
        edit(f)
    return dst


def test_read_rejects_bad_files_with_one_line_errors(tmp_path, demo_file):
    ds, reg = DEFAULT_FEATURES_DATASET, DEFAULT_FEATURES_DATASET + "_registry"
    one_line_error(r"missing\.h5: file not found", read_features, tmp_path / "missing.h5")
    msg = one_line_error("no dataset '/features/other'", read_features, demo_file, "/features/other")
    assert "demo.h5" in msg
    no_reg = _edited_copy(demo_file, tmp_path / "noreg.h5", lambda f: f.__delitem__(reg))
    assert "noreg.h5" in one_line_error("no feature registry", read_features, no_reg)

    def shorten_registry(f):
        rows = f[reg][()][:-2]
        del f[reg]
        f.create_dataset(reg, data=rows)

    short = _edited_copy(demo_file, tmp_path / "short.h5", shorten_registry)
    one_line_error("360 columns but the registry lists 358", read_features, short)

    def poison(f):
        f[ds][1500, 200] = np.inf
        f[ds][1200, 250] = np.nan

    nan = _edited_copy(demo_file, tmp_path / "nan.h5", poison)
    name = read_features(demo_file).registry.names[250]
    one_line_error(rf"row 1200, column 250 \('{name}'\); 2 non-finite", read_features, nan)
    text = tmp_path / "text.h5"
    text.write_text("not hdf5")
    one_line_error("not a readable HDF5 file", read_features, text)


def test_normalization_floors_constant_columns():
    values = np.array([[1.0, 5.0, 1e6], [3.0, 5.0, 1e6 + 1e-3], [5.0, 5.0, 1e6]], dtype=np.float32)
    mean, std = fit_normalization(values)
    out = normalize(values, mean, std)
    assert np.all(np.isfinite(out)) and np.allclose(out[:, 1:], 0.0)
    np.testing.assert_allclose(out[:, 0], [-1.2247, 0.0, 1.2247], atol=1e-4)


def _poly(z, degree):
    cols = [np.ones(len(z))]
    for d in range(1, degree + 1):
        cols += [np.prod(z[:, list(c)], axis=1) for c in itertools.combinations_with_replacement(range(z.shape[1]), d)]
    return np.stack(cols, axis=1)


def test_demo_is_deterministic_scaled_and_has_nonlinear_structure(demo):
    values, registry, latents = demo
    again, _, _ = make_demo_features(num_samples=2000, seed=0)
    np.testing.assert_array_equal(values, again)
    assert not np.array_equal(values, make_demo_features(num_samples=2000, seed=1)[0])
    assert np.isfinite(values).all() and set(registry.aggregations) == {"mean", "std", "cv"}
    spread = values.std(axis=0)
    assert spread.max() / spread.min() > 1e4  # columns on very different scales
    train, test = slice(0, 1500), slice(1500, None)
    x = normalize(values, *fit_normalization(values[train]))
    for category, columns in groups_from_registry(registry).items():
        assert latents[category].shape == (2000, 4)
        xtr, xte = x[train][:, columns], x[test][:, columns]
        center = xtr.mean(axis=0)
        total = ((xte - xte.mean(axis=0)) ** 2).sum()
        basis = np.linalg.svd(xtr - center, full_matrices=False)[2][:3]
        pca3 = 1 - ((xte - center - (xte - center) @ basis.T @ basis) ** 2).sum() / total
        design = _poly(latents[category].astype(np.float64), 3)
        coef = np.linalg.lstsq(design[train], xtr, rcond=None)[0]
        from_latents = 1 - ((xte - design[test] @ coef) ** 2).sum() / total
        # three linear coefficients miss much of the category; its own latents explain most of it
        assert pca3 < 0.8 and from_latents > 0.85 and from_latents - pca3 > 0.1, (category, pca3, from_latents)


def test_cli_make_demo_and_discover(tmp_path, capsys):
    out = tmp_path / "demo.h5"
    assert main(["features", "make-demo", "--out", str(out), "--samples", "600", "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    assert "600 samples × 360 features" in printed and "operator_sensitivity" in printed
    before = out.read_bytes()
    assert main(["features", "make-demo", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err and out.read_bytes() == before

    groups_file = tmp_path / "groups.json"
    assert main(["features", "discover", "--features", str(out), "--out", str(groups_file)]) == 0
    printed = capsys.readouterr().out
    assert printed.count(" 60 columns") == 6 and "temporal" in printed
    groups = load_groups(groups_file, 360)
    assert list(groups) == list(DEMO_CATEGORIES)
    assert sorted(i for idx in groups.values() for i in idx) == list(range(360))
    assert all(len(idx) == 60 for idx in groups.values())

    saved = groups_file.read_text()
    assert main(["features", "discover", "--features", str(out), "--out", str(groups_file), "--mode", "auto"]) == 2
    assert "already exists" in capsys.readouterr().err and groups_file.read_text() == saved
    auto_file = tmp_path / "auto.json"
    assert main(["features", "discover", "--features", str(out), "--out", str(auto_file), "--mode", "auto"]) == 0
    assert "purity 1.000" in capsys.readouterr().out
    assert sorted(load_groups(auto_file, 360)) == [f"group_{i}" for i in range(6)]

    missing = tmp_path / "x.json"
    assert main(["features", "discover", "--features", str(out), "--dataset", "/nope", "--out", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "/nope" in err and "demo.h5" in err and not missing.exists()


def test_cli_sklearn_writes_the_real_breast_cancer_table(tmp_path, capsys):
    pytest.importorskip("sklearn")
    out = tmp_path / "bc.h5"
    assert main(["features", "sklearn", "breast_cancer", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "569 samples × 30 features" in printed and "10 categories × 3 aggregations (mean, se, worst)" in printed
    table = read_features(out)
    groups = groups_from_registry(table.registry)
    assert len(groups) == 10 and groups["radius"] == [0, 10, 20] and groups["concave_points"] == [7, 17, 27]
    assert table.registry.names[:2] == ("radius.mean", "texture.mean") and table.registry.names[20] == "radius.worst"
    assert set(table.registry.aggregations) == {"mean", "se", "worst"}
    before = out.read_bytes()
    assert main(["features", "sklearn", "breast_cancer", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err and out.read_bytes() == before
    assert main(["features", "sklearn", "wine", "--out", str(tmp_path / "w.h5")]) == 2
    assert "unknown table 'wine'" in capsys.readouterr().err and not (tmp_path / "w.h5").exists()
