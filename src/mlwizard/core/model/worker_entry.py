"""The process pool's entry point: what the parent hands a worker to call.

The parent pickles this light function by reference; the training code (scikit-learn and the
rest) loads in the worker only.
"""

from __future__ import annotations

from mlwizard.core.model.jobs import RunResult, TrainJob


def run(job: TrainJob) -> RunResult:
    """Train; the library warnings raised on the way travel back summarised, not on stderr."""
    from mlwizard.core.kernel import libwarnings
    from mlwizard.core.model.training import train_candidate

    with libwarnings.captured() as caught:
        result = train_candidate(job)
    result.library_warnings = libwarnings.summarise(caught)
    return result
