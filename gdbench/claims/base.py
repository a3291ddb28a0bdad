"""What every claim is built from: the verdicts, tolerance bands, the Criterion base class and
small helpers over the runs table (the package docstring, gdbench/claims/__init__.py, says how
they fit together)."""
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
