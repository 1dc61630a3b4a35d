"""The deploy phase, the generated service (run for real by uvicorn) and batch prediction."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import jinja2
import joblib
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from helpers.deploy import Project, build_project, running_service
from mlwizard.core.contract.features import feature_frame
from mlwizard.core.deploy import phase as deploy
from mlwizard.core.deploy.batch import load_predictor, predict_file
from mlwizard.core.export.onnx_export import make_session, onnx_feed
from mlwizard.core.kernel import templates
from mlwizard.core.kernel.context import PhaseResult
from mlwizard.core.kernel.errors import BadInputError, QualityGateError
from mlwizard.core.kernel.workspace import Checkpoint

SERVICE_FILES = {
    "models/champion/model.onnx",
    "models/champion/schema.json",
    "models/champion/metadata.json",
    "models/champion/samples.json",
    "app.py",
    "contract.py",
    "settings.py",
    "metrics.py",
    "router.py",
    "predictor.py",
    "userfeatures.py",  # predictor.py runs the project's features.py with it
    "stream_consumer.py",
    "bundle.json",
    "requirements.txt",
    "requirements-dev.txt",
    "requirements-stream.txt",
    "Dockerfile",
    ".dockerignore",
    "docker-compose.yml",
    "monitoring/prometheus.yml",
    "monitoring/alerts.yml",
    "monitoring/alerts_test.yml",
    "monitoring/grafana/dashboards/service.json",
    "monitoring/grafana/provisioning/dashboards/dashboards.yml",
    "monitoring/grafana/provisioning/datasources/prometheus.yml",
    "k8s/deployment.yaml",
    "k8s/service.yaml",
    "k8s/hpa.yaml",
    "k8s/pdb.yaml",
    "cloud/ecs-task-definition.json",
    ".github/workflows/bundle.yml",
    "tests/conftest.py",
    "tests/test_contract.py",
    "tests/test_parity.py",
    "tests/validate_model.py",
    "README.md",
    "MODEL_CARD.md",
    "API.md",
    "DEPLOY.md",
}
CHAMPION = Path("models/champion")
SERVING_FORBIDDEN = {"mlwizard", "sklearn", "pandas", "pickle", "joblib", "cloudpickle", "dill"}


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, PhaseResult]:
    project = build_project(tmp_path_factory.mktemp("binary") / "project")
    return project, deploy.run(project.ctx)


@pytest.fixture(scope="module")
def service_url(
    deployed: tuple[Project, PhaseResult], tmp_path_factory: pytest.TempPathFactory
) -> Any:
    project, _ = deployed
    with running_service(project.service, tmp_path_factory.mktemp("logs") / "uvicorn.log") as url:
        yield url


def _post(url: str, body: Any) -> httpx.Response:
    return httpx.post(f"{url}/predict", json=body, timeout=10.0)


def _in_process_onnx(project: Project) -> tuple[list[Any], np.ndarray]:
    """Labels and probabilities from onnxruntime in this process, on the training-side feed."""
    session = make_session(project.service / CHAMPION / "model.onnx")
    feed = onnx_feed(feature_frame(project.test_frame(), project.schema), project.schema)
    ids, proba = session.run(None, feed)
    classes = project.schema.classes or []
    return [classes[i] for i in ids.tolist()], np.asarray(proba)


# -- the phase ----------------------------------------------------------------------------------
def test_deploy_writes_a_whole_service_with_parity(deployed: tuple[Project, PhaseResult]) -> None:
    project, result = deployed
    assert result.gate_failures == []
    assert result.metrics["onnx_max_abs_diff"] < 1e-5
    assert result.metrics["label_agreement"] == 1.0
    assert result.metrics["parity_rows"] == 200
    files = {str(p.relative_to(project.service)) for p in project.service.rglob("*") if p.is_file()}
    assert files == SERVICE_FILES  # no __pycache__ either
    assert result.outputs["service"] == project.service
    for name in ("onnx", "dockerfile", "prometheus", "alerts", "compose", "workflow"):
        assert result.outputs[name].is_file()
        assert project.service in result.outputs[name].parents
    # A linear model has no weights to quantise and nothing to fold: served as trained.
    assert (project.service / CHAMPION / "model.onnx").read_bytes() == (
        project.ctx.upstream_artifact("model", "onnx").read_bytes()
    )
    assert [p.name for p in project.service.parent.iterdir()] == ["service"]  # no staging left
    metadata = json.loads((project.service / CHAMPION / "metadata.json").read_text())
    assert metadata["optimisation"]["chosen"] == "original"
    variants = metadata["optimisation"]["variants"]
    assert variants["original"]["kept"] and variants["original"]["latency_ms"]["row"] > 0
    assert all(not v["kept"] and v["reason"] for k, v in variants.items() if k != "original")
    assert metadata["parity"]["passed"] is True
    assert metadata["model"] == "linear"


def test_regression_service_matches_pipeline(tmp_path: Path) -> None:
    project = build_project(tmp_path / "reg", "regression", "hist_gradient_boosting")
    result = deploy.run(project.ctx)
    assert result.gate_failures == []
    assert "label_agreement" not in result.metrics
    assert result.metrics["onnx_max_abs_diff"] <= result.metrics["parity_tolerance"]
    predictor = load_predictor(project.service)
    served = [r["prediction"] for r in predictor.predict_records(project.test_rows())]
    pipeline = joblib.load(project.ctx.upstream_artifact("model", "pipeline"))
    native = pipeline.predict(feature_frame(project.test_frame(), project.schema))
    np.testing.assert_allclose(served, native, rtol=1e-5, atol=1e-4)


def test_service_applies_the_models_decision_threshold(tmp_path: Path) -> None:
    project = build_project(tmp_path / "p")
    project.ctx.upstream["model"].metrics["threshold"] = {"value": 0.7, "chosen_by": "f1"}
    result = deploy.run(project.ctx)
    assert result.gate_failures == [] and result.metrics["label_agreement"] == 1.0
    metadata = json.loads((project.service / CHAMPION / "metadata.json").read_text())
    assert metadata["decision_threshold"] == 0.7
    served = load_predictor(project.service).predict_records(project.test_rows())
    expected = ["stay" if r["proba"]["stay"] >= 0.7 else "churn" for r in served]
    assert [r["prediction"] for r in served] == expected
    assert any(0.5 < r["proba"]["stay"] < 0.7 for r in served)  # the threshold mattered


def test_parity_gate_fails_when_the_model_does_not_match(tmp_path: Path) -> None:
    project = build_project(tmp_path / "p")
    pipeline_path = project.ctx.upstream_artifact("model", "pipeline")
    pipeline = joblib.load(pipeline_path)
    pipeline.named_steps["model"].coef_ = pipeline.named_steps["model"].coef_ * 3
    joblib.dump(pipeline, pipeline_path)
    result = deploy.run(project.ctx)
    assert len(result.gate_failures) == 1
    assert "differ from the trained pipeline" in result.gate_failures[0]
    assert result.metrics["onnx_max_abs_diff"] > 1e-4
    metadata = json.loads((project.service / CHAMPION / "metadata.json").read_text())
    assert metadata["parity"]["passed"] is False


def test_failed_deploy_keeps_the_previous_service(tmp_path: Path) -> None:
    project = build_project(tmp_path / "p")
    deploy.run(project.ctx)
    before = {p: p.read_bytes() for p in project.service.rglob("*") if p.is_file()}
    project.ctx.upstream_artifact("model", "onnx").write_bytes(b"not an onnx model")
    (project.service.parent / ".service.killed.tmp").mkdir()  # left by a run killed mid-way
    with pytest.raises(QualityGateError, match="cannot load its model"):
        deploy.run(project.ctx)
    assert {p: p.read_bytes() for p in project.service.rglob("*") if p.is_file()} == before
    assert [p.name for p in project.service.parent.iterdir()] == ["service"]


# -- the running service ------------------------------------------------------------------------
def test_service_predicts_like_onnxruntime(deployed: tuple[Project, PhaseResult], service_url: str):
    project, _ = deployed
    rows = project.test_rows()
    response = _post(service_url, {"rows": rows})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    labels, proba = _in_process_onnx(project)
    assert [p["prediction"] for p in predictions] == labels
    served = np.array([[p["proba"][c] for c in project.schema.classes or []] for p in predictions])
    np.testing.assert_allclose(served, proba, atol=1e-5, rtol=0)
    # One row alone: onnxruntime's kernels may round the last float32 bit differently by batch.
    one = _post(service_url, {"rows": rows[:1]}).json()["predictions"][0]
    assert one["prediction"] == predictions[0]["prediction"]
    assert one["proba"] == pytest.approx(predictions[0]["proba"], abs=1e-6)


@pytest.mark.parametrize(
    ("change", "field", "kind"),
    [
        ({"age years": "41"}, "age years", "float_type"),
        ({"age years": True}, "age years", "float_type"),
        ({"income": 1e300}, "income", "less_than_equal"),  # would be inf as float32
        ({"city": 3}, "city", "string_type"),
        ({"colour": "red"}, "colour", "extra_forbidden"),
        ({"income": None, "plan": ...}, "plan", "missing"),
    ],
)
def test_malformed_rows_get_422_naming_the_field(
    deployed: tuple[Project, PhaseResult],
    service_url: str,
    change: dict[str, Any],
    field: str,
    kind: str,
) -> None:
    project, _ = deployed
    row = {**project.test_rows()[0], **change}
    row = {k: v for k, v in row.items() if v is not ...}
    response = _post(service_url, {"rows": [project.test_rows()[1], row]})
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert [(e["loc"], e["type"]) for e in errors] == [(["body", "rows", 1, field], kind)]


def test_malformed_requests_get_422(
    deployed: tuple[Project, PhaseResult], service_url: str
) -> None:
    project, _ = deployed
    assert _post(service_url, {"rows": []}).status_code == 422
    row = json.dumps({**project.test_rows()[0], "income": None})
    row = row.replace('"income": null', '"income": Infinity')
    infinite = httpx.post(
        f"{service_url}/predict",
        content=f'{{"rows": [{row}]}}',
        headers={"content-type": "application/json"},
    )
    assert infinite.status_code == 422 and infinite.json()["detail"][0]["loc"][-1] == "income"
    assert _post(service_url, {"rows": [], "extra": 1}).status_code == 422
    garbage = httpx.post(f"{service_url}/predict", content=b"{not json", timeout=10.0)
    assert garbage.status_code == 422


def test_metadata_and_metrics(deployed: tuple[Project, PhaseResult], service_url: str) -> None:
    project, _ = deployed
    _post(service_url, {"rows": project.test_rows()[:3]})
    _post(service_url, {"rows": [{"nope": 1}]})
    answer = httpx.get(f"{service_url}/metadata").json()
    assert answer["shadow"] is False and answer["canary_share"] == 0.0
    metadata = answer["champion"]
    assert metadata["name"] == "Churn API"
    assert metadata["task"] == "binary"
    assert metadata["classes"] == ["churn", "stay"]
    assert [f["name"] for f in metadata["features"]] == [
        "age years",
        "income",
        "city",
        "plan",
        "promo",
    ]
    assert metadata["features"][-1] == {"name": "promo", "kind": "categorical", "type": "boolean"}
    assert metadata["metrics"]["test"] == {"accuracy": 0.8}
    assert metadata["created_at"]
    metrics = httpx.get(f"{service_url}/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert re.search(
        r'http_requests_total\{method="POST",model="none",path="/predict",status="422"\} \d', text
    )
    assert re.search(
        r'http_request_duration_seconds_bucket\{le="0.01",model="champion",path="/predict"\}', text
    )
    predicted = re.search(
        r'^model_predictions_total\{model="champion",served="true"\} (\S+)$', text, re.MULTILINE
    )
    assert predicted and float(predicted.group(1)) >= 3
    assert re.search(r'^model_ready\{model="champion"\} 1.0$', text, re.MULTILINE)
    assert 'model_info{model="champion",name="Churn API",task="binary"' in text


# -- batch prediction ---------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_predict_file_reproduces_the_service(
    deployed: tuple[Project, PhaseResult], service_url: str, tmp_path: Path, fmt: str
) -> None:
    project, _ = deployed
    frame = project.test_frame()  # with the target: extra columns are kept, not scored
    source = tmp_path / f"batch.{fmt}"
    if fmt == "csv":
        frame.to_csv(source, index=False)
    else:  # the raw column, as in the source: booleans, which the data phase made "true"/"false"
        frame.assign(promo=frame["promo"] == "true").to_parquet(source, index=False)
    written = predict_file(project.ctx.workspace, source, tmp_path / "out.csv")
    assert written == tmp_path / "out.csv"
    scored = pd.read_csv(written, keep_default_na=False, na_values=[""])
    assert list(scored.columns) == [
        *frame.columns,
        "prediction",
        "proba_churn",
        "proba_stay",
        "warnings",
    ]
    served = _post(service_url, {"rows": project.test_rows()}).json()["predictions"]
    assert scored["prediction"].tolist() == [p["prediction"] for p in served]
    # The same warnings as the service's: the test split has a city training never saw.
    warned = scored["warnings"].fillna("").tolist()
    assert warned == ["; ".join(p.get("warnings", [])) for p in served]
    assert any("marseille" in w for w in warned)
    np.testing.assert_allclose(
        scored[["proba_churn", "proba_stay"]].to_numpy(),
        [[p["proba"]["churn"], p["proba"]["stay"]] for p in served],
        atol=1e-6,
    )


def test_predict_file_defaults_to_parquet_beside_the_input(
    deployed: tuple[Project, PhaseResult], tmp_path: Path
) -> None:
    project, _ = deployed
    source = tmp_path / "new.parquet"
    pq.write_table(pq.read_table(project.test_path).slice(0, 5), source)
    written = predict_file(project.ctx.workspace, source)
    assert written == tmp_path / "new.predictions.parquet"
    assert pq.read_table(written).num_rows == 5


def test_predict_file_rejects_missing_and_mistyped_columns(
    deployed: tuple[Project, PhaseResult], tmp_path: Path
) -> None:
    project, _ = deployed
    frame = project.test_frame()
    missing = tmp_path / "missing.csv"
    frame.drop(columns=["city"]).to_csv(missing, index=False)
    with pytest.raises(BadInputError, match=r"missing\.csv: missing feature column\(s\): city"):
        predict_file(project.ctx.workspace, missing)
    mistyped = tmp_path / "mistyped.csv"
    frame.assign(income="lots").to_csv(mistyped, index=False)
    with pytest.raises(BadInputError, match=r"mistyped\.csv: .*must be numeric: income"):
        predict_file(project.ctx.workspace, mistyped)
    with pytest.raises(BadInputError, match="unsupported output type"):
        predict_file(project.ctx.workspace, missing, tmp_path / "out.xlsx")
    assert not list(tmp_path.glob("*.predictions.*"))


def test_predict_file_reads_text_numbers_when_training_did(tmp_path: Path) -> None:
    """A numeric feature the data phase read from text (numbers among stray strings) may arrive
    as text: unreadable values become missing, as in training."""
    project = build_project(tmp_path / "p")
    deploy.run(project.ctx)
    ws = project.ctx.workspace
    profile_path = ws.resolve(ws.read_checkpoint("data").outputs["profile"])
    profile = json.loads(profile_path.read_text())
    profile["columns"]["income"]["type"] = "VARCHAR"
    profile_path.write_text(json.dumps(profile))
    frame = project.test_frame().head(20)
    source = tmp_path / "text.csv"
    frame.assign(income=["n/k"] * 10 + frame["income"][10:].tolist()).to_csv(source, index=False)
    scored = pd.read_parquet(predict_file(ws, source))
    rows = [{**r, "income": None} if i < 10 else r for i, r in enumerate(project.test_rows()[:20])]
    predictor = load_predictor(project.service)
    assert scored["prediction"].tolist() == [
        r["prediction"] for r in predictor.predict_records(rows)
    ]


def test_predict_file_refuses_a_gate_failed_deploy(tmp_path: Path) -> None:
    project = build_project(tmp_path / "p")
    deploy.run(project.ctx)
    ws = project.ctx.workspace
    ws.write_checkpoint(Checkpoint("deploy", "done", {}, "fp", gate_failures=["parity failed"]))
    with pytest.raises(QualityGateError, match="parity failed"):
        predict_file(ws, project.test_path)


# -- what is generated --------------------------------------------------------------------------
def _imports(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module.split(".")[0])
    return modules


def test_service_code_imports_only_its_runtime(deployed: tuple[Project, PhaseResult]) -> None:
    project, _ = deployed
    predictor = _imports(project.service / "predictor.py")
    predictor |= _imports(project.service / "userfeatures.py")  # it loads this one by path
    app = set().union(
        *(
            _imports(project.service / f)
            for f in ("app.py", "contract.py", "settings.py", "metrics.py", "router.py")
        )
    )
    assert not (predictor | app) & SERVING_FORBIDDEN
    assert predictor - sys.stdlib_module_names <= {"numpy", "onnxruntime"}
    allowed = {
        "numpy",
        "onnxruntime",
        "fastapi",
        "starlette",
        "pydantic",
        "orjson",
        "prometheus_client",
        "predictor",
        "metrics",
        "router",
        "contract",
        "settings",
    }
    assert app - sys.stdlib_module_names <= allowed


def test_service_runtime_loads_no_training_stack(deployed: tuple[Project, PhaseResult]) -> None:
    """Importing the app (which loads the model) pulls in none of mlwizard's training stack.

    (The stdlib `pickle` module is loaded by numpy itself; the AST test keeps our code off it.)
    """
    project, _ = deployed
    forbidden = sorted(SERVING_FORBIDDEN - {"pickle"})
    code = f"import sys, app; print(sorted(m for m in {forbidden!r} if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-B", "-c", code],
        cwd=project.service,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "[]"


def test_requirements_pin_exactly_what_was_tested(deployed: tuple[Project, PhaseResult]) -> None:
    from importlib.metadata import version

    project, _ = deployed
    lines = (project.service / "requirements.txt").read_text().splitlines()
    pins = dict(line.split("==") for line in lines if line and not line.startswith("#"))
    direct = {"fastapi", "uvicorn", "onnxruntime", "numpy", "orjson", "prometheus-client"}
    assert direct <= set(pins) and list(pins)[:6] == sorted(direct, key=list(pins).index)
    assert not set(pins) & {"scikit-learn", "pandas", "mlwizard", "joblib"}
    for name, pinned in pins.items():
        assert pinned == version(name), name  # the versions the parity check ran with


def test_dockerfile_is_multi_stage_non_root_and_ready_checked(
    deployed: tuple[Project, PhaseResult],
) -> None:
    project, _ = deployed
    dockerfile = (project.service / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", dockerfile, re.MULTILINE)
    assert len(stages) == 2 and stages[0] == stages[1]
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-bookworm", stages[0])  # pinned by version
    assert re.search(r"^USER 10001:10001$", dockerfile, re.MULTILINE)
    assert re.search(r'^HEALTHCHECK .*\\\n\s+CMD \["python", .*/ready', dockerfile, re.MULTILINE)
    final = dockerfile.split("\nFROM ")[-1]
    assert "pip install" not in final and "gcc" not in final and "curl" not in dockerfile
    assert "EXPOSE 8123" in final
    ignored = (project.service / ".dockerignore").read_text().splitlines()
    assert ignored[1] == "*" and "!models/" in ignored and "!tests/" not in ignored


def test_prometheus_config_scrapes_the_service(deployed: tuple[Project, PhaseResult]) -> None:
    project, _ = deployed
    config = (project.service / "monitoring" / "prometheus.yml").read_text()
    assert 'targets: ["churn-api:8123"]' in config and "metrics_path: /metrics" in config
    assert "- alerts.yml" in config


def test_templates_render_strictly() -> None:
    assert (templates.templates_dir() / "service" / "app.py").is_file()
    with pytest.raises(jinja2.UndefinedError):
        templates.render("service/Dockerfile.j2", port=8000)
