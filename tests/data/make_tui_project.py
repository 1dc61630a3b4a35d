"""Rebuild `tests/data/tui_project.tar.gz`: the finished demo project the TUI snapshots are drawn
from (an archive, so its copies of the service's code are data, not source to lint).

    python tests/data/make_tui_project.py

Penguins through every phase headless (`helpers.tui.build_finished_project`, with durations,
timestamps and parity noise fixed), then trimmed to what the screens read: no pickled pipelines
(`*.joblib`) and no experiment store, and their entries dropped from the checkpoints. The
snapshots compute nothing at test time, so a library bump cannot move them; regenerate after a
deliberate change of what a phase writes, then look at the snapshots before committing them.
"""

from __future__ import annotations

import json
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGET = HERE / "tui_project.tar.gz"
DROPPED = ("experiments", "pipeline")  # outputs the screens never read (a store, a pickle)


def trim(root: Path) -> None:
    for path in root.rglob("*.joblib"):
        path.unlink()
    (root / ".mlwizard" / "experiments.duckdb").unlink(missing_ok=True)
    shutil.rmtree(root / ".mlwizard" / "cache", ignore_errors=True)
    for checkpoint in (root / ".mlwizard" / "checkpoints").glob("*.json"):
        record = json.loads(checkpoint.read_text(encoding="utf-8"))
        record["outputs"] = {k: v for k, v in record["outputs"].items() if k not in DROPPED}
        checkpoint.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")


def main() -> None:
    sys.path.insert(0, str(HERE.parent))
    from helpers.tui import build_finished_project

    with tempfile.TemporaryDirectory() as tmp:
        root = build_finished_project(Path(tmp))
        trim(root)
        with tarfile.open(TARGET, "w:gz") as archive:
            for path in sorted(root.rglob("*")):  # a stable order
                archive.add(path, arcname=path.relative_to(root).as_posix(), recursive=False)
    print(f"wrote {TARGET}")


if __name__ == "__main__":  # the model phase's spawn workers import this module again
    main()
