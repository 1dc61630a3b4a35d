"""Splits: stratified/random, by time (no overlap, ties on one side) and by group (no sharing)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from helpers.frames import synthetic_frame
from mlwizard.core import runner
from mlwizard.core.data.splits import (
    SPLITS,
    TEST,
    TRAIN,
    VALID,
    assign_group_splits,
    assign_splits,
    assign_time_splits,
    check_fractions,
)
from mlwizard.core.kernel.config import update_config_file
from mlwizard.core.kernel.errors import BadInputError

# -- the functions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("valid", "test", "fragment"),
    [(0.0, 0.2, "valid_fraction = 0.0"), (0.2, 1.0, "test_fraction"), (0.5, 0.5, "below 1")],
)
def test_bad_fractions_are_refused(valid: float, test: float, fragment: str) -> None:
    with pytest.raises(BadInputError, match=fragment.replace("[", r"\[")):
        check_fractions(valid, test)


def test_stratified_split_keeps_class_shares_and_is_seeded() -> None:
    labels = np.array(["a"] * 700 + ["b"] * 300)
    first = assign_splits(labels, len(labels), 0.2, 0.2, seed=7)
    assert np.array_equal(first, assign_splits(labels, len(labels), 0.2, 0.2, seed=7))
    assert not np.array_equal(first, assign_splits(labels, len(labels), 0.2, 0.2, seed=8))
    for split in (TRAIN, VALID, TEST):
        assert np.mean(labels[first == split] == "b") == pytest.approx(0.3, abs=0.01)


@pytest.mark.parametrize("seed", range(5))
def test_time_split_has_no_overlap_even_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    times = rng.integers(0, 60, size=1000)  # about 17 rows per time: many ties at the cuts
    assignment = assign_time_splits(times, 0.2, 0.2)
    train, valid, test = (times[assignment == s] for s in (TRAIN, VALID, TEST))
    assert train.max() < valid.min() <= valid.max() < test.min()
    for part, share in ((train, 0.6), (valid, 0.2), (test, 0.2)):
        assert len(part) / len(times) == pytest.approx(share, abs=0.03)


def test_time_split_on_datetimes() -> None:
    times = np.array(pd.date_range("2024-01-01", periods=100, freq="D").to_numpy())[::-1]
    assignment = assign_time_splits(times, 0.1, 0.3)
    assert (assignment == TEST).sum() == 30 and (assignment == VALID).sum() == 10
    assert times[assignment == TRAIN].max() < times[assignment == VALID].min()


def test_time_split_needs_enough_distinct_times() -> None:
    with pytest.raises(BadInputError, match="too few"):
        assign_time_splits(np.array([1] * 50 + [2] * 50), 0.2, 0.2, column="day")


@pytest.mark.parametrize("seed", range(5))
def test_group_split_never_shares_a_group(seed: int) -> None:
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, 200, size=5000)
    assignment = assign_group_splits(groups, 0.2, 0.2, seed=seed)
    members = [set(groups[assignment == s]) for s in (TRAIN, VALID, TEST)]
    assert not (members[0] & members[1] or members[0] & members[2] or members[1] & members[2])
    for split, share in ((TRAIN, 0.6), (VALID, 0.2), (TEST, 0.2)):
        assert np.mean(assignment == split) == pytest.approx(share, abs=0.03)
    assert np.array_equal(assignment, assign_group_splits(groups, 0.2, 0.2, seed=seed))


def test_group_split_fills_every_split_with_few_groups() -> None:
    groups = np.array([0] * 90 + [1] * 5 + [2] * 5)  # one group holds 90% of the rows
    assignment = assign_group_splits(groups, 0.2, 0.2, seed=0)
    assert set(assignment.tolist()) == {TRAIN, VALID, TEST}
    with pytest.raises(BadInputError, match="at least 3"):
        assign_group_splits(np.array([0, 1] * 10), 0.2, 0.2, seed=0, column="site")


# -- through the data phase -----------------------------------------------------------------------


def split_frames(ws) -> dict[str, pd.DataFrame]:
    return {n: pq.read_table(ws.artifact_dir("data") / f"{n}.parquet").to_pandas() for n in SPLITS}


def run_data(ws) -> dict:
    report = runner.run(ws, ["discovery", "data"])
    assert report.error is None, report.error
    return report.phases["data"].metrics


def dated_frame(n: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    frame = synthetic_frame(n=n)
    frame["when"] = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 90, n), unit="D")
    frame["day"] = rng.integers(0, 40, n)
    frame["patient"] = [f"p{i}" for i in rng.integers(0, 60, n)]
    return frame


@pytest.mark.parametrize("column", ["when", "day"])
def test_time_split_through_the_phase(make_project, column: str) -> None:
    ws = make_project(dated_frame())
    split = {"strategy": "time", "time_column": column, "valid_fraction": 0.15}
    update_config_file(ws.config_path, {"split": split})
    metrics = run_data(ws)
    frames = split_frames(ws)
    assert frames["train"][column].max() < frames["valid"][column].min()
    assert frames["valid"][column].max() < frames["test"][column].min()
    assert metrics["split_strategy"] == "time"
    assert column not in metrics["features"] and "time split" in metrics["excluded_columns"][column]
    assert metrics["splits"]["valid"]["rows"] == pytest.approx(0.15 * 600, abs=25)
    assert metrics["splits"]["test"]["time_range"][1] == str(frames["test"][column].max())


def test_group_split_through_the_phase(make_project) -> None:
    ws = make_project(dated_frame())
    update_config_file(ws.config_path, {"split": {"strategy": "group", "group_column": "patient"}})
    metrics = run_data(ws)
    frames = split_frames(ws)
    members = [set(frames[n]["patient"]) for n in SPLITS]
    assert not (members[0] & members[1] or members[0] & members[2] or members[1] & members[2])
    assert metrics["split_strategy"] == "group"
    assert sum(metrics["splits"][n]["groups"] for n in SPLITS) == 60
    assert metrics["splits"]["test"]["rows"] == pytest.approx(120, abs=30)
    assert "class_balance" in metrics["splits"]["test"]


def test_regression_splits_at_random(make_project) -> None:
    metrics = run_data(make_project(synthetic_frame(task="regression")))
    assert metrics["split_strategy"] == "random"
    assert [metrics["splits"][n]["rows"] for n in SPLITS] == [240, 80, 80]


@pytest.mark.parametrize(
    ("split", "fragment"),
    [
        ({"strategy": "time"}, "[split] time_column"),
        ({"strategy": "group"}, "[split] group_column"),
        ({"strategy": "time", "time_column": "nope"}, "time_column = 'nope' is not a column"),
        ({"strategy": "group", "group_column": "label"}, "is the target"),
        ({"strategy": "time", "time_column": "colour"}, "not a date/time or number"),
        ({"test_fraction": 0.9}, "must be below 1"),
    ],
)
def test_split_config_errors_are_one_line(make_project, split: dict, fragment: str) -> None:
    ws = make_project(dated_frame())
    update_config_file(ws.config_path, {"split": split})
    report = runner.run(ws, ["discovery", "data"])
    assert isinstance(report.error, BadInputError), report.error
    assert fragment in str(report.error) and "\n" not in str(report.error)


def test_time_column_with_missing_times_is_refused(make_project) -> None:
    frame = dated_frame()
    frame.loc[:4, "when"] = pd.NaT
    ws = make_project(frame)
    update_config_file(ws.config_path, {"split": {"strategy": "time", "time_column": "when"}})
    report = runner.run(ws, ["discovery", "data"])
    assert isinstance(report.error, BadInputError) and "5 rows" in str(report.error)
    assert not (ws.artifact_dir("data") / "train.parquet").exists()


def test_text_dates_split_by_time_once_declared_datetime(make_project) -> None:
    frame = dated_frame()
    frame["when"] = frame["when"].dt.strftime("%d/%m/%Y %H:%M")  # not ISO: read as text
    ws = make_project(frame)
    update_config_file(ws.config_path, {"split": {"strategy": "time", "time_column": "when"}})
    assert isinstance(runner.run(ws, ["discovery", "data"]).error, BadInputError)
    frame["when"] = dated_frame()["when"].dt.strftime("%Y/%m/%d")
    ws = make_project(frame, name="iso")
    update_config_file(
        ws.config_path,
        {
            "split": {"strategy": "time", "time_column": "when"},
            "data": {"types": {"when": "datetime"}},
        },
    )
    run_data(ws)
    frames = split_frames(ws)
    assert frames["train"]["when"].max() < frames["valid"]["when"].min()


def test_stratified_split_refuses_classes_too_small_to_share(make_project) -> None:
    frame = synthetic_frame()
    frame["label"] = [f"c{i}" for i in range(len(frame))]  # every row its own class
    report = runner.run(make_project(frame), ["discovery", "data"])
    assert isinstance(report.error, BadInputError) and "too small to share" in str(report.error)
