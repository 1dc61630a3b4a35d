"""Refits after the choice: the chosen settings on more rows, each export checked for parity.

The runs were fitted on the training split only (60 % of the labelled rows by default). Once the
model (or ensemble) and its settings are chosen, they are refitted:

1. on train + validation: the model the test split scores, once (its score stays honest: the
   test rows were never seen);
2. by default (`[model] refit_full`), on every labelled row (train + validation + test): the
   model that is deployed. Its test score is the train + validation model's.

Boosters keep the rounds early stopping found (the run's own refit used them), forests keep
their leaf-size floor for the larger row count, and every member of an ensemble is refitted and
recombined with the same weights. Each refit runs only if it is expected to end before the
deadline, timed on the run's own refit; when both cannot, the deployed refit goes first (it is
what gets served) and the training-split model keeps the test score. Each refit is exported and
checked for parity; one that fails is dropped, with a note, and the model before it stands.
Each refit keeps what `reproduce` needs to rebuild it (`Model.fit_on`, `Model.members`): the
splits it was fitted on, in order, and the settings each member was refitted with, among them
the thread count (histogram sums depend on it).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from mlwizard.core.contract.features import feature_frame, target_vector
from mlwizard.core.contract.schema import Schema
from mlwizard.core.export.onnx_export import ExportError, export_pipeline
from mlwizard.core.export.parity import check_export
from mlwizard.core.kernel import atomic
from mlwizard.core.kernel.context import PhaseContext
from mlwizard.core.model import candidates, ensemble
from mlwizard.core.model.jobs import RunResult

MARGIN = 1.3  # on the time estimate from the run's own refit
EXPORT_DEFAULT_S = 1.0
# Below this many rows a refit fits on one thread: HistGradientBoosting (92 rounds, 12 columns)
# took 0.16-0.23 s on 1 thread and 2.2-12.9 s on 2 at 400 rows, 0.5-0.8 s against 5.2-6.2 s at
# 5,000 rows, on this 2-core machine while it was shared (load 8); OpenMP threads waiting on
# each other cost more than they save on small tables.
PARALLEL_REFIT_ROWS = 50_000


def refit_threads(rows: int) -> int:
    """Threads for a refit on `rows` rows (recorded: histogram sums depend on the count)."""
    return (os.cpu_count() or 1) if rows >= PARALLEL_REFIT_ROWS else 1


@dataclass
class Model:
    pipeline: Pipeline
    onnx: bytes
    rows: int
    parity: dict[str, Any]
    fit_on: tuple[str, ...] = ()  # the splits, concatenated in this order
    # Per member (one unless an ensemble): {"candidate", "settings"}; `refit_fitted` applies them.
    members: list[dict[str, Any]] = field(default_factory=list)


TEST_FIT = ("train", "valid")
DEPLOYED_FIT = ("train", "valid", "test")


@dataclass
class Refits:
    test: Model | None = None  # train + validation; None: the training-split model is tested
    deployed: Model | None = None  # every labelled row; None: the test model is deployed
    notes: list[str] = field(default_factory=list)
    train_rows: int = 0
    threads: int = 1  # the refits' fits ran on this many threads (`refit_threads`)

    def describe(self, refit_full: bool) -> dict[str, Any]:
        """JSON for the metrics and the service's metadata: which model is which."""
        served = self.deployed or self.test
        test_fit = "train+valid" if self.test else "train"
        deployed_fit = "train+valid+test" if self.deployed else test_fit
        rows = {"train": self.train_rows}
        if self.test:
            rows["train+valid"] = self.test.rows
        if self.deployed:
            rows["train+valid+test"] = self.deployed.rows
        return {
            "refit_full": refit_full,
            "test_score_of": f"the model fitted on {test_fit}",
            "test_model_fit_on": test_fit,
            "deployed_fit_on": deployed_fit,
            "deployed_is_tested_model": deployed_fit == test_fit,
            "rows": rows,
            "deployed_parity": served.parity if served else None,
            "notes": self.notes,
        }


