"""The per-experiment loop: a hypothesis goes in with a run, proposals for the next come out.

`mlwizard run --hypothesis "..."` leaves the text as the project's pending hypothesis
(`.mlwizard/hypothesis.json`); the next model phase run takes it and stores it with its choice in
the experiment store, beside its data version, chosen settings and test scores. A run whose model
phase is skipped (nothing changed) leaves it pending for the next one that trains.

`propose` turns what the error analysis found into next hypotheses, each a short statement with
the evidence and a concrete action (a config change where there is one): the worst slices, the
features the model leans on most (and those it ignores), and the classes it confuses. The TUI
shows them and lets the user accept one; the phase's metrics carry them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlwizard.core.kernel import atomic
from mlwizard.core.kernel.workspace import Workspace

PENDING_FILE = "hypothesis.json"
MAX_LENGTH = 500
MAX_PROPOSALS = 6
MIN_CONFUSED_SHARE = 0.1  # of a true class's rows predicted as one other class


def pending_path(workspace: Workspace) -> Path:
    return workspace.state_dir / PENDING_FILE


def set_pending(workspace: Workspace, text: str) -> str:
    """Leave `text` as the hypothesis of the next model run; returns it as stored."""
    cleaned = " ".join(text.split())[:MAX_LENGTH]
    workspace.state_dir.mkdir(parents=True, exist_ok=True)
    atomic.write_json(pending_path(workspace), {"hypothesis": cleaned})
    return cleaned


def pending(workspace: Workspace) -> str | None:
    path = pending_path(workspace)
    try:
        text = json.loads(path.read_text(encoding="utf-8")).get("hypothesis")
    except (OSError, ValueError, AttributeError):
        return None
    return text if isinstance(text, str) and text else None


def take_pending(workspace: Workspace) -> str | None:
    """The pending hypothesis, removed: it belongs to the run that takes it."""
    text = pending(workspace)
    pending_path(workspace).unlink(missing_ok=True)
    return text


def propose(
    error_analysis: dict[str, Any],
    validation: dict[str, Any],
    schema_features: list[str],
) -> list[dict[str, Any]]:
    """Next hypotheses from the error analysis (`evaluation.json`'s) and the validation details.

    Each: {"kind", "hypothesis", "evidence", "action"}; at most `MAX_PROPOSALS`, strongest first.
    """
    found: list[dict[str, Any]] = []
    for item in (error_analysis.get("worst_slices") or [])[:2]:
        ratio = item.get("ratio")
        times = f"{ratio:.1f}x" if ratio else "above"
        found.append(
            {
                "kind": "worst_slice",
                "hypothesis": f"rows where {item['feature']} is {item['slice']} need more or "
                "better data: the model errs most there",
                "evidence": f"{item['rows']} validation rows with mean error {times} the overall "
                f"mean ({item['mean_error']:.3g} vs {item['overall_mean_error']:.3g})",
                "action": f"collect more rows with {item['feature']} = {item['slice']}, or add a "
                "feature that tells them apart",
            }
        )
    importance = error_analysis.get("permutation_importance") or {}
    features = importance.get("features") or []
    if features:
        top = features[0]
        found.append(
            {
                "kind": "important_feature",
                "hypothesis": f"{top['feature']} carries most of the signal: better measurements "
                "or features derived from it should help most",
                "evidence": f"shuffling it drops validation {importance.get('metric')} by "
                f"{top['importance']:.3g}",
                "action": f"check {top['feature']} for leakage first, then engineer features "
                "from it",
            }
        )
        unused = [f["feature"] for f in features if f["importance"] <= 0]
        if unused and len(unused) < len(schema_features):
            names = ", ".join(unused[:5])
            found.append(
                {
                    "kind": "unused_features",
                    "hypothesis": f"dropping {names} will not hurt and makes the model simpler",
                    "evidence": "shuffling them does not lower the validation score",
                    "action": f"add them to [data] exclude in mlwizard.toml: {names}",
                    "config": {"data": {"exclude": unused}},
                }
            )
    found += _confusions(validation.get("confusion_matrix"))
    return found[:MAX_PROPOSALS]


def _confusions(matrix: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The class pairs the model mixes up most (a share of the true class's rows)."""
    if not matrix:
        return []
    labels, rows = matrix.get("labels") or [], matrix.get("matrix") or []
    pairs = []
    for i, row in enumerate(rows):
        total = sum(row)
        for j, count in enumerate(row):
            if i != j and total and count / total >= MIN_CONFUSED_SHARE:
                pairs.append((count / total, labels[i], labels[j], count, total))
    pairs.sort(reverse=True)
    return [
        {
            "kind": "confused_classes",
            "hypothesis": f"class '{true}' is hard to tell from '{other}': a feature that "
            "separates them should help",
            "evidence": f"{count} of {total} validation rows of '{true}' ({share:.0%}) are "
            f"predicted '{other}'",
            "action": f"look at rows of '{true}' predicted '{other}' in worst_rows.parquet; add "
            "what tells them apart, or more rows of the smaller class",
        }
        for share, true, other, count, total in pairs[:2]
    ]
