"""Target encoding of high-cardinality categoricals, and its ONNX conversion.

`TargetMeans` is scikit-learn's `TargetEncoder` (the mean target per category, shrunk toward
the prior by empirical-Bayes smoothing; one column per class for multiclass; unseen categories
get the prior) with two changes:
- its output is float32. The graph computes in float32; a float64 encoding that rounds onto a
  tree's float32 threshold would send rows the other way in ONNX. With float32 values in both,
  `trees.align_thresholds` makes every comparison exact (as `features_graph.Grid` does for text);
- it converts for every target type: skl2onnx's own converter refuses multiclass.

Its `fit_transform` cross-fits (each training row is encoded by a model fitted on the other
folds), so the model downstream never learns from a row's own target; `transform` uses the
encoding fitted on every training row. Being a pipeline step, it is refitted inside every CV
fold and every refit.

The graph: per column one `LabelEncoder` (string -> row index, unseen -> the prior's row) and
one `Gather` from a float32 table of [categories + 1, classes] encodings.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold
from sklearn.preprocessing import TargetEncoder

from mlwizard.core.contract.schema import Schema

TARGET_TYPES = {"binary": "binary", "multiclass": "multiclass", "regression": "continuous"}
CROSS_FIT_FOLDS = 5
UNSEEN = "__mlwizard_unseen__"  # a category no training row has, for the parity edge rows
MAX_CATEGORY_ROWS = 4096
_registered = False


class TargetMeans(TargetEncoder):
    """`TargetEncoder` with float32 output and a converter for every target type."""

    def fit_transform(self, X: Any, y: Any, **params: Any) -> np.ndarray:
        return np.asarray(super().fit_transform(X, y, **params), dtype=np.float32)

    def transform(self, X: Any) -> np.ndarray:
        return np.asarray(super().transform(X), dtype=np.float32)


def target_means(task: str, seed: int) -> TargetMeans:
    """An unfitted encoder for `task`: the target type is given (a regression on whole numbers
    would otherwise read as multiclass), the cross-fitting folds are seeded."""
    return TargetMeans(
        target_type=TARGET_TYPES[task],
        smooth="auto",
        cv=KFold(CROSS_FIT_FOLDS, shuffle=True, random_state=seed),
    )


def _classes(model: TargetMeans) -> int:
    return len(model.classes_) if model.target_type_ == "multiclass" else 1


def tables(model: TargetMeans) -> list[np.ndarray]:
    """Per input column, the float32 [categories + 1, classes] encodings; the last row is the
    prior, for unseen categories."""
    per = _classes(model)
    prior = np.asarray(model.target_mean_, dtype=np.float64).reshape(1, per)
    result = []
    for j in range(len(model.categories_)):
        known = np.stack(model.encodings_[j * per : (j + 1) * per], axis=1)
        result.append(np.vstack([known, prior]).astype(np.float32))
    return result


# -- the ONNX side --------------------------------------------------------------------------------
def _shape(operator: Any) -> None:
    from skl2onnx.common.data_types import FloatTensorType

    model = operator.raw_operator
    operator.outputs[0].type = FloatTensorType([None, len(model.categories_) * _classes(model)])


def _columns(scope: Any, operator: Any, container: Any) -> list[str]:
    """The operator's string inputs as one [N, 1] name per column (merged inputs split)."""
    from onnx import TensorProto

    names = []
    for variable in operator.inputs:
        width = variable.get_second_dimension()
        if width == 1:
            names.append(variable.onnx_name)
            continue
        for j in range(int(width)):
            index = scope.get_unique_variable_name("column_index")
            container.add_initializer(index, TensorProto.INT64, [1], [j])
            column = scope.get_unique_variable_name("column")
            container.add_node(
                "Gather",
                [variable.onnx_name, index],
                column,
                axis=1,
                name=scope.get_unique_operator_name("Gather"),
            )
            names.append(column)
    return names


