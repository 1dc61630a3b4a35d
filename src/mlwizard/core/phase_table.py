"""The one table of phases: the runner, `status`, the CLI's choices and the TUI's screens, titles
and weights all come from here. A new phase is a package `core/<name>/` whose `phase.run` takes
a PhaseContext, and a row here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from mlwizard.core.kernel.context import PhaseContext, PhaseResult

PhaseStatus = Literal["pending", "done", "stale", "failed", "cancelled"]


@dataclass(frozen=True)
class PhaseSpec:
    name: str
    module: str  # imported only when the phase runs: status checks stay light
    upstream: tuple[str, ...]
    config_sections: tuple[str, ...]
    weight: int  # share of the overall progress, in percent
    title: str  # what the shells call it
    outputs: tuple[str, ...]  # what it must record; the runner fails a phase that forgets one
    reads_source: bool = False
    reads_features: bool = False  # the project's features.py (its hash is an input)

    def load(self) -> Callable[[PhaseContext], PhaseResult]:
        return importlib.import_module(self.module).run


def _phase(
    name: str,
    title: str,
    *,
    upstream: tuple[str, ...],
    sections: tuple[str, ...],
    weight: int,
    outputs: tuple[str, ...],
    reads_source: bool = False,
    reads_features: bool = False,
) -> PhaseSpec:
    module = f"mlwizard.core.{name}.phase"
    return PhaseSpec(
        name, module, upstream, sections, weight, title, outputs, reads_source, reads_features
    )


PHASES: tuple[PhaseSpec, ...] = (
    _phase(
        "discovery",
        "Discovery",
        upstream=(),
        sections=("data", "discovery"),
        weight=15,
        outputs=("discovery",),
        reads_source=True,
    ),
    _phase(
        "data",
        "Data",
        upstream=("discovery",),
        sections=("project", "data", "split"),
        weight=20,
        outputs=("snapshot", "train", "valid", "test", "schema", "audit", "profile", "lineage"),
        reads_source=True,
        reads_features=True,
    ),
    _phase(
        "model",
        "Model",
        upstream=("discovery", "data"),
        sections=("project", "model"),
        weight=30,
        outputs=("onnx", "pipeline", "leaderboard", "evaluation", "candidates", "experiments"),
    ),
    _phase(
        "deploy",
        "Deployment",
        upstream=("discovery", "data", "model"),
        sections=("deploy",),
        weight=20,
        outputs=("service", "onnx", "metadata"),
    ),
    _phase(
        "operations",
        "Operations",
        upstream=("data", "model", "deploy"),
        sections=("operations",),
        weight=15,
        outputs=("reference", "drift", "runbook", "incident_response"),
    ),
)
PHASE_NAMES: tuple[str, ...] = tuple(p.name for p in PHASES)
PHASE_WEIGHTS: dict[str, int] = {p.name: p.weight for p in PHASES}
PHASE_TITLES: dict[str, str] = {p.name: p.title for p in PHASES}
_SPECS = {p.name: p for p in PHASES}


def spec(phase: str) -> PhaseSpec:
    return _SPECS[phase]


def with_upstream(phase: str) -> list[str]:
    """`phase` and every phase it depends on, directly or not, in pipeline order."""
    needed = {phase}
    for name in reversed(PHASE_NAMES):
        if name in needed:
            needed.update(spec(name).upstream)
    return [name for name in PHASE_NAMES if name in needed]
