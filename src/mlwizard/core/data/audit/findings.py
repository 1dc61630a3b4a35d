"""What an audit rule reports: a finding with a severity, a column, a message and an action."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Severity = Literal["error", "warning", "info"]
SEVERITY_ORDER: dict[str, int] = {"error": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: Severity
    column: str | None
    message: str
    action: str
    # Set by rules whose column should not be a feature unless the user keeps it: the reason
    # recorded in `excluded_columns`. Not part of the serialised finding.
    exclude: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "column": self.column,
            "message": self.message,
            "action": self.action,
        }

    def one_line(self) -> str:
        where = f" ({self.column})" if self.column is not None else ""
        return f"{self.rule}{where}: {self.message} — {self.action}"


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]


def ordered(findings: list[Finding]) -> list[Finding]:
    """Errors first, then warnings, then info; rule order kept within a severity."""
    return sorted(findings, key=lambda f: SEVERITY_ORDER[f.severity])
