"""The project's configuration, `mlwizard.toml`, read into typed, validated sections.

Each phase depends on some sections only (see `pipeline.PHASES`); a change to a section invalidates
the phases that read it and everything downstream of them.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_type_hints

from mlwizard.core.kernel.errors import BadInputError

CONFIG_FILE = "mlwizard.toml"

Task = Literal["auto", "binary", "multiclass", "regression"]
# "reinforcement_learning" is accepted only to be declined with advice (discovery/approach.py).
Approach = Literal["auto", "supervised", "clustering", "anomaly", "reinforcement_learning"]
SplitStrategy = Literal["stratified", "random", "time", "group"]
ColumnType = Literal["numeric", "categorical", "boolean", "datetime", "text", "identifier"]
DEFAULT_NA_VALUES = ("", "NA", "N/A", "NULL", "null", "NaN", "nan")


@dataclass(frozen=True)
class ProjectSection:
    name: str = "mlwizard-project"
    seed: int = 42


@dataclass(frozen=True)
class DataSection:
    source: str = ""  # a file, a glob of files, or a database URL (sqlite:///..., postgresql://...)
    table: str = ""  # for database sources: the table to read ...
    query: str = ""  # ... or a query to run
    target: str = ""
    na_values: tuple[str, ...] = DEFAULT_NA_VALUES
    types: dict[str, ColumnType] = field(default_factory=dict)  # column -> type, over inference
    keep: tuple[str, ...] = ()  # columns to keep as features although the audit would exclude them
    exclude: tuple[str, ...] = ()  # columns never to use as features


@dataclass(frozen=True)
class DiscoverySection:
    task: Task = "auto"
    metric: str = "auto"
    # The success criterion: the test metric must reach this value. Unset: beat the baseline.
    success_threshold: float | None = None
    # Binary tasks: what a false positive and a false negative cost; they set the decision
    # threshold (unset: the threshold that maximizes F1 on validation).
    cost_false_positive: float | None = None
    cost_false_negative: float | None = None
    # What a correct decision is worth (any task with classes): with the costs, the model's
    # expected saving against the baseline (ROI) in discovery's and the model phase's reports.
    value_correct_decision: float | None = None
    # The kind of learning: supervised (a target), clustering or anomaly (no target; anomaly may
    # keep a rare label for evaluation only). "auto": supervised when a target is set.
    approach: Approach = "auto"
    problem: str = ""  # the problem in the user's words (reinforcement learning is recognised)
    clusters: int = 0  # clustering: the number of clusters; 0: chosen by silhouette / BIC
    # Anomaly detection: the expected share of anomalies; unset: estimated from the data.
    contamination: float | None = None


@dataclass(frozen=True)
class SplitSection:
    strategy: SplitStrategy = "stratified"  # stratified by class (random for regression)
    time_column: str = ""  # strategy "time": train on the past, test on the future
    group_column: str = ""  # strategy "group": no group in two splits
    valid_fraction: float = 0.2
    test_fraction: float = 0.2


@dataclass(frozen=True)
class ModelSection:
    candidates: tuple[str, ...] = (
        "dummy",
        "linear",
        "hist_gradient_boosting",
        "random_forest",
        "catboost",
        "extra_trees",
    )
    # After the choice, refit the deployed model on every labelled row (train + validation +
    # test); the test score stays the one of the model refitted on train + validation. False:
    # deploy the train + validation model, the one the test score belongs to.
    refit_full: bool = True
    # Execution settings: they change how long and where training runs, not what a model is, so
    # they are left out of the phase's input hash (see `Config.section_hash`).
    time_budget: float = 300.0
    workers: int = 0  # 0: one per CPU
    # Where runs are also logged with MLflow (or the MLFLOW_TRACKING_URI environment variable).
    tracking_uri: str = ""


@dataclass(frozen=True)
class DeploySection:
    service_name: str = "mlwizard-service"
    port: int = 8000
    # A challenger model beside the champion (see core/deploy/bundle.py): shadow scores every
    # request with it and logs it; canary_share of requests (by request id) it answers.
    shadow: bool = False
    canary_share: float = 0.0
    gpu: bool = False  # a CUDA image with onnxruntime-gpu and a GPU resource request
    # The GPU runtime's pin (default: onnxruntime-gpu at the CPU release parity ran on; CUDA
    # builds are published separately and can lag, e.g. "onnxruntime-gpu==1.31.1").
    gpu_requirement: str = ""
    latency_objective_ms: float = 250.0  # p99 objective: the latency alert fires above it
    cache_size: int = 0  # an LRU cache of predictions for repeated rows (0: off)
    replicas: int = 2  # Kubernetes: the minimum; the autoscaler may add up to 4x
    image: str = ""  # the image to push and run (default: ghcr.io/OWNER/<service host>)


@dataclass(frozen=True)
class OperationsSection:
    # What the generated schedules monitor: a file or glob of this week's production data, or the
    # service's request log. Empty: the schedules monitor the service's PREDICTION_LOG.
    current: str = ""
    schedule: str = "0 6 * * 1"  # cron: when the schedules run monitor -> retrain (Mondays 06:00)
    retrain_data: str = ""  # what `retrain` trains the challenger on in the schedules


@dataclass(frozen=True)
class Config:
    project: ProjectSection = field(default_factory=ProjectSection)
    data: DataSection = field(default_factory=DataSection)
    discovery: DiscoverySection = field(default_factory=DiscoverySection)
    split: SplitSection = field(default_factory=SplitSection)
    model: ModelSection = field(default_factory=ModelSection)
    deploy: DeploySection = field(default_factory=DeploySection)
    operations: OperationsSection = field(default_factory=OperationsSection)

    EXECUTION_KEYS = frozenset({"time_budget", "workers", "tracking_uri"})

    def section_hash_input(self, section: str) -> dict[str, Any]:
        """The part of a section that defines results (execution settings left out)."""
        values = dataclasses.asdict(getattr(self, section))
        return {k: v for k, v in values.items() if k not in self.EXECUTION_KEYS}


def load_config(path: Path) -> Config:
    if not path.is_file():
        raise BadInputError(f"{path}: no project config here; run `mlwizard new DIR` first")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BadInputError(f"{path}: not valid TOML ({exc})") from None
    return config_from_dict(raw, origin=str(path))


def config_from_dict(raw: dict[str, Any], origin: str = CONFIG_FILE) -> Config:
    sections: dict[str, Any] = {}
    section_types = get_type_hints(Config)
    for name, values in raw.items():
        if name not in section_types:
            known = ", ".join(section_types)
            raise BadInputError(f"{origin}: unknown section [{name}] (known: {known})")
        if not isinstance(values, dict):
            raise BadInputError(f"{origin}: [{name}] must be a table")
        sections[name] = _build_section(section_types[name], values, f"{origin} [{name}]")
    return Config(**sections)


def _build_section(cls: type, values: dict[str, Any], where: str) -> Any:
    hints = get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in hints:
            raise BadInputError(f"{where}: unknown key '{key}' (known: {', '.join(hints)})")
        kwargs[key] = _coerce(value, hints[key], f"{where} {key}")
    return cls(**kwargs)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = getattr(hint, "__origin__", None)
    args = get_args(hint)
    if origin is Literal:
        if value not in args:
            raise BadInputError(f"{where}: '{value}' is not one of {', '.join(map(str, args))}")
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise BadInputError(f"{where}: expected a table of column = value")
        return {str(k): _coerce(v, args[1], f"{where}.{k}") for k, v in value.items()}
    if origin is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise BadInputError(f"{where}: expected a list of strings")
        return tuple(value)
    if args and type(None) in args:  # X | None
        inner = next(a for a in args if a is not type(None))
        return None if value is None else _coerce(value, inner, where)
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint in (int, str, bool) and type(value) is hint:
        return value
    raise BadInputError(f"{where}: expected {getattr(hint, '__name__', hint)}, got {value!r}")


def update_config_file(path: Path, updates: dict[str, dict[str, Any]]) -> None:
    """Set keys in `mlwizard.toml`, keeping the user's comments and layout (via tomlkit)."""
    import tomlkit

    from mlwizard.core.kernel.atomic import write_text

    document = (
        tomlkit.parse(path.read_text(encoding="utf-8")) if path.exists() else tomlkit.document()
    )
    for section, values in updates.items():
        table = document.get(section)
        if table is None:
            table = tomlkit.table()
            document[section] = table
        for key, value in values.items():
            table[key] = value
    config_from_dict(document.unwrap(), origin=str(path))  # refuse to write an invalid config
    write_text(path, tomlkit.dumps(document))
