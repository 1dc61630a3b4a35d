"""Library warnings (scikit-learn's `UserWarning`s, say) captured and summarised once.

A phase may trigger the same warning hundreds of times (once per fold, per trial). The runner
records every warning a phase raises in its own process, worker processes send theirs back with
their results (`summarise`), and the phase ends with one line per kind of warning and its count,
in its messages and its metrics (`library_warnings`), instead of a stream on stderr. What a
warning means for the user (a class missing from a split, say) is an audit finding of its own.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

MESSAGE_CHARS = 160


@contextmanager
def captured() -> Iterator[list[warnings.WarningMessage]]:
    """Record every warning raised inside the block instead of printing it."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def summarise(records: Iterable[warnings.WarningMessage]) -> list[dict[str, Any]]:
    """One entry per (category, source package, first line of the message), with a count."""
    return merge([[_entry(r)] for r in records])


def merge(summaries: Iterable[Iterable[dict[str, Any]]]) -> list[dict[str, Any]]:
    counts: dict[tuple[str, str, str], int] = {}
    for summary in summaries:
        for entry in summary:
            key = (entry["category"], entry["source"], entry["message"])
            counts[key] = counts.get(key, 0) + int(entry["count"])
    ordered = sorted(counts.items(), key=lambda item: -item[1])
    return [{"category": c, "source": s, "message": m, "count": n} for (c, s, m), n in ordered]


def one_line(summary: list[dict[str, Any]], limit: int = 3) -> str:
    """'scikit-learn warned 62 times: UserWarning "..." (40×); ...' or '' when none."""
    if not summary:
        return ""
    total = sum(e["count"] for e in summary)
    sources = sorted({e["source"] for e in summary})
    shown = "; ".join(f'{e["category"]} "{e["message"]}" ({e["count"]}×)' for e in summary[:limit])
    more = f"; and {len(summary) - limit} more kinds" if len(summary) > limit else ""
    return f"library warnings ({', '.join(sources)}), {total} in all: {shown}{more}"


def _entry(record: warnings.WarningMessage) -> dict[str, Any]:
    text = str(record.message).strip().splitlines()
    message = text[0] if text else ""
    if len(message) > MESSAGE_CHARS:
        message = message[: MESSAGE_CHARS - 1] + "…"
    return {
        "category": record.category.__name__,
        "source": _source(record.filename),
        "message": message,
        "count": 1,
    }


def _source(filename: str) -> str:
    """The package a warning came from: the folder under site-packages, else the file."""
    parts = filename.replace("\\", "/").split("/")
    if "site-packages" in parts:
        index = parts.index("site-packages")
        if index + 1 < len(parts):
            return parts[index + 1].removesuffix(".py")
    return parts[-1] if parts else "python"
