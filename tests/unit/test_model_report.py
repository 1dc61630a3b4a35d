"""The model phase's HTML report (issue 9): leaderboard, confusion matrix or residuals,
calibration, importance and worst slices, escaped, and checked in headless Chromium."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from helpers.browser import needs_chromium, open_page
from mlwizard.core.model import metrics, report

ODD = '<b>"plan"</b>'


def _inputs(task: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A leaderboard and an evaluation as the phase writes them, from real metric functions."""
    rng = np.random.default_rng(1)
    classes = ["no", "yes", "<maybe>"] if task == "multiclass" else ["no", "yes"]
    if task == "regression":
        y = rng.normal(size=300)
        prediction = y + rng.normal(scale=0.3, size=300)
        details = metrics.details(task, y, prediction)
    else:
        y = rng.integers(0, len(classes), 300)
        proba = rng.dirichlet(np.ones(len(classes)), 300)
        proba[np.arange(300), y] += 1.0
        proba /= proba.sum(axis=1, keepdims=True)
        details = metrics.details(task, y, proba, len(classes), None, classes)
    board = {
        "metric": "accuracy",
        "best_model": "linear",
        "baseline": 0.5,
        "rows": [
            {"name": "linear", "status": "done", "score": 0.91, "cv_mean": 0.9,
             "deployable": True, "reason": ""},
            {"name": "dummy", "status": "done", "score": 0.5, "cv_mean": None,
             "deployable": False, "reason": "no ONNX converter <DummyClassifier>"},
            {"name": "catboost", "status": "skipped", "score": None, "cv_mean": None,
             "deployable": False, "reason": "not started"},
        ],
    }  # fmt: skip
    evaluation = {
        "validation": {"rows": 300, **details},
        "test": {"rows": 20, "scores": {"accuracy": 0.9}},
        "warnings": ["the test split is small (20 rows)"],
        "error_analysis": {
            "worst_slices": [{"feature": ODD, "slice": "<free>", "rows": 40,
                              "mean_error": 0.4, "overall_mean_error": 0.2}],
            "permutation_importance": {"what": "mean drop", "features": [
                {"feature": ODD, "importance": 0.1, "std": 0.01},
                {"feature": "age", "importance": 0.05, "std": 0.02}]},
        },
    }  # fmt: skip
    return board, evaluation


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_report_escapes_names_and_draws_every_part(task: str, tmp_path: Path) -> None:
    board, evaluation = _inputs(task)
    path = report.write(tmp_path / "report.html", board, evaluation, "churn <model>")
    html = path.read_text()
    assert ODD not in html and "&lt;b&gt;&#34;plan&#34;&lt;/b&gt;" in html
    assert "churn &lt;model&gt;" in html and "the test split is small" in html
    kinds = {c["kind"] for c in report.view(board, evaluation)["charts"]}
    expected = {"leaderboard", "importance"}
    expected |= {"residuals"} if task == "regression" else {"confusion", "calibration"}
    assert kinds == expected


@needs_chromium
@pytest.mark.parametrize("task", ["binary", "regression"])
def test_model_report_renders_in_headless_chromium(task: str, tmp_path: Path) -> None:
    board, evaluation = _inputs(task)
    path = report.write(tmp_path / "report.html", board, evaluation, "model")
    page = open_page(path)
    assert page["errors"] == []
    assert page["requests"] == [path.resolve().as_uri()]  # the page itself, nothing fetched
    drawn = {c["kind"] for c in page["charts"]}
    assert drawn == {c["kind"] for c in report.view(board, evaluation)["charts"]}
    for chart in page["charts"]:
        assert chart["width"] > 50 and chart["height"] > 20 and chart["marks"] > 0, chart
