"""The CLI: scaffolding, output channels and one-line errors with the right exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from helpers.frames import synthetic_frame
from mlwizard import __version__
from mlwizard.cli import app

runner = CliRunner()


def invoke(*args: str | Path):
    return runner.invoke(app, [str(a) for a in args])


def assert_one_line_error(result, code: int, *fragments: str) -> None:
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr  # progress lines may precede it
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    for fragment in fragments:
        assert fragment in lines[0]


def test_new_scaffolds_a_documented_project(tmp_path: Path) -> None:
    data = tmp_path / "input.csv"
    synthetic_frame().to_csv(data, index=False)
    result = invoke("new", tmp_path / "proj", "--data", data, "--target", "label")
    assert result.exit_code == 0, result.output
    project = tmp_path / "proj"
    config = (project / "mlwizard.toml").read_text()
    assert 'source = "data/input.csv"' in config and 'target = "label"' in config
    assert "# " in config  # documented
    assert (project / "data" / "input.csv").is_file()
    assert "artifacts/" in (project / ".gitignore").read_text()
    assert (project / "README.md").is_file()
    # A project a team can own: the mlwizard version pinned, the common commands in a Makefile.
    assert (project / "requirements.txt").read_text().splitlines()[-1] == f"mlwizard=={__version__}"
    makefile = (project / "Makefile").read_text()
    assert (
        "\tmlwizard run --phase all" not in makefile and "$(MLWIZARD) run --phase all" in makefile
    )
    assert "\n\t$(MLWIZARD) status" in makefile  # recipes are tab-indented, as make needs


def test_new_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    assert_one_line_error(invoke("new", tmp_path), 2, "not empty", "--force")
    assert invoke("new", tmp_path, "--force").exit_code == 0
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_missing_data_file(tmp_path: Path) -> None:
    result = invoke(
        "run", "--phase", "all", "-p", tmp_path, "--data", tmp_path / "nope.csv", "--target", "y"
    )
    assert_one_line_error(result, 2, "nope.csv", "file not found")


def test_unsupported_extension(tmp_path: Path) -> None:
    data = tmp_path / "table.xyz"
    data.write_text("a,b\n1,2\n")
    result = invoke("run", "--phase", "discovery", "-p", tmp_path, "--data", data, "--target", "b")
    assert_one_line_error(result, 2, "table.xyz", "unsupported file type")


def test_missing_target_column(tmp_path: Path) -> None:
    data = tmp_path / "input.csv"
    synthetic_frame().to_csv(data, index=False)
    result = invoke(
        "run", "--phase", "discovery", "-p", tmp_path, "--data", data, "--target", "churn"
    )
    assert_one_line_error(result, 2, "input.csv", "'churn' not found", "--target")


def test_bare_folder_without_data_says_what_to_pass(tmp_path: Path) -> None:
    result = invoke("run", "--phase", "all", "-p", tmp_path)
    assert_one_line_error(result, 2, "--data PATH --target COLUMN")


def test_invalid_config_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "mlwizard.toml").write_text("[model]\nworkers = 'many'\n")
    assert_one_line_error(invoke("status", "-p", tmp_path), 2, "mlwizard.toml [model] workers")


def test_json_is_one_object_on_stdout_with_progress_on_stderr(tmp_path: Path) -> None:
    data = tmp_path / "input.csv"
    synthetic_frame().to_csv(data, index=False)
    args = ("run", "--phase", "discovery", "-p", tmp_path, "--data", data, "--target", "label")
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["project"] == str(tmp_path.resolve())
    assert payload["phases"]["discovery"]["status"] == "done"
    assert payload["phases"]["discovery"]["metrics"]["task"] == "binary"
    assert "discovery" in result.stderr
    again = json.loads(invoke(*args, "--json").stdout)
    assert again["phases"]["discovery"]["status"] == "skipped"


def test_asking_for_a_phase_before_its_upstream(tmp_path: Path) -> None:
    data = tmp_path / "input.csv"
    synthetic_frame().to_csv(data, index=False)
    result = invoke("run", "--phase", "model", "-p", tmp_path, "--data", data, "--target", "label")
    assert_one_line_error(result, 2, "needs 'discovery'", "mlwizard run --phase", "--with-upstream")


def test_with_upstream_runs_what_the_phase_needs(tmp_path: Path) -> None:
    data = tmp_path / "input.csv"
    synthetic_frame().to_csv(data, index=False)
    args = ("run", "--phase", "data", "-p", tmp_path, "--data", data, "--target", "label")
    result = invoke(*args, "--with-upstream", "--json")
    assert result.exit_code == 0, result.output
    phases = json.loads(result.stdout)["phases"]
    assert {name: p["status"] for name, p in phases.items()} == {
        "discovery": "done",
        "data": "done",
    }
    again = json.loads(invoke(*args, "--with-upstream", "--json").stdout)["phases"]
    assert {p["status"] for p in again.values()} == {"skipped"}


@pytest.mark.parametrize("args", [("--version",), ("status", "--help")])
def test_version_and_help(args: tuple[str, ...]) -> None:
    result = invoke(*args)
    assert result.exit_code == 0 and result.stdout.strip()


def test_demo_names_commands_the_user_can_paste(monkeypatch: pytest.MonkeyPatch) -> None:
    """`make demo` does not activate the venv: its closing commands name the venv's binaries
    when `mlwizard` is not on PATH, and by name when it is."""
    import sys

    from mlwizard.cli.app import _command

    bin_dir = Path(sys.executable).parent
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert _command() == (str(bin_dir / "mlwizard"), f"{bin_dir}/")
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    assert _command() == ("mlwizard", "")
