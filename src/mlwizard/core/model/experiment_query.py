"""Reading the experiment store: phase runs with their runs and choices, and comparisons.

`experiments` writes the store; this module reads it for `mlwizard experiments`, the TUI and
notebooks.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mlwizard.core.contract.tasks import Direction
from mlwizard.core.kernel.errors import BadInputError
from mlwizard.core.model.experiments import (
    MIN_ID_PREFIX,
    STORE_FILE,
    _pick,
    _read_choices,
    _read_runs,
    _score,
    direction_of,
)

if TYPE_CHECKING:
    from pathlib import Path

    from mlwizard.core.kernel.workspace import Workspace


# -- reading ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunRow:
    """One candidate run as recorded, plus what the listing derives: the metric the phase run
    ranked by, this run's validation score on it, and whether the phase run chose it."""

    run_id: str
    phase_run_id: str
    candidate: str
    status: str
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    cv_folds: list[dict[str, Any]] | None = None
    duration_s: float | None = None
    data_fingerprint: str | None = None
    seed: int | None = None
    started_at: datetime | None = None
    recorded_at: datetime | None = None
    deployable: bool | None = None
    reason: str | None = None
    onnx_path: str | None = None
    artifacts: dict[str, str] = field(default_factory=dict)
    package_versions: dict[str, str] = field(default_factory=dict)
    mlflow_run_id: str | None = None
    tracking_error: str | None = None
    metric: str | None = None
    score: float | None = None
    chosen: bool = False

    @property
    def short_id(self) -> str:
        return self.run_id[:8]

    @property
    def validation(self) -> dict[str, Any]:
        value = (self.metrics or {}).get("validation")
        return value if isinstance(value, dict) else {}

    def to_json(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


@dataclass
class PhaseRun:
    """The runs of one model phase run, and what it chose."""

    phase_run_id: str
    runs: list[RunRow]  # recorded order
    metric: str | None = None
    direction: Direction | None = None
    chosen_run_id: str | None = None
    test: dict[str, Any] | None = None
    current: bool = False  # the run behind the project's current model checkpoint
    error: str | None = None  # why the model phase failed, when this run was the failed one
    hypothesis: str | None = None  # what the experiment set out to test (`--hypothesis`)
    proposals: list[dict[str, Any]] = field(default_factory=list)  # next hypotheses proposed

    @property
    def started_at(self) -> datetime | None:
        times = [r.started_at for r in self.runs if r.started_at is not None]
        return min(times) if times else None

    @property
    def chosen(self) -> RunRow | None:
        return next((r for r in self.runs if r.run_id == self.chosen_run_id), None)

    def ranked(self) -> list[RunRow]:
        """Finished runs best first (no score last; ties keep recorded order), then the others
        in recorded order. The chosen run is not always first: a better one may not export."""
        sign = -1.0 if self.direction == "maximize" else 1.0
        done = [r for r in self.runs if r.status == "done"]
        done.sort(key=lambda r: (r.score is None, sign * (r.score or 0.0)))
        return done + [r for r in self.runs if r.status != "done"]

    def to_json(self) -> dict[str, Any]:
        chosen = self.chosen
        return _jsonable(
            {
                "phase_run_id": self.phase_run_id,
                "started_at": self.started_at,
                "current": self.current,
                "metric": self.metric,
                "direction": self.direction,
                "chosen_run_id": self.chosen_run_id,
                "chosen_candidate": chosen.candidate if chosen else None,
                "test": self.test,
                "error": self.error,
                "hypothesis": self.hypothesis,
                "proposals": self.proposals,
                "runs": [r.to_json() for r in self.ranked()],
            }
        )


@dataclass
class Comparison:
    """Runs side by side: each metric (dotted names: `validation.roc_auc`, `cv.mean`) and each
    parameter as one list of values, in `runs` order."""

    runs: list[RunRow]
    metrics: dict[str, list[Any]]
    params: dict[str, list[Any]]
    differing_params: list[str]

    def to_json(self) -> dict[str, Any]:
        return _jsonable(
            {
                "runs": [r.to_json() for r in self.runs],
                "metrics": self.metrics,
                "params": self.params,
                "differing_params": self.differing_params,
            }
        )


def store_path(workspace: Workspace) -> Path:
    return workspace.state_dir / STORE_FILE


def list_phase_runs(workspace: Workspace, limit: int | None = None) -> list[PhaseRun]:
    """Phase runs, latest first (at most `limit`), each with its runs and what it chose."""
    path = store_path(workspace)
    rows = _read_runs(path)
    choices = _read_choices(path) if rows else {}
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row["phase_run_id"], []).append(row)

    checkpoint = workspace.read_checkpoint("model")
    current = checkpoint.metrics if checkpoint and checkpoint.status == "done" else {}
    discovery = workspace.read_checkpoint("discovery")
    fallback_metric = (discovery.metrics.get("metric") if discovery else None) or None

    phase_runs = []
    for phase_run_id, group in grouped.items():
        choice = choices.get(phase_run_id, {})
        is_current = current.get("phase_run_id") == phase_run_id
        metric = choice.get("metric") or (current.get("metric") if is_current else None)
        metric = metric or fallback_metric
        direction = choice.get("direction") or (
            current.get("metric_direction") if is_current else None
        )
        direction = direction or (direction_of(metric) if metric else None)
        chosen_name = choice.get("chosen_candidate") or (
            current.get("best_model") if is_current else None
        )
        chosen = choice.get("chosen_run_id")
        if chosen is None and chosen_name and metric:
            picked = _pick(group, chosen_name, metric, direction)
            chosen = picked["run_id"] if picked else None
        runs = [_row(r, metric, r["run_id"] == chosen) for r in group]
        test = choice.get("test") or (current.get("test") if is_current else None)
        phase_runs.append(
            PhaseRun(
                phase_run_id,
                runs,
                metric,
                direction,
                chosen,
                test,
                current=is_current,
                hypothesis=choice.get("hypothesis"),
                proposals=choice.get("proposals") or [],
            )
        )
    phase_runs.sort(key=lambda p: p.started_at or datetime.min.replace(tzinfo=UTC), reverse=True)
    _attach_failure(phase_runs, checkpoint)
    return phase_runs[:limit] if limit else phase_runs


