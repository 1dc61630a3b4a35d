"""What the parent sends a worker (`TrainJob`) and the shape of what comes back.

Light on purpose (standard library only): the parent plans and dispatches jobs before it loads
scikit-learn, so the workers start training sooner; `worker_entry.run` loads the training code in
the worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlwizard.core.contract.tasks import Direction


@dataclass(frozen=True)
class TrainJob:
    candidate: str
    key: str  # the run's cache key (see `runcache`)
    train: Path
    valid: Path  # never the test split: it is read once, by the parent, at the end
    schema: Path
    out_dir: Path
    seed: int
    metric: str
    direction: Direction
    configs: tuple[dict[str, Any], ...]  # the search's configurations, defaults first
    split_strategy: str
    split_column: str
    threads: int
    budget_s: float
    share_s: float  # this job's share of the budget, from when the worker starts it
    hard_deadline: float  # time.monotonic(): the parent terminates the worker


def new_result(candidate: str, status: str, reason: str = "") -> dict[str, Any]:
    """The shape of a run's result; also used by the parent for runs that never reported."""
    return {
        "candidate": candidate,
        "status": status,  # done | failed | skipped | cancelled
        "deployable": False,
        "reason": reason,
        "started_at": datetime.now(UTC).isoformat(),
        "duration_s": None,
        "fit_s": None,
        "export_s": None,  # export and parity check
        "params": {},
        "validation": {},
        "cv": None,
        "search": None,
        "parity": None,
        "onnx": None,
        "joblib": None,
        "threads": None,
        "complete": False,  # the search ran all its configurations and the refit was not cut
        "notes": [],
        "key": None,
        "budget_s": None,
    }
