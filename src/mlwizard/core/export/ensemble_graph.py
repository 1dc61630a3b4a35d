"""An ensemble's ONNX graph, composed from its members' own exported graphs.

A soft-voting (or weighted) ensemble predicts the weighted mean of its members' probabilities
(or values): `probabilities = sum(w_k * probabilities_k)` with the weights normalised to sum to
one, and `label = argmax(probabilities)` (the first class on a tie, as NumPy's argmax). Each
member's graph is copied in whole, its node, edge and initializer names prefixed with `m<k>_`,
reading the shared feature inputs; only the weighted sum and the argmax are new nodes.

Converting the scikit-learn `VotingClassifier` with skl2onnx instead converts every member again
(seconds for a forest), where the members' graphs already exist beside their runs: composing
them takes milliseconds. The members' graphs are the bytes `export_pipeline` gives for each of
them, so an ensemble composed from the runs' files and one composed from members exported
afresh (the refits, `reproduce`) are the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper, version_converter

PREFIX = "m{index}_"
SUM_NAME = "ensemble_weighted_sum"
LABEL_NAME = "ensemble_argmax"


class CompositionError(ValueError):
    """The members' graphs cannot be joined into one (different inputs or outputs, subgraphs)."""


def compose(
    members: Sequence[bytes], weights: Sequence[float] | None, output: str
) -> onnx.ModelProto:
    """The ensemble of the member models `members` (serialised ONNX, the same inputs in the same
    order) with `weights` (None: equal). `output` is the averaged output: "probabilities" for a
    classifier (a `label` is added), "variable" for a regressor."""
    if len(members) < 2:
        raise CompositionError("an ensemble needs at least two members")
    models = _same_opset([onnx.load_from_string(data) for data in members])
    share = _shares(weights, len(models))
    first = models[0]
    inputs = [i.name for i in first.graph.input]
    shared = set(inputs)
    graph_nodes: list[onnx.NodeProto] = []
    initializers: list[onnx.TensorProto] = []
    weighted: list[str] = []
    for index, model in enumerate(models):
        graph = model.graph
        if [i.name for i in graph.input] != inputs:
            raise CompositionError(f"member {index} reads other inputs than member 0")
        if output not in {o.name for o in graph.output}:
            raise CompositionError(f"member {index} has no output '{output}'")
        if graph.sparse_initializer or model.functions:
            raise CompositionError(f"member {index} holds sparse initializers or functions")
        prefix = PREFIX.format(index=index)

        def renamed(name: str, prefix: str = prefix) -> str:
            return name if not name or name in shared else prefix + name

        for node in graph.node:
            if any(
                a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
                for a in node.attribute
            ):
                raise CompositionError(f"member {index} has a subgraph ({node.op_type})")
            copy = onnx.NodeProto()
            copy.CopyFrom(node)
            copy.name = prefix + node.name if node.name else ""
            copy.input[:] = [renamed(n) for n in node.input]
            copy.output[:] = [renamed(n) for n in node.output]
            graph_nodes.append(copy)
        for tensor in graph.initializer:
            copy = onnx.TensorProto()
            copy.CopyFrom(tensor)
            copy.name = renamed(tensor.name)
            initializers.append(copy)
        weight = f"{prefix}ensemble_weight"
        initializers.append(
            numpy_helper.from_array(np.array(share[index], dtype=np.float32), weight)
        )
        graph_nodes.append(
            helper.make_node(
                "Mul", [renamed(output), weight], [f"{prefix}weighted"], name=f"{prefix}weighting"
            )
        )
        weighted.append(f"{prefix}weighted")
    graph_nodes.append(helper.make_node("Sum", weighted, [output], name=SUM_NAME))
    outputs = [o for o in first.graph.output if o.name == output]
    if output == "probabilities":
        label = next((o for o in first.graph.output if o.name == "label"), None)
        if label is None:
            raise CompositionError("member 0 has no output 'label'")
        graph_nodes.append(
            helper.make_node("ArgMax", [output], ["label"], name=LABEL_NAME, axis=1, keepdims=0)
        )
        outputs = [label, *outputs]
    graph = helper.make_graph(
        graph_nodes, first.graph.name, list(first.graph.input), outputs, initializers
    )
    composed = helper.make_model(graph, opset_imports=_opsets(models))
    composed.ir_version = max(m.ir_version for m in models)
    composed.producer_name = first.producer_name
    composed.producer_version = first.producer_version
    composed.domain = first.domain
    composed.model_version = first.model_version
    return composed


def _same_opset(models: list[onnx.ModelProto]) -> list[onnx.ModelProto]:
    """The members with the default ONNX domain at the highest version any of them imports.

    skl2onnx imports the lowest version its nodes need (a linear model 11, a forest 17); read at
    a higher version, an operator whose definition changed in between (an attribute that became
    an input) would fail to load or mean something else, so a member below it is converted by
    ONNX's version converter. The `ai.onnx.ml` operators up to the versions we target only
    gained attributes, so a member's nodes keep their meaning at the highest version."""
    top = max(_version(m, "") for m in models)
    try:
        return [
            m if _version(m, "") in (top, 0) else version_converter.convert_version(m, top)
            for m in models
        ]
    except Exception as exc:  # the converter raises bare RuntimeErrors from C++
        raise CompositionError(f"a member not converted to opset {top}: {exc}") from exc


def _version(model: onnx.ModelProto, domain: str) -> int:
    return next((o.version for o in model.opset_import if o.domain == domain), 0)


def _shares(weights: Sequence[float] | None, count: int) -> np.ndarray:
    """The weights normalised to sum to one, as `numpy.average` applies them."""
    raw = np.ones(count) if weights is None else np.asarray(weights, dtype=np.float64)
    if raw.shape != (count,) or (raw < 0).any() or raw.sum() <= 0:
        raise CompositionError(f"weights {list(raw)} do not fit {count} members")
    return raw / raw.sum()


def _opsets(models: Sequence[onnx.ModelProto]) -> list[onnx.OperatorSetIdProto]:
    """Every domain any member imports, at the highest version imported."""
    versions: dict[str, int] = {}
    for model in models:
        for opset in model.opset_import:
            versions[opset.domain] = max(versions.get(opset.domain, 0), opset.version)
    return [helper.make_opsetid(domain, version) for domain, version in sorted(versions.items())]
