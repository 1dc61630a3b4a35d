"""The model phase's insurance: the baseline and one fast model, trained in the parent at once.

On a busy machine with a short budget, worker processes can spend the whole budget starting up
(spawn, importing scikit-learn) and the phase used to end with no model at all (issue 9, bug 6).
So while the workers start, a thread of the parent trains the baseline and the fast model
(linear) with their default settings only: no search, no cross-validation. A worker's full run
of the same family replaces it when it finishes; otherwise the insured run stands in, saying so.
If not even these fit, the phase fails with exit 1 and the budget they need.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time

from mlwizard.core.model.budget import Budget
from mlwizard.core.model.candidates import BASELINE
from mlwizard.core.model.jobs import RunResult, TrainJob

FAST = "linear"
MAX_BUDGET_S = 300.0  # above this the workers have time enough; the parent stays idle
END_MARGIN_S = 0.5  # a budget that held nothing still ends on time, with its error
NOTE = (
    "trained with its default settings only (no search): the time budget ran out before its "
    "full run finished"
)


class Insurance:
    """Runs `jobs` one after the other in a daemon thread; keeps what finished, and when."""

    def __init__(self, jobs: list[TrainJob]) -> None:
        self.jobs = jobs
        self.results: dict[str, RunResult] = {}
        self.started = time.monotonic()
        self.finished_at: float | None = None
        self._thread = threading.Thread(target=self._run, name="mlwizard-insurance", daemon=True)

    @property
    def names(self) -> list[str]:
        return [job.candidate for job in self.jobs]

    def start(self) -> Insurance:
        if self.jobs:
            self._thread.start()
        return self

    def _run(self) -> None:
        from mlwizard.core.model.training import forget, train_candidate

        for job in self.jobs:
            try:
                result = train_candidate(job)
            except Exception:  # insurance only: the workers' own runs report real failures
                continue
            result.notes.append(NOTE)
            result.complete = False
            self.results[job.candidate] = result
        forget()  # the splits read for these runs: the parent does not keep them
        self.finished_at = time.monotonic()

    def wait(self, until: float) -> None:
        """Wait for the thread until `until` (time.monotonic()) at the latest."""
        if self._thread.is_alive():
            self._thread.join(max(0.0, until - time.monotonic()))

    def took(self) -> float | None:
        return None if self.finished_at is None else self.finished_at - self.started


def insured(names: list[str], budget: Budget) -> list[str]:
    """The families to insure: the baseline and the fast model (linear, or else the first
    configured family), with their defaults."""
    if budget.seconds > MAX_BUDGET_S:
        return []
    models = [n for n in names if n != BASELINE]
    fast = FAST if FAST in models else next(iter(models), None)
    return [n for n in (BASELINE, fast) if n is not None and n in names]


INSURED_DIR = "insured"  # beside the cached runs, never mistaken for one (nor reused as one)


def quick_job(job: TrainJob, key: str) -> TrainJob:
    """The insured version of a family's job: its defaults only, no cross-validation, its files
    in their own folder."""
    out_dir = job.out_dir / INSURED_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    return dataclasses.replace(job, key=key, configs=({},), tune=False, out_dir=out_dir)


def nothing_finished(results: list[RunResult], budget: Budget, took: float | None = None) -> str:
    """Why no model finished, and what budget would hold one."""
    if not all(r.status == "skipped" for r in results):
        return "no candidate trained: " + "; ".join(
            f"{r.candidate}: {r.status} ({r.reason})" for r in results
        )
    head = f"no candidate finished within the time budget of {budget.seconds:g}s"
    if took is not None:
        needed = max(math.ceil(took + budget.reserve + 2.0), math.ceil(budget.seconds) + 1)
        return (
            f"{head}; the baseline and one model with default settings alone took "
            f"{took:.1f}s here, so set --time-budget {needed} or more "
            "(or [model] time_budget in mlwizard.toml)"
        )
    floor = max(30, math.ceil(budget.seconds * 3))
    return (
        f"{head}, not even the baseline and one model with default settings; set "
        f"--time-budget {floor} or more (or [model] time_budget in mlwizard.toml)"
    )


def nothing_deployable(results: list[RunResult], budget: Budget) -> str:
    """Why no run can be deployed; with the budget to raise when the clock is why."""
    text = "no candidate can be deployed: " + "; ".join(
        f"{r.candidate}: {r.status} ({r.reason})" for r in results
    )
    if any(r.status == "skipped" for r in results):
        floor = max(30, math.ceil(budget.seconds * 3))
        text += f"; the time budget cut the others short: set --time-budget {floor} or more"
    return text
