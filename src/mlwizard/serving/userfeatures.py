"""The project's own feature code, `features.py`: loaded, run and checked one way everywhere.

The data phase derives its columns on the snapshot, and the service, `mlwizard predict` and the
parity checks derive them on the rows they score, so callers keep sending the raw columns. This
file ships in every bundle beside `predictor.py` and needs numpy and the standard library only.

The contract (the scaffold's `features.py` documents it for users):
`derive(columns)` receives a read-only mapping of column name -> numpy array, one value per row:
columns the data holds as numbers arrive as float64 (NaN for missing), every other column as an
object array of `str` (None for missing). It returns `{new column name: array}` with one number
or string per row, computed from that row's values only (the service sees one request at a time).
Every problem is a `FeaturesError`: one line that starts with the file's name.
"""

from __future__ import annotations

import ast
import math
import sys
import types
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

FEATURES_FILE = "features.py"
NUMBER, STRING = "number", "string"  # how a raw column reaches derive()
ALLOWED_IMPORTS = frozenset({"numpy", "__future__"}) | frozenset(sys.stdlib_module_names)

Derive = Callable[[Mapping[str, np.ndarray]], Mapping[str, Any]]


class FeaturesError(ValueError):
    """A problem with features.py, worded as one line naming the file and what to do."""


def load(path: Path) -> Derive | None:
    """`derive` from the file at `path`; None when there is no such file."""
    if not path.is_file():
        return None
    source = path.read_text(encoding="utf-8")
    try:
        tree = ast.parse(source, str(path))
    except SyntaxError as exc:
        raise FeaturesError(
            f"{FEATURES_FILE} line {exc.lineno}: {exc.msg}; fix the syntax"
        ) from None
    _check_imports(tree)
    module = types.ModuleType("features")
    module.__file__ = str(path)
    try:
        exec(compile(tree, str(path), "exec"), module.__dict__)  # the user's own code
    except Exception as exc:  # anything the user's module does at import time
        raise FeaturesError(f"{_where(exc, path)}loading it raised {_said(exc)}") from None
    derive = getattr(module, "derive", None)
    if not callable(derive):
        raise FeaturesError(
            f"{FEATURES_FILE}: no derive(columns) function; define one (see the comment at the "
            "top of the file), or delete the file"
        )
    return derive


