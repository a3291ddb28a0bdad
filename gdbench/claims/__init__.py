"""The papers' claims as criteria over one sweep's results (runs, trajectory) → a verdict.

Every claim is a frozen dataclass whose fields are its thresholds and tolerance bands, defined
once, next to the claim, with each band's reason in the docstring. From those same fields:

    expected()          the criterion as printed in claims.md ("expected: …")
    measure(runs, traj) the numbers the criterion needs, computed from the results (nothing typed
                        in), as a dict with a "text" entry (what claims.md prints as "measured"),
                        or a Verdict straight away when the results cannot decide
    judge(measured)     the thresholds applied to those numbers → Verdict
    evaluate(runs, traj) = judge(measure(runs, traj))

A verdict is one of three, and its reason says which case it is:
    holds           the criterion printed is the criterion tested, and it is met;
    does not hold   the study reached the claim's regime and the criterion failed there;
    inconclusive    the study could not decide: it did not reach the regime (no run oscillated, data
                    that a model cannot separate, too few levels for a fit), or the criterion is
                    met for a reason that is not the paper's mechanism ("holds trivially").

`gdbench/reproduce.py` maps each study to its claims; docs/claims.md lists them.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

HOLDS, FAILS, INCONCLUSIVE = "holds", "does not hold", "inconclusive"


@dataclass
class Verdict:
    verdict: str
    measured: str
    reason: str


def fmt(v) -> str:
    """A number as claims.md prints it: 3 significant digits, — for a missing value."""
    if v is None or (isinstance(v, (float, np.floating)) and not np.isfinite(v)):
        return "—"
    return f"{v:.3g}" if isinstance(v, (float, np.floating)) else str(v)


@dataclass(frozen=True)
class Band:
    """A closed interval [low, high] that a measured value must fall in."""
    low: float
    high: float

    def __contains__(self, value) -> bool:
        return bool(np.isfinite(value) and self.low <= value <= self.high)

    def __str__(self) -> str:
        return f"[{fmt(self.low)}, {fmt(self.high)}]"


class Criterion:
    """Base of every claim: see the module docstring."""

    def expected(self) -> str:
        raise NotImplementedError

    def measure(self, runs: pd.DataFrame, traj: pd.DataFrame):
        raise NotImplementedError

    def judge(self, m: dict) -> Verdict:
        raise NotImplementedError

    def evaluate(self, runs: pd.DataFrame, traj: pd.DataFrame):
        """A Verdict, or a list of them for a criterion judged once per dataset family."""
        m = self.measure(runs, traj)
        if isinstance(m, Verdict):
            return m
        if isinstance(m, list):
            return [x if isinstance(x, Verdict) else self.judge(x) for x in m]
        return self.judge(m)

    def thresholds(self) -> dict:
        """The criterion's numbers, by field name (what expected() renders and judge() applies)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def model_name(row) -> str:
    if row.get("model") == "linear":
        return "linear"
    return f"{row.get('model')}({row.get('activation')})"


def with_model_name(runs: pd.DataFrame) -> pd.DataFrame:
    return runs.assign(model_name=[model_name(r) for r in runs[["model", "activation"]].to_dict("records")])


def ok_runs(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[runs["status"] == "ok"]


from gdbench.claims.perceptron import PerceptronLimit, PerceptronLowerBound, UnreliableLoss  # noqa: E402
from gdbench.claims.large_steps import LargeStepRates, TransitionSaturates, TransitionScaling  # noqa: E402
from gdbench.claims.dimension import DimensionGap  # noqa: E402
from gdbench.claims.real_data import (NonlinearFaster, NonSeparableControl, OscillatesAtLargeSteps,  # noqa: E402
                                      LargeStepsSeparateFastest)
from gdbench.claims.implicit_bias import DirectionLogRate, LossRate, PerceptronNotMaxMargin  # noqa: E402
from gdbench.claims.edge_of_stability import (EdgeOfStability, LogisticSharpnessFalls,  # noqa: E402
                                              PlateauScalesAsInverseStep)

__all__ = ["HOLDS", "FAILS", "INCONCLUSIVE", "Verdict", "Band", "Criterion", "fmt",
           "PerceptronLimit", "UnreliableLoss", "PerceptronLowerBound", "LargeStepRates", "TransitionSaturates",
           "TransitionScaling", "DimensionGap", "OscillatesAtLargeSteps", "LargeStepsSeparateFastest",
           "NonlinearFaster", "NonSeparableControl", "LossRate", "DirectionLogRate", "PerceptronNotMaxMargin",
           "EdgeOfStability", "PlateauScalesAsInverseStep", "LogisticSharpnessFalls"]
