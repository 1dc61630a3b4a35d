"""Which categoricals are high-cardinality, and how each kind is encoded.

The rule: a categorical input with more than `HIGH_CARDINALITY` distinct values among the rows a
pipeline is fitted on (the training split for a refit, a fold's training rows in CV; the
missing token counts as a value) is high-cardinality. One-hot encoding it would make the linear
models and the MLP hundreds of columns wide, and ordinal codes (what the trees get) are
arbitrary numbers that HistGradientBoosting's 255 bins lump together. High-cardinality
columns get a target encoding instead (`export.target_encoding.TargetMeans`: the smoothed mean
target per category, cross-fitted on the training rows, unseen categories -> the prior),
scaled for the linear models and the MLP. The other categoricals keep the family's own encoder.

The choice is made by the column transformer when it is fitted (its column selectors are
`Cardinality` objects), so it is measured on exactly the rows that pipeline learns from, and the
fitted transformer (and the exported graph) holds the columns it chose.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from mlwizard.core.contract.schema import Schema

# Distinct values above which a categorical is target-encoded: HistGradientBoosting bins a
# feature into at most 255 values and CatBoost's default border count is 254, so beyond this
# ordinal codes are lumped together; below it, measured on public tables (docs/benchmarks.md),
# ordinal codes for trees and one-hot for linear models did as well as a target encoding.
HIGH_CARDINALITY = 255


@dataclass(frozen=True)
class Cardinality:
    """A column selector: the `columns` whose distinct count is above (`high`) or at most the
    threshold, in the frame a column transformer is fitted on."""

    columns: tuple[str, ...]
    high: bool
    threshold: int

    def __call__(self, frame: Any) -> list[str]:
        return [c for c in self.columns if (frame[c].nunique() > self.threshold) == self.high]


def parts(schema: Schema, low: Any, seed: int, scaled: bool) -> list[tuple[str, Any, Any]]:
    """Column-transformer entries for the categoricals: `low` (the family's encoder) for the
    low-cardinality ones, the target encoding (standardised when `scaled`) for the others.

    Unsupervised tasks have no target to encode: every categorical goes to `low`.
    """
    columns = tuple(f.input for f in schema.categorical)
    if not columns:
        return []
    if schema.task not in ("binary", "multiclass", "regression"):
        return [("categorical", low, list(columns))]
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from mlwizard.core.export.target_encoding import target_means

    high: Any = target_means(schema.task, seed)
    if scaled:
        high = make_pipeline(high, StandardScaler())
    return [
        ("categorical", low, Cardinality(columns, False, HIGH_CARDINALITY)),
        ("target_encoded", high, Cardinality(columns, True, HIGH_CARDINALITY)),
    ]


def encode_all(pipeline: Any) -> None:
    """Send every categorical of an unfitted `pipeline` to the target encoding (the tree
    families' `encoding = "target"` search setting): its ordinal codes are in arbitrary order,
    the target means sort the categories by what they predict."""
    columns = dict(pipeline.steps).get("columns")
    if columns is None:
        return
    columns.transformers = [
        (
            name,
            transformer,
            replace(chosen, threshold=0) if isinstance(chosen, Cardinality) else chosen,
        )
        for name, transformer, chosen in columns.transformers
    ]


def encoded(pipeline: Any) -> list[str]:
    """The inputs a fitted pipeline target-encodes (empty when none)."""
    from mlwizard.core.export.target_encoding import encoders

    names = (getattr(e, "feature_names_in_", ()) for e in encoders(pipeline))
    return sorted({str(name) for group in names for name in group})