def list_runs(
    workspace: Workspace, phase_run_id: str | None = None, latest_only: bool = False
) -> list[RunRow]:
    """Runs of every phase run (latest phase run first; recorded order within one), of one
    phase run, or of the latest one only."""
    phase_runs = list_phase_runs(workspace)
    if phase_run_id is not None:
        phase_runs = [p for p in phase_runs if p.phase_run_id == phase_run_id]
    elif latest_only:
        phase_runs = phase_runs[:1]
    return [run for p in phase_runs for run in p.runs]


def compare_runs(workspace: Workspace, ids: Iterable[str]) -> Comparison:
    """Runs side by side, by id or unique id prefix (at least 4 characters)."""
    every = list_runs(workspace)
    runs = [_resolve(every, wanted) for wanted in ids]
    if not runs:
        raise BadInputError("name at least one run id to compare")
    metrics: dict[str, list[Any]] = {"duration_s": [r.duration_s for r in runs]}
    flat = [dict(_leaves(r.metrics)) for r in runs]
    for name in _union(flat):
        metrics[name] = [values.get(name) for values in flat]
    params = {name: [r.params.get(name) for r in runs] for name in _union(r.params for r in runs)}
    differing = [name for name, values in params.items() if len({_key(v) for v in values}) > 1]
    return Comparison(runs, metrics, params, differing)


def _resolve(runs: list[RunRow], wanted: str) -> RunRow:
    wanted = wanted.strip().lower()
    if len(wanted) < MIN_ID_PREFIX:
        raise BadInputError(f"run id '{wanted}' is too short: give at least {MIN_ID_PREFIX} chars")
    matches = [r for r in runs if r.run_id.startswith(wanted)]
    if not matches:
        raise BadInputError(f"no run with id '{wanted}' (see `mlwizard experiments`)")
    if len(matches) > 1:
        raise BadInputError(f"run id '{wanted}' is ambiguous: give more characters")
    return matches[0]


def _row(raw: dict[str, Any], metric: str | None, chosen: bool) -> RunRow:
    known = {f.name for f in fields(RunRow)}
    values = {k: v for k, v in raw.items() if k in known}
    for name in ("params", "metrics", "artifacts", "package_versions"):
        if values.get(name) is None:
            values[name] = {}
    return RunRow(**values, metric=metric, score=_score(raw.get("metrics"), metric), chosen=chosen)


def _attach_failure(phase_runs: list[PhaseRun], checkpoint: Any) -> None:
    """A failed model phase leaves no phase run id; it belongs to the latest phase run when that
    one started after the failed phase did."""
    if not phase_runs or checkpoint is None or checkpoint.status != "failed":
        return
    latest = phase_runs[0]
    try:
        phase_started = datetime.fromisoformat(checkpoint.started_at)
    except (TypeError, ValueError):
        return
    if latest.started_at is not None and latest.started_at >= phase_started:
        latest.error = checkpoint.error


def _leaves(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Scalar leaves of nested dicts under dotted names (lists, like per-fold scores, left out)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _leaves(inner, f"{prefix}{key}.")
    elif prefix and not isinstance(value, list | tuple):
        yield prefix[:-1], value


def _union(dicts: Iterable[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(name for d in dicts for name in d))


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value
