"""`mlwizard new`: a project folder the user owns, made from `templates/project/`: the config,
README, Makefile, pinned requirements, and `features.py` (the team's own feature code, which the
data phase, the service and `mlwizard predict` run)."""

from __future__ import annotations

import shutil
from pathlib import Path

from mlwizard import __version__
from mlwizard.core.kernel import atomic
from mlwizard.core.kernel.config import CONFIG_FILE, update_config_file
from mlwizard.core.kernel.errors import BadInputError
from mlwizard.core.kernel.templates import render, templates_dir
from mlwizard.core.kernel.workspace import FEATURES_FILE


def create_project(
    directory: Path,
    data: Path | None = None,
    target: str = "",
    force: bool = False,
    table: str = "",
) -> Path:
    """Scaffold a project in `directory`; copy `data` into its `data/` folder when given.

    The target must name one of the file's columns exactly (`Churn` for `churn` is refused,
    saying which column was meant). `table` is the SQLite table or Excel sheet."""
    directory = directory.resolve()
    if directory.exists() and not directory.is_dir():
        raise BadInputError(f"{directory}: exists and is not a folder")
    if directory.exists() and any(directory.iterdir()) and not force:
        raise BadInputError(f"{directory}: folder is not empty; pass --force to scaffold into it")
    if data is not None:
        check_data(data, target, table)
    (directory / "data").mkdir(parents=True, exist_ok=True)
    source = ""
    if data is not None:
        copied = directory / "data" / data.name
        if copied.resolve() != data.resolve():
            with atomic.atomic_path(copied) as tmp:
                shutil.copyfile(data, tmp)
        source = f"data/{data.name}"
    values = _values(directory, source, target)
    write_config(directory, source, target, table)
    atomic.write_text(directory / "README.md", render("project/README.md.j2", **values))
    atomic.write_text(directory / ".gitignore", render("project/gitignore"))
    atomic.write_text(directory / "Makefile", render("project/Makefile.j2", **values))
    atomic.write_text(
        directory / "requirements.txt", render("project/requirements.txt.j2", **values)
    )
    features = directory / FEATURES_FILE
    if not features.exists():  # scaffolding again (--force) keeps the team's own code
        atomic.write_bytes(features, (templates_dir() / "project" / FEATURES_FILE).read_bytes())
    return directory


def write_config(directory: Path, source: str, target: str, table: str = "") -> Path:
    """Write a documented `mlwizard.toml` (used by `new`, and by `run --data` on a bare folder)."""
    text = render("project/mlwizard.toml.j2", **_values(directory, source, target))
    path = atomic.write_text(directory / CONFIG_FILE, text)
    if table:
        update_config_file(path, {"data": {"table": table}})
    return path


def check_data(data: Path, target: str, table: str = "") -> None:
    """The data file exists (a folder gets its own message) and holds `target` as written."""
    from mlwizard.core.ingest import sources

    sources.check_file(data)
    columns = sources.file_columns(data, sheet=table) if target else None
    if columns is not None:
        sources.check_target(columns, target, str(data))


def configure_project(root: Path, data: str, target: str, table: str = "") -> Path:
    """The TUI's "new project" dialog: scaffold an empty folder, or point an existing one's
    config at `data` (a path relative to the working directory, as on the command line)."""
    from mlwizard.core.ingest import sources

    if not root.exists() or not any(root.iterdir()):
        return create_project(root, data=Path(data), target=target, table=table)
    source = sources.source_value(root, data)
    check_data(root / source if not Path(source).is_absolute() else Path(source), target, table)
    return write_config(root, source, target, table)


def _values(directory: Path, source: str, target: str) -> dict[str, str]:
    return {
        "name": directory.name,
        "source": source,
        "target": target,
        "service_name": _service_name(directory.name),
        "mlwizard_version": __version__,
    }


def _service_name(name: str) -> str:
    slug = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
    return slug or "mlwizard-service"
