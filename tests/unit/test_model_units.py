"""The model phase's parts: folds, search, thresholds, metrics, exports, budget, run cache."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest

from helpers.model import make_schema, table
from mlwizard.core.contract.features import feature_frame, target_vector
from mlwizard.core.export.onnx_export import export_pipeline
from mlwizard.core.export.parity import check_parity
from mlwizard.core.model import (
    analysis,
    budget,
    candidates,
    cv,
    ensemble,
    fitting,
    metrics,
    oof,
    runcache,
    threshold,
    tuning,
)
from mlwizard.core.model.jobs import RunResult

# -- folds matching the split ----------------------------------------------------------------------


def test_group_folds_never_share_a_group() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"store": rng.choice([*"abcdefgh", None], 300)})
    y = rng.integers(0, 2, 300)
    folds = cv.plan(frame, y, task="binary", strategy="group", column="store", seed=1)
    assert folds.kind == "GroupKFold" and len(folds.folds) == 5
    groups = frame["store"].fillna("missing-row-").to_numpy()
    for fit_rows, score_rows in folds.folds:
        assert not set(frame["store"].iloc[fit_rows].dropna()) & set(
            frame["store"].iloc[score_rows].dropna()
        )
    assert sorted(np.concatenate([s for _, s in folds.folds]).tolist()) == list(range(300))
    assert len(groups) == 300


def test_time_folds_validate_on_later_rows() -> None:
    rng = np.random.default_rng(0)
    times = pd.Series(pd.date_range("2024-01-01", periods=200, freq="h")).sample(
        frac=1.0, random_state=3
    )
    frame = pd.DataFrame({"at": times.to_numpy()})
    folds = cv.plan(
        frame, rng.normal(size=200), task="regression", strategy="time", column="at", seed=1
    )
    assert folds.kind == "TimeSeriesSplit" and len(folds.folds) == 5
    for fit_rows, score_rows in folds.folds:
        assert frame["at"].iloc[fit_rows].max() < frame["at"].iloc[score_rows].min()


def test_random_split_folds_are_stratified_for_classes_and_plain_for_regression() -> None:
    y = np.array([0] * 270 + [1] * 30)
    folds = cv.plan(
        pd.DataFrame(index=range(300)), y, task="binary", strategy="stratified", column="", seed=1
    )
    assert folds.kind == "StratifiedKFold"
    assert all(y[s].sum() == 6 for _, s in folds.folds)
    folds = cv.plan(
        pd.DataFrame(index=range(300)),
        y * 1.0,
        task="regression",
        strategy="random",
        column="",
        seed=1,
    )
    assert folds.kind == "KFold"
    assert cv.n_folds(10_000) == 3


# -- the search ------------------------------------------------------------------------------------


def _search(
    deadline: float, configs: list[dict], metric: str = "roc_auc", seed: int = 3
) -> tuning.SearchResult:
    schema = make_schema("binary")
    frame = table("binary", 300, np.random.default_rng(1), unseen=False)
    x, y = feature_frame(frame, schema), target_vector(frame, schema)
    folds = cv.plan(frame, y, task="binary", strategy="stratified", column="", seed=seed)
    return tuning.search(
        "linear",
        configs,
        folds,
        x,
        y,
        schema_task="binary",
        n_classes=2,
        metric=metric,
        direction="minimize" if metric == "log_loss" else "maximize",
        seed=seed,
        build=lambda params: candidates.build("linear", schema, seed, params),
        deadline=deadline,
    )


def test_search_is_seeded_prunes_and_stops_on_time() -> None:
    configs = candidates.sample_params("linear", "binary", seed=3, trials=3)
    assert configs[0] == {} and len(configs) == 3
    assert configs == candidates.sample_params("linear", "binary", seed=3, trials=3)
    assert configs != candidates.sample_params("linear", "binary", seed=4, trials=3)

    first = _search(time.monotonic() + 600, configs)
    again = _search(time.monotonic() + 600, configs)
    assert first.complete and not first.stopped
    assert [t.to_dict() for t in first.trials] == [t.to_dict() for t in again.trials]
    assert first.best is not None and first.best.mean == max(
        t.mean for t in first.trials if not t.pruned and t.mean is not None
    )
    # A configuration far behind the best on its first folds is dropped before the others.
    pruned = _search(time.monotonic() + 600, [{}, {"C": 1e-6}], metric="log_loss")
    assert pruned.complete and pruned.trials[1].pruned and len(pruned.trials[1].scores) == 1
    assert pruned.best is pruned.trials[0]

    cut = _search(time.monotonic() - 1, configs)  # out of time from the start
    assert not cut.complete and "time ran out" in cut.stopped
    assert cut.best is not None and len(cut.best.scores) == 1  # the first fold still counts
    assert cut.best_fold_model is not None


def test_the_best_configurations_out_of_fold_predictions_are_kept_and_saved(
    tmp_path: Path,
) -> None:
    """Each fold's held-out rows get the prediction that scored that fold, saved by position."""
    schema = make_schema("binary")
    frame = table("binary", 300, np.random.default_rng(1), unseen=False)
    y = target_vector(frame, schema)
    folds = cv.plan(frame, y, task="binary", strategy="stratified", column="", seed=3)
    found = _search(time.monotonic() + 600, [{}, {"C": 0.01}, {"C": 10.0}])
    assert found.best is not None and len(found.best_predictions) == len(folds.folds)
    for (_, held_out), prediction, score in zip(
        folds.folds, found.best_predictions, found.best.scores, strict=True
    ):
        assert prediction.shape == (len(held_out), 2)
        assert metrics.evaluate("binary", y[held_out], prediction, 2)["roc_auc"] == score

    saved = oof.load(oof.save(tmp_path / "run.npz", folds.folds, found.best_predictions[:2], y))
    assert saved is not None and np.array_equal(saved.y, y)
    first_two = np.sort(np.concatenate([held for _, held in folds.folds[:2]]))
    assert np.array_equal(saved.rows(2), first_two) and np.array_equal(saved.rows(5), first_two)
    assert np.isnan(saved.prediction[saved.fold == oof.UNSCORED]).all()
    assert np.allclose(saved.prediction[folds.folds[1][1]], found.best_predictions[1])
    assert oof.load(None) is None and oof.load(tmp_path / "missing.npz") is None


