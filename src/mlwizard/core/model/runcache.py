"""Finished candidate runs on disk, keyed by everything that determines their result.

A worker writes a run's model files, then its result JSON last (atomically): a result file is
present only for a run that finished. The next phase run reuses it instead of training again,
so a phase killed with `kill -9` resumes where it was. The key hashes the data (the split and
schema files' contents), the candidate and the configurations its search tries, the CV plan's
inputs, the seed and metric, the library versions and `SEARCH_VERSION`.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from mlwizard.core.kernel import atomic
from mlwizard.core.kernel.hashing import hash_value
from mlwizard.core.model.jobs import RunResult

SEARCH_VERSION = 3  # bump when training code changes what a run produces
STORED_FILES = ("onnx", "joblib", "oof")  # a run's files, stored by name beside its result
KEY_PACKAGES = ("scikit-learn", "catboost", "numpy", "skl2onnx", "onnx", "onnxruntime")


@dataclass(frozen=True)
class RunFiles:
    result: Path
    onnx: Path
    joblib: Path
    oof: Path  # the best configuration's out-of-fold predictions (`oof`)

    @classmethod
    def of(cls, out_dir: Path, candidate: str, key: str) -> RunFiles:
        stem = out_dir / f"{candidate}-{key[:16]}"
        return cls(
            stem.with_suffix(".json"),
            stem.with_suffix(".onnx"),
            stem.with_suffix(".joblib"),
            stem.with_suffix(".npz"),
        )


def run_key(**parts: Any) -> str:
    return hash_value({"search_version": SEARCH_VERSION, "versions": _versions(), **parts})


@functools.cache
def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in KEY_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def save(files: RunFiles, result: RunResult) -> None:
    """Write the result last: its presence marks the run finished. Paths stored by file name."""
    stored = result.to_dict()
    for name in STORED_FILES:
        stored[name] = Path(stored[name]).name if stored.get(name) else None
    atomic.write_json(files.result, stored)


def load(files: RunFiles, budget_s: float) -> RunResult | None:
    """A finished run to reuse, or None.

    A run whose search the time budget cut short is reused only under a budget no larger than
    the one it had: with more time the search would go further.
    """
    try:
        raw = json.loads(files.result.read_text(encoding="utf-8"))
        result = RunResult.from_dict(raw)
    except (FileNotFoundError, ValueError, TypeError):
        return None
    if result.status != "done":
        return None
    if not result.complete and float(result.budget_s or 0) < budget_s:
        return None
    for name in STORED_FILES:
        stored = getattr(result, name)
        if stored:
            path = files.result.parent / stored
            if not path.is_file():
                return None
            setattr(result, name, str(path))
    return result


def prune(out_dir: Path, keep: set[str]) -> None:
    """Remove run files whose stem is not in `keep`, and temporary files of killed writers."""
    if not out_dir.is_dir():
        return
    for path in out_dir.iterdir():
        temporary = path.name.startswith(".") and path.name.endswith(".tmp")
        stale = path.suffix in {".json", ".onnx", ".joblib", ".npz"} and path.stem not in keep
        if temporary or stale:
            path.unlink(missing_ok=True)
