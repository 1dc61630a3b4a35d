"""The data profile on real CSV files read by DuckDB, checked against NumPy and pandas."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from mlwizard.core.data import profile as profile_module
from mlwizard.core.data import profile_relations
from mlwizard.core.data.profile import QUANTILES, profile_dataset

ROWS = 3000
ODD = '<b>"x"</b>'
UNICODE = "naïve; DROP TABLE t --"


def make_frame(rows: int = ROWS, seed: int = 0) -> pd.DataFrame:
    """Numerics with missing values, NaN and infinity; categoricals with nulls; odd names;
    a class target driven by `x` and `colour`, and a numeric target driven by `noise_free`."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    colour = rng.choice(["red", "green", "blue"], size=rows, p=[0.5, 0.3, 0.2])
    frame = pd.DataFrame(
        {
            "x": x,
            "y": 0.6 * x + 0.8 * rng.normal(size=rows),  # r(x, y) = 0.6 by construction
            "noise": rng.uniform(0, 10, size=rows),
            "count": rng.integers(0, 8, size=rows),
            "ratio": rng.lognormal(size=rows),
            "colour": colour,
            ODD: rng.choice(["a", "b", "c"], size=rows),
            UNICODE: rng.choice(["é", "ß", "東京"], size=rows),
            "constant": 7,
            "empty": np.nan,
        }
    )
    frame.loc[rng.random(rows) < 0.1, "x"] = np.nan
    frame.loc[rng.random(rows) < 0.08, "colour"] = None
    frame.loc[rng.random(rows) < 0.05, "count"] = np.nan
    frame["ratio"] = frame["ratio"].astype(object)
    frame.loc[rng.random(rows) < 0.03, "ratio"] = "nan"
    frame.loc[rng.random(rows) < 0.02, "ratio"] = "inf"
    frame["count"] = frame["count"].astype("Int64")
    signal = np.nan_to_num(x) * 1.5 + np.where(colour == "red", 1.5, 0.0) + rng.normal(size=rows)
    frame["label"] = np.where(signal > 0.5, "pos", "neg")
    frame["amount"] = 4.0 * frame["noise"] + rng.normal(size=rows)
    return frame


@pytest.fixture(scope="module")
def csv_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("profile") / "data.csv"
    make_frame().to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def frame(csv_path: Path) -> pd.DataFrame:
    return pd.read_csv(csv_path)  # what the file holds, as pandas reads it back


def profile_of(path: Path, **options) -> dict:
    con = duckdb.connect(":memory:")
    try:
        return profile_dataset(con, con.read_csv(str(path)), **options)
    finally:
        con.close()


@pytest.fixture(scope="module")
def profile(csv_path: Path) -> dict:
    return profile_of(csv_path, target="label", task="binary", seed=7)


def finite(series: pd.Series) -> np.ndarray:
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
    return values[np.isfinite(values)]


def test_counts_nulls_and_moments_match_pandas(profile: dict, frame: pd.DataFrame) -> None:
    assert profile["rows"] == len(frame) == ROWS
    columns = profile["columns"]
    assert list(columns) == list(frame.columns)
    for name in ("x", "y", "noise", "count", "amount"):
        stats, values = columns[name], finite(frame[name])
        assert stats["numeric"] and stats["kind"] == "numeric"
        assert stats["nulls"] == frame[name].isna().sum()
        assert stats["null_fraction"] == pytest.approx(frame[name].isna().mean(), abs=1e-6)
        assert stats["min"] == values.min() and stats["max"] == values.max()
        assert stats["mean"] == pytest.approx(values.mean(), rel=1e-12)
        assert stats["std"] == pytest.approx(values.std(ddof=1), rel=1e-9)
        assert stats["distinct"] == frame[name].nunique()
        assert stats["distinct_approximate"] is False  # the sample held every row
    for name in ("colour", ODD, UNICODE, "label"):
        assert columns[name]["nulls"] == frame[name].isna().sum()
        assert columns[name]["distinct"] == frame[name].nunique()
        assert not columns[name]["numeric"]


def test_nan_and_infinity_are_counted_apart_and_kept_out_of_the_moments(
    profile: dict, csv_path: Path
) -> None:
    raw = pd.read_csv(csv_path, dtype={"ratio": str}, keep_default_na=False)["ratio"]
    stats = profile["columns"]["ratio"]
    assert stats["type"] == "DOUBLE"
    assert stats["non_finite"] == raw.isin(["nan", "inf"]).sum() > 0
    values = raw[~raw.isin(["nan", "inf"])].astype(float).to_numpy()
    assert stats["max"] == values.max() and stats["mean"] == pytest.approx(values.mean())
    assert sum(stats["histogram"]["counts"]) == len(values)


