"""Find the `templates/` folder and render the Jinja2 files in it.

An installed wheel carries the folder as `mlwizard/templates` (pyproject's force-include); a
source or editable checkout has it at the repository root.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from mlwizard.core.kernel.errors import MlwizardError

_PACKAGE_DIR = Path(__file__).resolve().parents[2]  # .../mlwizard


def templates_dir() -> Path:
    """The templates folder: the packaged copy if there is one, else the checkout's."""
    for candidate in (_PACKAGE_DIR / "templates", _PACKAGE_DIR.parents[1] / "templates"):
        if candidate.is_dir():
            return candidate
    raise MlwizardError(f"mlwizard's templates folder is missing (looked beside {_PACKAGE_DIR})")


@lru_cache(maxsize=1)
def _environment(root: Path) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(root)),
        undefined=jinja2.StrictUndefined,  # a missing value is an error, not an empty string
        keep_trailing_newline=True,
        autoescape=False,  # nothing here is HTML
    )


def render(template_rel: str, **values: Any) -> str:
    """Render `template_rel` (a path relative to `templates_dir()`, with `/`) with `values`."""
    return _environment(templates_dir()).get_template(template_rel).render(**values)
