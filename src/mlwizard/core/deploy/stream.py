"""Streaming prediction: NDJSON rows in (stdin), NDJSON predictions out (stdout), row by row.

Rows are read in chunks of at most CHUNK_ROWS lines, and a chunk is scored as soon as no more
input is ready, so a slow producer gets each answer promptly and memory stays bounded whatever
the stream's length. Each chunk goes through batch prediction's own path (DuckDB reads it with
the project's `na_values`; the data phase's SQL turns columns into feature values; the bundle's
`predictor.py` scores), so a row gets the same prediction here as in `mlwizard predict FILE`.
Each output line is the input object as written plus `prediction`, `proba_<class>` and
`warnings` (a list; absent when there is nothing to say).
"""

from __future__ import annotations

import json
import select
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from mlwizard.core.contract.schema import Schema
from mlwizard.core.deploy import batch
from mlwizard.core.ingest import sources
from mlwizard.core.kernel.errors import BadInputError
from mlwizard.core.kernel.workspace import Workspace

CHUNK_ROWS = 1024


def _ready(source: TextIO) -> bool:
    """Whether more input can be read without waiting (always true for files and StringIO)."""
    try:
        fileno = source.fileno()
    except (AttributeError, OSError, ValueError):
        return True
    try:
        readable, _, _ = select.select([fileno], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def chunks(source: TextIO, limit: int = CHUNK_ROWS) -> Iterator[list[tuple[int, dict[str, Any]]]]:
    """(line number, object) lists: full ones, or what had arrived when the input paused."""
    chunk: list[tuple[int, dict[str, Any]]] = []
    number = 0
    while True:
        line = source.readline()
        if not line:
            break
        number += 1
        if line.strip():
            try:
                row = json.loads(line)
            except ValueError:
                message = f"stdin line {number}: not JSON; send one object per line"
                raise BadInputError(message) from None
            if not isinstance(row, dict):
                raise BadInputError(f"stdin line {number}: a JSON object (column: value) per line")
            chunk.append((number, row))
        if chunk and (len(chunk) >= limit or not _ready(source)):
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def predict_stream(
    workspace: Workspace,
    source: TextIO,
    sink: TextIO,
    flagged: dict[str, int] | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> int:
    """Score NDJSON from `source` onto `sink`; returns the number of rows scored."""
    folder = batch.service_dir(workspace)
    schema = Schema.load(folder / "models" / "champion" / "schema.json")
    predictor = batch.load_predictor(folder)
    training = batch.TrainingColumns.load(workspace)
    na_values = batch._na_values(workspace)
    names = schema.request_columns  # raw: features.py derives the rest
    con = sources.connect()
    scored = 0
    with tempfile.TemporaryDirectory(prefix="mlwizard-stream-") as tmp:
        path = Path(tmp) / "chunk.ndjson"
        for chunk in chunks(source, chunk_rows):
            missing = sorted({n for _, row in chunk for n in names if n not in row})
            if missing:
                first = next(i for i, row in chunk if any(n not in row for n in names))
                raise BadInputError(
                    f"stdin line {first}: missing feature(s) {', '.join(missing)} "
                    "(send null for a missing value)"
                )
            with path.open("w", encoding="utf-8") as handle:
                for _, row in chunk:  # the features only: other keys come back untouched
                    handle.write(json.dumps({n: row[n] for n in names}) + "\n")
            relation = sources.read_table(con, path, na_values)
            batch._check_columns(relation, schema, training, Path("stdin"))
            keys = sorted({key for _, row in chunk for key in row} | set(relation.columns))
            extra = batch._output_names(keys, schema)
            reader = batch._prepared(relation, schema, training).to_arrow_reader(chunk_rows)
            results: list[dict[str, Any]] = []
            for record_batch in reader:
                out = batch._score(
                    record_batch, relation.columns, schema, predictor, extra, flagged
                )
                results += out.select(extra).to_pylist()
            lines = []
            for (_, row), result in zip(chunk, results, strict=True):
                answer = dict(row)
                for key, value in result.items():
                    if key != extra[-1]:
                        answer[key] = value
                    elif value:  # the warnings column: a list, only when there are some
                        answer[key] = value.split("; ")
                lines.append(json.dumps(answer, default=str) + "\n")
            sink.write("".join(lines))
            sink.flush()
            scored += len(chunk)
    return scored
