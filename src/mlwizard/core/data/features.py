"""Choosing features: which columns may be features, of which kind, and why the others are not."""

from __future__ import annotations

from dataclasses import replace

from mlwizard.core.contract.schema import FeatureKind
from mlwizard.core.data import coltypes
from mlwizard.core.data.audit import Finding
from mlwizard.core.kernel.config import ColumnType, Config

SPLIT_COLUMN_REASONS = {
    "time": "the time split column: features should not carry the clock the split is cut on",
    "group": "the group split column: valid and test groups never occur in training",
}


def mark_kept(findings: list[Finding], keep: tuple[str, ...]) -> list[Finding]:
    """Rewrite the action of an excluding finding whose column the user keeps."""
    return [
        replace(f, action="kept as a feature: it is listed in [data] keep")
        if f.exclude and f.column in keep
        else f
        for f in findings
    ]


def exclusions(findings: list[Finding], keep: tuple[str, ...]) -> dict[str, str]:
    """Column -> reason for findings that exclude a column the user did not keep (first wins)."""
    reasons: dict[str, str] = {}
    for finding in findings:
        if finding.exclude and finding.column is not None and finding.column not in keep:
            reasons.setdefault(finding.column, finding.exclude)
    return reasons


def candidates(
    config: Config,
    duckdb_types: dict[str, str],
    types: dict[str, ColumnType],
    findings: list[Finding],
    split_column: str,
) -> tuple[dict[str, FeatureKind], dict[str, str]]:
    """Feature kinds of the columns that may be features (before leakage), and the excluded."""
    data = config.data
    by_findings = exclusions(findings, data.keep)
    kinds: dict[str, FeatureKind] = {}
    excluded: dict[str, str] = {}
    for name, column_type in types.items():
        if name == data.target:
            continue
        kept = name in data.keep
        if name in data.exclude:
            excluded[name] = "listed in [data] exclude"
        elif name in by_findings:
            excluded[name] = by_findings[name]
        elif name == split_column and not kept:
            excluded[name] = SPLIT_COLUMN_REASONS[config.split.strategy]
        elif (kind := coltypes.default_kind(column_type)) is not None:
            kinds[name] = kind
        elif kept:
            kinds[name] = coltypes.kept_kind(column_type, duckdb_types[name])
        else:
            excluded[name] = f"{column_type}: not a feature unless listed in [data] keep"
    return kinds, excluded


def warnings(
    config: Config, types: dict[str, ColumnType], excluded: dict[str, str], dropped: int
) -> list[str]:
    found = [f"column '{name}' excluded: {why}" for name, why in excluded.items()]
    if dropped:
        found.append(f"{dropped} rows with a missing target were dropped")
    found += [
        f"column '{name}' is kept as a number: seconds since 1970-01-01"
        for name in config.data.keep
        if types.get(name) == "datetime"
    ]
    return found