def test_catboost_configurations_with_a_default_class_weight_can_be_cloned() -> None:
    """A balanced variant drawn as None (CatBoost's default) once failed every fold's clone."""
    from sklearn.base import clone

    schema = make_schema("binary")
    pipeline = candidates.build("catboost", schema, 0, {"auto_class_weights": None, "depth": 4})
    assert clone(pipeline)[-1].get_params()["depth"] == 4


def test_catboost_stops_at_the_deadline_between_rounds() -> None:
    schema = make_schema("binary")
    frame = table("binary", 400, np.random.default_rng(1), unseen=False)
    x, y = feature_frame(frame, schema), target_vector(frame, schema)
    pipeline = candidates.build("catboost", schema, 1, {"learning_rate": 0.01})
    family = candidates.FAMILIES["catboost"]
    info = fitting.fit(pipeline, family, x, y, seed=1, deadline=time.monotonic() + 0.2, rounds=5000)
    assert info.truncated and info.rounds is not None and info.rounds < 5000
    assert pipeline[-1].tree_count_ == info.rounds  # the model kept is the one stopped early


# -- exports of every family, on every task --------------------------------------------------------


@pytest.mark.parametrize("task", ["multiclass", "regression"])
@pytest.mark.parametrize(
    "name", ["linear", "hist_gradient_boosting", "random_forest", "catboost", "extra_trees"]
)
def test_each_family_exports_with_parity(task: str, name: str) -> None:
    """Binary exports are checked by the phase tests; here the other tasks, default settings
    (small forests to keep it quick), on test rows with NaN, nulls and unseen categories."""
    rng = np.random.default_rng(5)
    schema = make_schema(task)
    train, test = table(task, 400, rng, unseen=False), table(task, 200, rng, unseen=True)
    x, y = feature_frame(train, schema), target_vector(train, schema)
    params = {"n_estimators": 15} if name in candidates.FORESTS else {}
    pipeline = candidates.build(name, schema, 0, params)
    fitting.fit(pipeline, candidates.FAMILIES[name], x, y, seed=0, deadline=time.monotonic() + 60)
    x_test = feature_frame(test, schema)
    parity = check_parity(pipeline, export_pipeline(pipeline, schema, x_test), x_test, schema)
    assert parity.ok, parity
    if task == "multiclass":
        assert parity.label_agreement is not None and parity.label_agreement >= 0.99


