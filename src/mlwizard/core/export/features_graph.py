"""Feature engineering that lives inside the exported graph, so the service still takes raw values.

`DateParts` turns datetime inputs (float32 seconds since 1970-01-01 UTC, NaN for missing) into
calendar parts: year, month, day, day of week (Monday = 0), hour, days since the earliest
training date, and sine/cosine encodings of month, day of week and hour. Both sides compute in
float64 from the float32 input with the same integer-exact formulas (days to civil date: Howard
Hinnant's algorithm), so the ONNX graph matches the native transformer to float32 rounding.
float32 seconds are exact to 128 s around 2020, so an hour near its boundary can shift by a
couple of minutes' worth: the same on both sides, since both start from the same float32.

Free text: a `TfidfVectorizer` with an ASCII token pattern over lowercased text
(`contract.features` lowercases) converts with parity and needs no locale (its lowercasing in
ONNX does: `StringNormalizer` fails without en_US.UTF-8, ONNX_NOTES). Its weights are then
rounded to multiples of 1/1024 (`Grid`): TF-IDF takes few distinct values shared by many rows,
and a tree's threshold between two of them, a float64 midpoint, can round in float32 onto one of
them, sending those rows the other way in ONNX (measured: 0.19 in HistGradientBoosting
probabilities). On the grid every midpoint is exact in float32. Every date part is a whole
number or a function of one, for the same reason.

`SkewedTarget` fits a regression pipeline on a signed log of a long-tailed target and maps its
predictions back, in scikit-learn and (appended to the graph) in ONNX.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.pipeline import Pipeline

PARTS = (
    "year",
    "month",
    "day",
    "day_of_week",
    "hour",
    "days_since_start",  # whole days
    "month_sin",
    "month_cos",
    "day_of_week_sin",
    "day_of_week_cos",
    "hour_sin",
    "hour_cos",
)
DAY_S = 86400.0
GRID_STEPS = 1024  # a power of two: scaling is exact in float32
TEXT_TOKEN_PATTERN = r"[a-z0-9]+"  # ASCII: the same tokens in scikit-learn and onnxruntime (re2)
TEXT_MAX_FEATURES = 200  # per text column: bounds the graph and the model's width
_registered = False


class DateParts(TransformerMixin, BaseEstimator):
    """[N, k] float seconds since 1970 -> [N, 12 k] float32 calendar parts (see module doc)."""

    def fit(self, x: Any, y: Any = None) -> DateParts:
        seconds = _seconds(x)
        with np.errstate(all="ignore"):
            start = np.floor(
                np.nanmin(np.where(np.isnan(seconds), np.inf, seconds), axis=0) / DAY_S
            )
        self.start_day_ = np.where(np.isfinite(start), start, 0.0).astype(np.float64)
        self.n_features_in_ = seconds.shape[1]
        return self

    def transform(self, x: Any) -> np.ndarray:
        seconds = _seconds(x)
        with np.errstate(all="ignore"):
            parts = _parts(seconds, self.start_day_.reshape(1, -1), _NumpyOps)
        return np.concatenate(parts, axis=1).astype(np.float32)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        names = input_features if input_features is not None else range(self.n_features_in_)
        return np.array([f"{n}_{part}" for part in PARTS for n in names], dtype=object)


def _seconds(x: Any) -> np.ndarray:
    values = np.asarray(x, dtype=np.float32).astype(np.float64)
    return values.reshape(len(values), -1)


def _parts(s: Any, start_day: Any, ops: Any) -> list[Any]:
    """The parts, written once for numpy and for the ONNX builder (`ops`: floor, ge, le, sin,
    cos and arithmetic on its values)."""
    days = ops.floor(s / DAY_S)
    hour = ops.floor((s - days * DAY_S) / 3600.0)
    shifted = days + 3.0  # 1970-01-01 was a Thursday
    dow = shifted - ops.floor(shifted / 7.0) * 7.0
    z = days + 719468.0
    era = ops.floor(z / 146097.0)
    doe = z - era * 146097.0
    yoe = ops.floor(
        (doe - ops.floor(doe / 1460.0) + ops.floor(doe / 36524.0) - ops.floor(doe / 146096.0))
        / 365.0
    )
    doy = doe - (365.0 * yoe + ops.floor(yoe / 4.0) - ops.floor(yoe / 100.0))
    mp = ops.floor((5.0 * doy + 2.0) / 153.0)
    day = doy - ops.floor((153.0 * mp + 2.0) / 5.0) + 1.0
    month = mp + 3.0 - 12.0 * ops.ge(mp, 10.0)
    year = yoe + era * 400.0 + ops.le(month, 2.0)
    since = days - start_day  # whole days: the hour says the rest
    tau = 2.0 * math.pi

    def grid(value: Any) -> Any:  # sin(pi) is 1.2e-16 in numpy, 0 in onnxruntime: round both
        return ops.round(value * float(GRID_STEPS)) / float(GRID_STEPS)

    return [
        year,
        month,
        day,
        dow,
        hour,
        since,
        grid(ops.sin((month - 1.0) * (tau / 12.0))),
        grid(ops.cos((month - 1.0) * (tau / 12.0))),
        grid(ops.sin(dow * (tau / 7.0))),
        grid(ops.cos(dow * (tau / 7.0))),
        grid(ops.sin(hour * (tau / 24.0))),
        grid(ops.cos(hour * (tau / 24.0))),
    ]


class _NumpyOps:
    """numpy for `_parts`; comparisons as 0.0 / 1.0, as the graph casts them."""

    floor, sin, cos = staticmethod(np.floor), staticmethod(np.sin), staticmethod(np.cos)
    round = staticmethod(np.round)

    @staticmethod
    def ge(a: np.ndarray, b: float) -> np.ndarray:
        return np.greater_equal(a, b).astype(np.float64)

    @staticmethod
    def le(a: np.ndarray, b: float) -> np.ndarray:
        return np.less_equal(a, b).astype(np.float64)


class Grid(TransformerMixin, BaseEstimator):
    """Dense float32 values rounded to multiples of 1 / `STEPS` (see the module doc)."""

    def fit(self, x: Any, y: Any = None) -> Grid:
        self.n_features_in_ = x.shape[1]
        return self

    def transform(self, x: Any) -> np.ndarray:
        dense = x.toarray() if hasattr(x, "toarray") else np.asarray(x)
        scaled = dense.astype(np.float32) * np.float32(GRID_STEPS)
        return (np.round(scaled) / np.float32(GRID_STEPS)).astype(np.float32)


# -- the ONNX side --------------------------------------------------------------------------------
class _Graph:
    """Values of the ONNX builder with numpy's operators, so `_parts` builds the graph."""

    def __init__(self, node: Any, opv: int) -> None:
        self.node, self.opv = node, opv

    def _wrap(self, node: Any) -> _Graph:
        return _Graph(node, self.opv)

    def _other(self, value: Any) -> Any:
        if isinstance(value, _Graph):
            return value.node
        if isinstance(value, np.ndarray):
            return value.astype(np.float64)
        return np.array([value], dtype=np.float64)

    def __add__(self, other: Any) -> _Graph:
        from skl2onnx.algebra.onnx_ops import OnnxAdd

        return self._wrap(OnnxAdd(self.node, self._other(other), op_version=self.opv))

    def __radd__(self, other: Any) -> _Graph:
        return self.__add__(other)

    def __sub__(self, other: Any) -> _Graph:
        from skl2onnx.algebra.onnx_ops import OnnxSub

        return self._wrap(OnnxSub(self.node, self._other(other), op_version=self.opv))

    def __rsub__(self, other: Any) -> _Graph:
        from skl2onnx.algebra.onnx_ops import OnnxSub

        return self._wrap(OnnxSub(self._other(other), self.node, op_version=self.opv))

    def __mul__(self, other: Any) -> _Graph:
        from skl2onnx.algebra.onnx_ops import OnnxMul

        return self._wrap(OnnxMul(self.node, self._other(other), op_version=self.opv))

    def __rmul__(self, other: Any) -> _Graph:
        return self.__mul__(other)

    def __truediv__(self, other: Any) -> _Graph:
        from skl2onnx.algebra.onnx_ops import OnnxDiv

        return self._wrap(OnnxDiv(self.node, self._other(other), op_version=self.opv))


