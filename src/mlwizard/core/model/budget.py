"""The model phase's time budget: one clock for the whole phase, a reserve for what follows
training, and a fair slice of the remaining worker time for each job when it starts.

Standard library only: the phase imports it before anything heavy, so the clock starts first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

# The reserve for the work after training: picking the best, the test evaluation through ONNX,
# error analysis and writing artifacts. Optional steps in it check the clock themselves.
RESERVE_FIXED_S = 0.8
RESERVE_SHARE = 0.03
RESERVE_PER_ROW_S = 4e-6  # validation + test rows, predicted a few times
RESERVE_PER_RUN_S = 0.1  # one experiment-store row per candidate
RESERVE_MAX_SHARE = 0.3
# The refits after the choice (train + validation for the test score, every labelled row for the
# deployed model): a share of the budget kept from the search. Each refit checks the clock.
REFIT_SHARE = 0.2
REFIT_TEST_ONLY_SHARE = 0.1  # `[model] refit_full = false`: one refit, train + validation


def finish_reserve(seconds: float, rows: int, candidates: int) -> float:
    estimate = (
        RESERVE_FIXED_S
        + RESERVE_SHARE * seconds
        + RESERVE_PER_ROW_S * rows
        + RESERVE_PER_RUN_S * candidates
    )
    return min(estimate, RESERVE_MAX_SHARE * seconds)


def refit_reserve(seconds: float, refit_full: bool) -> float:
    return (REFIT_SHARE if refit_full else REFIT_TEST_ONLY_SHARE) * seconds


@dataclass
class Budget:
    """Deadlines on `time.monotonic()`, which all processes of the machine share."""

    seconds: float
    started: float = field(default_factory=time.monotonic)
    reserve: float = 0.0

    @property
    def end(self) -> float:
        return self.started + self.seconds

    @property
    def training_deadline(self) -> float:
        return self.end - self.reserve

    def left(self) -> float:
        return self.end - time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def job_deadline(
    now: float,
    training_deadline: float,
    workers: int,
    weight: float,
    queued_weights: list[float],
    running_until: list[float],
) -> float:
    """When a job starting now should aim to be done: its weighted share of the worker time left.

    Worker time left is `workers` × the time to the training deadline, minus what the running
    jobs are still due to use; jobs that finish early leave their time to the jobs after them.
    """
    remaining = max(0.0, training_deadline - now)
    capacity = workers * remaining - sum(max(0.0, until - now) for until in running_until)
    share = max(0.0, capacity) * weight / (weight + sum(queued_weights))
    return now + min(remaining, share)