def test_quantiles_are_exact_when_the_sample_holds_every_row(
    profile: dict, frame: pd.DataFrame
) -> None:
    for name in ("x", "noise", "amount"):
        expected = np.quantile(finite(frame[name]), QUANTILES)
        got = [profile["columns"][name]["quantiles"][str(q)] for q in QUANTILES]
        assert got == pytest.approx(expected, rel=1e-12)


def test_histograms_sum_to_the_non_null_counts_and_match_numpy(
    profile: dict, frame: pd.DataFrame
) -> None:
    for name in ("x", "y", "noise", "amount"):
        histogram, values = profile["columns"][name]["histogram"], finite(frame[name])
        edges, counts = np.array(histogram["edges"]), histogram["counts"]
        assert len(counts) == 20 and len(edges) == 21 and not histogram["per_integer"]
        assert not histogram["estimated"]
        assert sum(counts) == len(values) == ROWS - profile["columns"][name]["nulls"]
        assert edges[0] == values.min() and edges[-1] == values.max()
        widths = np.diff(edges)
        assert widths == pytest.approx(np.full(20, widths[0]), rel=1e-9)  # equal width
        assert counts == np.histogram(values, bins=20)[0].tolist()


def test_small_integer_columns_get_one_bin_per_value(profile: dict, frame: pd.DataFrame) -> None:
    histogram = profile["columns"]["count"]["histogram"]
    assert histogram["per_integer"]
    assert histogram["edges"] == [0.0, 0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.0]
    assert histogram["counts"] == frame["count"].value_counts().sort_index().tolist()


def test_top_values_come_with_their_counts(profile: dict, frame: pd.DataFrame) -> None:
    for name in ("colour", ODD, UNICODE):
        counts = frame[name].value_counts()
        expected = sorted(counts.items(), key=lambda vc: (-vc[1], vc[0]))
        got = profile["columns"][name]["top_counts"]
        assert [(t["value"], t["count"]) for t in got] == expected
        assert got[0]["fraction"] == pytest.approx(expected[0][1] / ROWS, abs=1e-6)
        assert profile["columns"][name]["top"] == [v for v, _ in expected[:5]]


def test_degenerate_columns(profile: dict) -> None:
    constant, empty = profile["columns"]["constant"], profile["columns"]["empty"]
    assert constant["distinct"] == 1 and constant["std"] == 0.0
    assert constant["histogram"] == {
        "edges": [7.0, 7.0],
        "counts": [ROWS],
        "per_integer": True,
        "estimated": False,
    }
    # DuckDB reads a column with no value at all as VARCHAR.
    assert empty["nulls"] == ROWS and empty["distinct"] == 0 and empty["kind"] == "categorical"
    assert empty["top"] == [] and empty["top_counts"] == []


def test_correlation_of_constructed_columns(profile: dict, frame: pd.DataFrame) -> None:
    correlations = profile["correlations"]
    names = correlations["columns"]
    assert {"x", "y", "noise", "count", "ratio", "amount"} <= set(names)
    matrix = correlations["matrix"]
    r = matrix[names.index("x")][names.index("y")]
    both = frame[["x", "y"]].dropna()
    assert r == pytest.approx(np.corrcoef(both["x"], both["y"])[0, 1], abs=1e-4)
    assert r == pytest.approx(0.6, abs=0.05)
    assert abs(matrix[names.index("x")][names.index("noise")]) < 0.1
    assert matrix[names.index("y")][names.index("x")] == r
    assert matrix[names.index("x")][names.index("x")] == 1.0
    assert matrix[names.index("constant")][names.index("x")] is None  # no variance
    top = correlations["top_pairs"][0]
    assert {top["a"], top["b"]} == {"x", "y"} or {top["a"], top["b"]} == {"noise", "amount"}


def test_target_association_ranks_informative_features_above_noise(profile: dict) -> None:
    target = profile["target"]
    assert target["name"] == "label" and target["task"] == "binary"
    assert target["classes"] == ["neg", "pos"]
    scores = {a["column"]: a for a in target["association"]}
    assert "label" not in scores
    assert scores["x"]["measure"] == "correlation_ratio"
    assert scores["colour"]["measure"] == "cramers_v"
    for noise in ("noise", ODD, UNICODE, "count"):
        assert scores["x"]["score"] > 0.3 > scores[noise]["score"]
        assert scores["colour"]["score"] > 0.1 > scores[noise]["score"]
    ranked = [a["column"] for a in target["association"]]
    assert ranked[0] == "x" and set(ranked[:3]) == {"x", "y", "colour"}  # y is x plus noise
    assert scores["empty"]["score"] is None and ranked[-1] in {"empty", "constant"}


