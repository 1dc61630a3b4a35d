"""Reference statistics and PSI drift, computed by DuckDB in one scan per dataset.

A feature's bins are fixed from the reference data: deciles for numerics, the most frequent values
(plus "other") for categoricals, and a bin for missing values in both. Counting a dataset into those
bins is one aggregate query with bound parameters for every edge and value.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

from mlwizard.core.contract.schema import Schema
from mlwizard.core.sql import quote_ident

DECILES = [i / 10 for i in range(1, 10)]
TOP_CATEGORIES = 20
PSI_FLOOR = 1e-4  # keeps an empty bin from making PSI infinite
PSI_WARN, PSI_ALERT = 0.1, 0.25  # the usual reading: < 0.1 stable, 0.1–0.25 moderate, > 0.25 major
MIN_ROWS = 30  # below this on either side, no drift verdict: "not enough rows to judge"
SIGNIFICANCE = 0.01  # a level above stable needs the chi-square test below this p-value
MEMORY_LIMIT_MB = 256
LEVELS = ("insufficient", "stable", "moderate", "major")  # in order of concern


def connect(columns: int = 0) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection for monitoring scans, its memory bounded so that the one-pass
    aggregates over millions of rows stay within a few hundred MB (DuckDB buffers less; the
    histograms and sketches themselves are small)."""
    from mlwizard.core.ingest import sources

    con = sources.connect()
    con.execute(f"SET memory_limit = '{max(MEMORY_LIMIT_MB, 8 * columns)}MB'")
    return con


def reference_bins(con: duckdb.DuckDBPyConnection, path: Path, schema: Schema) -> dict[str, Any]:
    """Bin definitions per feature, from the reference data."""
    relation = con.read_parquet(str(path))
    exprs = []
    for i, feature in enumerate(schema.features):
        col = quote_ident(feature.name)
        if feature.kind == "numeric":
            exprs.append(f"quantile_cont({col}, {DECILES}) AS q{i}")
        else:
            exprs.append(f"approx_top_k({col}, {TOP_CATEGORIES}) AS q{i}")
    row = relation.aggregate(", ".join(exprs)).fetchall()[0]
    bins: dict[str, Any] = {}
    for feature, value in zip(schema.features, row, strict=True):
        if feature.kind == "numeric":
            edges = sorted({float(v) for v in (value or []) if v is not None})
            bins[feature.name] = {"kind": "numeric", "edges": edges}
        else:
            bins[feature.name] = {"kind": "categorical", "values": [v for v in value or [] if v]}
    return bins


def _labels(spec: dict[str, Any]) -> list[str]:
    """The bins' labels: "missing", then the numeric intervals or the categories and "other"."""
    if spec["kind"] == "numeric":
        bounds: list[Any] = ["-inf", *spec["edges"], "inf"]
        return ["missing", *(f"({lo}, {hi}]" for lo, hi in itertools.pairwise(bounds))]
    return ["missing", *(str(v) for v in spec["values"]), "other"]


def _histogram(name: str, spec: dict[str, Any]) -> tuple[str, list[Any]]:
    """One `histogram()` aggregate per feature: of the bin index for numerics (the number of
    edges below the value, so bin i is (edge i-1, edge i]), of the raw values for categoricals
    marked `raw` (so new categories come out of the same scan), else of the top values only.
    Missing values are NULL and left out: they are count(*) - count(column). One histogram per
    column is several times faster in DuckDB than one filtered count per bin."""
    col = quote_ident(name)
    if spec["kind"] == "numeric":
        edges = list(spec["edges"])
        index = " + ".join(f"({col} > ?)::INTEGER" for _ in edges) or f"({col} * 0)::INTEGER"
        return f"histogram({index})", edges
    if spec.get("raw") or not spec["values"]:
        return f"histogram({col})", []
    marks = ", ".join("?" for _ in spec["values"])
    return f"histogram(CASE WHEN {col} IN ({marks}) THEN {col} END)", list(spec["values"])


def bin_counts(
    con: duckdb.DuckDBPyConnection, path: Path, bins: dict[str, Any]
) -> dict[str, dict[str, int]]:
    """Count the rows of a Parquet file into each feature's bins, in one scan."""
    counts, _extra = count_bins(con, "read_parquet(?)", [str(path)], bins)
    return counts


def count_bins(
    con: duckdb.DuckDBPyConnection,
    source: str,
    source_params: list[Any],
    bins: dict[str, Any],
    extra: Sequence[tuple[str, list[Any]]] = (),
    raw: dict[str, dict[str, int]] | None = None,
) -> tuple[dict[str, dict[str, int]], list[Any]]:
    """Count `source` (a FROM clause) into each feature's bins in one scan.

    `extra` adds more aggregates (SQL, parameters) to the same scan; their values come back in
    order as the second element. `raw`, if given, receives the value counts of `raw` categoricals.
    """
    exprs, params = ["count(*)"], []
    for name, spec in bins.items():
        sql, bound = _histogram(name, spec)
        exprs += [f"count({quote_ident(name)})", sql]
        params += bound
    for sql, bound in extra:
        exprs.append(sql)
        params += bound
    query = f"SELECT {', '.join(exprs)} FROM {source}"
    values = iter(con.execute(query, [*params, *source_params]).fetchall()[0])
    rows = int(next(values))
    counts: dict[str, dict[str, int]] = {}
    for name, spec in bins.items():
        present, histogram = int(next(values)), dict(next(values) or {})
        labels = _labels(spec)
        found = dict.fromkeys(labels, 0)
        found["missing"] = rows - present
        if spec["kind"] == "numeric":
            for index, count in histogram.items():
                found[labels[1 + int(index)]] += int(count)
        else:
            top = [str(v) for v in spec["values"]]
            for value in top:
                found[value] = int(histogram.get(value, 0))
            found["other"] = present - sum(found[v] for v in top)
            if raw is not None and (spec.get("raw") or not spec["values"]):
                raw[name] = {str(k): int(v) for k, v in histogram.items()}
        counts[name] = found
    return counts, list(values)


