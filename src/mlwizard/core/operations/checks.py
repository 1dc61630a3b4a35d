"""Per-feature drift of current data against a version's reference profile, in one scan.

For every monitored feature one aggregate query counts the current rows into the reference bins,
and in the same scan counts rows whose category training never saw (with a few examples) and
numeric means. From the counts: the distribution's drift (PSI, Jensen–Shannon, judged above the
noise floor and by a chi-square test), the missing-rate shift (a two-proportion test), new and
vanished categories. A feature's level is the worst of its checks.
"""

from __future__ import annotations

import math
from typing import Any

import duckdb

from mlwizard.core.operations.drift import LEVELS, MIN_ROWS, SIGNIFICANCE, count_bins, judge
from mlwizard.core.sql import quote_ident

MISSING_SHIFT = (0.05, 0.20)  # absolute change in the missing rate: moderate, major
NEW_CATEGORY_SHARE = (0.01, 0.10)  # share of current rows in unseen categories: moderate, major
NEW_CATEGORY_MIN_ROWS = 5
VANISHED_MIN_EXPECTED = 10  # a category is "missing" only if at least this many rows were due
EXAMPLES = 5


def worst(levels: list[str]) -> str:
    return max(levels, key=LEVELS.index) if levels else "stable"


def feature_drift(
    con: duckdb.DuckDBPyConnection, source: str, params: list[Any], reference: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Each monitored feature's drift checks between `source` (a FROM clause) and `reference`."""
    features: dict[str, Any] = reference["features"]
    bins = {
        name: {k: f[k] for k in ("kind", "edges", "values", "raw") if k in f}
        for name, f in features.items()
    }
    extra: list[tuple[str, list[Any]]] = [
        (f"avg({quote_ident(n)})", []) for n, f in features.items() if f["kind"] == "numeric"
    ]
    seen: dict[str, dict[str, int]] = {}
    counts, means = count_bins(con, source, params, bins, extra, raw=seen)
    numeric = iter(means)
    found: dict[str, dict[str, Any]] = {name: {} for name in features}
    for name, spec in features.items():
        if spec["kind"] == "numeric":
            found[name]["mean"] = next(numeric)
        elif spec.get("known") is not None and name in seen:
            known = set(spec["known"])
            new = sorted(((c, v) for v, c in seen[name].items() if v not in known), reverse=True)
            found[name]["new_rows"] = sum(c for c, _v in new)
            found[name]["new_examples"] = [v for _c, v in new[:EXAMPLES]]
    return {name: _checks(name, spec, counts[name], found[name]) for name, spec in features.items()}


def _checks(
    name: str, spec: dict[str, Any], current: dict[str, int], found: dict[str, Any]
) -> dict[str, Any]:
    reference = spec["counts"]
    result = {"kind": spec["kind"], **judge(reference, current)}
    if result["level"] == "insufficient":
        result["reasons"] = [result["note"]]
        return result
    reasons: list[str] = []
    if result["level"] != "stable":
        reasons.append(
            f"distribution moved: PSI {result['psi']:.3f} "
            f"(noise floor {result['noise_floor']:.3f}), "
            f"JS {result['js']:.3f}"
        )
    levels = [result["level"]]
    missing = _missing_rate(reference, current)
    result["missing_rate"] = missing
    if missing["level"] != "stable":
        levels.append(missing["level"])
        reasons.append(f"missing rate {missing['reference']:.1%} → {missing['current']:.1%}")
    if spec["kind"] == "numeric":
        result["mean"] = {"reference": spec.get("mean"), "current": _float(found.get("mean"))}
    elif "new_rows" in found:
        new = _new_categories(int(found["new_rows"]), found.get("new_examples"), result["rows"])
        result["new_categories"] = new
        if new["level"] != "stable":
            levels.append(new["level"])
            reasons.append(
                f"{new['share']:.1%} of rows in categories never seen in training "
                f"({', '.join(map(str, new['examples']))})"
            )
    if spec["kind"] == "categorical":
        vanished = _vanished(reference, current)
        result["missing_categories"] = vanished
        if vanished:
            levels.append("moderate")
            reasons.append(f"categories no longer seen: {', '.join(vanished)}")
    result["level"] = worst(levels)
    result["reasons"] = reasons
    return result


def _missing_rate(reference: dict[str, int], current: dict[str, int]) -> dict[str, Any]:
    """The missing-rate change, judged by size and by a two-proportion z-test."""
    n0, n1 = sum(reference.values()), sum(current.values())
    m0, m1 = reference.get("missing", 0), current.get("missing", 0)
    p0, p1 = m0 / n0, m1 / n1
    pooled = (m0 + m1) / (n0 + n1)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n0 + 1 / n1))
    p_value = math.erfc(abs(p1 - p0) / se / math.sqrt(2)) if se > 0 else (0.0 if p0 != p1 else 1.0)
    change = abs(p1 - p0)
    level = "stable"
    if p_value < SIGNIFICANCE:
        level = (
            "major"
            if change > MISSING_SHIFT[1]
            else "moderate"
            if change > MISSING_SHIFT[0]
            else "stable"
        )
    return {
        "reference": round(p0, 6),
        "current": round(p1, 6),
        "p_value": float(f"{p_value:.3g}"),
        "level": level,
    }


def _new_categories(rows: int, examples: Any, total: int) -> dict[str, Any]:
    share = rows / total if total else 0.0
    level = "stable"
    if rows >= NEW_CATEGORY_MIN_ROWS and total >= MIN_ROWS:
        level = (
            "major"
            if share > NEW_CATEGORY_SHARE[1]
            else "moderate"
            if share > NEW_CATEGORY_SHARE[0]
            else "stable"
        )
    return {
        "rows": rows,
        "share": round(share, 6),
        "examples": [str(v) for v in examples or []][:EXAMPLES],
        "level": level,
    }


def _vanished(reference: dict[str, int], current: dict[str, int]) -> list[str]:
    """Reference categories with none of the rows they would be expected to get."""
    n0, n1 = sum(reference.values()), sum(current.values())
    gone = []
    for label, count in reference.items():
        if label in ("missing", "other"):
            continue
        if current.get(label, 0) == 0 and count / n0 * n1 >= VANISHED_MIN_EXPECTED:
            gone.append(label)
    return gone


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
