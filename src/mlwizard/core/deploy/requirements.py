"""The bundle's requirements, pinned exactly (`==`) to the versions installed here: the ones its
parity check and tests ran with. The whole dependency closure is pinned, not only the direct
packages, so a build next month installs what was tested today.
"""

from __future__ import annotations

import importlib.metadata as metadata
import platform

from packaging.requirements import Requirement

RUNTIME = ("fastapi", "uvicorn", "onnxruntime", "numpy", "orjson", "prometheus-client")
DEV = ("pytest", "httpx")  # the bundle's own tests (FastAPI's TestClient needs httpx)
STREAM = ("redis",)  # stream_consumer.py
# Base images, pinned by version. The CPU image matches the Python the bundle was tested on;
# the GPU image is NVIDIA's CUDA runtime (cuDNN included) that onnxruntime-gpu 1.2x targets.
CUDA_IMAGE = "nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04"


def base_image(gpu: bool = False) -> str:
    if gpu:
        return CUDA_IMAGE
    return f"python:{platform.python_version()}-slim-bookworm"


def closure(names: tuple[str, ...]) -> dict[str, str]:
    """name -> installed version, for `names` and everything they require (no extras)."""
    found: dict[str, str] = {}
    stack = list(names)
    while stack:
        name = stack.pop()
        key = _canonical(name)
        if key in found:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # not installed here: nothing to pin (a marker-guarded dependency)
        found[key] = dist.version
        for line in dist.requires or []:
            requirement = Requirement(line)
            if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
                continue
            stack.append(requirement.name)
    return found


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _lines(direct: tuple[str, ...], exclude: dict[str, str] | None = None) -> list[str]:
    versions = closure(direct)
    shared = exclude or {}
    top = [f"{n}=={versions[_canonical(n)]}" for n in direct if _canonical(n) in versions]
    rest = sorted(
        f"{n}=={v}"
        for n, v in versions.items()
        if n not in {_canonical(d) for d in direct} and n not in shared
    )
    return top + (["# their dependencies, as tested", *rest] if rest else [])


def pins(gpu: bool = False, gpu_requirement: str = "") -> dict[str, object]:
    """Requirement lines for the runtime, the bundle's tests and the stream consumer."""
    runtime = _lines(RUNTIME)
    onnxruntime = closure(("onnxruntime",)).get("onnxruntime", "")
    if gpu:  # the same release built for CUDA, unless [deploy] gpu_requirement says otherwise
        wanted = gpu_requirement or f"onnxruntime-gpu=={onnxruntime}"
        runtime = [wanted if line.startswith("onnxruntime==") else line for line in runtime]
    shared = closure(RUNTIME)
    return {
        "runtime": runtime,
        "dev": _lines(DEV, shared),
        "stream": _lines(STREAM, shared),
        "onnxruntime": onnxruntime,
    }
