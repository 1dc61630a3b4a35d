"""The HTTP contract built from schema.json and the training domain: the request model (strict
types, bounds the model can score), the response models, and 422 bodies in FastAPI's shape."""

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

_STRICT = ConfigDict(extra="forbid", strict=True)


def number_bounds(spec: dict[str, Any] | None) -> tuple[float, float]:
    """What a numeric feature accepts: far beyond what training saw (a warning flags values out of
    the training range), but never where float32 arithmetic in the model overflows."""
    low, high = (spec or {}).get("min"), (spec or {}).get("max")
    scale = max(abs(low or 0.0), abs(high or 0.0), 1.0)
    limit = min(1e9 * scale, 1e15)  # products of such numbers and weights stay finite in float32
    return -limit, limit


def request_models(features: list[dict[str, Any]], domain: dict[str, Any], max_rows: int) -> Any:
    """PredictRequest for these features. Field names are positional (`c0`, ...) and the column
    names are aliases: columns may be any text, and errors name the column."""
    fields: dict[str, Any] = {}
    for i, feature in enumerate(features):
        if feature["kind"] == "numeric":
            low, high = number_bounds(domain.get(feature["name"]))
            kind: Any = Annotated[float, Field(ge=low, le=high, allow_inf_nan=False)] | None
        else:
            kind = Annotated[str, Field(max_length=1000)] | None
        fields[f"c{i}"] = (kind, Field(alias=feature["name"]))
    row = create_model("Row", __config__=_STRICT, **fields)
    request = create_model(
        "PredictRequest",
        __config__=_STRICT,
        rows=(list[row], Field(min_length=1, max_length=max_rows)),  # type: ignore[valid-type]
    )
    return row, request


class RowPrediction(BaseModel):
    prediction: Any
    proba: dict[str, float] | None = None
    cluster: int | None = None  # clustering: the cluster id (also the prediction)
    anomaly: bool | None = None  # anomaly detection: flagged as an anomaly (the prediction)
    anomaly_score: float | None = None  # anomaly detection: higher = more unusual
    warnings: list[str] | None = Field(None, description="unseen categories, out-of-range values")


class PredictResponse(BaseModel):
    model: str = Field(description="which model answered: champion or challenger")
    version: str
    predictions: list[RowPrediction]


class ValidationErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorResponse(BaseModel):
    detail: list[ValidationErrorItem] | str


def errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]}
        for e in exc.errors(include_url=False, include_input=False, include_context=False)
    ]
