"""Where the model phase's candidate jobs run: the `Executor` seam and its engines.

`local` (the default): a spawn process pool on this machine (`model.workers`).
`dask://HOST:PORT`: a Dask distributed scheduler's workers (`executors.dask`; the optional
`mlwizard[dask]` extra). Both run the same `TrainJob`s through the same entry point, report each
job's start and end the same way, stop at the same hard deadline and on cancel, and leave the
same files in the project: the phase does not know which one ran its jobs.

Standard library only at the top: the phase picks its executor before anything heavy loads.
"""

from __future__ import annotations

from mlwizard.core.kernel.errors import BadInputError
from mlwizard.core.model.executors.base import Executor

LOCAL = "local"
DASK_SCHEMES = ("dask://", "tcp://", "tls://")
__all__ = ["Executor", "resolve"]


def resolve(spec: str, where: str = "[model] executor") -> Executor:
    """The executor `spec` names: "" or "local", or "dask://HOST:PORT" (also tcp://, tls://)."""
    value = spec.strip()
    if value in ("", LOCAL):
        from mlwizard.core.model.executors.local import LocalExecutor

        return LocalExecutor()
    if value.startswith(DASK_SCHEMES):
        from mlwizard.core.model.executors.dask import DaskExecutor

        return DaskExecutor(value)
    raise BadInputError(
        f'{where}: \'{value}\' is not an executor (use "local" or "dask://HOST:PORT", the '
        "address of a Dask scheduler)"
    )
