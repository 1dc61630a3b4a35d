"""Read-only views of a project's artifacts for the screens: plain data, no Textual.

Workers call these off the UI thread and post the result. Every reader is tolerant: a missing file
or key gives an empty view rather than an exception, since phases add keys over time. Anything
that decides something about the model belongs in the core; these only gather and shape.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlwizard.core.kernel.config import Config, config_from_dict
from mlwizard.core.kernel.formatting import fmt
from mlwizard.core.kernel.workspace import Workspace

MAX_BARS = 10
PREVIEW_CHARS = 20_000
# Generated files shown in the deployment screen, and the language each is highlighted as.
PREVIEW_LANGUAGES = {
    ".py": "python",
    ".json": "json",
    ".yml": "yaml",
    ".yaml": "yaml",
    ".md": "markdown",
    ".txt": None,
    "Dockerfile": "bash",
}


def read_json(path: Path) -> dict[str, Any]:
    """The JSON object in `path`, or {} when it is missing or damaged."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def output_path(ws: Workspace, phase: str, name: str, default: str) -> Path:
    """Where `phase`'s checkpoint says its output `name` is (or the usual place)."""
    checkpoint = ws.read_checkpoint(phase)
    rel = (checkpoint.outputs.get(name) if checkpoint else None) or default
    return ws.resolve(rel)


def checkpoint_metrics(ws: Workspace, phase: str) -> dict[str, Any]:
    checkpoint = ws.read_checkpoint(phase)
    return dict(checkpoint.metrics) if checkpoint else {}


# -- discovery ---------------------------------------------------------------------------------


@dataclass
class ColumnsRead:
    source: str
    columns: list[str] = field(default_factory=list)
    types: dict[str, str] = field(default_factory=dict)
    error: str | None = None


def read_columns(ws: Workspace, source: str) -> ColumnsRead:
    """The columns of `source` (as `[data] source` would name it) read through the core."""
    from mlwizard.core.ingest import sources
    from mlwizard.core.kernel.errors import MlwizardError

    try:
        raw: dict[str, Any] = {}
        if ws.exists():
            import tomllib

            raw = tomllib.loads(ws.config_path.read_text(encoding="utf-8"))
        data = dict(raw.get("data", {}))
        data["source"] = source
        config = config_from_dict({"data": data}, origin=str(ws.config_path))
        con = sources.connect()
        relation, _label = sources.open_source(con, ws, config)
        return ColumnsRead(source, list(relation.columns), sources.column_types(relation))
    except MlwizardError as exc:
        return ColumnsRead(source, error=str(exc))
    except Exception as exc:  # a reader we did not expect to fail: say so, do not crash
        return ColumnsRead(source, error=f"{type(exc).__name__}: {exc}")


@dataclass
class DiscoveryView:
    config: Config | None
    columns: ColumnsRead | None
    summary: dict[str, Any]


def discovery_view(ws: Workspace) -> DiscoveryView:
    try:
        config = ws.load_config()
    except Exception:
        return DiscoveryView(None, None, {})
    columns = read_columns(ws, config.data.source) if config.data.source else None
    return DiscoveryView(config, columns, checkpoint_metrics(ws, "discovery"))


# -- data --------------------------------------------------------------------------------------


@dataclass
class DataView:
    profile: dict[str, Any]
    audit: dict[str, Any]
    metrics: dict[str, Any]
    config: Config | None
    charts: dict[str, list[tuple[str, float]]]
    report: str | None


def data_view(ws: Workspace) -> DataView:
    profile = read_json(output_path(ws, "data", "profile", "artifacts/data/profile.json"))
    audit = read_json(output_path(ws, "data", "audit", "artifacts/data/audit.json"))
    metrics = checkpoint_metrics(ws, "data")
    try:
        config: Config | None = ws.load_config()
    except Exception:
        config = None
    report = ws.artifact_dir("data") / "report.html"
    charts = column_charts(profile)
    return DataView(
        profile, audit, metrics, config, charts, ws.relative(report) if report.is_file() else None
    )