def _convert(scope: Any, operator: Any, container: Any) -> None:
    from onnx import TensorProto

    model = operator.raw_operator
    columns = _columns(scope, operator, container)
    blocks = []
    for column, categories, table in zip(columns, model.categories_, tables(model), strict=True):
        index = scope.get_unique_variable_name("category_index")
        container.add_node(
            "LabelEncoder",
            column,
            index,
            op_domain="ai.onnx.ml",
            op_version=2,
            name=scope.get_unique_operator_name("LabelEncoder"),
            keys_strings=[str(c).encode("utf-8") for c in categories],
            values_int64s=list(range(len(categories))),
            default_int64=len(categories),
        )
        flat_shape = scope.get_unique_variable_name("flat_shape")
        container.add_initializer(flat_shape, TensorProto.INT64, [1], [-1])
        flat = scope.get_unique_variable_name("category_row")
        container.add_node(
            "Reshape", [index, flat_shape], flat, name=scope.get_unique_operator_name("Reshape")
        )
        values = scope.get_unique_variable_name("encodings")
        container.add_initializer(
            values, TensorProto.FLOAT, list(table.shape), table.ravel().tolist()
        )
        block = scope.get_unique_variable_name("encoded")
        container.add_node(
            "Gather", [values, flat], block, axis=0, name=scope.get_unique_operator_name("Gather")
        )
        blocks.append(block)
    container.add_node(
        "Concat",
        blocks,
        operator.outputs[0].full_name,
        axis=1,
        name=scope.get_unique_operator_name("Concat"),
    )


def register() -> None:
    """Tell skl2onnx how to convert `TargetMeans` (once per process)."""
    global _registered
    if _registered:
        return
    from skl2onnx import update_registered_converter

    update_registered_converter(TargetMeans, "MlwizardTargetMeans", _shape, _convert)
    _registered = True


# -- rows for the parity check ----------------------------------------------------------------
def encoders(pipeline: Any) -> list[TargetMeans]:
    """The fitted `TargetMeans` anywhere in `pipeline` (steps, column transformers, members)."""
    if isinstance(pipeline, TargetMeans):  # unfitted: a column transformer gave it no columns
        return [pipeline] if hasattr(pipeline, "encodings_") else []
    parts: list[Any] = [step for _, step in getattr(pipeline, "steps", [])]
    parts += [t for _, t, _ in getattr(pipeline, "transformers_", [])]
    parts += list(getattr(pipeline, "estimators_", None) or [])
    return [found for part in parts if not isinstance(part, str) for found in encoders(part)]


def category_rows(pipeline: Any, schema: Schema, base: pd.DataFrame) -> pd.DataFrame:
    """`feature_frame` rows with one target-encoded input set to each of its categories in turn,
    and to a category never seen; the other inputs from `base` rows. At most MAX_CATEGORY_ROWS,
    categories sampled evenly when there are more."""
    inputs = {f.input for f in schema.categorical}
    known: list[tuple[str, str]] = []
    unseen: list[tuple[str, str]] = []
    for encoder in encoders(pipeline):
        names = getattr(encoder, "feature_names_in_", ())  # fitted on a frame: input names
        for name, categories in zip(names, encoder.categories_, strict=False):
            if name in inputs:
                known.extend((str(name), str(c)) for c in categories)
                unseen.append((str(name), UNSEEN))
    if base.empty or not unseen:
        return base.iloc[:0]
    room = max(0, MAX_CATEGORY_ROWS - len(unseen))
    if len(known) > room:
        keep = np.linspace(0, len(known) - 1, room).round().astype(int)
        known = [known[i] for i in keep]
    edits = unseen + known
    rows = base.iloc[np.arange(len(edits)) % len(base)].reset_index(drop=True).copy()
    for column in {name for name, _ in edits}:
        values = rows[column].to_numpy(dtype=object, copy=True)
        mask = np.array([name == column for name, _ in edits])
        values[mask] = [value for name, value in edits if name == column]
        rows[column] = values
    return rows
