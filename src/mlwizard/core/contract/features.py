"""Turn split tables into model inputs: the same preparation the generated service performs.

Numerics (and datetimes, as seconds since 1970) become float32 with NaN for missing (ONNX needs
float32); categoricals become strings with missing mapped to one explicit token (ONNX_NOTES: nulls
inside string tensors misbehave); free text is lowercased too (the graph's tokenizer then needs
no locale).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlwizard.core.contract.schema import FLOAT_KINDS, Schema


def feature_frame(table: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """Columns renamed to their ONNX input names, in schema order."""
    columns = {}
    for feature in schema.features:
        values = table[feature.name]
        if feature.kind in FLOAT_KINDS:
            columns[feature.input] = _floats(values, feature.kind)
        else:
            as_text = values.astype(object).where(values.notna(), None)
            lower = feature.kind == "text"
            columns[feature.input] = np.array(
                [
                    schema.missing_token if v is None else (str(v).lower() if lower else str(v))
                    for v in as_text
                ],
                dtype=object,
            )
    return pd.DataFrame(columns, index=table.index)


def target_vector(table: pd.DataFrame, schema: Schema) -> np.ndarray:
    """Class ids (index into `schema.classes`) for classifiers; float64 values for regression."""
    values = table[schema.target]
    if schema.task == "regression":
        return values.to_numpy(dtype=np.float64)
    assert schema.classes is not None
    lookup = {label: index for index, label in enumerate(schema.classes)}
    return np.array([lookup[v] for v in values.tolist()], dtype=np.int64)


def _floats(values: pd.Series, kind: str) -> pd.Series:
    """float32; a datetime column (if it arrives as timestamps) as seconds since 1970."""
    if kind == "datetime" and pd.api.types.is_datetime64_any_dtype(values):
        seconds = values.astype("datetime64[ns]").astype("int64") / 1e9
        return seconds.where(values.notna()).astype(np.float32)
    return pd.to_numeric(values, errors="coerce").astype(np.float32)
