"""The deployment bundle: a self-contained folder a platform team builds, runs and monitors.

`write_bundle` renders `templates/service/` around one champion model folder (and optionally a
challenger) and swaps the result in whole. It reads everything it needs from the model folders'
JSON and the project's config, so the operations phase can rebuild a bundle for a rollback from
any registered model folder. Layout (see the bundle's README):

    models/champion/{model.onnx,schema.json,metadata.json,samples.json}
    models/champion/features.py      (when the model reads columns features.py derives)
    models/challenger/...            (optional: shadow or canary)
    app.py metrics.py router.py predictor.py userfeatures.py stream_consumer.py bundle.json ...
    Dockerfile .dockerignore docker-compose.yml monitoring/ k8s/ cloud/ .github/ tests/
    README.md MODEL_CARD.md API.md DEPLOY.md
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlwizard.core.deploy import alerts, dashboard, requirements
from mlwizard.core.deploy.modeldir import MODEL_FILES, OPTIONAL_FILES
from mlwizard.core.deploy.parity import SERVING_FEATURES, SERVING_RUNTIME
from mlwizard.core.kernel import atomic, templates
from mlwizard.core.kernel.config import Config
from mlwizard.core.kernel.errors import BadInputError
from mlwizard.core.kernel.formatting import timestamp
from mlwizard.core.kernel.workspace import Workspace

SERVICE_TEMPLATES = "service"
CHAMPION, CHALLENGER = "champion", "challenger"
DOT_PREFIX = "dot-"  # templates/service/dot-dockerignore -> .dockerignore (dotfiles stay visible)
UID = 10001


def write_bundle(
    ws: Workspace,
    champion_dir: Path,
    challenger_dir: Path | None = None,
    *,
    target: Path | None = None,
    config: Config | None = None,
) -> Path:
    """Write the service bundle for `champion_dir` (+ `challenger_dir`) and return its folder.

    A model folder holds model.onnx, schema.json and metadata.json (samples.json too, for the
    bundle's parity tests). `target` defaults to `artifacts/deploy/service`; `config` to the
    project's `mlwizard.toml`. The folder appears whole or not at all.
    """
    config = config or (ws.load_config() if ws.config_path.is_file() else Config())
    target = target or ws.artifact_dir("deploy") / "service"
    _check_model_dir(champion_dir)
    if challenger_dir is not None:
        _check_model_dir(challenger_dir)
    deploy = config.deploy
    if not 0.0 <= deploy.canary_share <= 1.0:
        raise BadInputError(f"[deploy] canary_share = {deploy.canary_share}: must be in [0, 1]")
    with staged_folder(target) as staging:
        models = staging / "models"
        _copy_model(champion_dir, models / CHAMPION)
        if challenger_dir is not None:
            _copy_model(challenger_dir, models / CHALLENGER)
        values = template_values(config, models / CHAMPION, challenger_dir is not None)
        render_templates(staging, values)
        shutil.copyfile(SERVING_RUNTIME, staging / SERVING_RUNTIME.name)
        shutil.copyfile(SERVING_FEATURES, staging / SERVING_FEATURES.name)  # predictor.py's
        atomic.write_json(staging / "bundle.json", values["bundle"])
        board = dashboard.build(values["service_name"], values["host"], values["task"])
        atomic.write_json(staging / "monitoring/grafana/dashboards/service.json", board)
        objective = values["latency_objective_s"]
        monitoring = staging / "monitoring"
        atomic.write_text(monitoring / "alerts.yml", alerts.rules_file(values["host"], objective))
        tests = alerts.tests_file(values["host"], objective)
        atomic.write_text(monitoring / "alerts_test.yml", tests)
        readable(staging)
    return target


def model_file(bundle_dir: Path, name: str, model: str = CHAMPION) -> Path:
    """A model's file in a bundle (`models/<model>/<name>`); bundles written before the
    models/ layout kept the champion's files at the top."""
    path = bundle_dir / "models" / model / name
    return path if path.exists() or model != CHAMPION else bundle_dir / name


def _check_model_dir(folder: Path) -> None:
    missing = [name for name in MODEL_FILES if not (folder / name).is_file()]
    if missing:
        raise BadInputError(f"{folder}: not a model folder (missing {', '.join(missing)})")


def _copy_model(source: Path, target: Path) -> None:
    target.mkdir(parents=True)
    for name in (*MODEL_FILES, *OPTIONAL_FILES):
        if (source / name).is_file():
            shutil.copyfile(source / name, target / name)


def readable(folder: Path) -> None:
    """Every file 0644 and folder 0755: the container runs as another user than the builder,
    whatever the builder's umask. A bundle holds no secrets."""
    folder.chmod(0o755)
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            Path(root, name).chmod(0o755)
        for name in files:
            Path(root, name).chmod(0o644)


def remove_leftovers(target: Path, *prefixes: str) -> None:
    """Staging folders beside `target` left by a run killed mid-way (`.<name>.*`, and others)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for prefix in (f".{target.name}.", *prefixes):
        for leftover in target.parent.glob(f"{prefix}*"):
            shutil.rmtree(leftover, ignore_errors=True)


@contextmanager
def staged_folder(target: Path) -> Iterator[Path]:
    """Yield an empty folder beside `target`; it replaces `target` only if the block succeeds.

    Two renames swap it in (Linux has no portable atomic folder exchange): a reader sees the old
    service or the new one, each whole, or for an instant none; never a mix.
    """
    parent = target.parent
    remove_leftovers(target)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent))
    try:
        yield staging
        staging.chmod(0o755)  # mkdtemp makes it 0700; the service runs as another user
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=parent))
            os.replace(target, old / target.name)
        os.replace(staging, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def render_templates(folder: Path, values: dict[str, Any]) -> None:
    """Copy the plain files of the service template; render the `.j2` ones; keep subfolders."""
    source = templates.templates_dir() / SERVICE_TEMPLATES
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if (
            not path.is_file()
            or "__pycache__" in relative.parts
            or path.suffix == ".pyc"
            or any(part.startswith(".") for part in relative.parts)
        ):
            continue
        parts = [_dotted(part) for part in relative.parts]
        out = folder.joinpath(*parts)
        out.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".j2":
            text = templates.render(f"{SERVICE_TEMPLATES}/{relative.as_posix()}", **values)
            out.with_suffix("").write_text(text, encoding="utf-8")
        else:
            shutil.copyfile(path, out)


def _dotted(part: str) -> str:
    return "." + part.removeprefix(DOT_PREFIX) if part.startswith(DOT_PREFIX) else part


def service_host(name: str) -> str:
    """A DNS-safe form of the service name, for image tags, hosts and scrape jobs."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "model-service"


def template_values(config: Config, champion: Path, has_challenger: bool) -> dict[str, Any]:
    deploy = config.deploy
    metadata = json.loads((champion / "metadata.json").read_text(encoding="utf-8"))
    schema = json.loads((champion / "schema.json").read_text(encoding="utf-8"))
    samples_path = champion / "samples.json"
    samples = json.loads(samples_path.read_text("utf-8")) if samples_path.is_file() else {}
    name = deploy.service_name
    host = service_host(name)
    features = metadata.get("features") or [
        {"name": f["name"], "kind": f["kind"], "type": f["kind"]} for f in schema["features"]
    ]
    example_rows = (samples.get("rows") or [{}])[:1]
    pins = requirements.pins(deploy.gpu, deploy.gpu_requirement)
    bundle = {
        "service_name": name,
        "shadow": deploy.shadow,
        "canary_share": deploy.canary_share,
        "cache_size": deploy.cache_size,
        "latency_objective_ms": deploy.latency_objective_ms,
        "providers": ["CUDAExecutionProvider"] if deploy.gpu else [],
    }
    return {
        "service_name": name,
        "host": host,
        "port": deploy.port,
        "uid": UID,
        "image": deploy.image or f"ghcr.io/OWNER/{host}",
        "python_version": f"{sys.version_info.major}.{sys.version_info.minor}",
        "base_image": requirements.base_image(gpu=deploy.gpu),
        "gpu": deploy.gpu,
        "replicas": max(1, deploy.replicas),
        "max_replicas": max(1, deploy.replicas) * 4,
        "latency_objective_s": deploy.latency_objective_ms / 1000.0,
        "latency_objective_ms": deploy.latency_objective_ms,
        "shadow": deploy.shadow,
        "canary_share": deploy.canary_share,
        "has_challenger": has_challenger,
        "requirements": pins["runtime"],
        "dev_requirements": pins["dev"],
        "stream_requirements": pins["stream"],
        "onnxruntime_version": pins["onnxruntime"],
        "task": schema["task"],
        "target": schema["target"],
        "features": [{**f, "send_as": _send_as(f["kind"], f["type"])} for f in features],
        "classes": [str(c) for c in schema.get("classes") or []],
        "metadata": metadata,
        "created_at": timestamp(),
        "example": _shell_quoted({"rows": example_rows}),
        "example_json": json.dumps({"rows": example_rows}, indent=2),
        "example_response": json.dumps(_example_response(metadata, samples), indent=2),
        "bundle": bundle,
    }


def _example_response(metadata: dict[str, Any], samples: dict[str, Any]) -> dict[str, Any]:
    served = (samples.get("served") or [{}])[:1]
    return {
        "model": CHAMPION,
        "version": str(metadata.get("model_version", "")),
        "predictions": served,
    }


def _send_as(kind: str, column_type: str) -> str:
    """How a client writes a feature's value: the value the model saw, not the raw column's."""
    if kind == "datetime":
        return 'number: seconds since 1970-01-01 UTC, or a string "2024-05-01T13:45:00"'
    if kind == "numeric":
        return "number: seconds since 1970-01-01 UTC" if column_type == "datetime" else "number"
    return '"true" or "false"' if column_type == "boolean" else "string"


def _shell_quoted(body: dict[str, Any]) -> str:
    """A request body ready to sit inside shell single quotes."""
    return json.dumps(body, default=str).replace("'", "'\\''")