def column_charts(profile: dict[str, Any]) -> dict[str, list[tuple[str, float]]]:
    """Column -> bars (label, count): the profile's histogram or top values. The profile is the
    one place they are computed; a column it has none for gets no chart."""
    columns: dict[str, Any] = profile.get("columns") or {}
    charts = {name: _profile_bars(info) for name, info in columns.items()}
    return {name: bars for name, bars in charts.items() if bars}


def _profile_bars(info: dict[str, Any]) -> list[tuple[str, float]]:
    histogram = info.get("histogram")
    if isinstance(histogram, dict) and histogram.get("counts"):
        edges, counts = histogram.get("edges") or [], histogram["counts"]
        if len(edges) == len(counts) + 1:
            return [(fmt(edges[i]), float(c)) for i, c in enumerate(counts)]
    top = info.get("top_counts")  # the commonest values with their counts (all rows)
    if isinstance(top, list) and top and isinstance(top[0], dict) and "count" in top[0]:
        return [(str(t.get("value")), float(t.get("count") or 0)) for t in top[:MAX_BARS]]
    return []


# -- model -------------------------------------------------------------------------------------


@dataclass
class ModelView:
    metric: str
    direction: str
    best: str | None
    baseline: float | None
    rows: list[dict[str, Any]]
    evaluation: dict[str, Any]
    metrics: dict[str, Any]
    time_budget: float | None


def model_view(ws: Workspace) -> ModelView:
    board = read_json(output_path(ws, "model", "leaderboard", "artifacts/model/leaderboard.json"))
    evaluation = read_json(
        output_path(ws, "model", "evaluation", "artifacts/model/evaluation.json")
    )
    metrics = checkpoint_metrics(ws, "model")
    rows = [dict(r) for r in board.get("rows") or [] if isinstance(r, dict)]
    # Candidates that failed or were skipped are in the checkpoint, not always on the board.
    named = {r.get("name") for r in rows}
    for candidate in metrics.get("candidates") or []:
        if isinstance(candidate, dict) and candidate.get("name") not in named:
            rows.append(dict(candidate))
    try:
        budget: float | None = ws.load_config().model.time_budget
    except Exception:
        budget = None
    return ModelView(
        metric=str(board.get("metric") or metrics.get("metric") or ""),
        direction=str(board.get("direction") or metrics.get("metric_direction") or "maximize"),
        best=board.get("best_model") or metrics.get("best_model"),
        baseline=board.get("baseline", metrics.get("baseline")),
        rows=rows,
        evaluation=evaluation,
        metrics=metrics,
        time_budget=budget,
    )


# -- deployment --------------------------------------------------------------------------------


@dataclass
class DeployView:
    service_dir: Path | None
    files: list[str]
    metrics: dict[str, Any]
    metadata: dict[str, Any]
    parity: list[dict[str, Any]]
    checks: dict[str, Any] = field(default_factory=dict)  # validator -> {"status", "output"}


def champion_metadata(service: Path) -> dict[str, Any]:
    """The served model's metadata.json (bundles before models/champion/ kept it at the top)."""
    return read_json(service / "models" / "champion" / "metadata.json") or read_json(
        service / "metadata.json"
    )


def deploy_view(ws: Workspace) -> DeployView:
    service = output_path(ws, "deploy", "service", "artifacts/deploy/service")
    metrics = checkpoint_metrics(ws, "deploy")
    if not service.is_dir():
        return DeployView(None, [], metrics, {}, [])
    files = sorted(
        str(p.relative_to(service))
        for p in service.rglob("*")
        if p.is_file() and (p.suffix in PREVIEW_LANGUAGES or p.name in PREVIEW_LANGUAGES)
    )
    metadata = champion_metadata(service)
    raw = metrics.get("checks")
    checks: dict[str, Any] = raw if isinstance(raw, dict) else {}
    parity = parity_rows(ws, metrics, metadata)
    return DeployView(service, files, metrics, metadata, parity, checks)


