"""The runbook, the incident-response page and the schedules, written from the project itself.

Every alert names what it means, what to check and the commands to run, with this project's
numbers: its metric and the champion's score, the drift thresholds, the gate's confidence. The
schedules (cron, GitHub Actions, a systemd timer) all run one script: monitor, then retrain when
monitor exits 3.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from mlwizard.core.kernel import atomic
from mlwizard.core.kernel.context import PhaseContext
from mlwizard.core.operations import checks, drift
from mlwizard.core.operations.evaluation import CONFIDENCE
from mlwizard.core.operations.registry import Registry

LOG_DEFAULT = "predictions.ndjson"


def write_docs(ctx: PhaseContext, registry: Registry, reference: dict[str, Any]) -> dict[str, Path]:
    ops = ctx.config.operations
    root = ctx.workspace.root
    current = ops.current or f"$PREDICTION_LOG (default {LOG_DEFAULT})"
    facts = _facts(registry, reference)
    script = _script(root, ops.current, ops.retrain_data)
    outputs = {
        "runbook": atomic.write_text(ctx.artifact("runbook.md"), _runbook(facts, current)),
        "incident_response": atomic.write_text(
            ctx.artifact("incident-response.md"), _incidents(facts)
        ),
        "schedule_script": atomic.write_text(
            ctx.artifact("schedule/monitor-and-retrain.sh"), script
        ),
    }
    outputs["schedule_script"].chmod(0o755)
    run = shlex.quote(str(outputs["schedule_script"]))
    name = "mlwizard-" + "".join(c if c.isalnum() else "-" for c in ctx.config.project.name).strip(
        "-"
    )
    log = shlex.quote(str(root / "artifacts/operations/schedule.log"))
    outputs["crontab"] = atomic.write_text(
        ctx.artifact("schedule/crontab"),
        f"# {ctx.config.project.name}: monitor, then retrain on drift (install: crontab -e)\n"
        f"{ops.schedule} {run} >> {log} 2>&1\n",
    )
    outputs["github_actions"] = atomic.write_text(
        ctx.artifact("schedule/github-actions.yml"),
        _workflow(ops.schedule, ops.current, ops.retrain_data),
    )
    outputs["systemd_service"] = atomic.write_text(
        ctx.artifact(f"schedule/{name}.service"),
        "[Unit]\nDescription=mlwizard monitor, then retrain on drift\n\n"
        f"[Service]\nType=oneshot\nWorkingDirectory={root}\nExecStart={outputs['schedule_script']}\n"
        "SuccessExitStatus=3\n",
    )
    outputs["systemd_timer"] = atomic.write_text(
        ctx.artifact(f"schedule/{name}.timer"),
        f"[Unit]\nDescription=Run {name}.service on schedule\n\n"
        f"[Timer]\nOnCalendar={_on_calendar(ops.schedule)}\nPersistent=true\n\n"
        "[Install]\nWantedBy=timers.target\n",
    )
    return outputs


def _facts(registry: Registry, reference: dict[str, Any]) -> dict[str, Any]:
    champion = registry.champion()
    manifest = registry.manifest(champion) if champion else {}
    metric = reference.get("metric") or {}
    overall = (reference.get("performance") or {}).get("overall") or {}
    return {
        "champion": champion,
        "model": manifest.get("model"),
        "data_version": manifest.get("data_version"),
        "metric": metric.get("name"),
        "direction": metric.get("direction"),
        "score": overall.get("value"),
        "monitored": sorted(reference.get("features") or {}),
        "not_monitored": reference.get("not_monitored") or {},
    }


def _runbook(f: dict[str, Any], current: str) -> str:
    score = f"{f['score']:.4f}" if isinstance(f["score"], float) else "n/a"
    skipped = ", ".join(f"{k} ({v})" for k, v in sorted(f["not_monitored"].items())) or "none"
    return f"""# Runbook

Champion: version {f["champion"]} ({f["model"]}), trained on data version {f["data_version"]}.
Metric: {f["metric"]} ({f["direction"]}); the champion scored {score} on its test split.
Monitored features: {", ".join(f["monitored"]) or "none"}. Not monitored: {skipped}.

## Routine
- `mlwizard monitor {current}`: drift per feature; exit 0 healthy, 3 drift or degradation,
  2 bad input. Add `--labels COLUMN` when the outcome is known to check {f["metric"]}.
- `mlwizard models`: the registry, which version is champion and why.
- `mlwizard retrain --data NEW`: trains a challenger on NEW; it replaces the champion only if it
  is better on NEW's holdout with {CONFIDENCE:.0%} confidence (paired bootstrap).
- `mlwizard rollback [VERSION]`: makes an earlier version champion again and restores its bundle
  into `registry/serving/` byte for byte.
- `mlwizard monitor LOG --shadow LABELS`: the shadow challenger's logged predictions against the
  labels once they arrive, with the same gate.

## Thresholds
- Distribution drift: PSI above its sampling noise floor > {drift.PSI_WARN:g} moderate,
  > {drift.PSI_ALERT:g} major, and only when a chi-square test rejects "same distribution" at
  p < {drift.SIGNIFICANCE:g}. Fewer than {drift.MIN_ROWS} rows: "not enough rows to judge".
- Missing rate: an absolute change > {checks.MISSING_SHIFT[0]:.0%} moderate,
  > {checks.MISSING_SHIFT[1]:.0%} major (two-proportion test, p < {drift.SIGNIFICANCE:g}).