def _cv_run(name: str, validation: float, folds: list[float], export_s: float = 1.0) -> RunResult:
    cv_record = {"kind": "KFold", "folds": 5, "scores": folds} if folds else None
    return RunResult(
        name, "done", score=validation, cv=cv_record, deployable=True, export_s=export_s, key=name
    )


def test_runs_are_ranked_on_the_folds_they_all_scored() -> None:
    """A search cut short after one easy fold must not beat runs averaged over every fold."""
    from mlwizard.core.model import choice

    cut_short = _cv_run("extra_trees", 0.907, [0.902])
    full = _cv_run("catboost", 0.918, [0.906, 0.860, 0.750, 0.806, 0.903])
    alone = _cv_run("linear", 0.80, [])  # no folds: ranked by validation, not counted
    assert choice.rank_score(cut_short) > choice.rank_score(full)  # on their own folds
    assert choice.common_folds([cut_short, full, alone]) == 1
    assert choice.best([cut_short, full, alone], "maximize") is full
    assert choice.rank_score(full, 1) == pytest.approx((0.906 + 0.918) / 2)
    assert "1 CV fold(s) (of its 5" in choice.how_chosen(full, "r2", 1)
    assert choice.common_folds([alone]) is None
    assert (
        choice.best([full, _cv_run("hgb", 0.91, [0.9, 0.9, 0.9, 0.9, 0.9])], "maximize").candidate
        == "hgb"
    )


def test_ensemble_members_that_would_not_export_in_time_are_passed_over() -> None:
    slow = _cv_run("extra_trees", 0.93, [0.93, 0.93], export_s=8.0)
    quick = [_cv_run("catboost", 0.92, [0.92, 0.92], 0.5), _cv_run("hgb", 0.91, [0.91, 0.9], 1.0)]
    everyone = [slow, *quick]
    assert [r.candidate for r in ensemble.members(everyone, "maximize")] == [
        "extra_trees",
        "catboost",
        "hgb",
    ]
    timed = ensemble.members(everyone, "maximize", seconds=ensemble.expected_seconds(quick))
    assert [r.candidate for r in timed] == ["catboost", "hgb"]
    assert ensemble.members(everyone, "maximize", seconds=0.0) == []


def _fitted(name: str, schema: Any, x: pd.DataFrame, y: np.ndarray) -> Any:
    """A small fitted pipeline of family `name` (forests of 30 trees)."""
    params = {"n_estimators": 30} if name in candidates.FORESTS else {}
    pipeline = candidates.build(name, schema, 0, params)
    fitting.fit(pipeline, candidates.FAMILIES[name], x, y, seed=0, deadline=time.monotonic() + 60)
    return pipeline


def _saved(pipeline: Any, name: str, schema: Any, sample: pd.DataFrame, out: Path) -> dict:
    """The run's files as a sweep leaves them: the fitted pipeline and its ONNX graph."""
    joblib.dump(pipeline, out / f"{name}.joblib")
    (out / f"{name}.onnx").write_bytes(export_pipeline(pipeline, schema, sample))
    return {"joblib": str(out / f"{name}.joblib"), "onnx": str(out / f"{name}.onnx")}


