"""HTTP service for one ONNX model: POST /predict, GET /health, /metadata, /metrics.

Endpoints are `async def`: a small model runs faster inline than behind a thread-pool hop.
Large batches go to the thread pool so they do not stall other requests (onnxruntime releases
the GIL while it runs).

Settings (environment): MODEL_DIR (folder with model.onnx, schema.json, metadata.json; default:
this file's folder), MODEL_THREADS (onnxruntime threads, default 1), MAX_ROWS (rows per request,
default 10000), INLINE_MAX_ROWS (larger requests run in the thread pool, default 64).
"""

import json
import logging
import os
import time
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, Response
from predictor import Predictor  # predictor.py, beside this file
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    Info,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, create_model
from starlette.concurrency import run_in_threadpool

MODEL_DIR = Path(os.environ.get("MODEL_DIR", Path(__file__).resolve().parent))
MODEL_THREADS = int(os.environ.get("MODEL_THREADS", "1"))
MAX_ROWS = int(os.environ.get("MAX_ROWS", "10000"))
INLINE_MAX_ROWS = int(os.environ.get("INLINE_MAX_ROWS", "64"))

log = logging.getLogger("service")

predictor = Predictor.from_folder(MODEL_DIR, threads=MODEL_THREADS)
METADATA: dict[str, Any] = json.loads((MODEL_DIR / "metadata.json").read_text(encoding="utf-8"))
if not (METADATA.get("parity") or {}).get("passed", True):
    log.warning("this model failed its ONNX parity check at deploy time; see /metadata")

# -- request and response models, built from schema.json ---------------------------------------
# Field names are positional (`c0`, `c1`, ...) and the column names are aliases: columns may be
# any text, and errors name the column (pydantic reports locations by alias). Strict types: no
# "1" for 1.0, no true for 1; ints are fine. Missing is null: NaN and Infinity (which Python's JSON
# parser lets through) are refused, as are numbers beyond float32: the trained pipeline would
# refuse infinity too.
_STRICT = ConfigDict(extra="forbid", strict=True)
_FLOAT32_MAX = 3.4028234663852886e38  # the model reads float32: larger numbers would become inf
Number = Annotated[FiniteFloat, Field(ge=-_FLOAT32_MAX, le=_FLOAT32_MAX)]
_FIELDS = {f"c{i}": feature["name"] for i, feature in enumerate(predictor.features)}
Row = create_model(
    "Row",
    __config__=_STRICT,
    **{
        field: (
            Number | None if feature["kind"] == "numeric" else str | None,
            Field(alias=feature["name"]),
        )
        for field, feature in zip(_FIELDS, predictor.features, strict=True)
    },
)


class PredictRequest(BaseModel):
    model_config = _STRICT
    rows: list[Row] = Field(min_length=1, max_length=MAX_ROWS)  # type: ignore[valid-type]


class RowPrediction(BaseModel):
    prediction: Any
    proba: dict[str, float] | None = None
    cluster: int | None = None  # clustering: the cluster id (also the prediction)
    anomaly: bool | None = None  # anomaly detection: flagged as an anomaly (the prediction)
    anomaly_score: float | None = None  # anomaly detection: higher = more unusual


class PredictResponse(BaseModel):
    predictions: list[RowPrediction]


# -- metrics ------------------------------------------------------------------------------------
disable_created_metrics()  # no `*_created` series: they double the output and nothing reads them
REGISTRY = CollectorRegistry()
for collector in (ProcessCollector, PlatformCollector, GCCollector):
    collector(registry=REGISTRY)
REQUESTS = Counter(
    "http_requests", "HTTP requests.", ["method", "path", "status"], registry=REGISTRY
)
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request.",
    ["path"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=REGISTRY,
)
PREDICTIONS = Counter("model_predictions", "Rows predicted.", registry=REGISTRY)
Info("model", "The served model.", registry=REGISTRY).info(
    {
        "name": str(METADATA.get("name", "")),
        "task": predictor.task,
        "version": str(METADATA.get("model_version", "")),
        "created_at": str(METADATA.get("created_at", "")),
    }
)
ROUTES = frozenset({"/predict", "/health", "/metadata", "/metrics"})


class MetricsMiddleware:
    """Counts and times every HTTP request, 422s included (they never reach an endpoint)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"] if scope["path"] in ROUTES else "other"  # bounded label values
        status = 500

        async def send_with_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        start = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_status)
        finally:
            LATENCY.labels(path).observe(time.perf_counter() - start)
            REQUESTS.labels(scope["method"], path, str(status)).inc()


# -- the app ------------------------------------------------------------------------------------
app = FastAPI(
    title=str(METADATA.get("name", "model service")),
    description=f"Predicts `{predictor.target}` ({predictor.task}) from "
    f"{len(predictor.features)} features.",
)
app.add_middleware(MetricsMiddleware)
_METADATA_JSON = orjson.dumps(METADATA)
predictor.predict_records([{}])  # warm up: fail at start, not on the first request


def _json(payload: Any) -> Response:
    return Response(orjson.dumps(payload), media_type="application/json")


def _predict(rows: list[Any]) -> list[dict[str, Any]]:
    columns = {name: [getattr(row, field) for row in rows] for field, name in _FIELDS.items()}
    return predictor.to_records(predictor.predict_columns(columns))


@app.exception_handler(RequestValidationError)
async def invalid_request(_request: Request, exc: RequestValidationError) -> Response:
    """FastAPI's 422 body without the echoed `input`: the field is named in `loc`, and echoed
    values can be what JSON cannot carry back (NaN, Infinity, integers beyond 64 bits)."""
    errors = [{k: v for k, v in e.items() if k != "input"} for e in exc.errors()]
    return Response(
        orjson.dumps({"detail": jsonable_encoder(errors)}),
        status_code=422,
        media_type="application/json",
    )


@app.post(
    "/predict",
    response_class=Response,
    responses={
        200: {"model": PredictResponse},
        400: {"description": "The body cannot be read (for instance, it is not UTF-8)."},
    },
)
async def predict(request: PredictRequest) -> Response:
    rows = request.rows
    if len(rows) > INLINE_MAX_ROWS:
        predictions = await run_in_threadpool(_predict, rows)
    else:
        predictions = _predict(rows)
    PREDICTIONS.inc(len(rows))
    return _json({"predictions": predictions})


@app.get("/health")
async def health() -> Response:
    return _json({"status": "ok"})


@app.get("/metadata")
async def metadata() -> Response:
    return Response(_METADATA_JSON, media_type="application/json")


@app.get("/metrics", response_class=PlainTextResponse)
async def metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
