"""The written splits' labels: classes missing from a split, and the label shift across splits.

A time (or group) split does not share classes out evenly: the latest rows may lack a class or
hold it in another proportion. Scikit-learn then warns, fold after fold, that a class has too few
members or that a metric is ill-defined; these findings say it once, with what it means.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlwizard.core.data.audit.findings import Finding

SHIFT_WARNING = 0.1  # total variation distance between two splits' class shares


def split_balance(
    target: str, splits: Mapping[str, Mapping[str, Any]], strategy: str
) -> list[Finding]:
    """Findings on the class counts of the train, valid and test splits (classification)."""
    if any(s.get("class_counts") is None for s in splits.values()):
        return []
    counts: dict[str, Mapping[str, int]] = {n: s["class_counts"] for n, s in splits.items()}
    findings = []
    train = counts["train"]
    for name in ("valid", "test"):
        missing = [c for c, n in counts[name].items() if n == 0 and train.get(c, 0) > 0]
        if missing and splits[name]["rows"]:
            findings.append(
                Finding(
                    "class_missing_from_split",
                    "warning",
                    target,
                    f"the {name} split has no rows of class {_listed(missing)} "
                    f"({strategy} split): {name} scores say nothing about "
                    f"{'it' if len(missing) == 1 else 'them'}, and per-class metrics are "
                    "undefined there",
                    _action(strategy),
                )
            )
    unseen = [c for c, n in train.items() if n == 0]
    if unseen:
        findings.append(
            Finding(
                "class_missing_from_split",
                "warning",
                target,
                f"the train split has no rows of class {_listed(unseen)} ({strategy} split): "
                "the model cannot learn to predict it",
                _action(strategy),
            )
        )
    if strategy in ("time", "group"):
        findings += _shift(target, splits, strategy)
    return findings


def _shift(target: str, splits: Mapping[str, Mapping[str, Any]], strategy: str) -> list[Finding]:
    train = splits["train"]["class_balance"]
    worst, where = 0.0, ""
    for name in ("valid", "test"):
        if not splits[name]["rows"]:
            continue
        other = splits[name]["class_balance"]
        distance = 0.5 * sum(abs(train.get(c, 0.0) - other.get(c, 0.0)) for c in train)
        if distance > worst:
            worst, where = distance, name
    if worst < SHIFT_WARNING:
        return []
    shares = ", ".join(
        f"{c} {100 * train[c]:.0f}% → {100 * splits[where]['class_balance'].get(c, 0.0):.0f}%"
        for c in train
    )
    later = "later rows" if strategy == "time" else "other groups"
    return [
        Finding(
            "label_shift",
            "warning",
            target,
            f"the class shares shift between train and {where} ({strategy} split; {shares}): "
            f"{later} have other outcomes, so {where} scores and the threshold chosen on "
            "validation may not carry over",
            "expected if outcomes change over time; judge by ROC AUC or macro F1 rather than "
            "accuracy, retrain often, and watch the prediction mix after deploy",
        )
    ]


def _listed(values: list[str]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def _action(strategy: str) -> str:
    if strategy == "time":
        return (
            "move the split's boundary ([split] valid_fraction, test_fraction) so every class "
            'occurs in each part, or use [split] strategy = "stratified" if time does not matter'
        )
    if strategy == "group":
        return 'add groups with that class, or use [split] strategy = "stratified"'
    return "add rows of that class; a stratified split needs at least 3 of each"
