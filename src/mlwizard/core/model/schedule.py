"""The order the candidate jobs start in, so that two or more workers end the sweep together.

With one worker, or a budget that may bind, the jobs start in `START_ORDER` (cheap and strong
first: a short budget still ends with good finished runs). Otherwise the sweep is a packing
problem: the baseline first (it takes a moment and the success criterion needs it), then the
jobs whose fits cannot use more threads, longest expected first, then the boosters, longest
expected first. The boosters fit on as many threads as they are given, and the pool's tail is
elastic (`workers.threads_now`): whichever booster runs last takes the cores the idle workers
leave, so the sweep does not end on one thread beside an idle core. Expected seconds come from
the committed calibration (`discovery/feasibility.py`).

The order changes when jobs run, never what they compute: a search that is not cut by the budget
gives the same result whenever it starts.
"""

from __future__ import annotations

from mlwizard.core.discovery import feasibility
from mlwizard.core.model.candidates import BASELINE, FAMILIES, START_ORDER

# The cost model is good to about 2x (`feasibility.estimate`): reorder only when even twice the
# estimate leaves the budget unbound, since jobs started early get a share of the budget by
# weight, while the last ones get all that is left.
MARGIN = 2.0
# Families whose fits scale with the threads given (CatBoost's thread_count, OpenMP): the tail.
ELASTIC = frozenset(name for name, family in FAMILIES.items() if family.booster)


def order(
    names: list[str],
    *,
    rows: int,
    features: int,
    workers: int,
    seconds: float,
    slowdown: float = 1.0,
) -> list[str]:
    """`names` in the order their jobs should start, for `workers` workers that have `seconds`
    of training time; `slowdown`: how much slower than idle the machine runs now."""
    ordered = [n for n in START_ORDER if n in names]
    if workers <= 1 or len(ordered) <= workers:
        return ordered
    expected = feasibility.estimate_seconds(
        rows, features, ordered, workers, float("inf"), slowdown=slowdown
    )
    if expected * MARGIN > seconds:  # the budget may bind: cheap and strong first
        return ordered
    cells_m = rows * max(features, 1) / 1e6
    cost = {n: feasibility.candidate_seconds(n, cells_m) for n in ordered}

    def longest_first(group: list[str]) -> list[str]:
        return sorted(group, key=lambda n: (-cost[n], START_ORDER.index(n)))

    rest = [n for n in ordered if n != BASELINE]
    first = [BASELINE] if BASELINE in ordered else []
    fixed = longest_first([n for n in rest if n not in ELASTIC])
    return first + fixed + longest_first([n for n in rest if n in ELASTIC])
