"""Quality rules: one small function per rule, each yielding findings for the columns it concerns.

Table rules read the profile, the audit scan and the inferred types (no data is touched again);
`near_constant` reads the seeded sample and `class_imbalance` the target's class counts.
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlwizard.core.data.audit.findings import Finding, Severity
from mlwizard.core.data.audit.scan import TableScan
from mlwizard.core.kernel.config import ColumnType

TARGET_MOSTLY_NULL = 0.5  # share of rows without a target that earns a warning
DUPLICATE_WARNING = 0.01  # duplicate rows above this share: warning (any at all: info)
HIGH_CARDINALITY = 100  # distinct values of a categorical ...
HIGH_CARDINALITY_RATIO = 0.5  # ... or this share of its rows, once it has at least 20 values
HIGH_CARDINALITY_MIN = 20
MIXED_TYPES_MIN = 0.5  # strings reading as numbers at least this often (but not always)
NEAR_CONSTANT = 0.99  # one value (or missing) in at least this share of the sampled rows
NEAR_CONSTANT_MIN_ROWS = 100
IMBALANCE_RATIO = 0.1  # smallest class / largest class below this: warning


@dataclass(frozen=True)
class TableFacts:
    """What the table rules read: the profile's columns, the audit scan and the types."""

    rows: int
    target: str
    task: str  # binary | multiclass | regression
    columns: Mapping[str, Mapping[str, Any]]  # the profile's per-column entries
    scan: TableScan
    types: Mapping[str, ColumnType]
    time_column: str = ""  # the [split] time column when the strategy is "time"
    split_strategy: str = ""  # [split] strategy

    def present(self, name: str) -> int:
        return self.rows - self.columns[name]["nulls"]

    def features(self) -> Iterator[str]:
        return (name for name in self.columns if name != self.target)


TableRule = Callable[[TableFacts], Iterator[Finding]]


def toml_key(name: str) -> str:
    """A column name as a TOML key: always quoted, so any name is valid."""
    return json.dumps(name, ensure_ascii=False)