def test_regression_target_association(csv_path: Path) -> None:
    target = profile_of(csv_path, target="amount", seed=0)["target"]  # task inferred
    assert target["task"] == "regression"
    scores = {a["column"]: a for a in target["association"]}
    assert scores["noise"]["measure"] == "pearson" and scores["noise"]["value"] > 0.95
    assert scores["label"]["measure"] == "correlation_ratio"
    assert target["association"][0]["column"] == "noise"
    assert scores["x"]["score"] < 0.1 and scores[ODD]["score"] < 0.1


def test_missingness_patterns_match_pandas(profile: dict, frame: pd.DataFrame) -> None:
    missing = profile["missingness"]
    # NaN counts as missing here (as in pandas), infinity does not; most missing first.
    expected_columns = ["empty", "x", "colour", "count", "ratio"]
    assert frame[expected_columns].isna().sum().is_monotonic_decreasing
    assert missing["columns"] == expected_columns
    flags = frame[expected_columns].isna()
    expected = flags.value_counts()
    got = {tuple(p["missing"]): p["count"] for p in missing["patterns"]}
    for pattern, count in list(expected.items())[:5]:
        names = tuple(n for n, flag in zip(expected_columns, pattern, strict=True) if flag)
        assert got[names] == count
    assert missing["distinct_patterns"] == len(expected)


def test_a_sample_smaller_than_the_table_is_recorded_and_estimates_are_close(
    csv_path: Path, frame: pd.DataFrame
) -> None:
    profile = profile_of(csv_path, target="label", seed=3, sample_rows=1000)
    assert profile["sample"] == {
        "rows": 1000,
        "of_rows": ROWS,
        "fraction": pytest.approx(1000 / ROWS, abs=1e-6),
        "complete": False,
        "method": "bottom-k by hash(seed, row)",
        "seed": 3,
        "statistics": [
            "quantiles",
            "histograms",
            "top values",
            "correlations",
            "target association",
            "missingness",
        ],
    }
    x = profile["columns"]["x"]
    # From every row: exact, whatever the sample.
    assert x["nulls"] == frame["x"].isna().sum()
    assert x["mean"] == pytest.approx(frame["x"].mean(), rel=1e-12)
    assert x["min"] == frame["x"].min() and x["max"] == frame["x"].max()
    assert x["distinct_approximate"] is True
    assert x["distinct"] == pytest.approx(frame["x"].nunique(), rel=0.05)
    # From the sample: close, and counts scaled to every row.
    for q in QUANTILES:
        assert x["quantiles"][str(q)] == pytest.approx(frame["x"].quantile(q), abs=0.15)
    histogram = x["histogram"]
    assert histogram["estimated"] and sum(histogram["counts"]) == frame["x"].notna().sum()
    exact = np.histogram(frame["x"].dropna(), bins=histogram["edges"])[0]
    distance = 0.5 * np.abs(np.array(histogram["counts"]) - exact).sum() / exact.sum()
    assert distance < 0.1  # total variation between the estimated and the exact shape
    top = {t["value"]: t["count"] for t in profile["columns"]["colour"]["top_counts"]}
    for value, count in frame["colour"].value_counts().items():
        assert top[value] == pytest.approx(count, rel=0.15)
    for pattern in profile["missingness"]["patterns"]:
        assert pattern["count"] == round(pattern["fraction"] * 1000) * ROWS // 1000  # scaled


