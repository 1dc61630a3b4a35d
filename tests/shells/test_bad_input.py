"""Each file of the bad-input corpus (tests/data/bad/) through the real CLI.

Every case ends either in a usable result with the problem recorded, or in exit 2 with exactly one
`error:` line naming the file and the problem — never a traceback, never a half-written snapshot.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner, Result

from mlwizard.cli import app
from mlwizard.core.contract.schema import Schema

CORPUS = Path(__file__).parents[1] / "data" / "bad"
runner = CliRunner()


def run_discovery_and_data(project: Path, data: Path, target: str) -> Result:
    """`run --phase discovery` then `run --phase data`, as a user would; the first failure."""
    first = runner.invoke(
        app,
        [
            "run",
            "--phase",
            "discovery",
            "-p",
            str(project),
            "--data",
            str(data),
            "--target",
            target,
        ],
    )
    if first.exit_code != 0:
        return first
    return runner.invoke(app, ["run", "--phase", "data", "-p", str(project), "--json"])


def assert_refused(result: Result, project: Path, name: str, *fragments: str) -> str:
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.exit_code == 2, output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert name in errors[0], errors[0]
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    data_dir = project / "artifacts" / "data"
    leftovers = sorted(data_dir.rglob("*.parquet")) + sorted(data_dir.rglob("*.tmp"))
    assert not leftovers, leftovers
    return errors[0]


def data_metrics(result: Result) -> dict:
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.exit_code == 0, output
    return json.loads(result.stdout)["phases"]["data"]["metrics"]


REFUSED = [
    ("empty.csv", "label", ("the file is empty",)),
    ("header_only.csv", "label", ("header (x, colour, label)", "no data rows")),
    ("ragged_rows.csv", "label", ("line 7 has 2 fields", "header has 3")),
    ("unterminated_quote.csv", "label", ("line 5", "never closed")),
    ("not_utf8.csv", "label", ("not UTF-8", "line 5", "re-save it as UTF-8")),
    ("duplicate_columns.csv", "label", ("duplicate column name 'x'", "columns 1 and 3")),
    ("target_absent.csv", "churn", ("'churn' not found", "--target")),
    ("binary.csv", "label", ("binary data, not CSV text",)),
    ("truncated.parquet", "label", ("not a valid Parquet file", "truncated")),
]


@pytest.mark.parametrize(("name", "target", "fragments"), REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_with_one_line(tmp_path: Path, name: str, target: str, fragments: tuple) -> None:
    project = tmp_path / "project"
    result = run_discovery_and_data(project, CORPUS / name, target)
    assert_refused(result, project, name, *fragments)


def test_single_row_is_refused(tmp_path: Path) -> None:
    project = tmp_path / "project"
    result = run_discovery_and_data(project, CORPUS / "single_row.csv", "label")
    line = assert_refused(result, project, "single_row.csv")
    assert "only 1 rows with a target value" in line and "at least 10" in line


def test_odd_column_names_work_and_are_kept_exactly(tmp_path: Path) -> None:
    project = tmp_path / "project"
    result = run_discovery_and_data(project, CORPUS / "odd_column_names.csv", "order")
    metrics = data_metrics(result)
    expected = {'say "hi"', "a;b", "select", " größe", "  leading", "from"}
    schema = Schema.load(project / "artifacts" / "data" / "schema.json")
    assert {f.name for f in schema.features} | set(schema.excluded) == expected
    assert set(metrics["features"]) <= expected and metrics["features"]
    snapshot = next((project / "artifacts" / "data").glob("snapshot-*.parquet"))
    columns = set(pq.read_schema(snapshot).names)
    assert "order" in columns and set(metrics["features"]) <= columns


def test_all_null_column_is_excluded_with_a_warning(tmp_path: Path) -> None:
    project = tmp_path / "project"
    metrics = data_metrics(run_discovery_and_data(project, CORPUS / "all_null_column.csv", "label"))
    assert "empty" in metrics["excluded_columns"]
    assert "empty" not in metrics["features"] and {"x", "colour"} <= set(metrics["features"])
    assert any("'empty'" in warning for warning in metrics["warnings"]), metrics["warnings"]
    assert metrics["rows_used"] == 40


def test_corpus_script_reproduces_the_committed_files() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_corpus", CORPUS / "make_corpus.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, data in module.corpus().items():
        if name.endswith(".parquet"):
            continue  # Parquet bytes carry the writer's version
        assert (CORPUS / name).read_bytes() == data, name