def in_phase(
    ctx: PhaseContext,
    best: RunResult,
    deployable: list[RunResult],
    schema: Schema,
    tables: dict[str, pd.DataFrame],
    *,
    deadline: float,
) -> Refits:
    """`refit` as the model phase runs it: the project's `refit_full`, and messages."""
    name = best.candidate
    done = refit(
        best, deployable, schema, tables, refit_full=ctx.config.model.refit_full, deadline=deadline
    )
    if done.test is not None:
        ctx.message(f"{name}: refitted on train + validation ({done.test.rows} rows)")
    if done.deployed is not None:
        tested = "train + validation" if done.test is not None else "training-split"
        ctx.message(
            f"{name}: refitted on every labelled row ({done.deployed.rows} rows) for "
            f"deployment; the test score is the {tested} model's"
        )
    for note in done.notes:
        ctx.message(f"{name}: {note}")
    return done


def write_model(ctx: PhaseContext, best: RunResult, model: Model | None) -> dict[str, Path]:
    """model.onnx and model.joblib: the deployed refit, else the chosen run's own files."""
    if model is None:
        onnx, pipeline = best.onnx_path.read_bytes(), best.joblib_path.read_bytes()
        return {
            "onnx": atomic.write_bytes(ctx.artifact("model.onnx"), onnx),
            "pipeline": atomic.write_bytes(ctx.artifact("model.joblib"), pipeline),
        }
    path = ctx.artifact("model.joblib")
    with atomic.atomic_path(path) as tmp:
        joblib.dump(model.pipeline, tmp)
    return {"onnx": atomic.write_bytes(ctx.artifact("model.onnx"), model.onnx), "pipeline": path}


def refit(
    best: RunResult,
    runs: list[RunResult],
    schema: Schema,
    tables: dict[str, pd.DataFrame],
    *,
    refit_full: bool,
    deadline: float,
) -> Refits:
    """Refit the chosen run (`best`, maybe the ensemble of some of `runs`) per the module doc.

    `tables`: the raw train, valid and test splits.
    """
    out = Refits(train_rows=len(tables["train"]))
    members = members_of(best, runs)
    if not members:
        out.notes.append("the chosen model's runs could not be found: not refitted")
        return out
    train_rows = len(tables["train"])
    tv = pd.concat([tables["train"], tables["valid"]], ignore_index=True)
    every = pd.concat([tv, tables["test"]], ignore_index=True) if refit_full else None
    out.threads = refit_threads(len(tv))  # one count for both refits, recorded once

    def fits(*row_counts: int) -> bool:
        return time.monotonic() + expected_seconds(members, train_rows, *row_counts) <= deadline

    # Parity on every split's features (no labels) and the trees' edge rows, as the runs' own
    # exports were checked (`deploycheck`): the model deployed must hold where served.
    check = {name: feature_frame(tables[name], schema) for name in ("train", "valid", "test")}
    if every is not None and not fits(len(tv), len(every)):
        if fits(len(every)):
            out.notes.append(
                "time for one refit only: the deployed model uses every labelled row, and the "
                "test score is the training-split model's"
            )
            out.deployed = _attempt(best, members, schema, every, check, out, DEPLOYED_FIT)
        else:
            out.notes.append("no time left to refit: the training-split model is deployed")
        return out
    if not fits(len(tv)):
        out.notes.append("no time left to refit: the training-split model is deployed")
        return out
    out.test = _attempt(best, members, schema, tv, check, out, TEST_FIT)
    if every is not None:
        if fits(len(every)):
            out.deployed = _attempt(best, members, schema, every, check, out, DEPLOYED_FIT)
        else:
            out.notes.append(
                "no time left for the refit on every labelled row: the train + validation "
                "model is deployed"
            )
    return out


def expected_seconds(members: list[RunResult], train_rows: int, *row_counts: int) -> float:
    """What refitting `members` on tables of `row_counts` rows is expected to take: their own
    fits and exports on the `train_rows` of the training split, scaled by rows, with a margin."""
    cost = sum(float(r.fit_s or 0.0) + float(r.export_s or 0.0) for r in members)
    return max(cost, EXPORT_DEFAULT_S) * MARGIN / max(1, train_rows) * sum(row_counts)