def test_an_ensemble_that_beats_its_members_is_one_onnx_graph_with_parity(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    schema = make_schema("binary")
    train, valid = table("binary", 500, rng, unseen=False), table("binary", 300, rng, unseen=True)
    x, y = feature_frame(train, schema), target_vector(train, schema)
    x_valid, y_valid = feature_frame(valid, schema), target_vector(valid, schema)
    runs = []
    for name in ("hist_gradient_boosting", "catboost", "random_forest"):
        pipeline = _fitted(name, schema, x, y)
        score = metrics.evaluate("binary", y_valid, fitting.predict(pipeline, x_valid, 2), 2)
        files = _saved(pipeline, name, schema, x_valid, tmp_path)
        runs.append(RunResult(name, "done", score=score["roc_auc"], key=name, **files))
    chosen = ensemble.members(runs, "maximize")
    best = chosen[0]
    combined, note = ensemble.attempt(
        chosen,
        best,
        schema,
        x_valid,
        y_valid,
        metric="roc_auc",
        direction="maximize",
        out_dir=tmp_path,
    )
    assert combined is not None, note
    assert "kept" in note and combined.validation["roc_auc"] > (best.score or 0)
    assert combined.params["members"] == [r.candidate for r in chosen]
    assert combined.parity and combined.parity["ok"] and combined.parity["max_abs_diff"] <= 1e-4
    x_test = feature_frame(table("binary", 200, rng, unseen=True), schema)
    model = joblib.load(combined.joblib_path)
    parity = check_parity(model, combined.onnx_path.read_bytes(), x_test, schema)
    assert parity.ok and parity.label_agreement >= 0.99

    worse = dataclasses.replace(best, score=1.0)  # a single run no ensemble can beat
    assert (
        ensemble.attempt(
            chosen,
            worse,
            schema,
            x_valid,
            y_valid,
            metric="roc_auc",
            direction="maximize",
            out_dir=tmp_path,
        )[0]
        is None
    )


def test_an_ensemble_is_judged_out_of_fold_like_the_single_runs(tmp_path: Path) -> None:
    """With out-of-fold predictions the ensemble gets fold scores (each fold blended with
    weights chosen on the other folds) and is kept only if it beats the best run on the same
    folds and validation, pooled. Here each member's out-of-fold predictions carry their own
    noise, so their blend beats every one of them on every fold."""
    from mlwizard.core.model import choice

    rng = np.random.default_rng(7)
    schema = make_schema("binary")
    train, valid = table("binary", 400, rng, unseen=False), table("binary", 300, rng, unseen=True)
    x, y = feature_frame(train, schema), target_vector(train, schema)
    x_valid, y_valid = feature_frame(valid, schema), target_vector(valid, schema)
    folds = cv.plan(train, y, task="binary", strategy="stratified", column="", seed=0)
    runs = []
    for name in ("hist_gradient_boosting", "random_forest", "linear"):
        pipeline = _fitted(name, schema, x, y)
        files = _saved(pipeline, name, schema, x_valid, tmp_path)
        positive = np.clip(0.5 + 0.2 * (2 * y - 1) + rng.normal(0, 0.3, len(y)), 0, 1)
        held = [np.column_stack([1 - positive[rows], positive[rows]]) for _, rows in folds.folds]
        scores = [
            metrics.evaluate("binary", y[rows], p, 2)["roc_auc"]
            for (_, rows), p in zip(folds.folds, held, strict=True)
        ]
        saved = oof.save(tmp_path / f"{name}.npz", folds.folds, held, y)
        validation = metrics.evaluate("binary", y_valid, fitting.predict(pipeline, x_valid, 2), 2)
        cv_record = {"kind": folds.kind, "folds": 5, "scores": scores}
        runs.append(
            RunResult(
                name,
                "done",
                score=validation["roc_auc"],
                cv=cv_record,
                oof=str(saved),
                key=name,
                **files,
            )
        )
    best = choice.best(runs, "maximize")
    assert best is not None
    crossed = ensemble.from_folds(runs, 5, "binary", 2, "roc_auc", "maximize")
    assert crossed is not None
    _, blended = crossed
    for index, score in enumerate(blended):
        assert score is not None and all(score > r.cv["scores"][index] for r in runs if r.cv)
    args = (schema, x_valid, y_valid)
    kw = {"metric": "roc_auc", "direction": "maximize", "out_dir": tmp_path, "folds": 5}
    combined, note = ensemble.attempt(runs, best, *args, **kw)  # type: ignore[arg-type]
    assert combined is not None and combined.cv is not None, note
    assert combined.cv["scores"] == blended and "over 5 CV folds" in note
    recorded = dataclasses.replace(combined, score=combined.validation["roc_auc"])  # as RunLog
    assert (choice.rank_score(recorded, 5) or 0) > (choice.rank_score(best, 5) or 0)
    assert combined.parity and combined.parity["ok"]

    # A single run that no blend can beat on its folds and validation: the ensemble is not kept.
    perfect = dataclasses.replace(best, score=1.0, cv={"scores": [1.0] * 5})
    dropped, why = ensemble.attempt(runs, perfect, *args, **kw)  # type: ignore[arg-type]
    assert dropped is None and "not better" in why
    # A member without out-of-fold predictions: the ensemble is judged on validation alone.
    older = [dataclasses.replace(r, oof=None) for r in runs]
    assert ensemble.from_folds(older, 5, "binary", 2, "roc_auc", "maximize") is None


def test_an_ensemble_whose_refit_would_not_fit_gives_way_to_a_run_whose_refit_does() -> None:
    """More rows beat the blend: a kept ensemble too slow to refit in the time left yields to
    the best single run when that one's refit fits (and stays when neither or both fit)."""
    from mlwizard.core.model import finish, refit

    rows = {"train": 600, "valid": 200, "test": 200}
    fast = RunResult("linear", "done", joblib="l.joblib", fit_s=0.2, export_s=0.3)
    slow = RunResult("extra_trees", "done", joblib="e.joblib", fit_s=0.5, export_s=6.0)
    combined = RunResult(ensemble.NAME, "done", params={"members": ["extra_trees", "linear"]})
    assert refit.members_of(combined, [fast, slow]) == [slow, fast]
    floor = max(0.5, refit.EXPORT_DEFAULT_S)  # its fit and export, or the export's floor
    assert refit.expected_seconds([fast], 600, 1000) == pytest.approx(
        floor * refit.MARGIN * 1000 / 600
    )

    def why(seconds_left: float) -> str:
        deadline = time.monotonic() + seconds_left
        return finish._no_refit(combined, fast, [fast, slow], rows, True, deadline)

    # the ensemble's refit on every row is expected to take ~15 s, linear's ~2 s
    assert "alone, refitted on more rows" in why(8.0)
    assert why(60.0) == ""  # both fit: the ensemble stays
    assert why(0.1) == ""  # neither fits: the ensemble stays (its scores won)


# -- thresholds, metrics, analysis -----------------------------------------------------------------


def test_threshold_minimizes_the_expected_cost() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    p = np.clip(0.5 * y + rng.normal(0.25, 0.2, 2000), 0, 1)
    costly_misses = threshold.choose(
        y, p, metric="roc_auc", cost_false_positive=1, cost_false_negative=10
    )
    even = threshold.choose(y, p, metric="roc_auc", cost_false_positive=1, cost_false_negative=1)
    assert costly_misses["chosen_by"] == "expected cost"
    assert costly_misses["value"] < even["value"]

    def cost(t: float) -> float:
        predicted = p >= t
        return float((np.sum(predicted & (y == 0)) + 10 * np.sum(~predicted & (y == 1))) / len(y))

    best = min(cost(t) for t in np.unique(p))
    assert costly_misses["validation_value"] == pytest.approx(best)
    assert cost(costly_misses["value"]) == pytest.approx(best)
    assert costly_misses["value_at_0_5"] == pytest.approx(cost(0.5))

    by_f1 = threshold.choose(
        y, p, metric="roc_auc", cost_false_positive=None, cost_false_negative=None
    )
    by_accuracy = threshold.choose(
        y, p, metric="accuracy", cost_false_positive=None, cost_false_negative=None
    )
    assert by_f1["chosen_by"] == "f1" and by_accuracy["chosen_by"] == "accuracy"
    assert by_accuracy["validation_value"] == pytest.approx(
        np.mean((p >= by_accuracy["value"]) == (y == 1))
    )


def test_metrics_details() -> None:
    y = np.array([0, 1, 1, 0, 1])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.4, 0.6], [0.1, 0.9]])
    scores = metrics.evaluate("binary", y, proba, 2)
    assert scores["accuracy"] == pytest.approx(0.6)
    assert metrics.evaluate("binary", y, proba, 2, threshold=0.35)["recall"] == 1.0
    found = metrics.details("binary", y, proba, 2, 0.5, ["no", "yes"])
    assert found["confusion_matrix"]["matrix"] == [[1, 1], [1, 2]]
    assert sum(b["count"] for b in found["calibration"]["bins"]) == 5

    truth = np.array([0.0, 2.0, 4.0, 0.0])
    guess = np.array([1.0, 1.0, 5.0, -1.0])
    values = metrics.evaluate("regression", truth, guess)
    assert values["mape"] == pytest.approx(0.375)  # rows with y = 0 left out
    residuals = metrics.residuals(truth, guess)
    assert residuals["mape_rows_left_out"] == 2 and sum(residuals["histogram"]["counts"]) == 4
    assert metrics.evaluate("regression", np.zeros(3), np.ones(3))["mape"] is None


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")  # one class, on purpose
@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_one_metric_alone_is_the_value_evaluate_reports(task: str) -> None:
    """`metrics.score` computes one metric without the others; the searches, the ensemble's
    weights and permutation importance rely on it being `evaluate`'s value exactly."""
    rng = np.random.default_rng(4)
    n_classes = {"binary": 2, "multiclass": 4, "regression": 0}[task]
    if task == "regression":
        y = rng.normal(size=300)
        prediction = y + rng.normal(scale=0.5, size=300)
        cases = [(y, prediction, None)]
    else:
        y = rng.integers(0, n_classes, 300)
        prediction = rng.dirichlet(np.ones(n_classes), 300)
        # one class only (AUC undefined), and a decision threshold for the binary task
        cases = [(y, prediction, None), (np.zeros(300, dtype=np.int64), prediction, None)]
        if task == "binary":
            cases.append((y, prediction, 0.3))
    for truth, predicted, cut in cases:
        every = metrics.evaluate(task, truth, predicted, n_classes, cut)
        assert set(every) == set(metrics.TASK_METRICS[task])
        for name, value in every.items():
            assert metrics.score(task, truth, predicted, n_classes, name, cut) == value, name
    assert metrics.score(task, y, prediction, n_classes, "no_such_metric") is None


