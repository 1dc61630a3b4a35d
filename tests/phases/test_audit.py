"""The quality and leakage audit: each rule fires on data built to trigger it, quiet on clean data.

Table rules run on real CSV/Parquet files through DuckDB (profile + audit scan + types); sample
and split rules run through the data phase on scaffolded projects.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from helpers.frames import synthetic_frame
from mlwizard.cli import app
from mlwizard.core import runner
from mlwizard.core.contract.schema import Schema
from mlwizard.core.data import audit, coltypes
from mlwizard.core.data.audit import Finding, TableFacts
from mlwizard.core.data.profile import profile_dataset
from mlwizard.core.ingest import sources
from mlwizard.core.kernel.config import DEFAULT_NA_VALUES, update_config_file
from mlwizard.core.kernel.errors import BadInputError, QualityGateError

N = 400


def table_audit(
    con, relation, target: str = "label", task: str = "binary", types=None
) -> list[Finding]:
    profile = profile_dataset(con, relation)
    scan = audit.scan_table(relation)
    inferred = coltypes.infer_types(profile, scan, types or {})
    facts = TableFacts(profile["rows"], target, task, profile["columns"], scan, inferred)
    return audit.table_findings(facts)


def audit_frame(tmp_path: Path, frame: pd.DataFrame, target: str = "label", task: str = "binary"):
    path = tmp_path / "data.parquet"
    frame.to_parquet(path, index=False)
    con = sources.connect()
    return table_audit(con, sources.read_table(con, path, DEFAULT_NA_VALUES), target, task)


def fired(findings: list[Finding], rule: str) -> list[Finding]:
    return [f for f in findings if f.rule == rule]


def run_data(ws) -> runner.RunReport:
    report = runner.run(ws, ["discovery", "data"])
    assert report.error is None, report.error
    return report


# -- clean data ---------------------------------------------------------------------------------


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_clean_data_has_no_findings(make_project, task: str) -> None:
    ws = make_project(synthetic_frame(task=task))
    metrics = run_data(ws).phases["data"].metrics
    assert metrics["findings"] == []
    assert metrics["excluded_columns"] == {}
    report = json.loads((ws.artifact_dir("data") / "audit.json").read_text())
    assert report["passed"] and report["findings"] == []
    assert ws.read_checkpoint("data").outputs["audit"] == "artifacts/data/audit.json"


def test_demo_data_has_no_error_or_warning(make_project, demo_csv) -> None:
    metrics = run_data(make_project(demo_csv, target="species")).phases["data"].metrics
    assert [f for f in metrics["findings"] if f["severity"] != "info"] == []
    assert metrics["excluded_columns"] == {}


# -- table rules on real files ------------------------------------------------------------------


def test_empty_table(tmp_path: Path) -> None:
    path = tmp_path / "empty.parquet"
    synthetic_frame().head(0).to_parquet(path, index=False)
    con = sources.connect()
    findings = table_audit(con, con.read_parquet(str(path)))
    assert [(f.rule, f.severity) for f in findings] == [("empty_table", "error")]


def test_target_missing(tmp_path: Path) -> None:
    findings = audit_frame(tmp_path, synthetic_frame().drop(columns="label"))
    assert [(f.rule, f.severity, f.column) for f in findings] == [
        ("target_missing", "error", "label")
    ]
    assert "x1" in findings[0].action


def test_target_constant(tmp_path: Path) -> None:
    frame = synthetic_frame().assign(label="yes")
    assert fired(audit_frame(tmp_path, frame), "target_constant")[0].severity == "error"


def test_target_mostly_null_warns_and_all_null_is_an_error(tmp_path: Path) -> None:
    frame = synthetic_frame()
    frame.loc[: int(0.6 * N), "label"] = None
    (finding,) = fired(audit_frame(tmp_path, frame), "target_mostly_null")
    assert finding.severity == "warning" and "dropped" in finding.message
    frame["label"] = None
    assert fired(audit_frame(tmp_path, frame), "target_mostly_null")[0].severity == "error"


def test_target_infinite(tmp_path: Path) -> None:
    frame = synthetic_frame(task="regression")
    frame.loc[:2, "label"] = np.inf
    (finding,) = fired(audit_frame(tmp_path, frame, task="regression"), "target_infinite")
    assert finding.severity == "error" and finding.message.startswith("3 target values")


def test_duplicate_rows(tmp_path: Path) -> None:
    frame = pd.concat([synthetic_frame(), synthetic_frame().head(20)], ignore_index=True)
    (finding,) = fired(audit_frame(tmp_path, frame), "duplicate_rows")
    assert finding.severity == "warning" and finding.message.startswith("20 rows")


def test_empty_and_constant_columns_are_excluded(tmp_path: Path) -> None:
    frame = synthetic_frame().assign(empty=np.nan, constant="same")
    findings = audit_frame(tmp_path, frame)
    (empty,) = fired(findings, "empty_column")
    (constant,) = fired(findings, "constant_column")
    assert (empty.column, constant.column) == ("empty", "constant")
    assert "missing" in empty.exclude and "constant" in constant.exclude


def test_identifier_columns(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frame = synthetic_frame().assign(
        customer_id=[f"C{i:05d}" for i in range(N)],  # unique strings
        user_id=rng.permutation(N) * 7 + 1000,  # unique integers named like a key
        row=np.arange(N),  # unique integers filling their range: a row number
        amount_cents=rng.permutation(N) * 37,  # unique integers, sparse, not named: numeric
    )
    findings = fired(audit_frame(tmp_path, frame), "identifier")
    assert {f.column for f in findings} == {"customer_id", "user_id", "row"}
    assert all(f.severity == "warning" and "identifier" in f.exclude for f in findings)


def test_high_cardinality(tmp_path: Path) -> None:
    frame = synthetic_frame(n=1000).assign(zip=[f"z{i % 300}" for i in range(1000)])
    (finding,) = fired(audit_frame(tmp_path, frame), "high_cardinality")
    assert finding.column == "zip" and finding.severity == "warning"


def test_mixed_types(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    mostly = [str(round(v, 2)) for v in rng.normal(size=N)]
    half = list(mostly)
    for i in range(0, N, 20):
        mostly[i] = "?"  # 5% strays: read as numbers, strays as missing
    for i in range(0, N, 3):
        half[i] = f"code{i % 7}"  # a third not numbers: stays categorical
    frame = synthetic_frame().assign(mostly=mostly, half=half)
    findings = {f.column: f for f in fired(audit_frame(tmp_path, frame), "mixed_types")}
    assert set(findings) == {"mostly", "half"}
    assert "read as missing" in findings["mostly"].message and "'?'" in findings["mostly"].message
    assert '"numeric"' in findings["half"].action


def test_infinite_values(tmp_path: Path) -> None:
    frame = synthetic_frame()
    frame.loc[:4, "x2"] = np.inf
    (finding,) = fired(audit_frame(tmp_path, frame), "infinite_values")
    assert finding.column == "x2" and finding.message.startswith("5 infinite")


def test_datetime_and_free_text_columns(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    words = np.array(["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog"])
    frame = synthetic_frame().assign(
        signed_up=pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(N), unit="h"),
        review=[" ".join(rng.choice(words, size=8)) for _ in range(N)],
    )
    findings = audit_frame(tmp_path, frame)
    (when,) = fired(findings, "datetime_column")
    (text,) = fired(findings, "free_text")
    assert (when.column, text.column) == ("signed_up", "review")
    # Both stay features: their parts are derived inside the model's graph (issue 12).
    assert when.severity == "info" and not when.exclude and not text.exclude
    assert "time_column" in when.action and "calendar parts" in when.message
    assert "TF-IDF" in text.message


def test_booleans_and_types_are_inferred(tmp_path: Path) -> None:
    frame = synthetic_frame().assign(
        flag=np.arange(N) % 2 == 0,
        answer=np.where(np.arange(N) % 3 == 0, "yes", "no"),
        store_id=np.arange(N) % 30,  # repeated integers named like a key: labels
    )
    path = tmp_path / "types.parquet"
    frame.to_parquet(path, index=False)
    con = sources.connect()
    relation = sources.read_table(con, path)
    profile = profile_dataset(con, relation)
    types = coltypes.infer_types(profile, audit.scan_table(relation), {"x2": "categorical"})
    assert types == {
        "x1": "numeric",
        "x2": "categorical",
        "colour": "categorical",
        "label": "categorical",  # yes/no text stays as written
        "flag": "boolean",  # a Parquet BOOLEAN
        "answer": "categorical",
        "store_id": "categorical",
    }


# -- rules on the sample, the classes and the splits, through the data phase ---------------------


def test_near_constant_and_class_imbalance(make_project) -> None:
    frame = synthetic_frame(n=1000)
    frame["rare"] = np.where(np.arange(1000) < 995, "a", "b")
    frame["label"] = np.where(np.arange(1000) % 40 == 0, "churned", "stayed")
    metrics = run_data(make_project(frame)).phases["data"].metrics
    rules = {(f["rule"], f["column"]): f for f in metrics["findings"]}
    assert rules[("near_constant", "rare")]["severity"] == "info"
    imbalance = rules[("class_imbalance", "label")]
    assert imbalance["severity"] == "warning" and "'churned' has 25 rows" in imbalance["message"]
    assert "rare" in metrics["features"]  # a warning, not an exclusion


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_leaking_column_is_found_and_excluded(make_project, task: str) -> None:
    frame = synthetic_frame(task=task)
    rng = np.random.default_rng(1)
    if task == "regression":
        frame["refund"] = frame["label"] * 3 + rng.normal(scale=0.01, size=N)
    else:
        codes = pd.factorize(frame["label"], sort=True)[0]
        frame["refund"] = codes * 10 + rng.normal(size=N)
    metrics = run_data(make_project(frame)).phases["data"].metrics
    (leak,) = [f for f in metrics["findings"] if f["rule"] == "target_leakage"]
    assert leak["column"] == "refund" and leak["severity"] == "warning"
    assert "target leakage" in metrics["excluded_columns"]["refund"]
    assert "refund" not in metrics["features"]
    assert set(metrics["features"]) == {"x1", "x2", "colour"}  # real signal is not flagged


def test_categorical_that_maps_each_value_to_one_class_leaks(make_project) -> None:
    frame = synthetic_frame(task="multiclass")
    frame["stage"] = frame["label"].map({"low": "s1", "mid": "s2", "high": "s3"})
    metrics = run_data(make_project(frame)).phases["data"].metrics
    (leak,) = [f for f in metrics["findings"] if f["rule"] == "target_leakage"]
    assert leak["column"] == "stage" and "single class" in leak["message"]


def test_leaking_column_is_kept_when_listed_in_keep(make_project) -> None:
    frame = synthetic_frame()
    frame["refund"] = np.where(frame["label"] == "yes", 1.0, 0.0)
    frame["customer_id"] = [f"C{i:05d}" for i in range(N)]
    ws = make_project(frame)
    update_config_file(ws.config_path, {"data": {"keep": ["refund", "customer_id"]}})
    metrics = run_data(ws).phases["data"].metrics
    assert {"refund", "customer_id"} <= set(metrics["features"])
    assert metrics["excluded_columns"] == {}
    leak = next(f for f in metrics["findings"] if f["rule"] == "target_leakage")
    assert "kept" in leak["action"]
    kinds = {f.name: f.kind for f in Schema.load(ws.artifact_dir("data") / "schema.json").features}
    assert kinds["refund"] == "numeric" and kinds["customer_id"] == "categorical"


def test_identifier_is_excluded_and_exclude_drops_any_column(make_project) -> None:
    frame = synthetic_frame().assign(order_id=np.random.default_rng(0).permutation(N) + 10_000)
    ws = make_project(frame)
    update_config_file(ws.config_path, {"data": {"exclude": ["x2"]}})
    metrics = run_data(ws).phases["data"].metrics
    assert "identifier" in metrics["excluded_columns"]["order_id"]
    assert metrics["excluded_columns"]["x2"] == "listed in [data] exclude"
    assert metrics["features"] == ["x1", "colour"]
    assert metrics["types"]["order_id"] == "identifier"


def test_split_leakage_counts_rows_repeated_across_splits(make_project) -> None:
    frame = synthetic_frame()
    frame = pd.concat([frame, frame.head(100)], ignore_index=True)  # 100 exact copies
    metrics = run_data(make_project(frame)).phases["data"].metrics
    (finding,) = [f for f in metrics["findings"] if f["rule"] == "split_leakage"]
    repeated = sum(metrics["splits"][n]["rows_also_in_train"] for n in ("valid", "test"))
    assert finding["severity"] == "warning" and 0 < repeated <= 100
    assert f"{metrics['splits']['test']['rows_also_in_train']} of" in finding["message"]


def test_split_leakage_by_hand_matches_duckdb(tmp_path: Path) -> None:
    train = pd.DataFrame({"a": [1.0, 2.0, None], "b": ["x", None, "z"], "y": [0, 1, 0]})
    test = pd.DataFrame({"a": [1.0, None, 5.0], "b": ["x", "z", "x"], "y": [0, 0, 0]})
    table = pa.Table.from_pandas(pd.concat([train, test], ignore_index=True))
    assignment = np.array([0, 0, 0, 2, 2, 2])
    hashes = audit.row_hashes(sources.connect(), table, ["a", "b", "y"])
    findings, repeated = audit.split_leakage(hashes, assignment)
    assert repeated == {"valid": 0, "test": 2}  # missing values compare equal
    assert findings[0].rule == "split_leakage"


# -- errors stop the pipeline --------------------------------------------------------------------


def test_error_findings_stop_with_exit_1_and_the_list(make_project, tmp_path: Path) -> None:
    frame = synthetic_frame(task="regression")
    frame.loc[:2, "label"] = np.inf
    (tmp_path / "in").mkdir()
    data = tmp_path / "in" / "infinite.parquet"  # CSV sniffing may read 'inf' rows as text
    frame.to_parquet(data, index=False)
    ws = make_project(data)
    result = CliRunner().invoke(app, ["run", "--phase", "all", "-p", str(ws.root)])
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "target_infinite (label)" in errors[0]
    assert "Traceback" not in result.output
    report = json.loads((ws.artifact_dir("data") / "audit.json").read_text())
    assert not report["passed"] and report["findings"][0]["rule"] == "target_infinite"
    assert not (ws.artifact_dir("data") / "train.parquet").exists()  # nothing half-done
    assert ws.read_checkpoint("data").status == "failed"

    again = CliRunner().invoke(app, ["run", "--phase", "all", "-p", str(ws.root), "--json"])
    assert again.exit_code == 1
    data = json.loads(again.stdout)["phases"]["data"]
    assert data["status"] == "failed" and "target_infinite" in data["error"]
    rules = {(f["rule"], f["severity"], f["column"]) for f in data["metrics"]["findings"]}
    assert ("target_infinite", "error", "label") in rules
    assert set(data["metrics"]["findings"][0]) >= {"rule", "severity", "column", "message"}
    assert "excluded_columns" in data["metrics"] and Path(data["artifacts"]["audit"]).is_file()


def test_no_usable_feature_is_an_error(make_project) -> None:
    frame = synthetic_frame()[["label"]].assign(
        ticket=[f"T{i:05d}" for i in range(N)], empty=np.nan
    )
    report = runner.run(make_project(frame), ["discovery", "data"])
    assert isinstance(report.error, QualityGateError) and report.exit_code == 1
    assert "no_features" in str(report.error)


# -- types through the phase ---------------------------------------------------------------------


def test_type_overrides_change_feature_kinds(make_project) -> None:
    rng = np.random.default_rng(0)
    frame = synthetic_frame().assign(
        grade=rng.integers(1, 6, N),  # integers that are really labels
        active=rng.random(N) < 0.5,  # written True/False in the CSV: kept as written
        score=[str(v) if i % 5 else "n/a" for i, v in enumerate(rng.normal(size=N))],
    )
    ws = make_project(frame)
    types = {"grade": "categorical", "score": "numeric", "x2": "identifier"}
    update_config_file(ws.config_path, {"data": {"types": types}})
    metrics = run_data(ws).phases["data"].metrics
    assert {k: metrics["types"][k] for k in (*types, "active")} == {
        **types,
        "active": "categorical",
    }
    kinds = {f.name: f.kind for f in Schema.load(ws.artifact_dir("data") / "schema.json").features}
    assert kinds == {"x1": "numeric", "colour": "categorical", "grade": "categorical",
                     "active": "categorical", "score": "numeric"}  # fmt: skip
    assert "identifier" in metrics["excluded_columns"]["x2"]
    train = pq.read_table(ws.artifact_dir("data") / "train.parquet").to_pandas()
    assert set(train["active"]) == {"True", "False"}  # as the CSV wrote them
    assert train["score"].dtype == np.float64 and train["score"].isna().any()


@pytest.mark.parametrize(
    ("updates", "fragment"),
    [
        ({"data": {"keep": ["nope"]}}, "[data] keep: column 'nope'"),
        ({"data": {"types": {"nope": "numeric"}}}, "[data] types: column 'nope'"),
        ({"data": {"keep": ["x1"], "exclude": ["x1"]}}, "keep and exclude both list 'x1'"),
        ({"data": {"types": {"colour": "numeric"}}}, "none of its values is a number"),
    ],
)
def test_bad_data_config_is_one_line(make_project, updates, fragment: str) -> None:
    ws = make_project(synthetic_frame())
    update_config_file(ws.config_path, updates)
    report = runner.run(ws, ["discovery", "data"])
    assert isinstance(report.error, BadInputError) and fragment in str(report.error)
    assert "\n" not in str(report.error)
