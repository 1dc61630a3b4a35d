"""Prometheus alert rules for a bundle, and the `promtool test rules` file that proves each fires.

Both files come from the same definitions, so the tests' expected labels and annotations cannot
drift from the rules. Every alert's annotation names the runbook section in the bundle README.
"""

from __future__ import annotations

from typing import Any

import yaml

ERROR_RATE = 0.05  # share of 5xx answers over 5 minutes
DRIFT_SCORE = 0.2  # PSI-like score: above 0.2 is usually called major drift


def rules(job: str, latency_objective_s: float) -> list[dict[str, Any]]:
    sel = f'job="{job}"'
    predict = f'{sel},path="/predict"'
    return [
        {
            "alert": "ModelServiceHighErrorRate",
            "expr": f'sum by (job) (rate(http_requests_total{{{predict},status=~"5.."}}[5m])) '
            f"/ sum by (job) (rate(http_requests_total{{{predict}}}[5m])) > {ERROR_RATE}",
            "for": "5m",
            "labels": {"severity": "page"},
            "annotations": {
                "summary": f"More than {ERROR_RATE:.0%} of /predict requests fail (5xx).",
                "runbook": "README.md#alert-modelservicehigherrorrate",
            },
        },
        {
            "alert": "ModelServiceLatencyP99High",
            "expr": "histogram_quantile(0.99, sum by (job, le) (rate("
            f"http_request_duration_seconds_bucket{{{predict}}}[5m]))) > {latency_objective_s:g}",
            "for": "10m",
            "labels": {"severity": "ticket"},
            "annotations": {
                "summary": f"/predict p99 latency is over the {latency_objective_s * 1000:g} ms "
                "objective.",
                "runbook": "README.md#alert-modelservicelatencyp99high",
            },
        },
        {
            "alert": "ModelServiceNoTraffic",
            "expr": f"(sum by (job) (rate(http_requests_total{{{predict}}}[15m])) "
            f"or sum by (job) (up{{{sel}}}) * 0) == 0",
            "for": "15m",
            "labels": {"severity": "ticket"},
            "annotations": {
                "summary": "No /predict requests for 15 minutes.",
                "runbook": "README.md#alert-modelservicenotraffic",
            },
        },
        {
            "alert": "ModelServiceNotReady",
            "expr": f"min by (job, instance) (model_ready{{{sel}}}) == 0 or up{{{sel}}} == 0",
            "for": "5m",
            "labels": {"severity": "page"},
            "annotations": {
                "summary": "An instance is down or its model is not loaded.",
                "runbook": "README.md#alert-modelservicenotready",
            },
        },
        {
            "alert": "ModelInputDrift",
            "expr": f"max by (job, model) (model_drift_score{{{sel}}}) > {DRIFT_SCORE}",
            "for": "5m",
            "labels": {"severity": "ticket"},
            "annotations": {
                "summary": f"The input drift score is over {DRIFT_SCORE}: run `mlwizard monitor`.",
                "runbook": "README.md#alert-modelinputdrift",
            },
        },
    ]


def rules_file(job: str, latency_objective_s: float) -> str:
    document = {"groups": [{"name": job, "rules": rules(job, latency_objective_s)}]}
    return _header("Alert rules") + yaml.safe_dump(document, sort_keys=False, width=100)


def _expected(rule: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    return {"exp_labels": {**labels, **rule["labels"]}, "exp_annotations": rule["annotations"]}


def tests_file(job: str, latency_objective_s: float) -> str:
    """One test per alert that makes it fire, and one healthy case that fires nothing."""
    by_name = {r["alert"]: r for r in rules(job, latency_objective_s)}
    j = {"job": job}
    inst = {"job": job, "instance": "service:8000"}

    def series(metric: str, values: str, **labels: str) -> dict[str, str]:
        text = ",".join(f'{k}="{v}"' for k, v in {**inst, **labels}.items())
        return {"series": f"{metric}{{{text}}}", "values": values}

    req = {"method": "POST", "path": "/predict", "model": "champion"}
    hist = "http_request_duration_seconds_bucket"
    tests: list[dict[str, Any]] = [
        {
            "interval": "1m",
            "input_series": [
                series("http_requests_total", "0+10x30", **req, status="500"),
                series("http_requests_total", "0+10x30", **req, status="200"),
            ],
            "alert_rule_test": [
                {
                    "eval_time": "15m",
                    "alertname": "ModelServiceHighErrorRate",
                    "exp_alerts": [_expected(by_name["ModelServiceHighErrorRate"], j)],
                }
            ],
        },
        {
            "interval": "1m",
            "input_series": [
                series("http_requests_total", "0+10x30", **req, status="200"),
                series("up", "1x30"),
                series("model_ready", "1x30", model="champion"),
            ],
            "alert_rule_test": [
                {"eval_time": "20m", "alertname": name, "exp_alerts": []}
                for name in (
                    "ModelServiceHighErrorRate",
                    "ModelServiceNoTraffic",
                    "ModelServiceNotReady",
                )
            ],
        },
        {
            "interval": "1m",
            "input_series": [
                series("up", "1x40"),
            ],
            "alert_rule_test": [
                {
                    "eval_time": "35m",
                    "alertname": "ModelServiceNoTraffic",
                    "exp_alerts": [_expected(by_name["ModelServiceNoTraffic"], j)],
                }
            ],
        },
        {
            "interval": "1m",
            "input_series": [
                series("up", "1x20"),
                series("model_ready", "0x20", model="champion"),
            ],
            "alert_rule_test": [
                {
                    "eval_time": "10m",
                    "alertname": "ModelServiceNotReady",
                    "exp_alerts": [_expected(by_name["ModelServiceNotReady"], inst)],
                }
            ],
        },
        {
            "interval": "1m",
            "input_series": [
                series("model_drift_score", "0.5x20", model="champion"),
            ],
            "alert_rule_test": [
                {
                    "eval_time": "10m",
                    "alertname": "ModelInputDrift",
                    "exp_alerts": [
                        _expected(by_name["ModelInputDrift"], {**j, "model": "champion"})
                    ],
                }
            ],
        },
    ]
    if latency_objective_s < 5.0:  # every observation above the largest finite bucket (5 s)
        buckets = [
            series(hist, "0+0x30", path="/predict", model="champion", le=le)
            for le in ("0.001", "0.01", "0.1", "1", "5")
        ] + [series(hist, "0+10x30", path="/predict", model="champion", le="+Inf")]
        tests.append(
            {
                "interval": "1m",
                "input_series": buckets,
                "alert_rule_test": [
                    {
                        "eval_time": "20m",
                        "alertname": "ModelServiceLatencyP99High",
                        "exp_alerts": [_expected(by_name["ModelServiceLatencyP99High"], j)],
                    }
                ],
            }
        )
    document = {"rule_files": ["alerts.yml"], "evaluation_interval": "1m", "tests": tests}
    return _header("promtool unit tests for alerts.yml: `promtool test rules alerts_test.yml`") + (
        yaml.safe_dump(document, sort_keys=False, width=200)
    )


def _header(what: str) -> str:
    return f"# {what}. Generated by mlwizard from the same definitions as its counterpart.\n"
