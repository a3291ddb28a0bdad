"""Implicit bias of GD on separable data: Soudry, Hoffer, Nacson, Gunasekar, Srebro (JMLR 2018),
and its large-step counterpart (Tyurin 2025): the small-step runs are all but the largest η."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gdbench import analysis
from gdbench.claims import FAILS, HOLDS, INCONCLUSIVE, Band, Criterion, Verdict, fmt


def _small_steps(runs):
    lrs = sorted(runs["lr"].unique())
    return runs[runs["lr"] < lrs[-1]], lrs


def _tail(traj, run_ids, first: int):
    t = traj[traj["run_id"].isin(run_ids)]
    return t[t["iter"] >= first]


@dataclass(frozen=True)
class LossRate(Criterion):
    """With small steps F_t ~ 1/t (Soudry et al., Thm 3 and its proof: ‖w_t‖ = log t/μ + O(1)
    gives F_t = Θ(1/t)). The slope of log F_t on log t over the last decade [T/10, T], median over
    the small-step runs:

    - slope in [−1.15, −0.85]. The correction to F_t·t is a function of log t, so the local
      slope is −1 + O(1/log t); over [T/10, T] at T = 2·10⁴ (log T ≈ 10) that is about a tenth.
      A run still in its initial phase shows a shallower slope: that is the study not reaching
      the asymptotic regime, which `regime_r2` tells apart — the decay must already be a clean
      power law (R² ≥ 0.99) over that window."""
    slope: Band = Band(-1.15, -0.85)
    regime_r2: float = 0.99

    def expected(self) -> str:
        return (f"median slope of log F_t on log t over the last decade [T/10, T] of the small-step runs in "
                f"{self.slope}, with R² ≥ {fmt(self.regime_r2)} (the asymptotic regime)")

    def measure(self, runs, traj):
        small, lrs = _small_steps(runs)
        t0 = int(small["iterations"].min()) // 10
        rates = analysis.fit_rates(small, traj, t0=t0)
        slope, r2 = float(rates["rate_slope"].median()), float(rates["rate_r2"].median())
        return {"slope": slope, "r2": r2,
                "text": f"median slope of log F_t on log t over t ∈ [{t0}, T] at η < {fmt(lrs[-1])}: {fmt(slope)} "
                        f"(median R² {fmt(r2)})"}

    def judge(self, m):
        if m["slope"] in self.slope:
            return Verdict(HOLDS, m["text"], "F_t ~ 1/t")
        if not m["r2"] >= self.regime_r2:
            return Verdict(INCONCLUSIVE, m["text"], "the loss is not yet a clean power law of t over the last "
                           "decade (regime not reached): run longer")
        return Verdict(FAILS, m["text"], f"the loss decays like t^{fmt(m['slope'])}, outside {self.slope}")


@dataclass(frozen=True)
class DirectionLogRate(Criterion):
    """…while the direction converges to the max-margin one only like 1/log t (Soudry et al.,
    Thm 3: ‖w_t/‖w_t‖ − u‖ = O(1/log t) when the support vectors span the data generically). The
    direction error e_t of the small-step runs over t ≥ t_min:

    - e_t·log t is constant: the slope of log e_t on log log t lies in [−1.3, −0.7]. The next
      term of w_t is log log t-sized in degenerate cases (O(log log t/log t)), which moves the
      slope by about 0.3 over the few units of log t any run can cover;
    - and not a power of t: the slope of log e_t on log t is above power_max = −0.3 (a power
      law like the loss's −1 would refute the logarithmic rate)."""
    log_slope: Band = Band(-1.3, -0.7)
    power_max: float = -0.3
    t_min: int = 100

    def expected(self) -> str:
        return (f"small-step runs, t ≥ {self.t_min}: slope of log(direction error) on log log t in {self.log_slope} "
                f"(1/log t), and its slope on log t above {fmt(self.power_max)} (no power of t)")

    def measure(self, runs, traj):
        if "direction_error" not in traj or "final_direction_error" not in runs:
            return Verdict(INCONCLUSIVE, "no direction_error recorded", "run with direction=svm")
        small, lrs = _small_steps(runs)
        tail = _tail(traj, small["run_id"], self.t_min)
        tail = tail[tail["direction_error"] > 0]
        in_t, in_logt = [], []
        for _, g in tail.groupby("run_id", observed=True):
            if g["iter"].nunique() >= 3:
                in_t.append(analysis.fit_loglog(g["iter"], g["direction_error"])["exponent"])
                in_logt.append(analysis.fit_loglog(np.log(g["iter"]), g["direction_error"])["exponent"])
        s_t, s_logt = (float(np.median(v)) if v else np.nan for v in (in_t, in_logt))
        return {"power": s_t, "log_slope": s_logt,
                "text": f"direction error ∝ (log t)^{fmt(s_logt)}, ∝ t^{fmt(s_t)} (medians over the runs at "
                        f"η < {fmt(lrs[-1])}, t ≥ {self.t_min})"}

    def judge(self, m):
        if not np.isfinite(m["log_slope"]):
            return Verdict(INCONCLUSIVE, m["text"], f"too few recorded iterations after t = {self.t_min}")
        if not m["power"] > self.power_max:
            return Verdict(FAILS, m["text"], f"the direction error falls like a power of t (t^{fmt(m['power'])})")
        if m["log_slope"] in self.log_slope:
            return Verdict(HOLDS, m["text"], "the direction error falls like 1/log t")
        return Verdict(FAILS, m["text"], f"the direction error falls like (log t)^{fmt(m['log_slope'])}, outside "
                       f"{self.log_slope}")


@dataclass(frozen=True)
class PerceptronNotMaxMargin(Criterion):
    """With very large steps the limit is the perceptron's direction, not the max-margin one
    (Tyurin 2025 against Soudry et al.). At the largest η:

    - gap_max: the gap to the perceptron companion ≤ 1e-2 (as in `PerceptronLimit`);
    - ratio_min: its final direction error to the SVM direction is ≥ 3× that of the smallest
      step. The small-step error still shrinks like 1/log T, so the ratio grows only slowly
      with the budget; 3× is beyond the spread of the small-step error over datasets of the
      same law (about ±20%), so a ratio ≥ 3 means the large step sits at a different limit."""
    gap_max: float = 1e-2
    ratio_min: float = 3.0

    def expected(self) -> str:
        return (f"at the largest η: gap to the perceptron ≤ {fmt(self.gap_max)} while the direction error to the "
                f"SVM direction is ≥ {fmt(self.ratio_min)}× the smallest step's")

    def measure(self, runs, traj):
        if "final_direction_error" not in runs:
            return Verdict(INCONCLUSIVE, "no direction_error recorded", "run with direction=svm")
        lrs = sorted(runs["lr"].unique())
        finals = runs.groupby("lr")["final_direction_error"].median()
        big = runs[runs["lr"] == lrs[-1]]
        gap = float(big["final_perceptron_gap"].median()) if "final_perceptron_gap" in big else np.nan
        err_big, err_small = float(finals.iloc[-1]), float(finals.iloc[0])
        return {"gap": gap, "ratio": err_big / err_small if err_small > 0 else np.inf,
                "text": f"at η={fmt(lrs[-1])}: gap to the perceptron {fmt(gap)}, direction error to the SVM "
                        f"{fmt(err_big)} = {fmt(err_big / err_small)}× that at η={fmt(lrs[0])} ({fmt(err_small)})"}

    def judge(self, m):
        if m["gap"] <= self.gap_max and m["ratio"] >= self.ratio_min:
            return Verdict(HOLDS, m["text"], "large steps follow the perceptron, away from the max-margin direction")
        return Verdict(FAILS, m["text"], "; ".join(
            ([f"the gap to the perceptron exceeds {fmt(self.gap_max)}"] if not m["gap"] <= self.gap_max else [])
            + ([f"the direction error is within {fmt(self.ratio_min)}× of the small step's"]
               if not m["ratio"] >= self.ratio_min else [])))