class _GraphOps:
    def __init__(self, opv: int) -> None:
        self.opv = opv

    def _unary(self, name: str, value: _Graph) -> _Graph:
        from skl2onnx.algebra import onnx_ops

        return _Graph(getattr(onnx_ops, name)(value.node, op_version=self.opv), self.opv)

    def floor(self, value: _Graph) -> _Graph:
        return self._unary("OnnxFloor", value)

    def round(self, value: _Graph) -> _Graph:
        return self._unary("OnnxRound", value)

    def sin(self, value: _Graph) -> _Graph:
        return self._unary("OnnxSin", value)

    def cos(self, value: _Graph) -> _Graph:
        return self._unary("OnnxCos", value)

    def _compare(self, name: str, value: _Graph, bound: float) -> _Graph:
        from onnx import TensorProto
        from skl2onnx.algebra import onnx_ops

        test = getattr(onnx_ops, name)(
            value.node, np.array([bound], dtype=np.float64), op_version=self.opv
        )
        return _Graph(onnx_ops.OnnxCast(test, to=TensorProto.DOUBLE, op_version=self.opv), self.opv)

    def ge(self, value: _Graph, bound: float) -> _Graph:
        return self._compare("OnnxGreaterOrEqual", value, bound)

    def le(self, value: _Graph, bound: float) -> _Graph:
        return self._compare("OnnxLessOrEqual", value, bound)


