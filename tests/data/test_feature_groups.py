import json

import pytest

from kerasvq.data.feature_demo import make_demo_features
from kerasvq.data.feature_groups import (
    group_agreement,
    groups_by_correlation,
    groups_from_registry,
    load_groups,
    save_groups,
    validate_groups,
)
from kerasvq.data.features import FeatureRegistry
from kerasvq.common.errors import UserError


def one_line_error(match, fn, *args):
    with pytest.raises(UserError, match=match) as info:
        fn(*args)
    assert "\n" not in str(info.value)


def test_registry_groups_put_all_aggregations_of_a_category_together():
    registry = FeatureRegistry(("a.mean", "b.mean", "a.std", "b.std", "a.cv"), ("A", "B", "A", "B", "A"),
                               ("mean", "mean", "std", "std", "cv"))
    assert groups_from_registry(registry) == {"A": [0, 2, 4], "B": [1, 3]}


def test_auto_mode_recovers_the_demo_categories():
    values, registry, _ = make_demo_features(num_samples=1500, seed=2)
    truth = groups_from_registry(registry)
    found = groups_by_correlation(values, 6, seed=0)
    assert list(found) == [f"group_{i}" for i in range(6)]
    validate_groups(found, 360, "auto")
    agreement = group_agreement(found, truth, 360)
    assert agreement["purity"] >= 0.9 and agreement["adjusted_rand"] >= 0.9, agreement
    assert group_agreement(found, found, 360) == {"purity": 1.0, "adjusted_rand": 1.0}
    assert groups_by_correlation(values, 6, seed=0) == found
    one_line_error("num_groups must be between 1 and the feature count 360, got 0", groups_by_correlation, values, 0)


def test_validation_names_source_category_and_index():
    good = {"A": [0, 2], "B": [1, 3]}
    assert validate_groups({"A": [2, 0], "B": [3, 1]}, 4, "g.json") == good
    one_line_error(r"g\.json: category 'B' has column index 4 out of range 0\.\.3", validate_groups,
                   {"A": [0, 2], "B": [1, 4]}, 4, "g.json")
    one_line_error(r"g\.json: category 'B' has column index -1 out of range", validate_groups,
                   {"A": [0, 2], "B": [-1, 3]}, 4, "g.json")
    one_line_error(r"g\.json: column 2 is in category 'B' and in 'A'", validate_groups,
                   {"A": [0, 2], "B": [1, 2, 3]}, 4, "g.json")
    one_line_error(r"column 0 is in category 'A' twice", validate_groups, {"A": [0, 0, 2], "B": [1, 3]}, 4, "g.json")
    one_line_error(r"g\.json: feature count mismatch: the groups cover 3 columns but there are 4 features; "
                   r"columns in no category: 3", validate_groups, {"A": [0, 2], "B": [1]}, 4, "g.json")
    one_line_error(r"category 'A' has a non-integer column index 1\.5", validate_groups, {"A": [1.5]}, 2, "g.json")
    one_line_error(r"category 'B' must list at least one", validate_groups, {"A": [0, 1], "B": []}, 2, "g.json")
    one_line_error(r"non-empty mapping", validate_groups, [], 2, "g.json")


def test_groups_json_round_trip_and_count_mismatch(tmp_path):
    path = tmp_path / "groups.json"
    save_groups(path, {"A": [0, 2], "B": [1, 3]}, 4)
    assert json.loads(path.read_text()) == {"num_features": 4, "group_indices": {"A": [0, 2], "B": [1, 3]}}
    assert load_groups(path, 4) == {"A": [0, 2], "B": [1, 3]}
    one_line_error(r"groups\.json: feature count mismatch: the groups were made for 4 features but the data has 5",
                   load_groups, path, 5)
    before = path.read_text()
    one_line_error(r"groups\.json: column 1 is in category 'B' and in 'A'", save_groups, path,
                   {"A": [0, 1], "B": [1, 2, 3]}, 4)
    assert path.read_text() == before
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"num_features": 3, "group_indices": {"A": [0, 1], "B": [5]}}))
    one_line_error(r"bad\.json: category 'B' has column index 5 out of range", load_groups, bad, 3)
    bad.write_text(json.dumps({"num_features": 3}))
    one_line_error(r"bad\.json: no 'group_indices'", load_groups, bad, 3)
    one_line_error(r"missing\.json: file not found", load_groups, tmp_path / "missing.json", 3)
