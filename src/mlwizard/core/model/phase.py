"""Model: tune candidate pipelines in worker processes and keep the best deployable one.

Each candidate family is tuned by cross-validation on the training split (folds matching the
data phase's split strategy), refitted, scored on validation, exported to ONNX and checked for
parity on the validation rows; only an export that reproduces its pipeline is deployable. Each
finished run is saved at once and reused by the next run of the phase. The best deployable
candidate by the discovery metric (or a soft-voting ensemble of the best ones, if it beats them on
validation and exports with parity) gets a decision threshold (binary tasks), is evaluated once
on the test split through its ONNX model, since that is what will be served, and its errors are
analysed on validation rows. The whole phase, final evaluation included, holds to the time
budget. Every run lands in the project's experiment store.

This module stays light on purpose: the budget's clock starts before numpy, pandas or
scikit-learn are imported (`session` trains, `finish` chooses, evaluates and writes).
"""

from __future__ import annotations

import time

from mlwizard.core.kernel.context import PhaseContext, PhaseResult


def run(ctx: PhaseContext) -> PhaseResult:
    started = time.monotonic()
    ctx.check_cancelled()
    if ctx.upstream["discovery"].metrics.get("task") in ("clustering", "anomaly"):
        from mlwizard.core.model.unsupervised.session import run_phase as run_unsupervised

        return run_unsupervised(ctx, started)
    from mlwizard.core.model.session import run_phase

    return run_phase(ctx, started)
