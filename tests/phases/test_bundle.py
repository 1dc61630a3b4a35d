"""The deployment bundle: its validators, the service run as an unprivileged user from a copy
that keeps modes, the contract under schemathesis, the body limit, extreme numbers, the bundle's
own tests, and the GPU variant. Real tools and real servers on 127.0.0.1 only."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import yaml

from helpers.deploy import Project, build_project, running_service, unprivileged_venv
from mlwizard.core.deploy import bundle, dashboard, validate
from mlwizard.core.deploy import phase as deploy
from mlwizard.core.kernel.config import Config
from mlwizard.core.kernel.context import PhaseResult

# Bounded in the suite by examples per operation (and a cap on the time, for a loaded machine);
# the >= 60 s acceptance run is benchmarks/bench_service.py's, recorded in docs/benchmarks.md.
SCHEMATHESIS_EXAMPLES = 10
SCHEMATHESIS_SECONDS = 15  # fuzzing and stateful testing repeat until it is spent


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, PhaseResult]:
    project = build_project(tmp_path_factory.mktemp("bundle") / "project")
    return project, deploy.run(project.ctx)


@pytest.fixture(scope="module")
def service_url(
    deployed: tuple[Project, PhaseResult], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    project, _ = deployed
    with running_service(project.service, tmp_path_factory.mktemp("logs") / "uvicorn.log") as url:
        yield url


def _tool(name: str) -> str:
    found = validate.tool(name)
    assert found, f"{name} is not installed: `make` installs the dev extra, .ci/run the rest"
    return found


def test_every_validator_passes_on_the_bundle(deployed: tuple[Project, PhaseResult]) -> None:
    _, result = deployed
    checks = result.metrics["checks"]
    assert set(checks) == {"hadolint", "compose", "promtool", "actionlint", "kubernetes"}
    for name, check in checks.items():
        assert check["status"] == validate.PASSED, f"{name}: {check['output']}"
    assert validate.failures(checks) == []


def test_validators_refuse_a_broken_bundle(
    deployed: tuple[Project, PhaseResult], tmp_path: Path
) -> None:
    """The checks are real: each tool says no to a file it should refuse."""
    project, _ = deployed
    broken = tmp_path / "broken"
    shutil.copytree(project.service, broken)
    deployment = broken / "k8s" / "deployment.yaml"
    deployment.write_text(deployment.read_text().replace("replicas: 2", "replicas: two"))
    dockerfile = broken / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("USER 10001:10001", "USER app"))
    alerts = broken / "monitoring" / "alerts.yml"
    alerts.write_text(alerts.read_text().replace("> 0.05", "> > 0.05"))
    workflow = broken / ".github" / "workflows" / "bundle.yml"
    workflow.write_text(workflow.read_text().replace("runs-on: ubuntu-latest", "runs-on: 7", 1))
    compose = broken / "docker-compose.yml"
    compose.write_text(compose.read_text().replace("services:", "services:\n  bad: 1", 1))
    checks = validate.run_checks(broken)
    assert {n: c["status"] for n, c in checks.items()} == dict.fromkeys(checks, validate.FAILED)
    assert "spec.replicas" in checks["kubernetes"]["output"]
    assert "DL3002" in checks["hadolint"]["output"] or "DL3066" in checks["hadolint"]["output"]


def test_alert_rules_cover_the_issue_and_their_tests_fire(
    deployed: tuple[Project, PhaseResult],
) -> None:
    project, _ = deployed
    rules = yaml.safe_load((project.service / "monitoring" / "alerts.yml").read_text())
    names = {r["alert"] for r in rules["groups"][0]["rules"]}
    assert names == {
        "ModelServiceHighErrorRate",
        "ModelServiceLatencyP99High",
        "ModelServiceNoTraffic",
        "ModelServiceNotReady",
        "ModelInputDrift",
    }
    latency = next(r for r in rules["groups"][0]["rules"] if "P99" in r["alert"])
    assert latency["expr"].endswith("> 0.25")  # [deploy] latency_objective_ms = 250
    tests = yaml.safe_load((project.service / "monitoring" / "alerts_test.yml").read_text())
    fired = {t["alertname"] for case in tests["tests"] for t in case["alert_rule_test"]}
    assert fired == names
    done = subprocess.run(
        [_tool("promtool"), "test", "rules", "alerts_test.yml"],
        cwd=project.service / "monitoring",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "SUCCESS" in done.stdout, done.stdout + done.stderr


def test_grafana_is_provisioned_with_the_dashboard(deployed: tuple[Project, PhaseResult]) -> None:
    project, _ = deployed
    grafana = project.service / "monitoring" / "grafana"
    source = yaml.safe_load((grafana / "provisioning/datasources/prometheus.yml").read_text())
    uid = source["datasources"][0]["uid"]
    board = json.loads((grafana / "dashboards" / "service.json").read_text())
    titles = [p["title"] for p in board["panels"]]
    assert titles == list(dashboard.expressions("binary"))
    for wanted in ("Request rate", "Error rate", "p50", "p95", "p99", "Prediction", "Unknown"):
        assert any(wanted in t for t in titles), wanted
    assert "Drift score" in titles
    assert {p["datasource"]["uid"] for p in board["panels"]} == {uid}
    compose = yaml.safe_load((project.service / "docker-compose.yml").read_text())
    assert set(compose["services"]) == {"churn-api", "prometheus", "grafana"}


def test_kubernetes_manifests_are_hardened(deployed: tuple[Project, PhaseResult]) -> None:
    project, _ = deployed
    manifests = {
        p.stem: yaml.safe_load(p.read_text()) for p in (project.service / "k8s").glob("*.yaml")
    }
    kinds = {m["kind"] for m in manifests.values()}
    assert kinds == {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
    pod = manifests["deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["resources"]["requests"]["cpu"] and "nvidia.com/gpu" not in str(container)


def test_gpu_variant_is_generated_and_validated(
    deployed: tuple[Project, PhaseResult], tmp_path: Path
) -> None:
    project, _ = deployed
    config = Config(deploy=replace(project.ctx.config.deploy, gpu=True))
    champion = project.service / "models" / "champion"
    gpu = bundle.write_bundle(
        project.ctx.workspace, champion, target=tmp_path / "gpu", config=config
    )
    dockerfile = (gpu / "Dockerfile").read_text()
    assert (
        "FROM nvidia/cuda:" in dockerfile and "MODEL_PROVIDERS=CUDAExecutionProvider" in dockerfile
    )
    requirements = (gpu / "requirements.txt").read_text()
    assert "onnxruntime-gpu==" in requirements and "\nonnxruntime==" not in requirements
    deployment = yaml.safe_load((gpu / "k8s" / "deployment.yaml").read_text())
    limits = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == 1
    assert json.loads((gpu / "bundle.json").read_text())["providers"] == ["CUDAExecutionProvider"]
    checks = validate.run_checks(gpu)
    assert {n: c["status"] for n, c in checks.items()} == dict.fromkeys(checks, validate.PASSED)


def test_the_bundles_own_tests_pass(deployed: tuple[Project, PhaseResult], tmp_path: Path) -> None:
    project, _ = deployed
    copy = tmp_path / "bundle"
    shutil.copytree(project.service, copy)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "failed" not in done.stdout
    gate = subprocess.run(
        [sys.executable, "tests/validate_model.py"], cwd=copy, capture_output=True, text=True
    )
    assert gate.returncode == 0 and gate.stdout.startswith("model gate passed"), gate.stdout
    metadata = copy / "models" / "champion" / "metadata.json"
    spoiled = json.loads(metadata.read_text())
    spoiled["success_threshold"] = 0.99
    metadata.write_text(json.dumps(spoiled))
    gate = subprocess.run(
        [sys.executable, "tests/validate_model.py"], cwd=copy, capture_output=True, text=True
    )
    assert gate.returncode == 1 and "success criterion" in gate.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to `nobody` needs root")
def test_service_starts_as_an_unprivileged_user_from_a_mode_keeping_copy(
    deployed: tuple[Project, PhaseResult],
) -> None:
    project, _ = deployed
    root = Path(tempfile.mkdtemp(prefix="mlwizard-nobody-"))  # pytest's tmp is 0700
    try:
        root.chmod(0o755)
        copy = root / "bundle"
        subprocess.run(["cp", "-a", str(project.service), str(copy)], check=True)
        python = unprivileged_venv(root / "venv", copy / "requirements.txt")
        modes = {p: p.stat().st_mode & 0o777 for p in copy.rglob("*")}
        assert all(m in (0o644, 0o755) for m in modes.values()), modes
        with running_service(copy, root / "service.log", python=str(python), user="nobody") as url:
            assert httpx.get(f"{url}/ready").json()["status"] == "ready"
            answer = httpx.post(f"{url}/predict", json={"rows": project.test_rows()[:3]})
            assert answer.status_code == 200 and len(answer.json()["predictions"]) == 3
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_a_25_mb_body_gets_413_before_it_is_read(service_url: str) -> None:
    body = b'{"rows": [' + b'{"income": 1.0},' * (25 * 1024 * 1024 // 16) + b"]}"
    answer = httpx.post(
        f"{service_url}/predict",
        content=body,
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert answer.status_code == 413 and "MAX_BODY_BYTES" not in answer.text
    assert "over 8388608 bytes" in answer.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: refused once the limit is passed
        yield b'{"rows": ['
        for _ in range(2000):
            yield b'{"income": 1.0},' * 1024

    chunked = httpx.post(f"{service_url}/predict", content=chunks(), timeout=30)
    assert chunked.status_code == 413
    assert httpx.get(f"{service_url}/health").status_code == 200


@pytest.mark.parametrize("value", [-3.26e38, 3.4e38, 1e300, -1e15])
def test_extreme_numbers_never_get_a_200_with_null_scores(
    deployed: tuple[Project, PhaseResult], service_url: str, value: float
) -> None:
    project, _ = deployed
    for column in ("age years", "income"):
        row = {**project.test_rows()[0], column: value}
        answer = httpx.post(f"{service_url}/predict", json={"rows": [row]}, timeout=10)
        if answer.status_code == 200:
            for prediction in answer.json()["predictions"]:
                scores = list(prediction["proba"].values())
                assert all(isinstance(p, float) and math.isfinite(p) for p in scores)
        else:
            assert answer.status_code == 422
            assert answer.json()["detail"][0]["loc"][-1] == column


def test_unknown_categories_are_flagged_and_counted(
    deployed: tuple[Project, PhaseResult], service_url: str
) -> None:
    project, _ = deployed
    row = {**project.test_rows()[0], "city": "atlantis", "age years": 500.0}
    answer = httpx.post(f"{service_url}/predict", json={"rows": [row, project.test_rows()[2]]})
    assert answer.status_code == 200
    first, second = answer.json()["predictions"]
    assert first["warnings"] == [
        "city: category 'atlantis' not seen in training",
        "age years: 500 outside the training range [3.29942, 79.876]",
    ]
    assert "warnings" not in second
    metrics = httpx.get(f"{service_url}/metrics").text
    assert 'model_unknown_categories_total{feature="city",model="champion"}' in metrics
    assert 'model_out_of_range_values_total{feature="age years",model="champion"}' in metrics


def test_request_ids_are_echoed_and_methods_bounded(service_url: str) -> None:
    answer = httpx.get(f"{service_url}/health", headers={"X-Request-ID": "req-42"})
    assert answer.headers["x-request-id"] == "req-42"
    made = httpx.get(f"{service_url}/health").headers["x-request-id"]
    assert len(made) == 32
    for method in ("BREW", "FROB", "ZAP"):
        assert httpx.request(method, f"{service_url}/predict").status_code == 405
    httpx.get(f"{service_url}/no/such/path/{made}")
    metrics = httpx.get(f"{service_url}/metrics").text
    for unbounded in ("BREW", "FROB", "ZAP", made):
        assert unbounded not in metrics
    assert 'method="other"' in metrics and 'path="other"' in metrics


def test_schemathesis_finds_no_failure(service_url: str, tmp_path: Path) -> None:
    """All checks, SCHEMATHESIS_EXAMPLES cases per operation here (benchmarks/ runs >= 60 s)."""
    done = subprocess.run(
        [
            _tool("schemathesis"),
            "run",
            f"{service_url}/openapi.json",
            "--checks",
            "all",
            "--max-examples",
            str(SCHEMATHESIS_EXAMPLES),
            "--max-time",
            str(SCHEMATHESIS_SECONDS),
            "--seed",
            "1",
            "--no-color",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=SCHEMATHESIS_SECONDS + 120,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    cases = re.search(r"(\d+) generated, (\d+) passed", done.stdout)
    assert cases and int(cases.group(1)) == int(cases.group(2)) >= 10, done.stdout[-2000:]
    assert "No issues found" in done.stdout


def test_a_bounded_load_run_has_no_errors(
    deployed: tuple[Project, PhaseResult], service_url: str
) -> None:
    """120 requests from 4 threads on loopback: every one a 200 with one prediction per row."""
    project, _ = deployed
    rows = project.test_rows()

    def one(i: int) -> tuple[int, int]:
        body = {"rows": [rows[(i + k) % len(rows)] for k in range(1 + i % 3)]}
        answer = httpx.post(f"{service_url}/predict", json=body, timeout=30)
        return answer.status_code, len(answer.json()["predictions"]) - len(body["rows"])

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(one, range(120)))
    assert answers == [(200, 0)] * 120
    metrics = httpx.get(f"{service_url}/metrics").text
    assert 'status="500"' not in metrics


def test_docs_come_from_the_real_artifacts(deployed: tuple[Project, PhaseResult]) -> None:
    project, _ = deployed
    service = project.service
    metadata = json.loads((service / "models/champion/metadata.json").read_text())
    card = (service / "MODEL_CARD.md").read_text()
    assert "Estimator: `linear`" in card and "accuracy 0.8" in card
    assert f"`{metadata['data_version']}`" in card
    assert "`age years`, `income`" in card  # sensitive-looking columns, named
    assert f"onnxruntime {metadata['versions']['onnxruntime']}" in card
    api = (service / "API.md").read_text()
    samples = json.loads((service / "models/champion/samples.json").read_text())
    first = samples["served"][0]
    assert json.dumps(first["prediction"]) in api and str(first["proba"]["churn"]) in api
    readme = (service / "README.md").read_text()
    for needle in ("kubectl rollout undo", "PREDICTION_LOG", '"served": true', "## Alert: "):
        assert needle.replace("## Alert: ", "### Alert: ") in readme
    anchors = yaml.safe_load((service / "monitoring" / "alerts.yml").read_text())
    for rule in anchors["groups"][0]["rules"]:
        heading = rule["annotations"]["runbook"].split("#")[1]
        assert (
            f"### Alert: {rule['alert']}" in readme and heading == f"alert-{rule['alert'].lower()}"
        )
