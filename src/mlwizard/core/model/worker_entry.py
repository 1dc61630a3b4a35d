"""The process pool's entry point: what the parent hands a worker to call.

The parent pickles this light function by reference; the training code (scikit-learn and the
rest) loads in the worker only.
"""

from __future__ import annotations

from typing import Any

from mlwizard.core.model.jobs import TrainJob


def run(job: TrainJob) -> dict[str, Any]:
    """Train; the library warnings raised on the way travel back summarised, not on stderr."""
    from mlwizard.core.kernel import libwarnings
    from mlwizard.core.model.training import train_candidate

    with libwarnings.captured() as caught:
        result = train_candidate(job)
    summary = libwarnings.summarise(caught)
    return {**result, "library_warnings": summary} if summary else result
