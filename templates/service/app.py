"""HTTP service for the bundle's ONNX model(s): /predict, /health, /ready, /metadata, /metrics.

`create_app()` builds the app from the model folders' JSON (request schema, OpenAPI); its
`lifespan` loads and warms the ONNX sessions, after which `/ready` answers 200. Endpoints are
`async def`: a small model runs faster inline than behind a thread-pool hop; large batches go
to the thread pool (onnxruntime releases the GIL). The body is validated by pydantic-core from
the raw bytes (strict types, the training domain's bounds), which is what keeps the service
within reach of a bare FastAPI + onnxruntime app.

Settings (environment, defaults from bundle.json): see `Settings` and the README.
"""

import asyncio
import logging
import os
import time
from contextlib import asynccontextmanager
from typing import Any

import orjson
from contract import ErrorResponse, PredictResponse, errors, request_models
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from metrics import Metrics  # metrics.py, beside this file
from predictor import FeaturesError, userfeatures
from pydantic import ValidationError
from router import PredictionLog, Router
from settings import AccessLog, Settings, configure_logging
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

log = logging.getLogger("service")


def _json(payload: Any, status: int = 200, **kwargs: Any) -> Response:
    return Response(orjson.dumps(payload), status, media_type="application/json", **kwargs)


# -- middleware: request id, body limit, metrics, access log -------------------------------------
class BodyTooLarge(Exception):
    pass


class ServiceMiddleware:
    """Pure ASGI (cheaper than BaseHTTPMiddleware): reads or makes `X-Request-ID` and echoes it;
    refuses bodies over the limit with 413 before reading them (Content-Length) or as soon as
    they pass it (chunked); counts, times and logs every request, 404s and 422s included."""

    def __init__(
        self,
        app: Any,
        metrics: Metrics,
        max_body: int,
        access: AccessLog,
        direct: dict[tuple[str, str], Any],
    ) -> None:
        self.app, self.metrics, self.max_body, self.access = app, metrics, max_body, access
        self.direct = direct  # (method, path) -> ASGI handler that skips routing

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        status, started = 500, False

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        received = 0

        async def limited_receive() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body:
                raise BodyTooLarge
            return message

        try:
            if _content_length(scope) > self.max_body:
                raise BodyTooLarge
            handler = self.direct.get((scope["method"], scope["path"]))
            # POST /predict is answered here, without FastAPI's routing and dependency solving
            # (half the cost of a small request); FastAPI still documents it in /openapi.json.
            await (handler or self.app)(scope, limited_receive, send_with_id)
        except BodyTooLarge:
            if started:
                raise
            detail = f"request body over {self.max_body} bytes; send fewer rows per request"
            await _json({"detail": detail}, 413)(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            model = scope["state"].get("model", "none")
            path = self.metrics.observe(scope["method"], scope["path"], status, model, elapsed)
            if self.access.enabled:
                fields = {
                    "request_id": request_id,
                    "method": scope["method"],
                    "path": path,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 3),
                    "model": model,
                }
                self.access.write(fields)


def _request_id(scope: dict[str, Any]) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if 0 < len(text) <= 128 and text.isprintable():
                return text
    return os.urandom(16).hex()  # as unique as uuid4, at a tenth of its cost


def _content_length(scope: dict[str, Any]) -> int:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


