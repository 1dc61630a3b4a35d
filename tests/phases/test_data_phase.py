"""Discovery and data phases on real files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from helpers.frames import synthetic_frame
from mlwizard.core import runner
from mlwizard.core.contract.schema import Schema
from mlwizard.core.kernel.config import update_config_file
from mlwizard.core.kernel.errors import BadInputError


def run_data(ws) -> runner.RunReport:
    report = runner.run(ws, ["discovery", "data"])
    assert report.error is None, report.error
    return report


@pytest.mark.parametrize(
    ("task", "metric"),
    [("binary", "roc_auc"), ("multiclass", "f1_macro"), ("regression", "r2")],
)
def test_task_and_metric_are_inferred(make_project, task: str, metric: str) -> None:
    ws = make_project(synthetic_frame(task=task))
    discovery = run_data(ws).phases["discovery"].metrics
    assert (discovery["task"], discovery["metric"]) == (task, metric)


def test_demo_data_reads_na_as_missing_and_splits_stratified(make_project, demo_csv) -> None:
    ws = make_project(demo_csv, target="species")
    data = run_data(ws).phases["data"]
    schema = Schema.load(ws.resolve(ws.read_checkpoint("data").outputs["schema"]))
    kinds = {f.name: f.kind for f in schema.features}
    assert kinds["bill_length_mm"] == "numeric"  # "NA" did not turn the column into text
    assert kinds["island"] == "categorical" and schema.classes == ["Adelie", "Chinstrap", "Gentoo"]
    splits = data.metrics["splits"]
    assert sum(s["rows"] for s in splits.values()) == data.metrics["rows_used"] == 344
    for name in ("valid", "test"):
        for cls, share in splits[name]["class_balance"].items():
            assert share == pytest.approx(splits["train"]["class_balance"][cls], abs=0.03)


def test_split_is_reproducible_and_disjoint(make_project, tmp_path) -> None:
    frame = synthetic_frame().reset_index(names="row_id")
    frame["row_id"] = frame["row_id"].astype(float)  # numeric: kept as a feature, traceable
    first, second = make_project(frame, name="a"), make_project(frame, name="b")
    run_data(first), run_data(second)
    for name in ("train", "valid", "test"):
        a = pq.read_table(first.artifact_dir("data") / f"{name}.parquet").to_pandas()
        b = pq.read_table(second.artifact_dir("data") / f"{name}.parquet").to_pandas()
        pd.testing.assert_frame_equal(a, b)
    ids = [
        set(pq.read_table(first.artifact_dir("data") / f"{n}.parquet")["row_id"].to_pylist())
        for n in ("train", "valid", "test")
    ]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert len(ids[0] | ids[1] | ids[2]) == len(frame)


def test_useless_columns_are_excluded_with_reasons(make_project) -> None:
    frame = synthetic_frame()
    frame["customer_id"] = [f"C{i:05d}" for i in range(len(frame))]
    frame["constant"] = "same"
    frame["empty"] = np.nan
    frame.loc[:4, "label"] = None  # missing targets are dropped, with a warning
    ws = make_project(frame)
    metrics = run_data(ws).phases["data"].metrics
    excluded = metrics["excluded_columns"]
    assert set(excluded) == {"customer_id", "constant", "empty"}
    assert "identifier" in excluded["customer_id"] and "constant" in excluded["constant"]
    rules = {(f["rule"], f["column"]) for f in metrics["findings"]}
    assert rules == {
        ("identifier", "customer_id"),
        ("constant_column", "constant"),
        ("empty_column", "empty"),
    }
    assert metrics["types"]["customer_id"] == "identifier"
    assert metrics["rows_used"] == len(frame) - 5
    assert any("missing target" in w for w in metrics["warnings"])


def test_constant_target_is_refused(make_project) -> None:
    frame = synthetic_frame()
    frame["label"] = "yes"
    report = runner.run(make_project(frame), ["discovery"])
    assert isinstance(report.error, BadInputError) and "constant" in str(report.error)


def test_metric_that_does_not_fit_the_task_is_refused(make_project) -> None:
    ws = make_project(synthetic_frame(task="regression"))
    update_config_file(ws.config_path, {"discovery": {"metric": "roc_auc"}})
    report = runner.run(ws, ["discovery"])
    assert isinstance(report.error, BadInputError)
    assert "does not fit a regression task" in str(report.error)


def test_profile_describes_every_column(make_project) -> None:
    ws = make_project(synthetic_frame())
    run_data(ws)
    import json

    profile = json.loads((ws.artifact_dir("data") / "profile.json").read_text())
    outputs = ws.read_checkpoint("data").outputs
    assert {"profile", "profile_summary", "report"} <= set(outputs)
    assert "<svg" in ws.resolve(outputs["report"]).read_text()
    assert profile["rows"] == 400
    x1 = profile["columns"]["x1"]
    assert x1["numeric"] and 0 < x1["nulls"] < 80 and x1["min"] < x1["mean"] < x1["max"]
    assert set(x1["quantiles"]) == {"0.05", "0.25", "0.5", "0.75", "0.95"}
    assert set(profile["columns"]["colour"]["top"]) <= {"red", "green", "blue"}


def test_lineage_records_each_new_version(make_project) -> None:
    ws = make_project(synthetic_frame())
    first = run_data(ws).phases["data"].metrics["data_version"]
    lineage_path = ws.artifact_dir("data") / "lineage.json"
    lineage = json.loads(lineage_path.read_text())
    current = lineage["current"]
    assert current["version"] == first and current["rows"] == 400 and lineage["history"] == []
    assert current["source"].endswith("project-input.csv") and current["config"]["split"]
    assert (ws.root / current["snapshot"]).is_file()

    update_config_file(ws.config_path, {"split": {"test_fraction": 0.25}})  # new config
    second = run_data(ws).phases["data"].metrics["data_version"]
    source = ws.source_path(ws.load_config())
    source.write_text(source.read_text().replace("yes", "YES", 3))  # new data
    third = run_data(ws).phases["data"].metrics["data_version"]
    lineage = json.loads(lineage_path.read_text())
    assert len({first, second, third}) == 3
    assert [lineage["current"]["version"], *(v["version"] for v in lineage["history"])] == [
        third,
        second,
        first,
    ]