def _check_imports(tree: ast.Module) -> None:
    """Only numpy and the standard library: the service bundle has nothing else to import."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module or ""]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top not in ALLOWED_IMPORTS:
                raise FeaturesError(
                    f"{FEATURES_FILE} line {node.lineno}: imports {top}, which the service "
                    "bundle does not have; use numpy and the standard library only"
                )


class Columns(Mapping[str, np.ndarray]):
    """The raw columns derive() reads: converted on first read, read-only, and recorded."""

    def __init__(
        self,
        getters: Mapping[str, Callable[[], np.ndarray]],
        hidden: Mapping[str, str] | None = None,
    ) -> None:
        self._getters = dict(getters)
        self._hidden = dict(hidden or {})  # name -> why derive() may not read it
        self._cache: dict[str, np.ndarray] = {}
        self.read: list[str] = []  # in the order derive() first read them

    def __getitem__(self, name: str) -> np.ndarray:
        if name in self._hidden:
            raise FeaturesError(f"{FEATURES_FILE}: derive() reads {name!r}, {self._hidden[name]}")
        if name not in self._cache:
            array = np.asarray(self._getters[name]())  # KeyError: the data has no such column
            array.flags.writeable = False
            self._cache[name] = array
            self.read.append(name)
        return self._cache[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._getters)

    def __len__(self) -> int:
        return len(self._getters)


def apply(derive: Derive, columns: Columns, rows: int) -> dict[str, np.ndarray]:
    """derive(columns), checked: a dict of one float64 or str/None value per row per column."""
    try:
        out = derive(columns)
    except FeaturesError:
        raise
    except KeyError as exc:
        name = exc.args[0] if exc.args else ""
        if isinstance(name, str) and name not in columns:
            known = ", ".join(list(columns)[:12])
            raise FeaturesError(
                f"{_where(exc, None)}derive() reads column {name!r}, which the data does not "
                f"have (it has: {known}); fix the name"
            ) from None
        raise FeaturesError(f"{_where(exc, None)}derive() raised {_said(exc)}") from None
    except Exception as exc:  # the user's code: every error becomes one line
        raise FeaturesError(f"{_where(exc, None)}derive() raised {_said(exc)}") from None
    if not isinstance(out, Mapping):
        raise FeaturesError(
            f"{FEATURES_FILE}: derive() returned {type(out).__name__}; return a dict "
            "{new column name: array}"
        )
    return {_name(name): normalise(name, values, rows) for name, values in out.items()}


def _name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise FeaturesError(f"{FEATURES_FILE}: derive() returned the key {name!r}; use names")
    return name


def normalise(name: str, values: Any, rows: int) -> np.ndarray:
    """One derived column: float64 for numbers and booleans (infinities read as missing, as a
    source's are), str/None objects for the rest."""
    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1 or len(array) != rows:
        count = "a single value" if array.ndim == 0 else f"shape {array.shape}"
        raise FeaturesError(
            f"{FEATURES_FILE}: derive() returned {name!r} as {count} for {rows} rows; "
            "return one value per row (an array as long as the input columns)"
        )
    if array.dtype.kind in "biuf":
        numbers = array.astype(np.float64)
        return np.where(np.isinf(numbers), np.nan, numbers)  # as missing, as in training
    if array.dtype.kind in "OUS":
        return np.array([None if _missing(v) else str(v) for v in array.tolist()], dtype=object)
    raise FeaturesError(
        f"{FEATURES_FILE}: derive() returned {name!r} as {array.dtype}; return numbers or strings"
    )


def number_values(values: Any) -> np.ndarray:
    """A raw numeric column as derive() receives it: float64, NaN for missing."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
        return values.astype(np.float64)
    try:  # the common case, JSON numbers and nulls: numpy reads None as NaN
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        pass
    out = np.empty(len(values), dtype=np.float64)
    for i, value in enumerate(values):
        try:
            out[i] = math.nan if _missing(value) else float(value)
        except (TypeError, ValueError):
            out[i] = math.nan
    return out


def string_values(values: Any) -> np.ndarray:
    """Any other raw column as derive() receives it: str objects, None for missing."""
    items = values.tolist() if isinstance(values, np.ndarray) else list(values)
    return np.array([None if _missing(v) else str(v) for v in items], dtype=object)


def raw_columns(values: Mapping[str, Any], kinds: Mapping[str, str]) -> Columns:
    """Columns for derive() from scored rows' values: each input converted by its kind; an
    input the rows lack is all missing."""

    def getter(name: str, kind: str) -> Callable[[], np.ndarray]:
        return lambda: (number_values if kind == NUMBER else string_values)(values[name])

    return Columns({name: getter(name, kind) for name, kind in kinds.items()})


def request_features(schema: Mapping[str, Any]) -> list[dict[str, str]]:
    """What callers send: the features not derived, then the raw columns only derive() reads
    (numbers as numeric, the rest as categorical)."""
    derived = schema.get("derived") or {}
    features = [f for f in schema["features"] if f["name"] not in derived]
    names = {f["name"] for f in schema["features"]}
    for name, kind in (schema.get("raw_inputs") or {}).items():
        if name not in names:
            features.append({"name": name, "kind": "numeric" if kind == NUMBER else "categorical"})
    return features


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float | np.floating):
        return math.isnan(value)
    return type(value).__name__ in ("NAType", "NaTType")


def _said(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _where(exc: BaseException, path: Path | None) -> str:
    """`features.py line N: ` for the deepest frame of the user's file in the traceback."""
    line = None
    trace = exc.__traceback__
    while trace is not None:
        name = trace.tb_frame.f_code.co_filename
        if (path is not None and name == str(path)) or Path(name).name == FEATURES_FILE:
            line = trace.tb_lineno
        trace = trace.tb_next
    return f"{FEATURES_FILE} line {line}: " if line else f"{FEATURES_FILE}: "