# -- the app ------------------------------------------------------------------------------------
def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    configure_logging(settings.log_level)
    router = Router.from_folder(
        settings.models_dir, settings.shadow, settings.canary_share, settings.cache_size
    )
    champion = router.champion
    schema = champion.schema
    features = userfeatures.request_features(schema)  # raw: features.py derives the rest
    names = [f["name"] for f in features]
    _, request_model = request_models(
        features, champion.metadata.get("domain") or {}, settings.max_rows
    )
    fields = [f"c{i}" for i in range(len(features))]
    metrics = Metrics(router, schema, settings.drift_report)
    prediction_log = PredictionLog(None)
    state = {"ready": False}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> Any:
        nonlocal prediction_log
        for model in router.models:
            model.load(settings.threads, settings.providers)
            metrics.ready(model.name, True)
            if not (model.metadata.get("parity") or {}).get("passed", True):
                log.warning(f"{model.name} failed its ONNX parity check at deploy time")
        prediction_log = PredictionLog(settings.prediction_log)
        state["ready"] = True
        log.info("ready", extra={"fields": {"models": [m.name for m in router.models]}})
        flusher = asyncio.create_task(_flush_every_second())
        yield
        state["ready"] = False  # graceful shutdown: uvicorn drains requests, then we close
        flusher.cancel()
        access.flush()
        for model in router.models:
            metrics.ready(model.name, False)
        prediction_log.close()

    async def _flush_every_second() -> None:
        while True:
            await asyncio.sleep(1.0)
            access.flush()

    app = FastAPI(
        title=str(champion.metadata.get("name", "model service")),
        version=champion.version or "0",
        description=f"Predicts `{schema['target']}` ({schema['task']}) from "
        f"{len(features)} features. See API.md for examples.",
        lifespan=lifespan,
    )
    access = AccessLog(logging.getLevelName(settings.log_level) <= logging.INFO)
    direct: dict[tuple[str, str], Any] = {}
    app.add_middleware(
        ServiceMiddleware,
        metrics=metrics,
        max_body=settings.max_body_bytes,
        access=access,
        direct=direct,
    )
    metadata_body = orjson.dumps(
        {m.name: m.metadata for m in router.models}
        | {"shadow": router.shadow, "canary_share": router.canary_share}
    )

    def score(
        request_id: str, rows: list[Any]
    ) -> tuple[int, dict[str, Any], BackgroundTask | None]:
        columns = {
            name: [getattr(row, f) for row in rows] for f, name in zip(fields, names, strict=True)
        }
        served = router.served_by(request_id)
        try:
            answer = served.score(columns, len(rows))
        except FeaturesError as exc:  # the project's features.py failed on these rows
            return 422, {"detail": str(exc)}, None
        metrics.scored(answer, served=True)
        refused = [i for i, ok in enumerate(answer.finite) if not ok]
        background = (
            BackgroundTask(_after, request_id, columns, len(rows), served, answer)
            if prediction_log.enabled or router.others(served)
            else None
        )
        if refused:
            detail = [
                {
                    "loc": ["body", "rows", i],
                    "msg": "the model cannot score these values (its float32 scores overflow)",
                    "type": "value_error",
                }
                for i in refused
            ]
            return 422, {"detail": detail}, background
        predictions = answer.records
        for record, flags in zip(predictions, answer.flags, strict=True):
            if flags:
                record["warnings"] = [flag.message for flag in flags]
        body = {"model": served.name, "version": served.version, "predictions": predictions}
        return 200, body, background

    def _after(
        request_id: str, columns: dict[str, list[Any]], n: int, served: Any, answer: Any
    ) -> None:
        """After the answer is sent: the shadow models' scores, and the prediction log."""
        rows = (
            [{name: columns[name][i] for name in names} for i in range(n)]
            if prediction_log.enabled
            else []
        )
        if rows:
            prediction_log.write(request_id, rows, answer, True, orjson.dumps)
        for other in router.others(served):
            shadow = other.score(columns, n)
            metrics.scored(shadow, served=False)
            if rows:
                prediction_log.write(request_id, rows, shadow, False, orjson.dumps)

    @app.post(
        "/predict",
        response_model=None,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}}
                },
            }
        },
        responses={
            200: {"model": PredictResponse, "description": "one prediction per row"},
            413: {"model": ErrorResponse, "description": "the body is over MAX_BODY_BYTES"},
            422: {"model": ErrorResponse, "description": "a row breaks the schema"},
        },
    )
    async def predict(request: Request) -> Response:
        return await answer(await request.body(), request.scope["state"])

    async def predict_direct(scope: dict[str, Any], receive: Any, send: Any) -> None:
        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        response = await answer(b"".join(chunks), scope["state"])
        await response(scope, receive, send)  # sends, then runs the background task

    direct[("POST", "/predict")] = predict_direct

    async def answer(raw: bytes, state_: dict[str, Any]) -> Response:
        try:
            parsed = request_model.model_validate_json(raw)
        except ValidationError as exc:
            return _json({"detail": errors(exc)}, 422)
        rows = parsed.rows
        if len(rows) > settings.inline_max_rows:
            status, body, task = await run_in_threadpool(score, state_["request_id"], rows)
        else:
            status, body, task = score(state_["request_id"], rows)
        state_["model"] = body.get("model", "none")
        return _json(body, status, background=task)

    @app.get("/health")
    async def health() -> Response:
        """Liveness: the process answers."""
        return _json({"status": "ok"})

    @app.get("/ready", responses={503: {"description": "models not loaded yet"}})
    async def ready() -> Response:
        """Readiness: every model loaded and warmed."""
        if not state["ready"]:
            return _json({"status": "starting"}, 503)
        return _json({"status": "ready", "models": [m.name for m in router.models]})

    @app.get("/metadata")
    async def metadata() -> Response:
        return Response(metadata_body, media_type="application/json")

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics_endpoint() -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            spec = get_openapi(title=app.title, version=app.version, routes=app.routes)
            spec["info"]["description"] = app.description
            defs = request_model.model_json_schema(
                by_alias=True, ref_template="#/components/schemas/{model}"
            )
            components = spec.setdefault("components", {}).setdefault("schemas", {})
            components.update(defs.pop("$defs", {}))
            components["PredictRequest"] = defs
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.state.router = router
    return app


app = create_app()
