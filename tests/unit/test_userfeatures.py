"""The serving runtime's handling of a project's features.py: values in, values out, one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlwizard.serving import userfeatures
from mlwizard.serving.userfeatures import Columns, FeaturesError


def test_outputs_are_normalised_as_training_reads_them() -> None:
    numbers = userfeatures.normalise("r", np.array([1.0, np.inf, np.nan]), 3)
    assert numbers.dtype == np.float64 and np.isnan(numbers[1:]).all()  # inf and NaN: missing
    flags = userfeatures.normalise("f", np.array([True, False]), 2)
    assert flags.tolist() == [1.0, 0.0]
    text = userfeatures.normalise("t", np.array(["x", None, np.nan], dtype=object), 3)
    assert text.tolist() == ["x", None, None]
    column = userfeatures.normalise("c", np.ones((2, 1)), 2)  # a column vector is fine
    assert column.shape == (2,)
    with pytest.raises(FeaturesError, match="as a single value for 2 rows"):
        userfeatures.normalise("s", 3.0, 2)


def test_columns_are_read_only_and_their_reads_recorded() -> None:
    columns = Columns({"a": lambda: np.arange(3.0), "b": lambda: np.ones(3)}, {"y": "the target"})
    assert list(columns) == ["a", "b"]
    with pytest.raises(ValueError, match="read-only"):
        columns["a"][0] = 5.0
    with pytest.raises(FeaturesError, match="reads 'y', the target"):
        columns["y"]
    assert columns.read == ["a"]


def test_request_features_are_raw_columns() -> None:
    schema = {
        "features": [
            {"name": "a", "kind": "numeric"},
            {"name": "ratio", "kind": "numeric"},
            {"name": "city", "kind": "categorical"},
        ],
        "derived": {"ratio": ["a", "b"]},
        "raw_inputs": {"a": "number", "b": "number", "code": "string"},
    }
    names = [(f["name"], f["kind"]) for f in userfeatures.request_features(schema)]
    assert names == [
        ("a", "numeric"),
        ("city", "categorical"),
        ("b", "numeric"),
        ("code", "categorical"),
    ]
    assert userfeatures.request_features({"features": schema["features"]}) == schema["features"]


def test_raw_values_arrive_as_training_gave_them() -> None:
    given = userfeatures.raw_columns(
        {"n": [1, None, "2.5", "x"], "s": [1, None, "a", float("nan")]},
        {"n": userfeatures.NUMBER, "s": userfeatures.STRING},
    )
    np.testing.assert_array_equal(given["n"], [1.0, np.nan, 2.5, np.nan])
    assert given["s"].tolist() == ["1", None, "a", None]


def test_a_missing_file_is_no_features(tmp_path: Path) -> None:
    assert userfeatures.load(tmp_path / "features.py") is None
    (tmp_path / "features.py").write_text("x = 1\n")
    with pytest.raises(FeaturesError, match="no derive"):
        userfeatures.load(tmp_path / "features.py")
    (tmp_path / "features.py").write_text("from sklearn import preprocessing\n")
    with pytest.raises(FeaturesError, match="line 1: imports sklearn"):
        userfeatures.load(tmp_path / "features.py")