def shown_value(value: Any) -> str:
    """A data value as a message shows it: text quoted, numbers plain (never `np.float64(0.0)`)."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        number = float(value)
        return str(int(number)) if number.is_integer() and abs(number) < 1e15 else f"{number:g}"
    return repr(str(value))


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "0%"


# -- table: checked first; when one fires the others have nothing to read -------------------------


def empty_table(facts: TableFacts) -> Iterator[Finding]:
    if facts.rows == 0:
        yield Finding(
            "empty_table", "error", None, "the table has no rows", "check the source file or query"
        )


def target_missing(facts: TableFacts) -> Iterator[Finding]:
    if facts.target and facts.target not in facts.columns:
        shown = ", ".join(list(facts.columns)[:12])
        yield Finding(
            "target_missing",
            "error",
            facts.target,
            f"target column '{facts.target}' is not in the table",
            f"set [data] target to one of: {shown}",
        )


# -- target -------------------------------------------------------------------------------------


def target_constant(facts: TableFacts) -> Iterator[Finding]:
    stats = facts.columns[facts.target]
    if facts.present(facts.target) > 0 and stats["distinct"] <= 1:
        yield Finding(
            "target_constant",
            "error",
            facts.target,
            "the target has one value in every row: there is nothing to predict",
            "choose another target column, or add rows with other outcomes",
        )


def target_mostly_null(facts: TableFacts) -> Iterator[Finding]:
    missing = facts.columns[facts.target]["nulls"]
    if missing == facts.rows:
        yield Finding(
            "target_mostly_null",
            "error",
            facts.target,
            "the target is missing in every row",
            "choose another target column, or fill in the labels",
        )
    elif missing >= TARGET_MOSTLY_NULL * facts.rows:
        yield Finding(
            "target_mostly_null",
            "warning",
            facts.target,
            f"{missing} of {facts.rows} rows ({_pct(missing, facts.rows)}) have no target; "
            "they are dropped",
            "check the labelling; the model learns from the labelled rows only",
        )


def target_infinite(facts: TableFacts) -> Iterator[Finding]:
    count = facts.scan.columns[facts.target].infinite
    if count:
        yield Finding(
            "target_infinite",
            "error",
            facts.target,
            f"{count} target values are infinite; no model can learn or be scored on them",
            "fix or drop those rows in the source",
        )


# -- rows -----------------------------------------------------------------------------------------


def duplicate_rows(facts: TableFacts) -> Iterator[Finding]:
    """Worded by what the columns allow: with a key column, a repeat is a copy of one record;
    without one, equal rows may be distinct records that happen to agree (two passengers with
    the same class, sex, age and fare)."""
    count = facts.scan.duplicate_rows
    if not count:
        return
    severity: Severity = "warning" if count >= DUPLICATE_WARNING * facts.rows else "info"
    keys = [n for n, t in facts.types.items() if t == "identifier"]
    what = f"{count} rows ({_pct(count, facts.rows)}) repeat an earlier row exactly"
    if keys:
        yield Finding(
            "duplicate_rows",
            severity,
            None,
            f"{what}, key column '{keys[0]}' included: they are copies of one record",
            "drop the copies in the source; copies that land in both train and test inflate "
            "the scores",
        )
        return
    yield Finding(
        "duplicate_rows",
        severity,
        None,
        f"{what}; with no key column to tell rows apart they may be distinct records with equal "
        "values (people alike in every column) or copies of one record",
        "if they are copies (a join or an export run twice), drop them in the source; if they "
        "are distinct records, keep them: equal rows in train and test are then real",
    )


# -- columns --------------------------------------------------------------------------------------


def empty_column(facts: TableFacts) -> Iterator[Finding]:
    for name in facts.features():
        if facts.present(name) == 0:
            yield Finding(
                "empty_column",
                "info",
                name,
                "every value is missing",
                "excluded from the features",
                exclude="all values are missing",
            )


def constant_column(facts: TableFacts) -> Iterator[Finding]:
    for name in facts.features():
        if facts.present(name) > 0 and facts.columns[name]["distinct"] <= 1:
            yield Finding(
                "constant_column",
                "info",
                name,
                "one value in every row (apart from missing ones)",
                "excluded from the features: there is nothing to learn from it",
                exclude="constant: one value in every row",
            )


def identifier_column(facts: TableFacts) -> Iterator[Finding]:
    for name in facts.features():
        if facts.types[name] == "identifier":
            distinct, present = facts.columns[name]["distinct"], facts.present(name)
            yield Finding(
                "identifier",
                "warning",
                name,
                f"looks like a key: about {distinct} distinct values in {present} rows",
                f"excluded; use it as [split] group_column if rows share it, or list "
                f"{toml_key(name)} in [data] keep if it carries meaning",
                exclude="identifier-like: (nearly) every value is unique",
            )


def high_cardinality(facts: TableFacts) -> Iterator[Finding]:
    for name in facts.features():
        if facts.types[name] != "categorical":
            continue
        distinct, present = facts.columns[name]["distinct"], facts.present(name)
        if distinct >= HIGH_CARDINALITY or (
            distinct >= HIGH_CARDINALITY_MIN and distinct >= HIGH_CARDINALITY_RATIO * present
        ):
            yield Finding(
                "high_cardinality",
                "warning",
                name,
                f"a categorical with about {distinct} distinct values in {present} rows; "
                "rare values carry little signal and bloat the model",
                "group rare values into 'other' in the source, or list it in [data] exclude",
            )


def mixed_types(facts: TableFacts) -> Iterator[Finding]:
    for name in facts.features():
        scan = facts.scan.columns[name]
        present = facts.present(name)
        if scan.avg_length is None or not present:
            continue
        numbers = scan.numeric_values
        if not MIXED_TYPES_MIN * present <= numbers < present:
            continue
        others = present - numbers
        examples = _non_numeric_examples(facts.columns[name].get("top") or [])
        shown = f" (e.g. {', '.join(map(repr, examples))})" if examples else ""
        key = toml_key(name)
        if facts.types[name] == "numeric":
            message = f"{numbers} of {present} values are numbers; the other {others}{shown} "
            message += "are read as missing"
            action = f"fix those values in the source, or set [data] types = {{ {key} = "
            action += '"categorical" } to treat it as labels'
        else:
            message = f"{numbers} of {present} values are numbers but {others}{shown} are not, "
            message += f"so it is read as {facts.types[name]}"
            action = f'set [data] types = {{ {key} = "numeric" }} to read the others as missing'
        yield Finding("mixed_types", "warning", name, message, action)


def _non_numeric_examples(values: list[Any], limit: int = 3) -> list[str]:
    examples = []
    for value in values:
        try:
            float(value)
        except (TypeError, ValueError):
            examples.append(str(value))
    return examples[:limit]


def infinite_values(facts: TableFacts) -> Iterator[Finding]:
    for name in facts.features():
        count = facts.scan.columns[name].infinite
        if count:
            yield Finding(
                "infinite_values",
                "warning",
                name,
                f"{count} infinite values; they are read as missing",
                "fix them in the source (a division by zero?) if they mean something",
            )


def datetime_column(facts: TableFacts) -> Iterator[Finding]:
    for name in facts.features():
        if facts.types[name] == "datetime" and name != facts.time_column:
            key = toml_key(name)
            yield Finding(
                "datetime_column",
                "info",
                name,
                "a date/time column: the model uses its calendar parts (year, month, day, day of "
                "week, hour, days since the first date), derived inside the exported graph",
                f"if rows will come from the future, consider a time split ([split] strategy = "
                f'"time", time_column = {key}); list it in [data] exclude to leave it out',
            )


def random_split_over_time(facts: TableFacts) -> Iterator[Finding]:
    """A random split of rows that carry a time mixes past and future in every split."""
    if facts.split_strategy not in ("random", "stratified"):
        return
    times = [n for n in facts.features() if facts.types[n] == "datetime" and facts.present(n)]
    if not times:
        return
    key = toml_key(times[0])
    yield Finding(
        "random_split_over_time",
        "warning",
        times[0],
        f"the rows carry a time ('{times[0]}') but the split is {facts.split_strategy}: "
        "training sees rows from after the test rows, so the test score is optimistic about "
        "predicting the future",
        f'if the model will predict later rows, set [split] strategy = "time" and '
        f"time_column = {key}",
    )


def free_text(facts: TableFacts) -> Iterator[Finding]:
    for name in facts.features():
        if facts.types[name] == "text":
            length = facts.scan.columns[name].avg_length or 0.0
            yield Finding(
                "free_text",
                "info",
                name,
                f"free text (about {length:.0f} characters a value, mostly distinct): the model "
                "uses TF-IDF weights of its words and word pairs (at most 200), derived inside "
                "the exported graph",
                "list it in [data] exclude to leave it out",
            )


BLOCKING_RULES: tuple[TableRule, ...] = (empty_table, target_missing)
TARGET_RULES: tuple[TableRule, ...] = (target_constant, target_mostly_null, target_infinite)
TABLE_RULES: tuple[TableRule, ...] = (
    *TARGET_RULES,
    duplicate_rows,
    empty_column,
    constant_column,
    identifier_column,
    high_cardinality,
    mixed_types,
    infinite_values,
    datetime_column,
    random_split_over_time,
    free_text,
)


def table_findings(facts: TableFacts) -> list[Finding]:
    """Every table rule's findings; only the blocking ones when the table or target is absent."""
    blocking = [f for rule in BLOCKING_RULES for f in rule(facts)]
    if blocking:
        return blocking
    # No target (clustering, anomaly detection without a label): no target rules.
    rules = TABLE_RULES if facts.target else TABLE_RULES[len(TARGET_RULES) :]
    return [f for rule in rules for f in rule(facts)]


