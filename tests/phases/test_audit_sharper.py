"""The sharper leakage audit (issue 12): relative leaks, numeric codes, time and row order; and
the data phase's one read of the source, interrupted by a cancel."""

from __future__ import annotations

import threading

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from helpers.frames import synthetic_frame
from mlwizard.core import runner
from mlwizard.core.kernel.config import update_config_file
from mlwizard.core.kernel.errors import CancelledError

N = 1200


def run_data(ws) -> dict:
    report = runner.run(ws, ["discovery", "data"])
    assert report.error is None, report.error
    return report.phases["data"].metrics


def findings(metrics: dict, rule: str) -> list[dict]:
    return [f for f in metrics["findings"] if f["rule"] == rule]


def severity_table(seed: int = 0) -> pd.DataFrame:
    """A binary outcome; `severity` is a code 1-8 whose value 8 is (mostly) the outcome itself:
    alone it scores ROC AUC about 0.97, under the absolute bar of 0.98, while the real features
    score 0.6-0.7."""
    rng = np.random.default_rng(seed)
    died = rng.random(N) < 0.3
    severity = rng.integers(1, 8, N)
    severity[died & (rng.random(N) < 0.94)] = 8
    return pd.DataFrame(
        {
            "age": np.round(rng.normal(60, 12, N) + 6 * died, 1),
            "dose": np.round(rng.normal(size=N) + 0.4 * died, 3),
            "ward": rng.choice(["a", "b", "c"], N),
            "severity": severity,
            "outcome": np.where(died, "died", "lived"),
        }
    )


def test_a_leak_that_is_only_relatively_strong_is_excluded(make_project) -> None:
    metrics = run_data(make_project(severity_table(), target="outcome"))
    (leak,) = findings(metrics, "target_leakage")
    assert leak["column"] == "severity" and "far above every other feature" in leak["message"]
    score = float(leak["message"].split("ROC AUC ")[1].split(" ")[0])
    assert 0.95 <= score < 0.98  # under the absolute bar: only the relative rule catches it
    assert "next best" in leak["message"] and "list" in leak["action"]
    assert "severity" not in metrics["features"]
    assert set(metrics["features"]) == {"age", "dose", "ward"}  # the real signal stays


def test_the_strongest_real_feature_is_not_flagged(make_project, demo_csv) -> None:
    """Penguins: several measurements separate the species well; none stands alone."""
    metrics = run_data(make_project(demo_csv, target="species"))
    assert findings(metrics, "target_leakage") == []
    assert {"bill_length_mm", "flipper_length_mm", "body_mass_g"} <= set(metrics["features"])


def test_a_numeric_code_is_also_tested_as_categories(make_project) -> None:
    """Stage 1-5 where stages 2 and 4 (not an order) are the positive class: as numbers the
    quantile bins still see it, but each code value mapping to one class is what says leak."""
    frame = synthetic_frame(n=600)
    rng = np.random.default_rng(4)
    positive = frame["label"] == "yes"
    frame["stage"] = np.where(positive, rng.choice([2, 4], 600), rng.choice([1, 3, 5], 600))
    metrics = run_data(make_project(frame))
    (leak,) = findings(metrics, "target_leakage")
    assert leak["column"] == "stage" and "maps to a single class" in leak["message"]


def test_a_random_split_of_timed_rows_recommends_the_time_split(make_project) -> None:
    frame = synthetic_frame(n=300)
    frame["signed_up"] = pd.date_range("2024-01-01", periods=300, freq="D").strftime("%Y-%m-%d")
    metrics = run_data(make_project(frame))
    (finding,) = findings(metrics, "random_split_over_time")
    assert finding["column"] == "signed_up" and finding["severity"] == "warning"
    assert 'strategy = "time"' in finding["action"] and '"signed_up"' in finding["action"]
    assert "optimistic" in finding["message"]


def test_an_identifier_that_sorts_with_the_target_is_flagged(make_project) -> None:
    frame = synthetic_frame(n=400).sort_values("label", kind="stable").reset_index(drop=True)
    frame.insert(0, "record_id", [f"R{i:05d}" for i in range(len(frame))])
    metrics = run_data(make_project(frame))
    (finding,) = findings(metrics, "row_order_leakage")
    assert finding["column"] == "record_id" and "sorts with the target" in finding["message"]
    assert "record_id" in metrics["excluded_columns"]  # identifiers stay excluded
    shuffled = frame.sample(frac=1.0, random_state=0)
    shuffled["record_id"] = [f"R{i:05d}" for i in range(len(shuffled))]
    quiet = run_data(make_project(shuffled, name="shuffled"))
    assert findings(quiet, "row_order_leakage") == []


def test_the_snapshot_holds_every_row_and_column_as_read(make_project) -> None:
    """The one read: the source lands whole in the content-hashed snapshot the phase scans."""
    frame = synthetic_frame(n=200)
    frame["customer_id"] = [f"C{i}" for i in range(200)]  # excluded, but in the snapshot
    ws = make_project(frame)
    run_data(ws)
    outputs = ws.read_checkpoint("data").outputs
    snapshot = pq.read_table(ws.resolve(outputs["snapshot"])).to_pandas()
    assert list(snapshot.columns) == list(frame.columns) and len(snapshot) == 200
    assert snapshot["customer_id"].tolist() == frame["customer_id"].tolist()
    assert outputs["snapshot"].endswith(".parquet") and "snapshot-" in outputs["snapshot"]


def test_cancelling_interrupts_a_running_duckdb_query() -> None:
    from mlwizard.core.ingest.common import interrupt_on

    con = duckdb.connect()
    cancel = threading.Event()
    timer = threading.Timer(0.3, cancel.set)
    timer.start()
    try:
        with (
            pytest.raises(CancelledError, match="cancelled"),
            interrupt_on(con, cancel, "phase data cancelled"),
        ):
            # Hours of work: only the interrupt ends it.
            con.execute("SELECT count(*) FROM range(1000000000000) a").fetchall()
    finally:
        timer.cancel()
    assert con.execute("SELECT 42").fetchall() == [(42,)]  # the connection is still usable


def test_a_time_split_reports_label_shift_and_missing_classes(make_project) -> None:
    rng = np.random.default_rng(2)
    n = 400
    frame = synthetic_frame(n=n)
    frame["day"] = pd.date_range("2023-01-01", periods=n, freq="D").strftime("%Y-%m-%d")
    # Outcomes change over time: mostly "no" early, mostly "yes" late; "maybe" only early on.
    late = np.arange(n) / n
    frame["label"] = np.where(rng.random(n) < late, "yes", "no")
    frame.loc[rng.choice(200, 30, replace=False), "label"] = "maybe"
    ws = make_project(frame)
    update_config_file(ws.config_path, {"split": {"strategy": "time", "time_column": "day"}})
    metrics = run_data(ws)
    (shift,) = findings(metrics, "label_shift")
    assert "train and test" in shift["message"] or "train and valid" in shift["message"]
    missing = findings(metrics, "class_missing_from_split")
    assert missing and all("'maybe'" in f["message"] for f in missing)
    assert metrics["splits"]["test"]["class_counts"]["maybe"] == 0
