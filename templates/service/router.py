"""The bundle's models and who answers: the champion, and an optional challenger beside it.

- shadow: the challenger scores every request too; it is logged, the champion answers.
- canary: a share of requests (by a hash of the request id, so a retried request goes to the same
  model) is answered by the challenger.
Every scored row can be appended to a prediction log (NDJSON, one line per model per row), and
repeated rows can be answered from a per-model LRU cache. numpy + onnxruntime only (predictor.py).
"""

import hashlib
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from predictor import Flag, Predictor

CHAMPION, CHALLENGER = "champion", "challenger"


@dataclass
class Scored:
    """One model's answer for a batch of rows."""

    model: str
    version: str
    records: list[dict[str, Any]]  # {"prediction": ..., "proba": {...}} per row
    finite: list[bool]  # per row: no NaN or infinite score
    flags: list[list[Flag]]  # per row: unseen categories, out-of-range numbers
    cache_hits: int = 0

    def counts(self, kind: str) -> dict[str, int]:
        """Per feature, how many rows were flagged with `kind`."""
        counts: dict[str, int] = {}
        for row in self.flags:
            for flag in row:
                if flag.kind == kind:
                    counts[flag.feature] = counts.get(flag.feature, 0) + 1
        return counts


@dataclass
class Model:
    """One model folder (model.onnx, schema.json, metadata.json) and its predictor."""

    name: str
    folder: Path
    metadata: dict[str, Any]
    predictor: Predictor | None = None
    cache_size: int = 0
    _cache: "OrderedDict[tuple[Any, ...], tuple[dict[str, Any], bool, list[Flag]]]" = field(
        default_factory=OrderedDict
    )
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def read(cls, name: str, folder: Path, cache_size: int = 0) -> "Model":
        metadata = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
        return cls(name, folder, metadata, cache_size=cache_size)

    @property
    def version(self) -> str:
        return str(self.metadata.get("model_version") or self.metadata.get("model") or "")

    @property
    def schema(self) -> dict[str, Any]:
        return json.loads((self.folder / "schema.json").read_text(encoding="utf-8"))

    def load(self, threads: int, providers: Sequence[str] | None) -> None:
        """Load the session and warm it on an all-missing row: fail at start, not later."""
        self.predictor = Predictor.from_folder(self.folder, threads, providers)
        self.predictor.predict_records([{}])

    def score(self, columns: dict[str, list[Any]], rows: int) -> Scored:
        predictor = self.predictor
        assert predictor is not None, "model not loaded"
        if self.cache_size <= 0:
            return self._score(columns, rows)
        keys = [tuple(columns[name][i] for name in predictor.feature_names) for i in range(rows)]
        with self._lock:
            cached = [self._cache.get(key) for key in keys]
            for key, hit in zip(keys, cached, strict=True):
                if hit is not None:
                    self._cache.move_to_end(key)
        missing = [i for i, hit in enumerate(cached) if hit is None]
        fresh = None
        if missing:
            subset = {name: [values[i] for i in missing] for name, values in columns.items()}
            fresh = self._score(subset, len(missing))
            with self._lock:
                for j, i in enumerate(missing):
                    entry = (fresh.records[j], fresh.finite[j], fresh.flags[j])
                    cached[i] = entry
                    self._cache[keys[i]] = entry
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        entries = [hit for hit in cached if hit is not None]
        return Scored(
            self.name,
            self.version,
            [entry[0] for entry in entries],
            [entry[1] for entry in entries],
            [entry[2] for entry in entries],
            cache_hits=rows - len(missing),
        )

    def _score(self, columns: dict[str, list[Any]], rows: int) -> Scored:
        predictor = self.predictor
        assert predictor is not None
        result = predictor.predict_columns(columns)
        return Scored(
            self.name,
            self.version,
            predictor.to_records(result),
            predictor.finite_rows(result),
            predictor.domain_flags(columns, rows),
        )


def canary_bucket(request_id: str) -> float:
    """A request id's place in [0, 1): the same id always lands in the same place."""
    digest = hashlib.sha256(request_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


@dataclass
class Router:
    champion: Model
    challenger: Model | None
    shadow: bool
    canary_share: float

    @classmethod
    def from_folder(
        cls, models: Path, shadow: bool, canary_share: float, cache_size: int = 0
    ) -> "Router":
        champion = Model.read(CHAMPION, models / CHAMPION, cache_size)
        challenger = None
        if (models / CHALLENGER / "metadata.json").is_file():
            challenger = Model.read(CHALLENGER, models / CHALLENGER, cache_size)
        return cls(champion, challenger, shadow, min(max(canary_share, 0.0), 1.0))

    @property
    def models(self) -> list[Model]:
        return [self.champion] + ([self.challenger] if self.challenger else [])

    def served_by(self, request_id: str) -> Model:
        if self.challenger is not None and canary_bucket(request_id) < self.canary_share:
            return self.challenger
        return self.champion

    def others(self, served: Model) -> list[Model]:
        """The models that score a request without answering it (shadow mode)."""
        if not self.shadow:
            return []
        return [m for m in self.models if m is not served]


class PredictionLog:
    """NDJSON lines appended to one file (`PREDICTION_LOG`); one line per model per scored row:
    {"ts", "request_id", "model", "version", "served", "features", "prediction", "probabilities"}.
    """

    def __init__(self, path: str | None) -> None:
        self._lock = threading.Lock()
        self._handle = None
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(path, "ab")  # noqa: SIM115 - held open for the service's life

    @property
    def enabled(self) -> bool:
        return self._handle is not None

    def write(
        self,
        request_id: str,
        rows: list[dict[str, Any]],
        scored: Scored,
        served: bool,
        dumps: Any,
    ) -> None:
        if self._handle is None:
            return
        ts = datetime.now(UTC).isoformat(timespec="milliseconds")
        lines = []
        for row, record, finite in zip(rows, scored.records, scored.finite, strict=True):
            if not finite:
                continue  # refused rows got no prediction
            line = {
                "ts": ts,
                "request_id": request_id,
                "model": scored.model,
                "version": scored.version,
                "served": served,
                "features": row,
                "prediction": record["prediction"],
                "probabilities": record.get("proba"),
            }
            lines.append(dumps(line) + b"\n")
        with self._lock:
            self._handle.write(b"".join(lines))
            self._handle.flush()

    def close(self) -> None:
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None


def env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}
