"""The service's settings (environment over bundle.json) and its JSON logs on stdout."""

import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from router import env_flag

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Settings:
    models_dir: Path
    threads: int
    max_rows: int
    max_body_bytes: int
    inline_max_rows: int
    prediction_log: str | None
    cache_size: int
    shadow: bool
    canary_share: float
    providers: tuple[str, ...]
    drift_report: str | None
    log_level: str

    @classmethod
    def from_env(cls, env: Any = os.environ) -> "Settings":
        bundle_file = HERE / "bundle.json"
        bundle = json.loads(bundle_file.read_text("utf-8")) if bundle_file.is_file() else {}
        providers = env.get("MODEL_PROVIDERS", ",".join(bundle.get("providers", [])))
        return cls(
            models_dir=Path(env.get("MODEL_DIR", HERE / "models")),
            threads=int(env.get("MODEL_THREADS", "1")),
            max_rows=int(env.get("MAX_ROWS", "10000")),
            max_body_bytes=int(env.get("MAX_BODY_BYTES", str(8 * 1024 * 1024))),
            inline_max_rows=int(env.get("INLINE_MAX_ROWS", "64")),
            prediction_log=env.get("PREDICTION_LOG") or None,
            cache_size=int(env.get("PREDICTION_CACHE_SIZE", bundle.get("cache_size", 0))),
            shadow=env_flag("SHADOW", bool(bundle.get("shadow", False))),
            canary_share=float(env.get("CANARY_SHARE", bundle.get("canary_share", 0.0))),
            providers=tuple(p for p in providers.split(",") if p),
            drift_report=env.get("DRIFT_REPORT") or None,
            log_level=env.get("LOG_LEVEL", "INFO").upper(),
        )


class JsonFormatter(logging.Formatter):
    """One JSON object per line: what log collectors parse without a grok pattern."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class AccessLog:
    """One JSON line per request on stdout, written directly: the logging module's record,
    formatter and handler cost more than the model on a small request."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._second = -1
        self._prefix = ""
        self._out = sys.stdout

    def write(self, fields: dict[str, Any]) -> None:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        ts = f"{self._prefix}.{int((now - second) * 1000):03d}Z"
        line = {"ts": ts, "level": "info", "logger": "service.access", "message": "request"}
        self._out.write(orjson.dumps(line | fields).decode() + "\n")


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    logging.Formatter.converter = time.gmtime
    for name in ("service", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(level)
        logger.propagate = False
