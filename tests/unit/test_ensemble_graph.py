"""The ensemble's ONNX graph composed from its members' graphs: it predicts what the voting
model predicts, the same bytes whichever way it is reached, and a member that does not fit is
refused in words."""

from __future__ import annotations

import time

import numpy as np
import onnx
import pytest

from helpers.model import make_schema, table
from mlwizard.core.contract.features import feature_frame, target_vector
from mlwizard.core.export.onnx_export import (
    ExportError,
    export_ensemble,
    export_pipeline,
    make_session,
    predict_onnx,
)
from mlwizard.core.export.parity import check_export
from mlwizard.core.model import candidates, ensemble, fitting

MEMBERS = ("linear", "random_forest", "hist_gradient_boosting")


def _members(task: str) -> tuple[list, object, object]:
    schema = make_schema(task)
    frame = table(task, 500, np.random.default_rng(3), unseen=True)
    x, y = feature_frame(frame, schema), target_vector(frame, schema)
    fitted = []
    for name in MEMBERS:
        params = {"n_estimators": 10} if name in candidates.FORESTS else {}
        pipeline = candidates.build(name, schema, 0, params)
        deadline = time.monotonic() + 60
        fitting.fit(pipeline, candidates.FAMILIES[name], x, y, seed=0, deadline=deadline)
        fitted.append((name, pipeline))
    return fitted, schema, x


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_the_composed_graph_predicts_the_weighted_mean_of_its_members(task: str) -> None:
    fitted, schema, x = _members(task)
    weights = [0.5, 0.25, 0.25]
    voting = ensemble.assemble(fitted, schema, weights)
    members = [export_pipeline(p, schema, x) for _, p in fitted]
    model = export_ensemble(members, weights, schema, x)

    parity = check_export(voting, model, {"all": x}, schema)
    assert parity.ok, parity
    outputs = predict_onnx(make_session(model), x, schema)
    singles = [predict_onnx(make_session(m), x, schema) for m in members]
    key = "variable" if task == "regression" else "probabilities"
    mean = sum(w * s[key].astype(np.float64) for w, s in zip(weights, singles, strict=True))
    np.testing.assert_allclose(outputs[key], mean, rtol=1e-5, atol=1e-6)
    if task != "regression":
        assert np.array_equal(outputs["label"], np.argmax(outputs["probabilities"], axis=1))
        assert outputs["label"].dtype == np.int64
    # the voting pipeline exported whole gives the same bytes as the members composed
    assert export_pipeline(voting, schema, x) == model
    composed = onnx.load_from_string(model)
    assert [i.name for i in composed.graph.input] == [f.input for f in schema.features]
    # the linear member (skl2onnx: opset 11) was converted to the forests' opset 17, not reread
    opsets = [{o.domain: o.version for o in onnx.load_from_string(m).opset_import} for m in members]
    assert min(o[""] for o in opsets) < max(o[""] for o in opsets)
    assert {o.domain: o.version for o in composed.opset_import}[""] == max(o[""] for o in opsets)


def test_equal_weights_are_soft_voting_and_a_mismatched_member_is_refused() -> None:
    fitted, schema, x = _members("binary")
    voting = ensemble.assemble(fitted[:2], schema, None)
    members = [export_pipeline(p, schema, x) for _, p in fitted[:2]]
    model = export_ensemble(members, None, schema, x)
    assert check_export(voting, model, {"all": x}, schema).ok

    other = make_schema("binary", {"age years": "numeric", "city": "categorical"})
    x_other = feature_frame(table("binary", 200, np.random.default_rng(1), False), other)
    y_other = target_vector(table("binary", 200, np.random.default_rng(1), False), other)
    narrow = candidates.build("linear", other, 0, {})
    fitting.fit(
        narrow,
        candidates.FAMILIES["linear"],
        x_other,
        y_other,
        seed=0,
        deadline=time.monotonic() + 60,
    )
    with pytest.raises(ExportError, match="reads other inputs"):
        export_ensemble([members[0], export_pipeline(narrow, other, x_other)], None, schema, x)
    with pytest.raises(ExportError, match="weights"):
        export_ensemble(members, [1.0, -1.0], schema, x)
