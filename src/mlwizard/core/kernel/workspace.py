"""The project workspace: one folder holding config, artifacts and checkpoints.

Layout::

    mlwizard.toml                 the user's configuration
    artifacts/<phase>/...         what each phase produced
    .mlwizard/checkpoints/*.json  one checkpoint per phase (the contract between phases)
    .mlwizard/cache/              caches that can be deleted at any time
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from mlwizard.core.kernel import atomic
from mlwizard.core.kernel.config import CONFIG_FILE, Config, load_config
from mlwizard.core.kernel.errors import BadInputError
from mlwizard.core.kernel.hashing import hash_file

CheckpointStatus = Literal["done", "failed", "cancelled"]

FEATURES_FILE = "features.py"  # = serving.userfeatures.FEATURES_FILE (kernel imports no more)


@dataclass
class Checkpoint:
    """What a phase run recorded. `inputs` are the hashes it ran on; `fingerprint` is what
    downstream phases record as their input from this phase."""

    phase: str
    status: CheckpointStatus
    inputs: dict[str, str]
    fingerprint: str
    outputs: dict[str, str] = field(default_factory=dict)  # artifact name -> path relative to root
    metrics: dict[str, Any] = field(default_factory=dict)
    gate_failures: list[str] = field(default_factory=list)
    started_at: str = ""
    finished_at: str = ""
    duration_s: float = 0.0
    versions: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Checkpoint:
        return cls(**raw)


class Workspace:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()

    # -- paths -----------------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def features_path(self) -> Path:
        """The project's own feature code (`serving/userfeatures.py` runs it)."""
        return self.root / FEATURES_FILE

    @property
    def state_dir(self) -> Path:
        return self.root / ".mlwizard"

    def artifact_dir(self, phase: str) -> Path:
        return self.root / "artifacts" / phase

    def checkpoint_path(self, phase: str) -> Path:
        return self.state_dir / "checkpoints" / f"{phase}.json"

    def relative(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(self.root))
        except ValueError:
            return str(path.resolve())

    def resolve(self, relative: str) -> Path:
        return (self.root / relative).resolve()

    def exists(self) -> bool:
        return self.config_path.is_file()

    # -- config ----------------------------------------------------------------------------------
    def load_config(self) -> Config:
        return load_config(self.config_path)

    def source_path(self, config: Config) -> Path:
        if not config.data.source:
            raise BadInputError(
                f"{self.config_path}: [data] source is not set; pass --data PATH or edit the file"
            )
        return self.resolve(config.data.source)

    # -- checkpoints -----------------------------------------------------------------------------
    def read_checkpoint(self, phase: str) -> Checkpoint | None:
        path = self.checkpoint_path(phase)
        try:
            return Checkpoint.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError):
            return None  # a damaged checkpoint counts as none: the phase simply runs again

    def write_checkpoint(self, checkpoint: Checkpoint) -> None:
        atomic.write_json(self.checkpoint_path(checkpoint.phase), asdict(checkpoint))

    # -- content hashes, cached by (size, mtime) -------------------------------------------------
    def file_hash(self, path: Path) -> str:
        stat = path.stat()
        cache_path = self.state_dir / "cache" / "file-hashes.json"
        try:
            cache = json.loads(cache_path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            cache = {}
        key = str(path.resolve())
        entry = cache.get(key)
        if entry and entry["size"] == stat.st_size and entry["mtime_ns"] == stat.st_mtime_ns:
            return entry["hash"]
        digest = hash_file(path)
        cache[key] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "hash": digest}
        atomic.write_json(cache_path, cache)
        return digest
