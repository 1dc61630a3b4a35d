"""Deploy-time optimisation of the ONNX model: onnxruntime's offline graph optimisation and
dynamic (int8 weight) quantisation, each kept only if the serving parity check still holds.

The choice is deterministic (quantised if it holds parity, else graph-optimised if it does, else
the model as trained), so the same model gives the same bundle; the latency of every variant is
measured and recorded in `metadata.json` (`optimisation`) for the reader to judge.
"""

from __future__ import annotations

import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlwizard.core.deploy.parity import ServiceParity, load_model_predictor

LATENCY_REPEATS = 7
BATCH_ROWS = 128
VARIANTS = ("original", "graph_optimised", "quantised")
QUANTISED_OPS = frozenset(
    {"DynamicQuantizeLinear", "MatMulInteger", "ConvInteger", "DynamicQuantizeMatMul"}
)


def op_types(path: Path) -> list[str]:
    import onnx

    return sorted(node.op_type for node in onnx.load(str(path)).graph.node)


def unchanged_reason(name: str, original: Path, variant: Path) -> str | None:
    """Why a variant is the model as trained in other clothes (then it is not kept)."""
    ops = op_types(variant)
    if name == "quantised" and not QUANTISED_OPS & set(ops):
        return "not applicable: the graph has no weights onnxruntime quantises (MatMul, Conv)"
    if name == "graph_optimised" and ops == op_types(original):
        return "no change: the graph had nothing to fold or fuse"
    return None


def graph_optimise(source: Path, target: Path) -> None:
    """onnxruntime's basic graph optimisations (constant folding, redundant nodes), saved offline.
    Basic only: the extended and layout levels may write hardware-specific graphs."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(target)
    options.log_severity_level = 3
    ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])


def quantise(source: Path, target: Path) -> None:
    """Dynamic quantisation of the weights to int8 (helps linear algebra, not tree ensembles)."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger("root").setLevel(logging.ERROR)  # its per-node notes are not for users
    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)


def latency_ms(predictor: Any, rows: list[dict[str, Any]]) -> dict[str, float]:
    """Median milliseconds for one row and for a batch of up to BATCH_ROWS rows."""
    batch = (rows * (BATCH_ROWS // max(len(rows), 1) + 1))[:BATCH_ROWS]
    result = {}
    for name, sample in (("row", batch[:1]), (f"batch_{len(batch)}", batch)):
        predictor.predict_records(sample)  # warm
        times = []
        for _ in range(LATENCY_REPEATS):
            start = time.perf_counter()
            predictor.predict_records(sample)
            times.append(time.perf_counter() - start)
        result[name] = round(statistics.median(times) * 1000, 4)
    return result


def optimise(
    model_dir: Path,
    workdir: Path,
    parity_of: Callable[[Path], ServiceParity],
    rows: list[dict[str, Any]],
    original: ServiceParity,
) -> dict[str, Any]:
    """Try each variant of `model_dir/model.onnx` in a copy of the folder under `workdir`; put
    the chosen one in `model_dir`. Returns what goes in metadata.json's `optimisation`."""
    report: dict[str, Any] = {"variants": {}, "chosen": "original"}
    makers = {"graph_optimised": graph_optimise, "quantised": quantise}
    passing = []
    for name in VARIANTS:
        folder = workdir / name
        shutil.copytree(model_dir, folder, dirs_exist_ok=True)
        entry: dict[str, Any] = {}
        if name in makers:
            try:
                makers[name](model_dir / "model.onnx", folder / "model.onnx")
                reason = unchanged_reason(name, model_dir / "model.onnx", folder / "model.onnx")
            except Exception as exc:  # converters raise many kinds; the reason is recorded
                reason = f"not applicable: {(str(exc).splitlines() or [''])[0][:200]}"
            if reason is not None:
                report["variants"][name] = {"kept": False, "reason": reason}
                continue
        try:
            parity = original if name == "original" else parity_of(folder)
            entry["parity"] = parity.to_dict()
            entry["latency_ms"] = latency_ms(load_model_predictor(folder), rows)
            entry["bytes"] = (folder / "model.onnx").stat().st_size
        except Exception as exc:
            entry.update(kept=False, reason=f"does not load: {str(exc).splitlines()[0][:200]}")
            report["variants"][name] = entry
            continue
        if parity.passed:
            passing.append(name)
        elif name != "original":
            entry["reason"] = "parity does not hold"
        report["variants"][name] = entry
    chosen = next((n for n in ("quantised", "graph_optimised") if n in passing), "original")
    for name, entry in report["variants"].items():
        entry["kept"] = name == chosen
    report["chosen"] = chosen
    if chosen != "original":
        shutil.copyfile(workdir / chosen / "model.onnx", model_dir / "model.onnx")
    return report
