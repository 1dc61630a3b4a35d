"""`mlwizard monitor LOG --shadow LABELS`: the shadow challenger judged once labels arrive.

The service logs, for every request, the champion's answer (served) and the challenger's shadow
prediction. Joined on `request_id` with a labels file, both models are compared on the same
requests by the gate's paired bootstrap: what `retrain` would decide, on production traffic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mlwizard.core.contract.schema import Schema
from mlwizard.core.ingest import sources
from mlwizard.core.kernel.errors import BadInputError
from mlwizard.core.kernel.formatting import timestamp
from mlwizard.core.kernel.workspace import Workspace
from mlwizard.core.operations import gate, requestlog
from mlwizard.core.operations.evaluation import targets
from mlwizard.core.operations.registry import Registry, bundle_schema


def _labels(path: Path, target: str) -> dict[tuple[str, int], Any]:
    """(request_id, row) -> label; `row` (the row's place in its request) defaults to 0."""
    con = sources.connect()
    table = sources.read_table(con, path, ("",))
    if "request_id" not in table.columns:
        raise BadInputError(f"{path}: a labels file needs a 'request_id' column")
    others = [c for c in table.columns if c not in ("request_id", "row")]
    column = target if target in others else (others[0] if len(others) == 1 else None)
    if column is None:
        raise BadInputError(f"{path}: no '{target}' column with the labels")
    row = '"row"' if "row" in table.columns else "0"
    found = table.select(f'request_id, {row}, "{column}"').fetchall()
    return {(str(r), int(i)): v for r, i, v in found}


def evaluate_shadow(ws: Workspace, log: Path, labels: Path) -> dict[str, Any]:
    registry = Registry(ws.root)
    champion = registry.require()
    schema = bundle_schema(registry.bundle_dir(champion))
    known = _labels(labels, schema.target)
    # A request of several rows logs one line per row and model, in order: pair them by place.
    pairs: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}
    seen: dict[tuple[str, str], int] = {}
    for entry in requestlog.entries(log):
        rid, model = str(entry["request_id"]), str(entry["model"])
        place = seen.get((rid, model), 0)
        seen[(rid, model)] = place + 1
        pairs.setdefault((rid, place), {})[model] = entry
    both = [
        (rid, p["champion"], p["challenger"])
        for rid, p in pairs.items()
        if "champion" in p and "challenger" in p and known.get(rid) is not None
    ]
    if not both:
        raise BadInputError(
            f"{log}: no request has both a champion and a challenger line and a label in {labels}"
        )
    y, usable = targets([known[rid] for rid, _a, _b in both], schema)
    champions = [a for _rid, a, _b in both]
    challengers = [b for _rid, _a, b in both]
    outputs = [_outputs(champions, schema), _outputs(challengers, schema)]
    versions = [str(champions[0]["version"]), str(challengers[0]["version"])]
    thresholds = (_threshold(registry, versions[0]), _threshold(registry, versions[1]))
    metric = str(registry.manifest(champion).get("metric"))
    direction = str(registry.manifest(champion).get("metric_direction") or "maximize")
    decision = gate.compare(
        schema,
        metric,
        direction,
        y[usable],
        outputs[0][usable],
        outputs[1][usable],
        thresholds,
    )
    return {
        "created_at": timestamp(),
        "log": str(log),
        "requests": len({rid for rid, _place in pairs}),
        "rows": len(pairs),
        "labelled_pairs": int(usable.sum()),
        "champion_version": versions[0],
        "challenger_version": versions[1],
        "served": {
            "champion": sum(1 for _r, a, _b in both if a.get("served")),
            "challenger": sum(1 for _r, _a, b in both if b.get("served")),
        },
        "decision": decision,
    }


def _outputs(entries: list[dict[str, Any]], schema: Schema) -> np.ndarray:
    if schema.task == "regression":
        return np.array([float(e["prediction"]) for e in entries], dtype=np.float64)
    classes = [str(c) for c in schema.classes or []]
    rows = []
    for e in entries:
        proba = e.get("probabilities")
        if isinstance(proba, dict):
            rows.append([float(proba.get(c, 0.0)) for c in classes])
        else:  # labels only: a one-hot row
            rows.append([1.0 if str(e["prediction"]) == c else 0.0 for c in classes])
    return np.asarray(rows, dtype=np.float64)


def _threshold(registry: Registry, version: str) -> float | None:
    if not version.isdigit():
        return None
    value = registry.manifest(int(version)).get("threshold")
    return None if value is None else float(value)
