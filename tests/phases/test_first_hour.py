"""Issue 9's data bugs, each on real files written here or shipped in a package: labels as
written whatever the format (4), no numpy reprs in messages (5), library warnings summarised
and time-split findings (7), one path rule (9), decimal commas, string keys and duplicate advice
(10), a wrong-case target (11), and `--table` on the command line."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from mlwizard.cli import app
from mlwizard.core import runner
from mlwizard.core.contract.schema import Schema
from mlwizard.core.deploy.batch import predict_file
from mlwizard.core.kernel.config import update_config_file
from mlwizard.core.kernel.errors import BadInputError
from mlwizard.core.kernel.workspace import Workspace
from mlwizard.core.scaffold import create_project

cli = CliRunner()


def yes_no_table(n: int = 240, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 60, n)
    promo = rng.choice(["Y", "N"], n)
    left = (tenure < 20) ^ (rng.random(n) < 0.15)
    return pd.DataFrame(
        {
            "tenure": tenure,
            "promo": promo,
            "plan": rng.choice(["basic", "pro"], n),
            "churned": np.where(left, "Yes", "No"),
        }
    )


def project_on(tmp_path: Path, name: str, frame: pd.DataFrame, suffix: str, target: str) -> Path:
    source = tmp_path / f"{name}{suffix}"
    if suffix == ".csv":
        frame.to_csv(source, index=False)
    else:
        frame.to_json(source, orient="records", lines=True)
    return create_project(tmp_path / name, data=source, target=target)


def data_metrics(ws: Workspace) -> dict:
    report = runner.run(ws, ["discovery", "data"])
    assert report.error is None, report.error
    return report.phases["data"].metrics


# -- bug 4: labels and values as written, whatever the format ------------------------------------


def test_yes_no_labels_come_back_as_written_from_csv_and_ndjson(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLWIZARD_TUNING_TRIALS", "1")
    frame = yes_no_table()
    csv_ws = Workspace(project_on(tmp_path, "csv", frame, ".csv", "churned"))
    ndjson_ws = Workspace(project_on(tmp_path, "ndjson", frame, ".ndjson", "churned"))
    for ws in (csv_ws, ndjson_ws):
        data_metrics(ws)
        schema = Schema.load(ws.artifact_dir("data") / "schema.json")
        assert schema.classes == ["No", "Yes"]  # not [False, True] from the CSV sniffer
        train = pq.read_table(ws.artifact_dir("data") / "train.parquet").to_pandas()
        assert set(train["churned"]) == {"No", "Yes"} and set(train["promo"]) == {"N", "Y"}

    update_config_file(
        csv_ws.config_path,
        {"model": {"candidates": ["dummy", "linear"], "workers": 1, "time_budget": 300}},
    )
    report = runner.run(csv_ws, ["model", "deploy"])
    assert report.error is None, report.error
    scoring = tmp_path / "to-score.csv"
    frame.head(40).to_csv(scoring, index=False)
    written = predict_file(csv_ws, scoring, tmp_path / "scored.csv")
    scored = pd.read_csv(written, keep_default_na=False)
    assert set(scored["prediction"]) <= {"Yes", "No"}
    assert {"proba_Yes", "proba_No"} <= set(scored.columns)
    # The user's own columns are written back as they were, not as true/false.
    assert scored["churned"].tolist() == frame.head(40)["churned"].tolist()
    assert scored["promo"].tolist() == frame.head(40)["promo"].tolist()


# -- bug 5: no numpy reprs in messages ------------------------------------------------------------


def test_the_digits_audit_shows_plain_numbers(tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits(as_frame=True).frame
    source = tmp_path / "digits.csv"
    digits.to_csv(source, index=False)
    ws = Workspace(create_project(tmp_path / "digits", data=source, target="target"))
    metrics = data_metrics(ws)
    near = [f for f in metrics["findings"] if f["rule"] == "near_constant"]
    assert near, "digits has pixels that are almost always 0"
    text = json.dumps(metrics["findings"])
    assert "np." not in text and "float64" not in text
    assert any(f["message"].startswith("0 in ") for f in near)


# -- bug 7: a time split's label shift, and library warnings summarised ---------------------------


def test_a_time_split_names_the_label_shift_and_summarises_warnings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLWIZARD_TUNING_TRIALS", "1")
    rng = np.random.default_rng(7)
    n = 360
    day = pd.date_range("2022-01-01", periods=n, freq="D")
    frame = pd.DataFrame(
        {
            "date": day.strftime("%Y-%m-%d"),
            "temp": np.round(rng.normal(15, 8, n), 1),
            "wind": np.round(rng.gamma(2, 2, n), 1),
        }
    )
    # Weather labels whose mix changes with the season; "snow" only early in the year.
    frame["weather"] = np.where(frame["temp"] > 15, "sun", "rain")
    frame.loc[:60, "weather"] = np.where(rng.random(61) < 0.5, "snow", "rain")
    source = tmp_path / "weather.csv"
    frame.to_csv(source, index=False)
    ws = Workspace(create_project(tmp_path / "weather", data=source, target="weather"))
    update_config_file(
        ws.config_path,
        {
            "split": {"strategy": "time", "time_column": "date"},
            "model": {"candidates": ["dummy", "linear"], "workers": 1, "time_budget": 300},
        },
    )
    report = runner.run(ws, ["discovery", "data", "model"])
    assert report.error is None, report.error
    stderr = capfd.readouterr().err
    assert "UserWarning" not in stderr, stderr  # no raw library warnings, in any process
    data = report.phases["data"].metrics
    rules = {f["rule"]: f for f in data["findings"]}
    assert "'snow'" in rules["class_missing_from_split"]["message"]
    assert "time split" in rules["class_missing_from_split"]["message"]
    for entry in report.phases["model"].metrics.get("library_warnings", []):
        assert entry["count"] >= 1 and entry["category"].endswith("Warning")


# -- bug 9: one path rule, and folders -----------------------------------------------------------


def test_a_folder_as_data_gets_its_own_message(tmp_path: Path) -> None:
    folder = tmp_path / "tables"
    folder.mkdir()
    yes_no_table().to_csv(folder / "a.csv", index=False)
    result = cli.invoke(
        app,
        [
            "run",
            "--phase",
            "data",
            "-p",
            str(tmp_path / "p"),
            "--data",
            str(folder),
            "--target",
            "churned",
        ],
    )
    assert result.exit_code == 2
    assert "a folder, not a file" in result.stderr and "file not found" not in result.stderr
    assert "*.csv" in result.stderr  # what to pass instead
    new = cli.invoke(app, ["new", str(tmp_path / "q"), "--data", str(folder)])
    assert new.exit_code == 2 and "a folder, not a file" in new.stderr


def test_relative_globs_and_files_resolve_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    (work / "parts").mkdir(parents=True)
    frame = yes_no_table()
    frame.iloc[:120].to_csv(work / "parts" / "one.csv", index=False)
    frame.iloc[120:].to_csv(work / "parts" / "two.csv", index=False)
    monkeypatch.chdir(work)
    project = tmp_path / "elsewhere" / "project"
    for data in ("parts/one.csv", "parts/*.csv"):
        args = ["run", "--phase", "discovery", "-p", str(project), "--data", data]
        result = cli.invoke(app, [*args, "--target", "churned"])
        assert result.exit_code == 0, result.stderr
        report = runner.run(Workspace(project), ["data"])
        assert report.error is None, report.error
        assert report.phases["data"].metrics["rows"] == (120 if "*" not in data else 240)


# -- bug 10: decimal commas, string keys, duplicate advice ---------------------------------------


def test_decimal_comma_csv_is_read_as_numbers(tmp_path: Path) -> None:
    frame = yes_no_table()
    frame["balance"] = np.round(np.random.default_rng(1).normal(100, 30, len(frame)), 2)
    source = tmp_path / "european.csv"
    frame.to_csv(source, index=False, sep=";", decimal=",")
    assert "," in source.read_text().splitlines()[1]  # e.g. 12;Y;basic;No;101,53
    ws = Workspace(create_project(tmp_path / "eu", data=source, target="churned"))
    metrics = data_metrics(ws)
    assert metrics["types"]["balance"] == "numeric"
    train = pq.read_table(ws.artifact_dir("data") / "train.parquet").to_pandas()
    assert train["balance"].dtype == np.float64 and train["balance"].between(0, 300).all()


def test_a_unique_string_key_is_an_identifier(tmp_path: Path) -> None:
    """mtcars: 32 cars, each named once."""
    rng = np.random.default_rng(3)
    cars = pd.DataFrame(
        {
            "model": [f"Car {chr(65 + i // 10)}{i}" for i in range(32)],
            "mpg": np.round(rng.normal(20, 6, 32), 1),
            "cyl": rng.choice([4, 6, 8], 32),
            "hp": rng.integers(50, 330, 32),
            "am": rng.choice(["auto", "manual"], 32),
        }
    )
    source = tmp_path / "mtcars.csv"
    cars.to_csv(source, index=False)
    ws = Workspace(create_project(tmp_path / "cars", data=source, target="mpg"))
    metrics = data_metrics(ws)
    assert metrics["types"]["model"] == "identifier"
    assert (
        "model" not in metrics["features"] and "identifier" in metrics["excluded_columns"]["model"]
    )


def test_duplicate_advice_is_worded_by_what_the_columns_allow(tmp_path: Path) -> None:
    """Titanic without names: passengers alike in every column are real people, not copies."""
    rng = np.random.default_rng(5)
    n = 400
    passengers = pd.DataFrame(
        {
            "pclass": rng.choice([1, 2, 3], n),
            "sex": rng.choice(["male", "female"], n),
            "embarked": rng.choice(["S", "C", "Q"], n),
        }
    )
    passengers["survived"] = np.where(
        (passengers["sex"] == "female") ^ (rng.random(n) < 0.2), "yes", "no"
    )
    source = tmp_path / "titanic.csv"
    passengers.to_csv(source, index=False)
    ws = Workspace(create_project(tmp_path / "titanic", data=source, target="survived"))
    metrics = data_metrics(ws)
    rules = {f["rule"]: f for f in metrics["findings"]}
    duplicate = rules["duplicate_rows"]
    assert "distinct records" in duplicate["message"] and "keep them" in duplicate["action"]
    assert not duplicate["action"].startswith("drop")
    assert "keep them" in rules["split_leakage"]["action"]


# -- bug 11: a wrong-case target -------------------------------------------------------------


def test_a_wrong_case_target_names_the_column_meant(tmp_path: Path) -> None:
    source = tmp_path / "churn.csv"
    yes_no_table().rename(columns={"churned": "churn"}).to_csv(source, index=False)
    result = cli.invoke(
        app, ["new", str(tmp_path / "p"), "--data", str(source), "--target", "Churn"]
    )
    assert result.exit_code == 2
    assert "did you mean 'churn'" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "p" / "mlwizard.toml").exists()
    # The TUI's create dialog calls the same core check, on a new and on an existing folder.
    from mlwizard.core.scaffold import configure_project

    with pytest.raises(BadInputError, match="did you mean 'churn'"):
        configure_project(tmp_path / "tui", str(source), "Churn")
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "notes.txt").write_text("mine")
    with pytest.raises(BadInputError, match="did you mean 'churn'"):
        configure_project(existing, str(source), "Churn")
    configure_project(existing, str(source), "churn")  # the right case is accepted


# -- rough edge: --table for SQLite and Excel on the command line --------------------------------


def test_table_option_picks_the_sqlite_table(tmp_path: Path) -> None:
    database = tmp_path / "shop.db"
    with sqlite3.connect(database) as con:
        yes_no_table().to_sql("customers", con, index=False)
        pd.DataFrame({"x": [1, 2]}).to_sql("other", con, index=False)
    project = tmp_path / "shop"
    args = ["run", "--phase", "discovery", "-p", str(project), "--data", str(database)]
    result = cli.invoke(app, [*args, "--table", "customers", "--target", "churned", "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["phases"]["discovery"]["metrics"]["rows"] == 240
    assert 'table = "customers"' in (project / "mlwizard.toml").read_text()
