"""Data versions: where each snapshot came from, kept beside it as `lineage.json`."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from mlwizard.core.kernel import atomic
from mlwizard.core.kernel.config import Config
from mlwizard.core.kernel.formatting import timestamp
from mlwizard.core.kernel.hashing import hash_value

HISTORY = 50  # earlier versions kept in the file


def data_version(source_hash: str, config: Config) -> str:
    """A version changes with the source's content or with the config that shapes the data."""
    sections = {name: config.section_hash_input(name) for name in ("project", "data", "split")}
    return hash_value({"source": source_hash, "config": sections})[:16]


def record_version(
    path: Path, config: Config, *, source_label: str, source_hash: str, **facts: Any
) -> Path:
    """Write the current version's lineage, keeping earlier versions as history (newest first).

    `source_label` names the source without credentials; the config's own `source` value, which
    may be a database URL with a password, is replaced by it.
    """
    settings = {name: asdict(getattr(config, name)) for name in ("project", "data", "split")}
    settings["data"]["source"] = source_label
    entry = {
        "version": data_version(source_hash, config),
        "source": source_label,
        "source_hash": source_hash,
        "created_at": timestamp(),
        **facts,
        "config": settings,
    }
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        previous = {}
    earlier = [previous.get("current"), *previous.get("history", [])]
    history = [v for v in earlier if isinstance(v, dict) and v.get("version") != entry["version"]]
    return atomic.write_json(path, {"current": entry, "history": history[:HISTORY]})