- New categories: > {checks.NEW_CATEGORY_SHARE[0]:.0%} of rows moderate,
  > {checks.NEW_CATEGORY_SHARE[1]:.0%} major.
- Performance: degraded when the {CONFIDENCE:.0%} bootstrap interval of {f["metric"]} lies
  entirely on the wrong side of the champion's {score}.

See incident-response.md for what to do when an alert fires.
"""


def _incidents(f: dict[str, Any]) -> str:
    score = f"{f['score']:.4f}" if isinstance(f["score"], float) else "n/a"
    sections = [
        (
            "Feature drift (monitor exits 3, a feature at `major`)",
            "Production data moved away from the training data on that feature.",
            "Open the report's HTML; check whether the source changed (units, encoding, a new "
            "upstream system) before blaming the world. A new category or a missing-rate jump is "
            "usually a pipeline change.",
            "mlwizard monitor CURRENT --labels COLUMN   # if labels exist: did the metric drop?\n"
            "mlwizard retrain --data CURRENT            # challenger on the new data; gated",
        ),
        (
            "Prediction drift",
            "The model's answers changed share (classes) or range (values).",
            "Compare with feature drift: prediction drift without feature drift points at a "
            "served model that is not the champion (check /metadata).",
            "mlwizard models\nmlwizard rollback            # back to the previous champion",
        ),
        (
            f"Performance degraded ({f['metric']} below {score})",
            "On labelled production rows the champion is significantly worse than at training.",
            "Check the slices in the report: one segment or all of them?",
            "mlwizard retrain --data CURRENT\n"
            "mlwizard rollback VERSION     # if a new champion caused it",
        ),
        (
            "Monitor exits 2",
            "The input could not be read: a missing file, missing feature columns, no rows.",
            "The one-line error names the file and column.",
            "mlwizard monitor CURRENT   # after fixing the input",
        ),
        (
            "Bad release",
            f"The champion (version {f['champion']}) misbehaves in production.",
            "Confirm with the request log and `mlwizard monitor LOG`.",
            "mlwizard rollback\n# then redeploy registry/serving/",
        ),
    ]
    parts = ["# Incident response\n"]
    for title, meaning, check, commands in sections:
        parts.append(
            f"## {title}\n\n**Means:** {meaning}\n\n**Check:** {check}\n\n"
            f"**Run:**\n\n```sh\n{commands}\n```\n"
        )
    return "\n".join(parts)


def _script(root: Path, current: str, retrain_data: str) -> str:
    current_arg = shlex.quote(current) if current else f'"${{PREDICTION_LOG:-{LOG_DEFAULT}}}"'
    retrain = (
        f"  mlwizard retrain --data {shlex.quote(retrain_data)}\n"
        if retrain_data
        else '  echo "drift found: set [operations] retrain_data to retrain automatically" >&2\n'
    )
    return (
        "#!/bin/sh\n# Generated by mlwizard: monitor, then retrain when monitor reports drift.\n"
        f"set -u\ncd {shlex.quote(str(root))} || exit 2\n"
        f"mlwizard monitor {current_arg} --prometheus artifacts/operations/drift.prom\n"
        'status=$?\nif [ "$status" -eq 3 ]; then\n' + retrain + '  exit 0\nfi\nexit "$status"\n'
    )


def _workflow(schedule: str, current: str, retrain_data: str) -> str:
    retrain = (
        '          if [ "$status" -eq 3 ]; then '
        f"mlwizard retrain --data {shlex.quote(retrain_data)}; exit 0; fi\n"
        if retrain_data
        else "          if [ \"$status\" -eq 3 ]; then echo 'drift: set retrain_data'; exit 0; fi\n"
    )
    target = shlex.quote(current or LOG_DEFAULT)
    return (
        "name: mlwizard monitor\n"
        "on:\n"
        "  schedule:\n"
        f"    - cron: {schedule!r}\n"
        "  workflow_dispatch: {}\n"
        "jobs:\n"
        "  monitor:\n"
        "    runs-on: ubuntu-latest\n"
        "    steps:\n"
        "      - uses: actions/checkout@v4\n"
        "      - uses: actions/setup-python@v5\n"
        "        with:\n"
        "          python-version: '3.12'\n"
        "      - run: pip install mlwizard\n"
        "      - name: monitor, then retrain on drift\n"
        "        run: |\n"
        "          set +e\n"
        f"          mlwizard monitor {target}\n"
        "          status=$?\n" + retrain + "          exit $status\n"
        "      - uses: actions/upload-artifact@v4\n"
        "        if: always()\n"
        "        with:\n"
        "          name: monitor-report\n"
        "          path: artifacts/operations/monitor/\n"
    )


def _on_calendar(cron: str) -> str:
    """systemd OnCalendar from a five-field cron (minute hour day month weekday)."""
    fields = cron.split()
    if len(fields) != 5:
        return "weekly"
    minute, hour, day, month, weekday = fields
    days = {
        "0": "Sun",
        "1": "Mon",
        "2": "Tue",
        "3": "Wed",
        "4": "Thu",
        "5": "Fri",
        "6": "Sat",
        "7": "Sun",
    }
    prefix = ",".join(days.get(d, d) for d in weekday.split(",")) + " " if weekday != "*" else ""
    star = lambda v: "*" if v == "*" else v.zfill(2)  # noqa: E731
    return f"{prefix}*-{star(month)}-{star(day)} {star(hour)}:{star(minute)}:00"
