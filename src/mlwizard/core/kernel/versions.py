"""The versions of Python and of the packages that shape data and models, for records."""

from __future__ import annotations

import functools
import platform
from importlib import metadata

PACKAGES = (
    "mlwizard",
    "duckdb",
    "polars",
    "numpy",
    "pandas",
    "scikit-learn",
    "catboost",
    "onnx",
    "onnxruntime",
    "skl2onnx",
)


@functools.cache
def _installed() -> tuple[tuple[str, str], ...]:
    found = [("python", platform.python_version())]
    for name in PACKAGES:
        try:
            found.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            continue
    return tuple(found)


def package_versions() -> dict[str, str]:
    """Python and each installed package of `PACKAGES` (read once per process)."""
    return dict(_installed())
