"""The model registry: numbered versions of a project's model, a `champion` alias, a history.

Layout, under the project::

    registry/
      versions/<n>/manifest.json   what the version is: model, data version, metrics, bundle hash
      versions/<n>/reference.json  the reference profile monitoring compares against
      versions/<n>/bundle/         the service bundle, exactly as deploy wrote it
      aliases.json                 {"champion": n}
      history.json                 every promotion, rollback and kept champion, with the reason
      serving/                     the champion's bundle: the folder to deploy

A version's bundle is stored whole, so `rollback` restores it byte for byte; `store_bundle` and
`restore_bundle` are the only two functions that know how (the seam for rebuilding a bundle from
the model instead, once deploy exposes a bundle writer).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from mlwizard.core.contract.schema import Schema
from mlwizard.core.deploy.bundle import staged_folder
from mlwizard.core.kernel import atomic
from mlwizard.core.kernel.errors import BadInputError
from mlwizard.core.kernel.formatting import timestamp

REGISTRY_DIR = "registry"
CHAMPION = "champion"


def tree_hash(folder: Path) -> str:
    """sha256 over every file's relative path and bytes, in sorted order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def bundle_schema(bundle: Path) -> Schema:
    """The champion model's schema inside a service bundle (`models/champion/schema.json`)."""
    nested = bundle / "models" / "champion" / "schema.json"
    return Schema.load(nested if nested.is_file() else bundle / "schema.json")


def store_bundle(bundle: Path, target: Path) -> None:
    """Keep a copy of a bundle folder (files, modes and times) as `target`."""
    shutil.copytree(bundle, target, copy_function=shutil.copy2)


def restore_bundle(stored: Path, target: Path) -> Path:
    """Put a stored bundle in place as `target`, whole or not at all."""
    with staged_folder(target) as staging:
        for path in sorted(stored.rglob("*")):
            destination = staging / path.relative_to(stored)
            if path.is_dir():
                destination.mkdir(exist_ok=True)
            else:
                shutil.copy2(path, destination)
    return target


class Registry:
    def __init__(self, project: Path) -> None:
        self.root = Path(project) / REGISTRY_DIR

    # -- paths -----------------------------------------------------------------------------------
    def version_dir(self, version: int) -> Path:
        return self.root / "versions" / str(version)

    def bundle_dir(self, version: int) -> Path:
        return self.version_dir(version) / "bundle"

    @property
    def serving_dir(self) -> Path:
        return self.root / "serving"

    # -- reading ---------------------------------------------------------------------------------
    def versions(self) -> list[dict[str, Any]]:
        """Every version's manifest, oldest first."""
        folder = self.root / "versions"
        if not folder.is_dir():
            return []
        numbers = sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit())
        return [m for m in (self.manifest(n) for n in numbers) if m]

    def manifest(self, version: int) -> dict[str, Any]:
        return _read(self.version_dir(version) / "manifest.json")

    def reference(self, version: int) -> dict[str, Any]:
        return _read(self.version_dir(version) / "reference.json")

    def champion(self) -> int | None:
        value = _read(self.root / "aliases.json").get(CHAMPION)
        return int(value) if value is not None else None

    def history(self) -> list[dict[str, Any]]:
        return list(_read(self.root / "history.json").get("events") or [])

    def find(self, model_fingerprint: str) -> int | None:
        for manifest in self.versions():
            if manifest.get("model_fingerprint") == model_fingerprint:
                return int(manifest["version"])
        return None

    def require(self, version: int | None = None) -> int:
        """`version`, or the champion; raises naming the command to run when there is none."""
        if version is None:
            version = self.champion()
            if version is None:
                raise BadInputError(
                    f"{self.root}: no registered model yet; run `mlwizard run --phase all` first"
                )
        if not self.manifest(version):
            known = ", ".join(str(m["version"]) for m in self.versions()) or "none"
            raise BadInputError(f"model version {version} is not registered (known: {known})")
        return version

    # -- writing ---------------------------------------------------------------------------------
    def register(
        self, bundle: Path, reference: dict[str, Any], facts: dict[str, Any]
    ) -> tuple[int, bool]:
        """Store a new version (or find the one with this model fingerprint): (number, is new)."""
        existing = self.find(str(facts.get("model_fingerprint")))
        if existing is not None:
            return existing, False
        numbers = [int(m["version"]) for m in self.versions()]
        version = max(numbers, default=0) + 1
        target = self.version_dir(version)
        with staged_folder(target) as staging:
            store_bundle(bundle, staging / "bundle")
            atomic.write_json(staging / "reference.json", reference)
            manifest = {
                "version": version,
                "created_at": timestamp(),
                **facts,
                "bundle_sha256": tree_hash(staging / "bundle"),
            }
            atomic.write_json(staging / "manifest.json", manifest)
        return version, True

    def set_champion(self, version: int, event: str, reason: str, **facts: Any) -> None:
        """Make `version` the champion, put its bundle in `serving/`, and record why."""
        previous = self.champion()
        restore_bundle(self.bundle_dir(version), self.serving_dir)
        atomic.write_json(self.root / "aliases.json", {CHAMPION: version})
        self.record(event, reason, champion=version, previous=previous, **facts)

    def record(self, event: str, reason: str, **facts: Any) -> None:
        events = self.history()
        events.append({"at": timestamp(), "event": event, "reason": reason, **facts})
        atomic.write_json(self.root / "history.json", {"events": events})

    def rollback(self, version: int | None = None) -> dict[str, Any]:
        """Make `version` (default: the previous champion) champion again, restoring its bundle."""
        current = self.require()
        target = version if version is not None else self.previous_champion()
        if target is None:
            raise BadInputError(
                f"version {current} is the only registered version: nothing to roll back to"
            )
        self.require(target)
        reason = f"rolled back from version {current} to version {target}"
        self.set_champion(target, "rollback", reason)
        return {
            "champion": target,
            "previous": current,
            "reason": reason,
            "serving": str(self.serving_dir),
            "bundle_sha256": tree_hash(self.serving_dir),
        }

    def previous_champion(self) -> int | None:
        """The champion before the current one (what `rollback` with no version goes back to)."""
        current = self.champion()
        for event in reversed(self.history()):
            if event.get("champion") == current and event.get("previous") not in (None, current):
                return int(event["previous"])
        earlier = [int(m["version"]) for m in self.versions() if current and m["version"] < current]
        return max(earlier) if earlier else None


def _read(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
