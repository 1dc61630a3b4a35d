"""Which kind of learning fits the problem: supervised, clustering or anomaly detection — and
reinforcement learning, recognised so it can be declined honestly.

mlwizard learns from a table: a column to predict (supervised), or none (clustering, anomaly
detection). A problem of sequential decisions judged by rewards is reinforcement learning, which
needs an environment or logged interactions and a policy learner; mlwizard does not pretend to be
one. It says so, names what to use instead, and offers the closest framing it does support.
"""

from __future__ import annotations

import re
from typing import Any

from mlwizard.core.kernel.config import Config
from mlwizard.core.kernel.errors import BadInputError

# A label whose rarer class is below this share suggests anomaly detection.
RARE_LABEL_SHARE = 0.05

# Phrases that mean "an agent takes actions over time and learns from rewards". One strong
# phrase is enough; weak words count only together (a "reward" column alone is a target).
_STRONG = (
    r"reinforcement[- ]learning",
    r"\brl\b",
    r"sequential decisions?",
    r"sequence of decisions",
    r"(learn|train|find|optimi[sz]e)\w* (a |the )?polic(y|ies)",
    r"multi[- ]armed bandits?",
    r"\bq[- ]learning\b",
    r"markov decision",
    r"\bmdp\b",
    r"cumulative reward",
    r"(maximi[sz]e|maximi[sz]ing) (the )?(total |long[- ]term |future |expected )?rewards?",
)
_WEAK = (
    r"\brewards?\b",
    r"\bagents?\b",
    r"\bactions?\b",
    r"\benvironment\b",
    r"\bstates?\b",
    r"\bepisodes?\b",
    r"\bpolic(y|ies)\b",
    r"\bover time\b",
    r"\beach step\b",
)

RL_ALTERNATIVES = (
    "Stable-Baselines3 or Ray RLlib (with a simulator), d3rlpy (offline RL from logged data), "
    "Vowpal Wabbit (contextual bandits)"
)


def looks_like_rl(text: str) -> bool:
    """True when a problem statement describes sequential decisions learned from rewards."""
    lowered = " ".join(text.lower().split())
    if not lowered:
        return False
    if any(re.search(p, lowered) for p in _STRONG):
        return True
    return sum(bool(re.search(p, lowered)) for p in _WEAK) >= 3


def rl_refusal(where: str) -> str:
    """The one-line refusal: what it is, that mlwizard does not do it, what to use, what fits."""
    return (
        f"{where} describes sequential decisions learned from rewards: that is reinforcement "
        f"learning, which mlwizard does not do; use {RL_ALTERNATIVES}; the closest framing "
        "mlwizard supports is a classifier of the next action (or of the outcome) from logged "
        'decisions: set [data] target to that column and [discovery] approach = "supervised"'
    )


def check_not_rl(config: Config, origin: str = "mlwizard.toml") -> None:
    """Raise the honest refusal when the configuration asks for reinforcement learning."""
    discovery = config.discovery
    if discovery.approach == "reinforcement_learning":
        raise BadInputError(rl_refusal(f'{origin} [discovery] approach = "reinforcement_learning"'))
    if looks_like_rl(discovery.problem):
        raise BadInputError(rl_refusal(f"{origin} [discovery] problem"))


def resolve(config: Config, origin: str) -> str:
    """The approach to run: supervised, clustering or anomaly (BadInputError if it cannot be)."""
    check_not_rl(config, origin)
    approach = config.discovery.approach
    target = config.data.target
    if approach == "auto":
        if not target:
            raise BadInputError(
                f"{origin}: [data] target is not set; pass --target COLUMN for a supervised "
                'model, or set [discovery] approach = "clustering" (groups of similar rows) or '
                '"anomaly" (unusual rows) to learn without one'
            )
        return "supervised"
    if approach == "supervised" and not target:
        raise BadInputError(f"{origin}: [data] target is not set; pass --target COLUMN")
    if approach == "clustering" and target:
        raise BadInputError(
            f"{origin}: clustering learns without a target, but [data] target = '{target}'; "
            'remove the target, or set [discovery] approach = "supervised"'
        )
    return approach


def suggestion(
    approach: str, target: str, classes: dict[str, int] | None, rows: int
) -> dict[str, Any]:
    """What the data suggests (never forced): shown in discovery's report and the TUI form."""
    if not target:
        return {
            "approach": approach,
            "why": "no target column: clustering finds groups of similar rows, anomaly detection "
            "ranks unusual ones",
        }
    if classes and len(classes) == 2 and rows:
        rare, count = min(classes.items(), key=lambda kv: kv[1])
        share = count / rows
        if share < RARE_LABEL_SHARE:
            return {
                "approach": "anomaly",
                "why": f"a rare label: '{rare}' is {share:.1%} of rows; anomaly detection with "
                'the label used only for evaluation may fit ([discovery] approach = "anomaly")',
            }
    return {"approach": "supervised", "why": f"a target column, '{target}', to learn from"}
