"""The service's Prometheus metrics. Every label has a bounded set of values: methods and paths
are mapped onto the known ones, `model` is champion/challenger, features and classes come from
schema.json. Each metric carries the `model` label (`none` for requests no model answered).
"""

import json
import math
from pathlib import Path
from typing import Any

from predictor import OUT_OF_RANGE, UNKNOWN_CATEGORY
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

ROUTES = frozenset(
    {"/predict", "/health", "/ready", "/metadata", "/metrics", "/docs", "/openapi.json"}
)
METHODS = frozenset({"GET", "POST", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class DriftCollector:
    """`model_drift_score{model}`: read at scrape time from the JSON file the operations phase
    writes (`DRIFT_REPORT`, e.g. {"score": 0.12} or {"champion": 0.12}); absent file: no series."""

    def __init__(self, path: str | None) -> None:
        self.path = Path(path) if path else None

    def collect(self) -> Any:
        family = GaugeMetricFamily(
            "model_drift_score", "Input drift score from the last monitoring run.", labels=["model"]
        )
        if self.path is not None:
            try:
                raw = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                raw = {}
            scores = {"champion": raw["score"]} if "score" in raw else raw
            for model in ("champion", "challenger"):
                value = scores.get(model)
                if isinstance(value, int | float) and math.isfinite(value):
                    family.add_metric([model], float(value))
        yield family


class Metrics:
    def __init__(self, router: Any, schema: dict[str, Any], drift_report: str | None) -> None:
        disable_created_metrics()  # no `*_created` series: they double the output
        self.registry = registry = CollectorRegistry()
        for collector in (ProcessCollector, PlatformCollector, GCCollector):
            collector(registry=registry)
        registry.register(DriftCollector(drift_report))
        self.features = frozenset(f["name"] for f in schema["features"])
        self.classes = [str(c) for c in schema.get("classes") or []]
        self.requests = Counter(
            "http_requests",
            "HTTP requests.",
            ["method", "path", "status", "model"],
            registry=registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time to answer an HTTP request.",
            ["path", "model"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.rows = Counter(
            "model_predictions",
            "Rows scored, answered or in shadow.",
            ["model", "served"],
            registry=registry,
        )
        self.refused = Counter(
            "model_rows_refused",
            "Rows whose scores were not finite (422).",
            ["model"],
            registry=registry,
        )
        self.unknown = Counter(
            "model_unknown_categories",
            "Values of a categorical feature never seen in training.",
            ["model", "feature"],
            registry=registry,
        )
        self.out_of_range = Counter(
            "model_out_of_range_values",
            "Numbers outside the training range of their feature.",
            ["model", "feature"],
            registry=registry,
        )
        self.cache_hits = Counter(
            "model_cache_hits",
            "Rows answered from the prediction cache.",
            ["model"],
            registry=registry,
        )
        self.is_ready = Gauge(
            "model_ready", "1 once the model is loaded and warm.", ["model"], registry=registry
        )
        info = Gauge(
            "model_info",
            "The served models (value 1).",
            ["model", "name", "task", "version"],
            registry=registry,
        )
        self.classifier = bool(self.classes)
        self._http: dict[tuple[str, str, int, str], Any] = {}
        self._children: dict[tuple[Any, ...], Any] = {}
        if self.classifier:
            self.predicted = Counter(
                "model_predicted_class", "Predicted labels.", ["model", "class"], registry=registry
            )
        else:
            buckets = router.champion.metadata.get("prediction_buckets") or [0.0]
            self.values = Histogram(
                "model_prediction_value",
                "Predicted values.",
                ["model"],
                buckets=sorted(set(float(b) for b in buckets)),
                registry=registry,
            )
        for model in router.models:
            self.is_ready.labels(model.name).set(0)
            info.labels(
                model.name, str(model.metadata.get("name", "")), str(schema["task"]), model.version
            ).set(1)

    def observe(self, method: str, path: str, status: int, model: str, seconds: float) -> str:
        path = path if path in ROUTES else "other"
        method = method if method in METHODS else "other"
        key = (method, path, status, model)
        children = self._http.get(key)
        if children is None:  # `labels()` costs a lock and a tuple per call: look it up once
            children = (
                self.requests.labels(method, path, str(status), model),
                self.latency.labels(path, model),
            )
            self._http[key] = children
        children[0].inc()
        children[1].observe(seconds)
        return path

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def ready(self, model: str, ready: bool) -> None:
        self.is_ready.labels(model).set(1 if ready else 0)

    def scored(self, scored: Any, served: bool) -> None:
        model = scored.model
        n = len(scored.records)
        self._child(self.rows, model, "true" if served else "false").inc(n)
        if scored.cache_hits:
            self._child(self.cache_hits, model).inc(scored.cache_hits)
        refused = n - sum(scored.finite)
        if refused:
            self._child(self.refused, model).inc(refused)
        if any(scored.flags):
            for feature, count in scored.counts(UNKNOWN_CATEGORY).items():
                self._child(self.unknown, model, feature).inc(count)
            for feature, count in scored.counts(OUT_OF_RANGE).items():
                self._child(self.out_of_range, model, feature).inc(count)
        for record, finite in zip(scored.records, scored.finite, strict=True):
            if not finite:
                continue
            if self.classifier:
                self._child(self.predicted, model, str(record["prediction"])).inc()
            else:
                self._child(self.values, model).observe(float(record["prediction"]))

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
