"""Implicit bias of GD on separable data: Soudry, Hoffer, Nacson, Gunasekar, Srebro (JMLR 2018),
and its large-step counterpart (Tyurin 2025): the small-step runs are all but the largest η."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gdbench import analysis
from gdbench.claims.base import FAILS, HOLDS, INCONCLUSIVE, Band, Criterion, Verdict, fmt


def _small_steps(runs):
    lrs = sorted(runs["lr"].unique())
    return runs[runs["lr"] < lrs[-1]], lrs


def _tail(traj, run_ids, first: int):
    t = traj[traj["run_id"].isin(run_ids)]
    return t[t["iter"] >= first]


@dataclass(frozen=True)
class LossRate(Criterion):
    """With small steps F_t ~ 1/t (Soudry et al., Thm 3: w_t = ŵ log(ηt) + O(1) with ‖ŵ‖ = 1/μ,
    so F_t·μ²ηt → 1 for the mean logistic loss; call ρ_t = μ²ηt·F_t, μ the recorded data_margin).
    The slope of log F_t on log t over the last decade [T/10, T] is −1 + (the change of log ρ over
    that decade)/log 10:

    - rho_min: a run counts once ρ_T ≥ 0.8 (it is near its asymptote: ρ can then change by at
      most a factor 1/0.8 over the decade); no such run is the study not reaching the regime;
    - slope in [−1.1, −0.9]: log(1/0.8)/log 10 ≈ 0.1 of room either side of −1, median over
      the counted runs."""
    slope: Band = Band(-1.1, -0.9)
    rho_min: float = 0.8

    def expected(self) -> str:
        return (f"median slope of log F_t on log t over the last decade [T/10, T] in {self.slope}, over the "
                f"small-step runs near their asymptote (μ²ηT·F_T ≥ {fmt(self.rho_min)})")

    def measure(self, runs, traj):
        if "data_margin" not in runs or runs["data_margin"].isna().all():
            return Verdict(INCONCLUSIVE, "no data_margin recorded", "run with direction=svm")
        small, lrs = _small_steps(runs)
        t0 = int(small["iterations"].min()) // 10
        rates = analysis.fit_rates(small, traj, t0=t0)
        rho = small["data_margin"] ** 2 * small["lr"] * small["iterations"] * np.exp(small["final_log_loss"])
        near = small.loc[rho.to_numpy() >= self.rho_min, "run_id"]
        slope = float(rates.loc[rates.index.isin(near), "rate_slope"].median()) if len(near) else np.nan
        return {"slope": slope, "near": len(near),
                "text": f"μ²ηT·F_T at η < {fmt(lrs[-1])}: " + ", ".join(fmt(v) for v in rho.to_numpy())
                        + f"; median slope of log F_t on log t over t ∈ [{t0}, T] of the {len(near)} runs with "
                          f"ρ_T ≥ {fmt(self.rho_min)}: {fmt(slope)}"}

    def judge(self, m):
        if not m["near"]:
            return Verdict(INCONCLUSIVE, m["text"], "no small-step run is near its asymptote (regime not reached): "
                           "run longer or with a larger stable step")
        if m["slope"] in self.slope:
            return Verdict(HOLDS, m["text"], "F_t ~ 1/t")
        return Verdict(FAILS, m["text"], f"the loss decays like t^{fmt(m['slope'])}, outside {self.slope}")


@dataclass(frozen=True)
class DirectionLogRate(Criterion):
    """…while the direction converges to the max-margin one only like 1/log t (Soudry et al.,
    Thm 3: with w_t = ŵ log(ηt) + w̃ + o(1), the direction error e_t = ‖w_t/‖w_t‖ − ŵ/‖ŵ‖‖ is
    ‖w̃_⊥‖/(‖ŵ‖ log(ηt)) asymptotically). Over the small-step runs' t ≥ t_min (medians):

    - log_slope: the slope of log e_t on log log(ηt) in [−1.15, −0.85]: −1 asymptotically; the
      points off the margin pull like t^(1−k) (k their margin in units of μ), which bends the
      early part of the window by up to ~0.1 on the study's data (k ≥ 1.5);
    - ratio_tol: e_T/e_{T/10} within 5% of log(ηT/10)/log(ηT), the 1/log prediction over the
      last decade (a power law would give 10^slope instead);
    - power_max: and not a power of t: the slope of log e_t on log t is above −0.3 (a 1/log
      decay has slope −1/log(ηt) ≈ −0.1 to −0.2 here, a power law like the loss's −1)."""
    log_slope: Band = Band(-1.15, -0.85)
    ratio_tol: float = 0.05
    power_max: float = -0.3
    t_min: int = 100

    def expected(self) -> str:
        return (f"small-step runs, t ≥ {self.t_min}: slope of log(direction error) on log log(ηt) in "
                f"{self.log_slope}; e_T/e_(T/10) within {fmt(100 * self.ratio_tol)}% of log(ηT/10)/log(ηT); slope "
                f"on log t above {fmt(self.power_max)} (no power of t)")

    def measure(self, runs, traj):
        if "direction_error" not in traj or "final_direction_error" not in runs:
            return Verdict(INCONCLUSIVE, "no direction_error recorded", "run with direction=svm")
        small, lrs = _small_steps(runs)
        tail = _tail(traj, small["run_id"], self.t_min).merge(small[["run_id", "lr", "iterations"]], on="run_id")
        tail = tail[tail["direction_error"] > 0]
        in_t, in_log, off = [], [], []
        for _, g in tail.groupby("run_id", observed=True):
            if g["iter"].nunique() < 3:
                continue
            eta, T = float(g["lr"].iloc[0]), int(g["iterations"].iloc[0])
            in_t.append(analysis.fit_loglog(g["iter"], g["direction_error"])["exponent"])
            in_log.append(analysis.fit_loglog(np.log(eta * g["iter"]), g["direction_error"])["exponent"])
            e = g.set_index("iter")["direction_error"]
            late = e[e.index >= T // 10]
            ratio, pred = late.iloc[-1] / late.iloc[0], np.log(eta * late.index[0]) / np.log(eta * late.index[-1])
            off.append(abs(ratio / pred - 1))
        med = [float(np.median(v)) if v else np.nan for v in (in_t, in_log, off)]
        return {"power": med[0], "log_slope": med[1], "ratio_off": med[2],
                "text": f"direction error ∝ (log ηt)^{fmt(med[1])}, ∝ t^{fmt(med[0])}; last decade's ratio off the "
                        f"1/log prediction by {fmt(100 * med[2])}% (medians over the {len(in_t)} runs at "
                        f"η < {fmt(lrs[-1])}, t ≥ {self.t_min})"}

    def judge(self, m):
        if not np.isfinite(m["log_slope"]):
            return Verdict(INCONCLUSIVE, m["text"], f"too few recorded iterations after t = {self.t_min}")
        if not m["power"] > self.power_max:
            return Verdict(FAILS, m["text"], f"the direction error falls like a power of t (t^{fmt(m['power'])})")
        if m["log_slope"] in self.log_slope and m["ratio_off"] <= self.ratio_tol:
            return Verdict(HOLDS, m["text"], "the direction error falls like 1/log t")
        return Verdict(FAILS, m["text"], f"the direction error does not follow 1/log t (slope {fmt(m['log_slope'])} "
                       f"against log log ηt, last decade off by {fmt(100 * m['ratio_off'])}%)")


@dataclass(frozen=True)
class PerceptronNotMaxMargin(Criterion):
    """With very large steps the limit is the perceptron's direction, not the max-margin one
    (Tyurin 2025 against Soudry et al.). At the largest η:

    - gap_max: the gap to the perceptron companion ≤ 1e-2 (as in `PerceptronLimit`);
    - ratio_min: its final direction error to the SVM direction is ≥ 3× that of the smallest
      step. The small-step error still shrinks like 1/log(ηT), so the ratio grows only slowly
      with the budget; a factor 3 cannot come from that decay within any budget a sweep can
      run (it would take log(ηT) to triple), so it means the large step sits at another limit."""
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
