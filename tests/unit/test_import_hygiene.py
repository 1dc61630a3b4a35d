"""The headless core never imports shell libraries; `mlwizard --help` imports nothing heavy."""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import mlwizard.core

SHELL_LIBRARIES = {"textual", "typer", "rich"}
HEAVY_LIBRARIES = {"sklearn", "catboost", "textual", "onnxruntime", "polars", "duckdb"}


def loaded_after(code: str) -> set[str]:
    script = (
        code
        + "\nimport sys, json; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def core_modules() -> list[str]:
    return [
        info.name for info in pkgutil.walk_packages(mlwizard.core.__path__, prefix="mlwizard.core.")
    ]


def test_core_imports_no_shell_library() -> None:
    """Every core module imports with textual, typer and rich made unimportable.

    (scikit-learn 1.9 itself imports rich when it is installed, for an optional progress bar, so
    "rich is absent from sys.modules" would test scikit-learn, not us.)
    """
    modules = core_modules()
    assert "mlwizard.core.runner" in modules and "mlwizard.core.model.phase" in modules
    block = "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in SHELL_LIBRARIES)
    imports = "\n".join(f"import {name}" for name in modules)
    loaded = loaded_after(block + imports)  # raises if any import failed
    assert "mlwizard" in loaded


def test_core_source_names_no_shell_library() -> None:
    for path in Path(mlwizard.core.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in SHELL_LIBRARIES, f"{path} imports {name}"


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys\nsys.argv = ['mlwizard', '--help']\nfrom mlwizard.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
    )
    loaded = loaded_after(code)
    assert "typer" in loaded  # the help really ran
    assert loaded & HEAVY_LIBRARIES == set()
