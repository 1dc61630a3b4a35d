"""The Grafana dashboard of a bundle, as plain JSON (schema version 39), and the PromQL it plots.

Grafana has no offline validator: the tests check this structure and put every expression
through `promtool` as recording rules (see `expressions`).
"""

from __future__ import annotations

from typing import Any

DATASOURCE = {"type": "prometheus", "uid": "prometheus"}


def expressions(task: str) -> dict[str, str]:
    """Panel title -> PromQL, all by the `model` label."""
    predicted = (
        "sum by (model, le) (rate(model_prediction_value_bucket[5m]))"
        if task == "regression"
        else "sum by (model, class) (rate(model_predicted_class_total[5m]))"
    )
    requests = 'rate(http_requests_total{path="/predict"}[5m])'
    errors = 'rate(http_requests_total{path="/predict",status=~"5.."}[5m])'
    buckets = 'rate(http_request_duration_seconds_bucket{path="/predict"}[5m])'
    rows = "clamp_min(sum by (model) (rate(model_predictions_total[5m])), 1e-9)"
    return {
        "Request rate (req/s)": f"sum by (model) ({requests})",
        "Error rate (share of 5xx)": (
            f"sum by (model) ({errors}) / clamp_min(sum by (model) ({requests}), 1e-9)"
        ),
        **{
            f"Latency p{q} (s)": f"histogram_quantile(0.{q}, sum by (le, model) ({buckets}))"
            for q in ("50", "95", "99")
        },
        "Prediction distribution": predicted,
        "Unknown-category rate (per row)": (
            f"sum by (model) (rate(model_unknown_categories_total[5m])) / {rows}"
        ),
        "Drift score": "max by (model) (model_drift_score)",
    }


def build(service_name: str, host: str, task: str) -> dict[str, Any]:
    panels = []
    for index, (title, expr) in enumerate(expressions(task).items()):
        panels.append(
            {
                "id": index + 1,
                "type": "timeseries",
                "title": title,
                "datasource": DATASOURCE,
                "gridPos": {"h": 8, "w": 12, "x": 12 * (index % 2), "y": 8 * (index // 2)},
                "targets": [
                    {
                        "refId": "A",
                        "datasource": DATASOURCE,
                        "expr": expr,
                        "legendFormat": "{{model}}",
                    }
                ],
                "fieldConfig": {"defaults": {}, "overrides": []},
                "options": {"legend": {"showLegend": True, "displayMode": "list"}},
            }
        )
    return {
        "uid": host[:40],
        "title": f"{service_name}: model service",
        "tags": ["mlwizard", host],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "panels": panels,
    }
