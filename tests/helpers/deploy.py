"""A tiny real project state for the deploy phase, and a generated service run by uvicorn.

The data and model phases are stood in for by checkpoints over real files: splits written as the
data phase writes them (numerics DOUBLE, categoricals VARCHAR), a real pipeline trained on
`feature_frame` rows and exported with the model phase's own `export_pipeline`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mlwizard.core.contract.features import feature_frame, target_vector
from mlwizard.core.contract.schema import Feature, Schema, input_names
from mlwizard.core.export.onnx_export import export_pipeline
from mlwizard.core.kernel import atomic
from mlwizard.core.kernel.config import Config, DeploySection
from mlwizard.core.kernel.context import PhaseContext
from mlwizard.core.kernel.workspace import Checkpoint, Workspace
from mlwizard.core.model.candidates import build

FEATURES = {
    "age years": "numeric",
    "income": "numeric",
    "city": "categorical",
    "plan": "categorical",
    "promo": "categorical",
}
# What the data phase records about the source: semantic types and DuckDB types.
SEMANTIC_TYPES = {"promo": "boolean"}
SOURCE_TYPES = {"age years": "DOUBLE", "income": "DOUBLE", "promo": "BOOLEAN"}
CLASSES = {"binary": ["churn", "stay"], "multiclass": ["high", "low", "mid"]}


def split_table(task: str, rows: int, rng: np.random.Generator, unseen: bool) -> pa.Table:
    """Numerics with NaN, categoricals with nulls, and if `unseen`, categories never trained on."""
    age = rng.normal(40, 12, rows)
    income = rng.lognormal(10, 0.5, rows)
    city = rng.choice(np.array(["paris", "lyon", "nice"]), rows).astype(object)
    plan = rng.choice(np.array(["free", "pro", "team"]), rows).astype(object)
    promo = rng.random(rows) < 0.3
    signal = 0.08 * (age - 40) + 1.5 * (city == "paris") - 1.0 * (plan == "free") + income / 3e4
    signal += 0.8 * promo
    age[rng.random(rows) < 0.1] = np.nan
    city[rng.random(rows) < 0.1] = None
    if unseen:
        city[rng.random(rows) < 0.1] = "marseille"
    if task == "regression":
        target: Any = 20 * signal + rng.normal(0, 2, rows)
    else:
        target = np.where(rng.random(rows) < 1 / (1 + np.exp(-(signal - 1))), "churn", "stay")
    return pa.table(
        {
            "age years": pa.array(age, pa.float64(), from_pandas=True),  # NaN -> null, as DuckDB
            "income": pa.array(income, pa.float64()),
            "city": pa.array(city.tolist(), pa.string()),
            "plan": pa.array(plan.tolist(), pa.string()),
            "promo": pa.array(np.where(promo, "true", "false").tolist()),  # booleans, as features
            "target": pa.array(target.tolist()),
        }
    )


@dataclass
class Project:
    ctx: PhaseContext
    schema: Schema
    test_path: Path

    @property
    def service(self) -> Path:
        return self.ctx.workspace.artifact_dir("deploy") / "service"

    def test_frame(self) -> pd.DataFrame:
        return pd.read_parquet(self.test_path)

    def test_rows(self) -> list[dict[str, Any]]:
        """Raw test rows as a JSON client sends them: features only, None for missing."""
        names = [f.name for f in self.schema.features]
        return pq.read_table(self.test_path).select(names).to_pylist()


def build_project(
    root: Path,
    task: str = "binary",
    candidate: str = "linear",
    *,
    service_name: str = "Churn API",
    port: int = 8123,
) -> Project:
    """Write a data + model phase state under `root` and return the deploy phase's context."""
    rng = np.random.default_rng(3)
    data_dir, model_dir = root / "artifacts" / "data", root / "artifacts" / "model"
    data_dir.mkdir(parents=True)
    model_dir.mkdir(parents=True)
    columns = list(FEATURES)
    features = [
        Feature(c, FEATURES[c], i)
        for c, i in zip(columns, input_names(columns), strict=True)  # type: ignore[arg-type]
    ]
    schema = Schema(target="target", task=task, features=features, classes=CLASSES.get(task))  # type: ignore[arg-type]
    paths = {"schema": schema.save(data_dir / "schema.json")}
    profile = {"columns": {c: {"type": SOURCE_TYPES.get(c, "VARCHAR")} for c in FEATURES}}
    paths["profile"] = atomic.write_json(data_dir / "profile.json", profile)
    for name, rows, unseen in (("train", 500, False), ("test", 200, True)):
        paths[name] = data_dir / f"{name}.parquet"
        pq.write_table(split_table(task, rows, rng, unseen), paths[name])

    train = pd.read_parquet(paths["train"])
    x = feature_frame(train, schema)
    pipeline = build(candidate, schema, 0).fit(x, target_vector(train, schema))
    onnx_path = model_dir / "model.onnx"
    onnx_path.write_bytes(export_pipeline(pipeline, schema, x.head(16)))
    joblib.dump(pipeline, model_dir / "model.joblib")

    ws = Workspace(root)
    types = {c: SEMANTIC_TYPES.get(c, kind) for c, kind in FEATURES.items()}
    data = Checkpoint(
        "data",
        "done",
        {},
        "data-fp",
        {k: ws.relative(p) for k, p in paths.items()},
        metrics={"types": types},
    )
    ws.write_checkpoint(data)  # batch prediction reads how the data phase typed the columns
    model = Checkpoint(
        "model",
        "done",
        {},
        "model-fingerprint-0123456789",
        {"onnx": ws.relative(onnx_path), "pipeline": ws.relative(model_dir / "model.joblib")},
        metrics={
            "best_model": candidate,
            "metric": "accuracy",
            "test": {"accuracy": 0.8},
            "validation": {candidate: {"accuracy": 0.81}},
            "baseline": 0.5,
        },
    )
    discovery = Checkpoint("discovery", "done", {}, "discovery-fp")
    config = Config(deploy=DeploySection(service_name=service_name, port=port))
    ctx = PhaseContext(
        phase="deploy",
        workspace=ws,
        config=config,
        upstream={"discovery": discovery, "data": data, "model": model},
    )
    return Project(ctx, schema, paths["test"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_service(
    service: Path,
    log: Path,
    timeout: float = 30.0,
    env: dict[str, str] | None = None,
    python: str = sys.executable,
    user: str | None = None,
) -> Iterator[str]:
    """`python -m uvicorn app:app` in the service folder; yields its base URL once `/ready`
    answers, then stops it. `user`: run it as that user (`runuser -u USER`, needs root)."""
    port = free_port()
    command = [
        *(["runuser", "-u", user, "--"] if user else []),
        python,
        "-m",
        "uvicorn",
        "app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **(env or {})}
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=service, env=env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(process, url, log, timeout)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_healthy(process: subprocess.Popen, url: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"service exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/ready", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"service not ready after {timeout}s:\n{log.read_text()}")


def unprivileged_venv(folder: Path, requirements: Path) -> Path:
    """A venv that `nobody` can run: made by the system Python (the default one may live in
    root's 0700 home), seeing this environment's packages through a .pth file when `nobody` can
    read them, else with the bundle's requirements installed. Returns its python."""
    import shutil
    import site

    system = shutil.which("python3", path="/usr/bin:/usr/local/bin")
    assert system is not None, "no system python3"
    subprocess.run([system, "-m", "venv", str(folder)], check=True, timeout=120)
    python = folder / "bin" / "python"
    ours = [p for p in site.getsitepackages() if Path(p, "fastapi").is_dir()]
    readable = (
        ours
        and subprocess.run(
            ["runuser", "-u", "nobody", "--", "test", "-r", f"{ours[0]}/fastapi/__init__.py"],
            check=False,
        ).returncode
        == 0
    )
    if readable:
        done = subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        )
        Path(done.stdout.strip(), "shared.pth").write_text(ours[0] + "\n")
    else:  # a fresh CI machine whose venv sits in a private home: install from the registry
        pip = [str(python), "-m", "pip", "install", "-q", "-r", str(requirements)]
        subprocess.run(pip, check=True, timeout=900)
    return python