def psi(reference: dict[str, int], current: dict[str, int]) -> float:
    ref_total = sum(reference.values()) or 1
    cur_total = sum(current.values()) or 1
    total = 0.0
    for label in reference:
        expected = max(reference[label] / ref_total, PSI_FLOOR)
        actual = max(current.get(label, 0) / cur_total, PSI_FLOOR)
        total += (actual - expected) * math.log(actual / expected)
    return total


def psi_noise_floor(reference: dict[str, int], current: dict[str, int]) -> float:
    """The PSI that sampling alone gives when nothing drifted.

    For small differences PSI behaves like a chi-square divergence, whose expectation between two
    samples of one distribution is about (bins - 1) * (1/n_reference + 1/n_current). On a few
    hundred rows that is comparable to the usual thresholds, so levels are judged above it.
    """
    bins = sum(1 for label in reference if reference[label] or current.get(label, 0))
    n_ref, n_cur = sum(reference.values()), sum(current.values())
    if not n_ref or not n_cur:
        return 0.0
    return max(bins - 1, 0) * (1 / n_ref + 1 / n_cur)


def drift_level(value: float, noise_floor: float = 0.0) -> str:
    """stable / moderate / major by the usual PSI thresholds, counted above the noise floor."""
    excess = value - noise_floor
    return "major" if excess > PSI_ALERT else "moderate" if excess > PSI_WARN else "stable"


def jensen_shannon(reference: dict[str, int], current: dict[str, int]) -> float:
    """Jensen–Shannon distance (base 2, in [0, 1]) between two binned distributions."""
    ref_total = sum(reference.values()) or 1
    cur_total = sum(current.values()) or 1
    divergence = 0.0
    for label in reference.keys() | current.keys():
        p, q = reference.get(label, 0) / ref_total, current.get(label, 0) / cur_total
        m = (p + q) / 2
        if p:
            divergence += 0.5 * p * math.log2(p / m)
        if q:
            divergence += 0.5 * q * math.log2(q / m)
    return math.sqrt(max(divergence, 0.0))


def homogeneity_p_value(reference: dict[str, int], current: dict[str, int]) -> float:
    """Chi-square test that both samples come from one distribution over the same bins."""
    labels = [k for k in reference if reference[k] or current.get(k, 0)]
    labels += [k for k in current if k not in reference and current[k]]
    n_ref, n_cur = sum(reference.values()), sum(current.values())
    if len(labels) < 2 or not n_ref or not n_cur:
        return 1.0
    total, statistic = n_ref + n_cur, 0.0
    for label in labels:
        column = reference.get(label, 0) + current.get(label, 0)
        for observed, n in ((reference.get(label, 0), n_ref), (current.get(label, 0), n_cur)):
            expected = column * n / total
            statistic += (observed - expected) ** 2 / expected
    return chi2_sf(statistic, len(labels) - 1)


def chi2_sf(x: float, df: int) -> float:
    """P(X >= x) for a chi-square with `df` degrees of freedom: the regularized upper gamma
    Q(df/2, x/2), by its series below a + 1 and its continued fraction above (Numerical Recipes);
    this avoids importing scipy.stats (seconds) for one number."""
    a, z = df / 2, x / 2
    if z <= 0:
        return 1.0
    log_prefix = a * math.log(z) - z - math.lgamma(a)
    if z < a + 1:
        term = total = 1 / a
        for n in range(1, 1000):
            term *= z / (a + n)
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1 - total * math.exp(log_prefix))
    b, c, d = z + 1 - a, 1 / 1e-300, 1 / (z + 1 - a)
    h = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = 1e-300 if abs(d) < 1e-300 else d
        c = b + an / c
        c = 1e-300 if abs(c) < 1e-300 else c
        d = 1 / d
        step = d * c
        h *= step
        if abs(step - 1) < 1e-15:
            break
    return min(1.0, math.exp(log_prefix) * h)


def judge(reference: dict[str, int], current: dict[str, int]) -> dict[str, Any]:
    """PSI, its noise floor, Jensen–Shannon and the level, with a verdict that needs evidence.

    Sample size counts twice: PSI is judged above what sampling alone gives (the noise floor),
    and a level above stable also needs the chi-square test to reject "same distribution" at
    SIGNIFICANCE, so a few rows never raise an alarm. On huge samples the test rejects any
    difference, so the PSI thresholds (an effect size) still decide. Below MIN_ROWS on either
    side there is no verdict at all.
    """
    value, floor = psi(reference, current), psi_noise_floor(reference, current)
    n_ref, n_cur = sum(reference.values()), sum(current.values())
    result: dict[str, Any] = {
        "psi": round(value, 6),
        "noise_floor": round(floor, 6),
        "js": round(jensen_shannon(reference, current), 6),
        "rows": n_cur,
    }
    if min(n_ref, n_cur) < MIN_ROWS:
        result["level"] = "insufficient"
        result["note"] = f"not enough rows to judge ({min(n_ref, n_cur)} < {MIN_ROWS})"
        return result
    p_value = homogeneity_p_value(reference, current)
    level = drift_level(value, floor)
    result["p_value"] = float(f"{p_value:.3g}")
    result["level"] = level if p_value < SIGNIFICANCE else "stable"
    return result