def test_slices_and_too_good() -> None:
    schema = make_schema("binary")
    frame = table("binary", 500, np.random.default_rng(0), unseen=False)
    errors = np.where(frame["city"] == "nice", 0.9, 0.1)
    found = analysis.worst_slices(frame, schema, errors, analysis.min_slice_rows(500))
    assert found[0]["feature"] == "city" and found[0]["slice"] == "nice"
    assert found[0]["rows"] == int((frame["city"] == "nice").sum())
    warning = analysis.too_good({"roc_auc": 0.9, "accuracy": 0.999}, "roc_auc", "audit.json")
    assert warning and warning[0].startswith("validation accuracy is 0.9990")
    assert "[" not in warning[0]  # the CLI prints messages as rich markup
    assert analysis.too_good({"r2": 0.999}, "r2", "x")[0].startswith("validation r2")
    assert analysis.too_good({"roc_auc": 0.9, "r2": 0.5}, "roc_auc", "x") == []


# -- budget and run cache --------------------------------------------------------------------------


def test_job_shares_follow_weights_and_leave_time_to_later_jobs() -> None:
    now = 100.0
    first = budget.job_deadline(now, 160.0, 2, 1.0, [1.0, 2.0], [])
    assert first == pytest.approx(now + 120 * 1 / 4)
    late = budget.job_deadline(now, 160.0, 2, 1.0, [], [150.0])
    assert late == pytest.approx(160.0)  # the last job may use whatever is left
    assert budget.job_deadline(now, 90.0, 2, 1.0, [], []) == now
    assert budget.finish_reserve(10, 0, 6) == pytest.approx(0.8 + 0.3 + 0.6)
    assert budget.finish_reserve(2, 10**6, 6) == pytest.approx(0.6)


