"""What the parent sends a worker (`TrainJob`) and the shape of what comes back.

Light on purpose (standard library only): the parent plans and dispatches jobs before it loads
scikit-learn, so the workers start training sooner; `worker_entry.run` loads the training code in
the worker.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

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
    tune: bool = True  # False: the family's defaults only, no search (see `insurance`)


RunStatus = Literal["done", "failed", "skipped", "cancelled"]


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class RunResult:
    """One candidate's run: what a worker returns, what the cache stores, what the phase ranks.

    Also made by the parent for runs that never reported (skipped, cancelled, a dead worker) and
    for the ensemble. `score` and `reused` are set when the run is recorded (`RunLog.record`).
    """

    candidate: str
    status: RunStatus
    reason: str = ""
    deployable: bool = False
    started_at: str = field(default_factory=_now)
    duration_s: float | None = None
    fit_s: float | None = None
    export_s: float | None = None  # export and parity check
    params: dict[str, Any] = field(default_factory=dict)
    validation: dict[str, float | None] = field(default_factory=dict)
    cv: dict[str, Any] | None = None
    search: dict[str, Any] | None = None
    parity: dict[str, Any] | None = None
    onnx: str | None = None
    joblib: str | None = None
    oof: str | None = None  # out-of-fold predictions of the best configuration (`oof`)
    threads: int | None = None
    complete: bool = False  # the search ran all its configurations and the refit was not cut
    notes: list[str] = field(default_factory=list)
    key: str | None = None
    budget_s: float | None = None
    recipe: dict[str, Any] | None = None  # how the final model was fitted (`reproduce`)
    score: float | None = None  # validation score on the phase's metric
    reused: bool = False  # loaded from the run cache, not trained in this phase run
    library_warnings: list[dict[str, Any]] = field(default_factory=list)  # the worker's, summarised
    # Unsupervised runs: the clusters chosen, or the anomaly share and where it came from.
    clusters: int | None = None
    contamination: float | None = None
    contamination_source: str | None = None
    worker: str | None = None  # where a remote executor ran it (address, host, pid)

    @property
    def finished(self) -> bool:
        return self.status == "done"

    @property
    def onnx_path(self) -> Path:
        """The exported model; only asked of deployable runs, which always have one."""
        if not self.onnx:
            raise ValueError(f"{self.candidate}: no ONNX model")
        return Path(self.onnx)

    @property
    def joblib_path(self) -> Path:
        if not self.joblib:
            raise ValueError(f"{self.candidate}: no saved pipeline")
        return Path(self.joblib)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunResult:
        """From `to_dict` output (a cached run); unknown keys (older caches) are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})