def parity_rows(
    ws: Workspace, metrics: dict[str, Any], metadata: dict[str, Any]
) -> list[dict[str, Any]]:
    """ONNX parity per deployable candidate (from the model phase), the served model first."""
    rows: list[dict[str, Any]] = []
    served = metadata.get("model")
    deployed = metadata.get("parity") or {}
    if served or "onnx_max_abs_diff" in metrics:
        rows.append(
            {
                "candidate": f"{served or 'model'} (served)",
                "max_abs_diff": metrics.get("onnx_max_abs_diff", deployed.get("max_abs_diff")),
                "tolerance": metrics.get("parity_tolerance", deployed.get("tolerance")),
                "label_agreement": metrics.get("label_agreement", deployed.get("label_agreement")),
                "ok": deployed.get("passed", deployed.get("ok")),
            }
        )
    for row in model_view(ws).rows:
        parity = row.get("parity") or {}
        if row.get("deployable") and parity:
            rows.append(
                {
                    "candidate": row.get("name", "?"),
                    "max_abs_diff": parity.get("max_abs_diff"),
                    "tolerance": parity.get("tolerance"),
                    "label_agreement": parity.get("label_agreement"),
                    "ok": parity.get("ok"),
                }
            )
    return rows


def preview(path: Path) -> tuple[str, str | None]:
    """The text of a generated file (cut to PREVIEW_CHARS) and the language to highlight it as."""
    language = PREVIEW_LANGUAGES.get(path.name, PREVIEW_LANGUAGES.get(path.suffix))
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return f"cannot show {path.name}: {exc}", None
    if len(text) > PREVIEW_CHARS:
        text = text[:PREVIEW_CHARS] + "\n… (cut)"
    return text, language


def sample_rows(ws: Workspace, count: int = 1) -> list[dict[str, Any]]:
    """The first `count` test rows with the served features only, as JSON-ready values."""
    import pyarrow.parquet as pq

    service = output_path(ws, "deploy", "service", "artifacts/deploy/service")
    metadata = champion_metadata(service)
    features = [f for f in metadata.get("features") or [] if isinstance(f, dict)]
    test = output_path(ws, "data", "test", "artifacts/data/test.parquet")
    table = pq.read_table(test, columns=[f["name"] for f in features]).slice(0, count)
    rows = []
    for raw in table.to_pylist():
        row: dict[str, Any] = {}
        for feature in features:
            value = raw.get(feature["name"])
            if isinstance(value, float) and not math.isfinite(value):
                value = None
            if value is not None and feature.get("kind") == "categorical":
                value = str(value)
            row[feature["name"]] = value
        rows.append(row)
    return rows


# -- operations --------------------------------------------------------------------------------


@dataclass
class OperationsView:
    drift: dict[str, Any]
    metrics: dict[str, Any]
    retrain: bool
    reasons: list[str]
    versions: list[dict[str, Any]] = field(default_factory=list)
    champion: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    monitor: dict[str, Any] = field(default_factory=dict)  # the latest `mlwizard monitor` report


def operations_view(ws: Workspace) -> OperationsView:
    """The operations phase's drift report and advice (decided by the core), the registry and
    the latest monitoring report."""
    from mlwizard.core.operations.advice import retraining_advice
    from mlwizard.core.operations.registry import Registry

    drift = read_json(output_path(ws, "operations", "drift", "artifacts/operations/drift.json"))
    metrics = checkpoint_metrics(ws, "operations")
    advice = metrics.get("advice") or drift.get("advice")
    if not advice and drift:  # a report from before the phase decided: the core's rule, still
        model = ws.read_checkpoint("model")
        advice = retraining_advice(drift, list(model.gate_failures) if model else [])
    advice = advice or {}
    reasons = list(advice.get("reasons") or ["no drift report yet: run the operations phase"])
    registry = Registry(ws.root)
    monitor = read_json(ws.artifact_dir("operations") / "monitor" / "latest.json")
    return OperationsView(
        drift,
        metrics,
        bool(advice.get("retrain")),
        reasons,
        registry.versions(),
        registry.champion(),
        registry.history(),
        monitor,
    )