def test_cached_runs_are_reused_only_when_they_still_apply(tmp_path: Path) -> None:
    files = runcache.RunFiles.of(tmp_path, "linear", "k" * 32)
    files.onnx.write_bytes(b"onnx")
    files.joblib.write_bytes(b"pickle")
    result = RunResult(
        "linear",
        "done",
        complete=True,
        budget_s=30.0,
        onnx=str(files.onnx),
        joblib=str(files.joblib),
        validation={"accuracy": 0.9},
    )
    runcache.save(files, result)
    assert json.loads(files.result.read_text())["onnx"] == files.onnx.name  # moves with the project
    loaded = runcache.load(files, budget_s=300.0)
    assert loaded is not None and loaded.onnx == str(files.onnx)
    assert loaded.validation == result.validation and loaded.candidate == "linear"

    runcache.save(files, dataclasses.replace(result, complete=False))  # cut short by a 30 s budget
    assert runcache.load(files, budget_s=30.0) is not None
    assert runcache.load(files, budget_s=60.0) is None  # more time: search again

    files.onnx.unlink()
    assert runcache.load(files, budget_s=10.0) is None
    assert runcache.run_key(a=1) != runcache.run_key(a=2)

    (tmp_path / ".linear-x.onnx.123.tmp").write_bytes(b"")
    runcache.prune(tmp_path, keep=set())
    assert list(tmp_path.iterdir()) == []
