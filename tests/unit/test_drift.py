"""Reference bins and PSI, counted by DuckDB on real Parquet files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlwizard.core.contract.schema import Feature, Schema
from mlwizard.core.ingest import sources
from mlwizard.core.operations.drift import (
    DECILES,
    bin_counts,
    drift_level,
    psi,
    psi_noise_floor,
    reference_bins,
)


@pytest.fixture
def schema() -> Schema:
    features = [
        Feature("amount (€)", "numeric", "f000"),
        Feature('say "hi"', "categorical", "f001"),
    ]
    return Schema(target="y", task="binary", features=features, classes=[0, 1])


def write(tmp_path: Path, name: str, amount: np.ndarray, words: list[str | None]) -> Path:
    path = tmp_path / f"{name}.parquet"
    pd.DataFrame({"amount (€)": amount, 'say "hi"': words}).to_parquet(path)
    return path


def test_same_distribution_is_stable_and_shift_is_major(tmp_path: Path, schema: Schema) -> None:
    rng = np.random.default_rng(1)
    n = 5000
    words = list(rng.choice(["a", "b", "c"], size=n))
    reference = write(tmp_path, "ref", rng.normal(size=n), words)
    same = write(tmp_path, "same", rng.normal(size=n), list(rng.choice(["a", "b", "c"], size=n)))
    shifted_words = [None if i % 4 == 0 else "z" for i in range(n)]  # unseen values and nulls
    shifted = write(tmp_path, "shifted", rng.normal(loc=1.5, size=n), shifted_words)

    con = sources.connect()
    bins = reference_bins(con, reference, schema)
    assert len(bins["amount (€)"]["edges"]) == 9
    assert sorted(bins['say "hi"']["values"]) == ["a", "b", "c"]
    ref_counts = bin_counts(con, reference, bins)
    assert sum(ref_counts["amount (€)"].values()) == n
    assert ref_counts["amount (€)"]["missing"] == 0

    for name, path, level in (("same", same, "stable"), ("shifted", shifted, "major")):
        counts = bin_counts(con, path, bins)
        for feature in ("amount (€)", 'say "hi"'):
            value = psi(ref_counts[feature], counts[feature])
            assert drift_level(value) == level, (name, feature, value)
    shifted_counts = bin_counts(con, shifted, bins)['say "hi"']
    assert shifted_counts["other"] == 3750 and shifted_counts["missing"] == 1250


def test_psi_is_zero_for_identical_counts() -> None:
    counts = {"missing": 3, "a": 50, "b": 47}
    assert psi(counts, counts) == pytest.approx(0.0)


def test_small_samples_are_judged_above_their_noise_floor() -> None:
    rng = np.random.default_rng(3)
    edges = list(np.quantile(rng.normal(size=100_000), DECILES))

    def counts(sample: np.ndarray) -> dict[str, int]:
        index = np.searchsorted(edges, sample, side="left")
        return {str(i): int(np.sum(index == i)) for i in range(len(edges) + 1)}

    reference = counts(rng.normal(size=2000))
    small = [psi(reference, counts(rng.normal(size=60))) for _ in range(200)]
    floor = psi_noise_floor(reference, counts(rng.normal(size=60)))
    assert 0.5 * np.mean(small) < floor < 2 * np.mean(small)  # the floor predicts sampling noise
    naive = sum(drift_level(v) == "major" for v in small)
    judged = sum(drift_level(v, floor) == "major" for v in small)
    assert naive > 20 and judged <= 4  # no drift: the floor stops false "major" alarms
    shifted = psi(reference, counts(rng.normal(loc=1.5, size=60)))
    assert drift_level(shifted, floor) == "major"
