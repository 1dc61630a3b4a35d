"""`mlwizard retrain --data NEW`: a challenger trained on NEW, gated against the champion.

The challenger's phases run in a workspace of their own under `registry/challengers/<time>/`
(the project's config with `[data] source` set to NEW), so the project's own checkpoints stay
as they are. The challenger is registered as a new version; both bundles score the challenger's
test split (rows of NEW that no model trained on) and the paired bootstrap in `gate.py` decides.
The reason is recorded in the registry's history either way. The phases are run by the caller's
runner (`run`): the runner sits above this layer.
"""

from __future__ import annotations

import glob
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mlwizard.core.deploy.batch import load_predictor
from mlwizard.core.ingest import sources
from mlwizard.core.kernel.config import update_config_file
from mlwizard.core.kernel.errors import BadInputError, QualityGateError
from mlwizard.core.kernel.formatting import timestamp
from mlwizard.core.kernel.workspace import Workspace
from mlwizard.core.operations import gate
from mlwizard.core.operations.evaluation import model_output, score_batches, targets
from mlwizard.core.operations.registry import Registry, bundle_schema
from mlwizard.core.operations.snapshot import SCORE_BATCH_ROWS, describe_version

CHALLENGER_PHASES = ["discovery", "data", "model", "deploy"]
RunPhases = Callable[..., Any]  # runner.run(workspace, phases, time_budget=, emit=) -> RunReport


def challenger_workspace(ws: Workspace, registry: Registry, data: str) -> Workspace:
    """A fresh workspace with the project's config and `[data] source` = NEW (absolute)."""
    if "://" not in data:
        matched = glob.glob(data) if any(c in data for c in "*?[") else [data]
        if not matched or not all(Path(p).is_file() for p in matched):
            raise BadInputError(f"{data}: no such file (or the glob matches none)")
        data = str(Path(data).absolute())
    stamp = re.sub(r"[^0-9]", "", timestamp())
    root = registry.root / "challengers" / stamp
    suffix = 1
    while root.exists():
        root, suffix = registry.root / "challengers" / f"{stamp}-{suffix}", suffix + 1
    root.mkdir(parents=True)
    shutil.copyfile(ws.config_path, root / "mlwizard.toml")
    update_config_file(root / "mlwizard.toml", {"data": {"source": data}})
    return Workspace(root)


def retrain(
    ws: Workspace, data: str, run: RunPhases, *, time_budget: float | None = None, emit: Any = None
) -> dict[str, Any]:
    """Train, register and gate a challenger; promote it only if significantly better."""
    registry = Registry(ws.root)
    champion = registry.require()
    challenger_ws = challenger_workspace(ws, registry, data)
    kwargs = {"time_budget": time_budget, **({"emit": emit} if emit else {})}
    report = run(challenger_ws, CHALLENGER_PHASES, **kwargs)
    result: dict[str, Any] = {
        "champion": champion,
        "data": data,
        "workspace": str(challenger_ws.root),
    }
    if isinstance(report.error, QualityGateError):
        reason = f"kept the champion: the challenger failed a quality gate ({report.error})"
        registry.record("kept", reason, champion=champion, challenger=None, data=data)
        return {**result, "challenger": None, "promoted": False, "reason": reason}
    if report.error is not None:
        raise report.error
    bundle, reference, facts = describe_version(challenger_ws)
    version, _new = registry.register(bundle, reference, {**facts, "origin": f"retrain on {data}"})
    result["challenger"] = version
    if version == champion:
        reason = "kept the champion: the challenger is the same model"
        registry.record("kept", reason, champion=champion, challenger=version, data=data)
        return {**result, "promoted": False, "reason": reason}
    split = challenger_ws.read_checkpoint("data")
    assert split is not None  # the challenger's data phase just ran
    holdout = challenger_ws.resolve(split.outputs["test"])
    decision = challenge(registry, champion, version, holdout)
    result.update(promoted=decision["promote"], reason=decision["reason"], decision=decision)
    if decision["promote"]:
        registry.set_champion(version, "promoted", decision["reason"], data=data, decision=decision)
    else:
        registry.record(
            "kept", decision["reason"], champion=champion, challenger=version, decision=decision
        )
    return result


def challenge(registry: Registry, champion: int, challenger: int, holdout: Path) -> dict[str, Any]:
    """Both registered bundles on the same holdout rows, through the paired bootstrap."""
    schema = bundle_schema(registry.bundle_dir(challenger))
    outputs, thresholds = [], []
    y: np.ndarray | None = None
    usable: np.ndarray | None = None
    for version in (champion, challenger):
        bundle = registry.bundle_dir(version)
        predictor = load_predictor(bundle)
        own = bundle_schema(bundle)
        if [str(c) for c in own.classes or []] != [str(c) for c in schema.classes or []]:
            raise BadInputError(
                f"version {version} predicts classes {own.classes}, the challenger "
                f"{schema.classes}: they cannot be compared on one metric"
            )
        con = sources.connect()
        relation = con.read_parquet(str(holdout))
        missing = [f.name for f in own.features if f.name not in relation.columns]
        if missing:
            raise BadInputError(
                f"{holdout}: version {version} needs column(s) the new data lacks: "
                + ", ".join(missing)
            )
        scored = score_batches(
            relation.to_arrow_reader(SCORE_BATCH_ROWS), own, predictor, schema.target
        )
        if y is None:
            y, usable = targets(scored.labels or [], schema)
        outputs.append(model_output(scored, own))
        thresholds.append(predictor.threshold)
    assert y is not None and usable is not None
    metric = str(registry.manifest(challenger).get("metric"))
    direction = str(registry.manifest(challenger).get("metric_direction") or "maximize")
    return gate.compare(
        schema,
        metric,
        direction,
        y[usable],
        outputs[0][usable],
        outputs[1][usable],
        (thresholds[0], thresholds[1]),
    )
