"""The feature schema: the contract between the data, model and deploy phases and the service.

It is written by the data phase as `artifacts/data/schema.json` and shipped beside the ONNX model,
so it must stay plain JSON that the generated service reads without mlwizard.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from mlwizard.core.kernel import atomic

# numeric: float32; categorical: string; datetime: float32 seconds since 1970-01-01 UTC (the
# graph derives its parts); text: free text, string (the graph derives its n-gram weights).
# Older schema.json files hold the first two kinds only, and read as they always did.
FeatureKind = Literal["numeric", "categorical", "datetime", "text"]
FLOAT_KINDS = frozenset({"numeric", "datetime"})  # fed as float32 [N, 1]; the others as strings
TaskKind = Literal["binary", "multiclass", "regression", "clustering", "anomaly"]
UNSUPERVISED: tuple[TaskKind, ...] = ("clustering", "anomaly")  # no target to learn from
MISSING_TOKEN = "__missing__"  # missing categoricals become this string in training and serving


@dataclass(frozen=True)
class Feature:
    name: str  # the column name in the user's data, as it is
    kind: FeatureKind
    input: str  # the ONNX input name: a safe identifier derived from `name`


@dataclass
class Schema:
    target: str
    task: TaskKind
    features: list[Feature]
    classes: list[Any] | None = None  # classifiers: the label values, index = model's class id
    missing_token: str = MISSING_TOKEN
    excluded: dict[str, str] = field(default_factory=dict)  # column -> why it is not a feature
    # Features the project's features.py derives -> the raw columns each is computed from, and
    # every raw column derive() reads -> "number" or "string" (how it reaches derive()).
    derived: dict[str, list[str]] = field(default_factory=dict)
    raw_inputs: dict[str, str] = field(default_factory=dict)

    @property
    def numeric(self) -> list[Feature]:
        return [f for f in self.features if f.kind == "numeric"]

    @property
    def categorical(self) -> list[Feature]:
        return [f for f in self.features if f.kind == "categorical"]

    @property
    def datetime(self) -> list[Feature]:
        return [f for f in self.features if f.kind == "datetime"]

    @property
    def text(self) -> list[Feature]:
        return [f for f in self.features if f.kind == "text"]

    @property
    def request_columns(self) -> list[str]:
        """What callers send: the features not derived, then the raw columns only derive()
        reads (the serving runtime's `userfeatures.request_features`)."""
        names = [f.name for f in self.features if f.name not in self.derived]
        every = {f.name for f in self.features}
        return names + [name for name in self.raw_inputs if name not in every]

    def save(self, path: Path) -> Path:
        return atomic.write_json(path, asdict(self))

    @classmethod
    def load(cls, path: Path) -> Schema:
        raw = json.loads(path.read_text(encoding="utf-8"))
        raw["features"] = [Feature(**f) for f in raw["features"]]
        return cls(**raw)


def input_names(columns: list[str]) -> list[str]:
    """Unique, ONNX-safe input names that still read like the column they come from."""
    names = []
    for index, column in enumerate(columns):
        slug = re.sub(r"[^0-9A-Za-z_]+", "_", column).strip("_")[:40]
        names.append(f"f{index:03d}_{slug}" if slug else f"f{index:03d}")
    return names