def _shape(operator: Any) -> None:
    from skl2onnx.common.data_types import FloatTensorType

    width = len(PARTS) * operator.raw_operator.n_features_in_
    operator.outputs[0].type = FloatTensorType([None, width])


def _convert(scope: Any, operator: Any, container: Any) -> None:
    from onnx import TensorProto
    from skl2onnx.algebra.onnx_ops import OnnxCast, OnnxConcat, OnnxIdentity

    opv = container.target_opset
    model = operator.raw_operator
    seconds = _Graph(OnnxCast(operator.inputs[0], to=TensorProto.DOUBLE, op_version=opv), opv)
    start = np.asarray(model.start_day_, dtype=np.float64).reshape(1, -1)
    parts = _parts(seconds, start, _GraphOps(opv))
    joined = OnnxConcat(*[p.node for p in parts], axis=1, op_version=opv)
    floats = OnnxCast(joined, to=TensorProto.FLOAT, op_version=opv)
    result = OnnxIdentity(floats, op_version=opv, output_names=[operator.outputs[0]])
    result.add_to(scope, container)


def _grid_shape(operator: Any) -> None:
    from skl2onnx.common.data_types import FloatTensorType

    operator.outputs[0].type = FloatTensorType([None, operator.inputs[0].get_second_dimension()])


def _grid_convert(scope: Any, operator: Any, container: Any) -> None:
    from skl2onnx.algebra.onnx_ops import OnnxDiv, OnnxMul, OnnxRound

    opv = container.target_opset
    steps = np.array([GRID_STEPS], dtype=np.float32)
    scaled = OnnxMul(operator.inputs[0], steps, op_version=opv)
    result = OnnxDiv(
        OnnxRound(scaled, op_version=opv), steps, op_version=opv, output_names=[operator.outputs[0]]
    )
    result.add_to(scope, container)


def register() -> None:
    """Tell skl2onnx how to convert `DateParts` and `Grid` (once per process)."""
    global _registered
    if _registered:
        return
    from skl2onnx import update_registered_converter

    update_registered_converter(DateParts, "MlwizardDateParts", _shape, _convert)
    update_registered_converter(Grid, "MlwizardGrid", _grid_shape, _grid_convert)
    _registered = True


def text_vectorizer() -> Any:
    """Bounded TF-IDF of words and word pairs, on the grid, in a form that converts with parity."""
    from sklearn.pipeline import make_pipeline

    return make_pipeline(text_tfidf(), Grid())


def text_tfidf() -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(
        lowercase=False,  # lowercased before: see the module doc
        token_pattern=TEXT_TOKEN_PATTERN,
        ngram_range=(1, 2),
        max_features=TEXT_MAX_FEATURES,
        dtype=np.float32,
    )


# -- a skewed regression target ----------------------------------------------------------------
class SkewedTarget(Pipeline):
    """A regression pipeline fitted on sign(y) log(1 + |y|) whose predictions are mapped back.

    A long-tailed target (prices, counts) is easier to fit on a log scale; scores stay on the
    target's own scale because `predict` inverts. The export converts the plain pipeline and
    appends the inverse to the graph (`append_inverse`), so the service returns target values.
    """

    def fit(self, X: Any, y: Any = None, **params: Any) -> SkewedTarget:
        super().fit(X, forward(y), **params)
        return self

    def predict(self, X: Any, **params: Any) -> np.ndarray:
        return inverse(np.asarray(super().predict(X, **params), dtype=np.float64))

    def plain(self) -> Pipeline:
        """The same fitted steps as a plain pipeline (predicting on the log scale)."""
        return Pipeline(self.steps)


def forward(y: Any) -> np.ndarray:
    values = np.asarray(y, dtype=np.float64)
    return np.sign(values) * np.log1p(np.abs(values))


def inverse(z: np.ndarray) -> np.ndarray:
    return np.sign(z) * np.expm1(np.abs(z))


def append_inverse(model: Any, output: str = "variable") -> Any:
    """The ONNX model with sign(z) (exp(|z|) - 1) applied to its `output`, under the same name."""
    from onnx import TensorProto, helper

    graph = model.graph
    inner = f"{output}_log_scale"
    for node in graph.node:
        node.output[:] = [inner if name == output else name for name in node.output]
    one = helper.make_tensor(f"{output}_one", TensorProto.FLOAT, [1], [1.0])
    graph.initializer.append(one)
    nodes = [
        helper.make_node("Abs", [inner], [f"{output}_abs"]),
        helper.make_node("Exp", [f"{output}_abs"], [f"{output}_exp"]),
        helper.make_node("Sub", [f"{output}_exp", one.name], [f"{output}_expm1"]),
        helper.make_node("Sign", [inner], [f"{output}_sign"]),
        helper.make_node("Mul", [f"{output}_sign", f"{output}_expm1"], [output]),
    ]
    graph.node.extend(nodes)
    return model
