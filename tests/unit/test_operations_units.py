"""The operations decisions on real penguins rows: what is monitored, when a sample is too small,
and the champion/challenger gate."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlwizard.core.contract.schema import Feature, Schema, input_names
from mlwizard.core.ingest import sources
from mlwizard.core.operations.advice import retraining_advice
from mlwizard.core.operations.checks import feature_drift
from mlwizard.core.operations.drift import chi2_sf, judge
from mlwizard.core.operations.evaluation import binary_auc
from mlwizard.core.operations.gate import compare
from mlwizard.core.operations.reference import build_reference

KINDS = {
    "Individual ID": "categorical",
    "species": "categorical",
    "island": "categorical",
    "bill_length_mm": "numeric",
    "body_mass_g": "numeric",
}


@pytest.fixture(scope="module")
def penguins() -> pd.DataFrame:
    frame = pd.read_csv(Path(str(resources.files("mlwizard.datasets") / "penguins.csv")))
    # The raw Palmer table's key: nest and egg, e.g. N12A2, repeated across a few rows.
    rng = np.random.default_rng(0)
    frame["Individual ID"] = [f"N{rng.integers(1, 100)}A{rng.integers(1, 3)}" for _ in frame.index]
    return frame


def schema() -> Schema:
    names = list(KINDS)
    features = [
        Feature(n, KINDS[n], i)  # type: ignore[arg-type]
        for n, i in zip(names, input_names(names), strict=True)
    ]
    return Schema("sex", "binary", features, ["female", "male"], excluded={"year": "constant"})


def parquet(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_parquet(path, index=False)
    return path


def test_identifiers_and_excluded_columns_are_not_monitored(penguins, tmp_path: Path) -> None:
    train = parquet(penguins.iloc[:250], tmp_path / "train.parquet")
    test = parquet(penguins.iloc[250:], tmp_path / "test.parquet")  # ids from other nests
    con = sources.connect()
    reference = build_reference(con, train, schema(), {})
    assert "identifier-like" in reference["not_monitored"]["Individual ID"]
    assert reference["not_monitored"]["year"] == "excluded: constant"
    assert "Individual ID" not in reference["features"]
    features = feature_drift(con, "read_parquet(?)", [str(test)], reference)
    advice = retraining_advice(
        {"features": features, "not_monitored": reference["not_monitored"]}, []
    )
    assert "Individual ID" not in " ".join(advice["reasons"][:1])
    assert not any("Individual ID" in r and "drift" in r for r in advice["reasons"])


def test_tiny_samples_are_not_enough_to_judge(penguins, tmp_path: Path) -> None:
    """mtcars-sized: a 6-row test split gets no alarm, however odd its rows look."""
    train = parquet(penguins.iloc[:26], tmp_path / "train.parquet")
    six = penguins.iloc[26:32].copy()
    six["body_mass_g"] += 2000
    test = parquet(six, tmp_path / "test.parquet")
    con = sources.connect()
    reference = build_reference(con, train, schema(), {})
    features = feature_drift(con, "read_parquet(?)", [str(test)], reference)
    assert {f["level"] for f in features.values()} == {"insufficient"}
    assert features["body_mass_g"]["reasons"] == ["not enough rows to judge (6 < 30)"]
    advice = retraining_advice({"features": features}, [])
    assert advice["retrain"] is False
    assert any("not enough rows to judge" in r for r in advice["reasons"])


def test_the_chi_square_tail_is_scipys() -> None:
    from scipy.stats import chi2

    for x, df in ((0.5, 1), (10.0, 3), (25.0, 9), (40.0, 20), (300.0, 30)):
        assert chi2_sf(x, df) == pytest.approx(chi2.sf(x, df), rel=1e-9, abs=1e-300)


def test_large_samples_with_a_tiny_shift_stay_stable() -> None:
    """Significant (huge n) but negligible (PSI far below 0.1): not an alarm."""
    rng = np.random.default_rng(2)
    edges = np.quantile(rng.normal(size=100_000), np.linspace(0.1, 0.9, 9))

    def counts(sample: np.ndarray) -> dict[str, int]:
        index = np.searchsorted(edges, sample)
        return {str(i): int(np.sum(index == i)) for i in range(10)}

    verdict = judge(counts(rng.normal(size=500_000)), counts(rng.normal(0.03, size=500_000)))
    assert verdict["p_value"] < 0.01 and verdict["level"] == "stable"
    shifted = judge(counts(rng.normal(size=500_000)), counts(rng.normal(1.0, size=500_000)))
    assert shifted["level"] == "major"


def test_the_fast_auc_is_scikit_learns() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 500)
    score = np.round(rng.random(500) + 0.3 * y, 2)  # rounded: many ties
    assert binary_auc(y, score) == pytest.approx(roc_auc_score(y, score), abs=1e-12)
    assert binary_auc(np.ones(5, dtype=int), score[:5]) is None


def test_the_gate_needs_a_significant_advantage() -> None:
    rng = np.random.default_rng(4)
    s = Schema("y", "binary", [], [0, 1])
    y = rng.integers(0, 2, 300)
    noise = rng.normal(0, 1, 300)
    good = 1 / (1 + np.exp(-(2 * (y - 0.5) * 2 + noise)))
    worse = 1 / (1 + np.exp(-(2 * (y - 0.5) * 0.5 + noise)))
    as_proba = lambda p: np.column_stack([1 - p, p])  # noqa: E731
    better = compare(s, "roc_auc", "maximize", y, as_proba(worse), as_proba(good))
    assert better["promote"] is True and better["interval_low"] > 0
    same = compare(s, "roc_auc", "maximize", y, as_proba(good), as_proba(good))
    assert same["promote"] is False and same["reason"].startswith("kept the champion")
    backwards = compare(s, "roc_auc", "maximize", y, as_proba(good), as_proba(worse))
    assert backwards["promote"] is False and "worse" in backwards["reason"]