def fits_in_time(
    model: RunResult,
    runs: list[RunResult],
    rows: dict[str, int],
    *,
    refit_full: bool,
    deadline: float,
) -> bool:
    """Whether the refit that matters most for `model` (the deployed one on every labelled row;
    train + validation when `refit_full` is off) is expected to end by `deadline`. `rows`: the
    rows of the train, valid and test splits."""
    members = members_of(model, runs)
    total = rows["train"] + rows["valid"] + (rows["test"] if refit_full else 0)
    expected = expected_seconds(members, rows["train"], total)
    return bool(members) and time.monotonic() + expected <= deadline


def members_of(best: RunResult, runs: list[RunResult]) -> list[RunResult]:
    """The runs a refit of `best` fits again: itself, or the ensemble's members."""
    if best.candidate != ensemble.NAME:
        return [best] if best.joblib else []
    names = best.params.get("members") or []
    by_name = {r.candidate: r for r in runs if r.joblib}
    return [by_name[n] for n in names] if all(n in by_name for n in names) else []


def _attempt(
    best: RunResult,
    members: list[RunResult],
    schema: Schema,
    table: pd.DataFrame,
    check: dict[str, pd.DataFrame],
    out: Refits,
    fit_on: tuple[str, ...],
) -> Model | None:
    """Fit on `table`, export, check parity on the `check` frames; None (and a note) on failure."""
    notes = out.notes
    x, y = feature_frame(table, schema), target_vector(table, schema)
    fitted, recipe = [], []
    for run in members:
        pipeline, settings = refit_fitted(
            joblib.load(run.joblib_path), run.candidate, x, y, threads=out.threads
        )
        fitted.append((run.candidate, pipeline))
        recipe.append({"candidate": run.candidate, "settings": settings})
    pipeline = combine(best.candidate, fitted, schema, best.params.get("weights"))
    try:
        model = export_pipeline(pipeline, schema, check["valid"])
    except ExportError as exc:
        notes.append(f"the refit on {len(table)} rows is not exportable ({exc.reason}): dropped")
        return None
    parity = check_export(pipeline, model, check, schema)
    if not parity.ok:
        notes.append(f"the refit on {len(table)} rows fails parity ({parity.reason}): dropped")
        return None
    return Model(pipeline, model, len(table), parity.to_dict(), fit_on, recipe)


def combine(
    name: str,
    fitted: list[tuple[str, Pipeline]],
    schema: Schema,
    weights: list[float] | None,
) -> Pipeline:
    """The refitted model: the one member, or the ensemble of them with the chosen weights."""
    if name == ensemble.NAME:
        return ensemble.assemble(fitted, schema, weights)
    return fitted[0][1]


def refit_fitted(
    fitted: Pipeline, candidate: str, x: pd.DataFrame, y: np.ndarray, *, threads: int
) -> tuple[Pipeline, dict[str, Any]]:
    """A fitted pipeline, cloned with the same settings and fitted on (x, y) on `threads` threads,
    and the settings changed for the refit (recorded, so `reproduce` can check them).

    Boosters keep the number of rounds the run's own fit ended with; forests keep the leaf-size
    floor that bounds their ONNX size, for the new row count.
    """
    pipeline = clone(fitted)
    model, learned = pipeline.steps[-1][1], fitted.steps[-1][1]
    params = model.get_params(deep=False)
    settings: dict[str, Any] = {}
    if type(learned).__name__.startswith("HistGradientBoosting"):
        settings.update(max_iter=int(learned.n_iter_), early_stopping=False)
    if "thread_count" in params:  # CatBoost
        settings["thread_count"] = threads
        if hasattr(learned, "tree_count_"):
            settings["iterations"] = int(learned.tree_count_)
    forest = candidate in candidates.FORESTS
    if forest:
        settings["n_jobs"] = threads
        floor = max(1, len(x) // candidates.MAX_FOREST_LEAVES)
        if model.min_samples_leaf < floor:
            settings["min_samples_leaf"] = floor
    model.set_params(**settings)
    with threadpool_limits(limits=threads):
        pipeline.fit(x, y)
    if forest:  # the saved model predicts in the service's threads, not ours
        pipeline.steps[-1][1].set_params(n_jobs=1)
    return pipeline, {**settings, "threads": threads}
