"""Write the bad-input corpus next to this script; its outputs are committed.

Run `python tests/data/bad/make_corpus.py` after changing it. Everything is deterministic (fixed
seeds, no clock), so a re-run rewrites the same bytes. Each file is one kind of input that users
really send; `tests/test_bad_input.py` runs each through the CLI.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
ROWS = 40


def _rows(seed: int = 0) -> list[tuple[float, str, str]]:
    """A small learnable table: a number, a colour and a yes/no label that depends on both."""
    rng = random.Random(seed)
    rows = []
    for _ in range(ROWS):
        x = round(rng.uniform(0, 10), 2)
        colour = rng.choice(["red", "green", "blue"])
        label = "yes" if x + (3 if colour == "red" else 0) > 6 else "no"
        rows.append((x, colour, label))
    return rows


def _csv(header: str, lines: list[str]) -> bytes:
    return ("\n".join([header, *lines]) + "\n").encode("utf-8")


def _good_lines() -> list[str]:
    return [f"{x},{colour},{label}" for x, colour, label in _rows()]


def corpus() -> dict[str, bytes]:
    lines = _good_lines()
    files: dict[str, bytes] = {
        "empty.csv": b"",
        "header_only.csv": b"x,colour,label\n",
        "ragged_rows.csv": _csv("x,colour,label", [*lines[:5], "3.5,red", *lines[5:]]),
        "unterminated_quote.csv": _csv("x,colour,label", [*lines[:3], '4.2,"red,yes', *lines[3:]]),
        "duplicate_columns.csv": _csv(
            "x,colour,x,label", [f"{x},{c},{x * 2},{lab}" for x, c, lab in _rows()]
        ),
        "all_null_column.csv": _csv(
            "x,colour,empty,label", [f"{x},{c},,{lab}" for x, c, lab in _rows()]
        ),
        "target_absent.csv": _csv("x,colour,label", lines),
        "single_row.csv": _csv("x,colour,label", lines[:1]),
    }
    # Names that break naive SQL: quotes, a semicolon, keywords, unicode, leading spaces.
    odd = ['"say ""hi"""', "a;b", "select", " größe", "  leading", "from", "order"]
    odd_lines = [
        f"{x},{x * 3:.2f},{i % 4},{x + 1:.2f},{colour},{i % 7},{label}"
        for i, (x, colour, label) in enumerate(_rows())
    ]
    files["odd_column_names.csv"] = _csv(",".join(odd), odd_lines)
    latin1 = _csv("x,colour,label", [*lines[:3], "5.0,rouge café,no", *lines[3:]])
    files["not_utf8.csv"] = latin1.decode("utf-8").encode("latin-1")
    files["binary.csv"] = _binary()
    files["truncated.parquet"] = _truncated_parquet()
    return files


def _binary() -> bytes:
    """Bytes of a small PNG-like blob: a signature, NULs and noise, named .csv by mistake."""
    rng = random.Random(7)
    return b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(rng.randrange(256) for _ in range(600))


def _truncated_parquet() -> bytes:
    """A valid Parquet file cut in half, as an interrupted copy leaves it."""
    x, colour, label = zip(*_rows(), strict=True)
    table = pa.table({"x": list(x), "colour": list(colour), "label": list(label)})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="none")
    data = buffer.getvalue()
    return data[: len(data) // 2]


def main() -> None:
    for name, data in corpus().items():
        (HERE / name).write_bytes(data)
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