def test_one_scan_and_the_exact_redraw_keep_the_same_sample(
    csv_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small table is sampled again with ORDER BY hash LIMIT n; a large one in the single scan
    (forced here with a low threshold): both keep the rows with the smallest hashes."""
    redrawn = profile_of(csv_path, target="label", seed=5, sample_rows=500)
    monkeypatch.setattr(profile_module, "PREFILTER_ROWS", 1000)  # half the rows pass
    calls: list[int] = []
    original = profile_module._bottom_k
    monkeypatch.setattr(profile_module, "_bottom_k", lambda *a: calls.append(1) or original(*a))
    single = profile_of(csv_path, target="label", seed=5, sample_rows=500)
    assert calls == []  # no second read
    assert single == redrawn


def test_the_same_seed_gives_the_same_profile(csv_path: Path) -> None:
    first = profile_of(csv_path, target="label", seed=11, sample_rows=500)
    assert profile_of(csv_path, target="label", seed=11, sample_rows=500) == first
    other = profile_of(csv_path, target="label", seed=12, sample_rows=500)
    assert other["columns"]["x"]["quantiles"] != first["columns"]["x"]["quantiles"]


def test_the_temporary_view_is_dropped(csv_path: Path) -> None:
    con = duckdb.connect(":memory:")
    full = profile_dataset(con, con.read_csv(str(csv_path)))
    assert full["target"] is None
    views = con.sql("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
    assert views == []


def test_empty_and_tiny_relations(tmp_path: Path) -> None:
    con = duckdb.connect(":memory:")
    empty = con.sql("SELECT 1.5::DOUBLE AS a, 'x' AS b, 1 AS c LIMIT 0")
    profile = profile_dataset(con, empty, target="c", seed=0)
    assert profile["rows"] == 0 and profile["sample"]["rows"] == 0
    assert profile["columns"]["a"]["mean"] is None and profile["columns"]["b"]["top"] == []
    one = con.sql("SELECT 1.5::DOUBLE AS a, 'x' AS b, 1 AS c")
    profile = profile_dataset(con, one, target="b", seed=0)
    assert profile["columns"]["a"]["mean"] == 1.5 and profile["columns"]["a"]["std"] is None
    assert profile["columns"]["b"]["top_counts"] == [{"value": "x", "count": 1, "fraction": 1.0}]


def test_an_unknown_target_is_refused(csv_path: Path) -> None:
    from mlwizard.core.kernel.errors import BadInputError

    with pytest.raises(BadInputError, match="nope"):
        profile_of(csv_path, target="nope")


def test_association_measures_agree_with_r_on_binary_variables() -> None:
    """The documented reason the scores compare across kinds: for a binary target, η of a numeric
    feature and Cramér's V of a binary feature both come down to |Pearson's r|."""
    rng = np.random.default_rng(3)
    n = 20_000
    target = (rng.random(n) < 0.4).astype(np.int64)
    numeric = target * 0.8 + rng.normal(size=n)
    binary = np.where(rng.random(n) < 0.7, target, 1 - target)
    r_numeric = abs(np.corrcoef(numeric, target)[0, 1])
    r_binary = abs(np.corrcoef(binary, target)[0, 1])
    ratio = profile_relations._correlation_ratio(target, numeric)
    assert ratio == pytest.approx(r_numeric, abs=2e-3)
    assert profile_relations._cramers_v(binary, target) == pytest.approx(r_binary, abs=2e-3)
    assert profile_relations._pearson(numeric, target.astype(float)) == pytest.approx(
        np.corrcoef(numeric, target)[0, 1], abs=1e-9
    )
    unrelated = rng.integers(0, 40, size=n)  # many levels, no link: the corrections keep it near 0
    assert profile_relations._cramers_v(unrelated, target) < 0.02
    assert profile_relations._correlation_ratio(unrelated, numeric) < 0.02


def test_a_known_row_count_lets_the_one_scan_keep_the_same_sample(
    csv_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the row count (the data phase's snapshot gives it), the hash threshold lets through
    just over the sample's rows: one scan, no redraw, and the same sample, the bottom-k by
    hash(seed, row); a wrong count that lets too few through draws again, exactly."""
    from mlwizard.core.data.profile import scan_profile, summarise

    con = duckdb.connect(":memory:")
    relation = con.read_csv(str(csv_path))
    plain = scan_profile(con, relation, "label", seed=5, sample_rows=500)  # redrawn: small table
    calls: list[int] = []
    original = profile_module._bottom_k
    monkeypatch.setattr(profile_module, "_bottom_k", lambda *a: calls.append(1) or original(*a))
    hinted = scan_profile(con, relation, "label", seed=5, sample_rows=500, rows_hint=ROWS)
    assert calls == [] and hinted.sample.to_pandas().equals(plain.sample.to_pandas())
    assert summarise(hinted, "label", "binary") == profile_of(
        csv_path, target="label", task="binary", seed=5, sample_rows=500
    )
    calls.clear()
    wrong = scan_profile(con, relation, "label", seed=5, sample_rows=500, rows_hint=10 * ROWS)
    assert calls == [1] and wrong.sample.to_pandas().equals(plain.sample.to_pandas())