# -- rules on the sample and on the target's classes ----------------------------------------------


def near_constant(sample: pd.DataFrame, columns: list[str]) -> list[Finding]:
    """One value (missing counts as a value) in at least 99% of the sampled rows."""
    if len(sample) < NEAR_CONSTANT_MIN_ROWS:
        return []
    findings = []
    for name in columns:
        counts = sample[name].value_counts(dropna=False)
        if len(counts) < 2 or counts.iloc[0] < NEAR_CONSTANT * len(sample):
            continue
        value = counts.index[0]
        shown = "missing" if pd.isna(value) else shown_value(value)
        findings.append(
            Finding(
                "near_constant",
                "info",
                name,
                f"{shown} in {_pct(counts.iloc[0], len(sample))} of {len(sample)} sampled rows",
                "check that the rare values matter; list it in [data] exclude if not",
            )
        )
    return findings


def class_imbalance(target: str, counts: Mapping[Any, int]) -> list[Finding]:
    """Smallest class under a tenth of the largest."""
    if len(counts) < 2:
        return []
    small, n_small = min(counts.items(), key=lambda kv: kv[1])
    large, n_large = max(counts.items(), key=lambda kv: kv[1])
    if n_small >= IMBALANCE_RATIO * n_large:
        return []
    total = sum(counts.values())
    return [
        Finding(
            "class_imbalance",
            "warning",
            target,
            f"class {shown_value(small)} has {n_small} rows ({_pct(n_small, total)}), class "
            f"{shown_value(large)} {n_large}: about 1 to {n_large / max(n_small, 1):.0f}",
            "judge models by ROC AUC or macro F1 (the defaults), not accuracy; collect more "
            f"rows of {shown_value(small)} if you can",
        )
    ]


def no_features(target: str) -> Finding:
    return Finding(
        "no_features",
        "error",
        None,
        f"no usable feature columns besides the target '{target}': every column was excluded",
        "see the other findings; list columns in [data] keep, or correct [data] types",
    )
