"""The headless core never imports shell libraries; `mlwizard --help` imports nothing heavy."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

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
    modules = core_modules()
    assert "mlwizard.core.pipeline" in modules and "mlwizard.core.phases.model" in modules
    imports = "\n".join(f"import {name}" for name in modules)
    assert loaded_after(imports) & SHELL_LIBRARIES == set()


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys\nsys.argv = ['mlwizard', '--help']\nfrom mlwizard.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
    )
    loaded = loaded_after(code)
    assert "typer" in loaded  # the help really ran
    assert loaded & HEAVY_LIBRARIES == set()
