"""A skl2onnx converter for CatBoost: a whole pipeline with a CatBoost model exports as one graph.

CatBoost's own ONNX export refuses categorical features (ONNX_NOTES, catboost#863), so the
pipeline encodes categoricals before the model and CatBoost sees numbers only. Its export of the
fitted booster is then one TreeEnsemble node, which this converter splices into the graph that
skl2onnx builds for the rest of the pipeline (the sklearn-onnx CatBoost tutorial's approach).
"""

from __future__ import annotations

from typing import Any

_registered = False


def is_catboost(model: Any) -> bool:
    return type(model).__module__.split(".")[0] == "catboost"


def contains_catboost(model: Any) -> bool:
    """Whether a CatBoost model is in `model`: itself, a pipeline step, or an ensemble member."""
    if is_catboost(model):
        return True
    parts = [step for _, step in getattr(model, "steps", [])]
    parts += list(getattr(model, "estimators_", None) or [])
    return any(contains_catboost(part) for part in parts)


def register() -> None:
    """Register the converters once per process (idempotent)."""
    global _registered
    if _registered:
        return
    from catboost import CatBoostClassifier, CatBoostRegressor
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    update_registered_converter(
        CatBoostClassifier,
        "MlwizardCatBoostClassifier",
        calculate_linear_classifier_output_shapes,
        _convert,
        parser=_parse_classifier,
        options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
    )
    update_registered_converter(
        CatBoostRegressor,
        "MlwizardCatBoostRegressor",
        calculate_linear_regressor_output_shapes,
        _convert,
    )
    _registered = True


def _parse_classifier(scope: Any, model: Any, inputs: list[Any], custom_parsers: Any = None) -> Any:
    """Declare `label` and `probabilities` outputs (a ZipMap on top unless zipmap=False)."""
    from skl2onnx._parse import _apply_zipmap, _get_sklearn_operator_name
    from skl2onnx.common.data_types import Int64TensorType, guess_tensor_type

    options = scope.get_options(model, {"zipmap": True})
    operator = scope.declare_local_operator(_get_sklearn_operator_name(type(model)), model)
    operator.inputs = inputs
    label = scope.declare_local_variable("label", Int64TensorType())
    probabilities = scope.declare_local_variable("probabilities", guess_tensor_type(inputs[0].type))
    operator.outputs.append(label)
    operator.outputs.append(probabilities)
    if isinstance(options["zipmap"], bool) and not options["zipmap"]:
        return operator.outputs
    return _apply_zipmap(options["zipmap"], scope, model, inputs[0].type, operator.outputs)


def _convert(scope: Any, operator: Any, container: Any) -> None:
    """Copy the single TreeEnsemble node of CatBoost's own export into the pipeline's graph."""
    from catboost.utils import convert_to_onnx_object
    from onnx.helper import get_attribute_value

    exported = convert_to_onnx_object(operator.raw_operator)
    opsets = {d.domain: d.version for d in exported.opset_import}
    nodes = list(exported.graph.node)
    if exported.graph.initializer or not nodes or not nodes[0].op_type.startswith("TreeEnsemble"):
        kinds = ", ".join(n.op_type for n in nodes)
        raise NotImplementedError(f"CatBoost exported an unexpected graph ({kinds})")
    if len(nodes) > 1 and not (len(nodes) == 2 and nodes[1].op_type == "ZipMap"):
        kinds = ", ".join(n.op_type for n in nodes)
        raise NotImplementedError(f"CatBoost exported an unexpected graph ({kinds})")
    node = nodes[0]
    attributes = {a.name: get_attribute_value(a) for a in node.attribute}
    container.add_node(
        node.op_type,
        [operator.inputs[0].full_name],
        [output.full_name for output in operator.outputs],
        op_domain=node.domain,
        op_version=opsets.get(node.domain),
        **attributes,
    )
