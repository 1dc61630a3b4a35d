"""The model-validation gate: exit 1 unless the champion's test metric reaches the success
criterion (or beats the baseline) and its ONNX parity held at deploy time."""

import json
import sys
from pathlib import Path

metadata = json.loads(
    (Path(__file__).resolve().parents[1] / "models/champion/metadata.json").read_text()
)
metrics = metadata.get("metrics") or {}
name = metrics.get("metric")
score = (metrics.get("test") or {}).get(name)
threshold = metadata.get("success_threshold")
parity = metadata.get("parity") or {}
problems = []
if not parity.get("passed"):
    problems.append(f"parity {parity.get('max_abs_diff')} over tolerance {parity.get('tolerance')}")
if score is None:
    problems.append(f"no test score for {name}")
elif threshold is not None:
    lower_is_better = name in {"rmse", "mae", "mse", "log_loss", "mape"}
    if (score > threshold) if lower_is_better else (score < threshold):
        problems.append(f"test {name} {score:.4g} misses the success criterion {threshold:.4g}")
if problems:
    print("model gate failed: " + "; ".join(problems))
    sys.exit(1)
print(f"model gate passed: test {name} {score:.4g}, parity {parity.get('max_abs_diff'):.2g}")
