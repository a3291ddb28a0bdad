"""Claims about large-step GD on separable data: Wu, Bartlett, Telgarsky, Yu (COLT 2024) and
Crawshaw & Liu (COLT 2026)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gdbench import analysis
from gdbench.claims import FAILS, HOLDS, INCONCLUSIVE, Band, Criterion, Verdict, fmt, ok_runs


@dataclass(frozen=True)
class LargeStepRates(Criterion):
    """Wu et al.: after an O(η) unstable phase F_t ~ 1/(ηt), so η = c·T gives F_T ~ 1/T²; a fixed
    η gives 1/T. Exponents of F_T against T from `analysis.budget_table` (schedules seen at every
    budget).

    - exponent_max: every η = c·T has an exponent ≤ −1.5. The theorem is an upper bound O(1/T²)
      after the unstable phase; at the smallest budgets part of the run is still in that phase,
      which can make the finite-T slope either shallower or steeper than −2; −1.5 separates it
      from the fixed step's −1 with room for that bias. A steeper slope is consistent with the
      bound.
    - and every η = c·T decays faster than every fixed η (the acceleration itself).
    Regime: some η = c·T run must have a loss increase (an unstable phase); otherwise the steps
    are not large for these data and the sweep cannot speak to the claim."""
    exponent_max: float = -1.5

    def expected(self) -> str:
        return (f"exponent of F_T in T ≤ {fmt(self.exponent_max)} for every η = c·T (reference −2) and below the "
                "exponent of every fixed η (reference −1); some η = c·T run has an unstable phase")

    def measure(self, runs, traj):
        table = analysis.budget_table(runs, n_boot=200)
        full = table["budgets"].max() if len(table) else 0
        prop = table[(table["schedule"] == analysis.PROPORTIONAL) & (table["budgets"] == full)] if len(table) else table
        fixed = table[(table["schedule"] == analysis.FIXED) & (table["budgets"] == full)] if len(table) else table
        if not len(prop) or not len(fixed) or prop["exponent"].isna().all():
            return Verdict(INCONCLUSIVE, "η = c·T or fixed schedules missing at three budgets or more",
                           "sweep the full product of iterations and algorithm.lr")
        df = ok_runs(runs).assign(_c=lambda d: d["lr"] / d["iterations"])
        unstable = bool((df[df["_c"].round(12).isin(prop["value"].round(12))]["n_increases"] > 0).any())
        text = ("η = c·T: " + ", ".join(f"c={fmt(r.value)}: T^{fmt(r.exponent)} [{fmt(r.ci_low)}, {fmt(r.ci_high)}]"
                                        for r in prop.itertuples())
                + "; fixed η: " + ", ".join(f"η={fmt(r.value)}: T^{fmt(r.exponent)}" for r in fixed.itertuples())
                + f"; η = c·T runs with a loss increase: {'yes' if unstable else 'none'}")
        return {"proportional": prop["exponent"].to_list(), "fixed": fixed["exponent"].to_list(),
                "unstable": unstable, "text": text}

    def judge(self, m):
        if not m["unstable"]:
            return Verdict(INCONCLUSIVE, m["text"], "no η = c·T run had an unstable phase: the steps are not large "
                           "for these data (regime not reached)")
        steep = all(e <= self.exponent_max for e in m["proportional"])
        faster = max(m["proportional"]) < min(m["fixed"])
        if steep and faster:
            return Verdict(HOLDS, m["text"], f"η ∝ T decays at least like T^{fmt(self.exponent_max)} and faster "
                           "than any fixed step")
        return Verdict(FAILS, m["text"], "; ".join(
            ([f"some η = c·T decays slower than T^{fmt(self.exponent_max)}"] if not steep else [])
            + (["some η = c·T is not faster than a fixed step"] if not faster else [])))


def _margin_column(df: pd.DataFrame) -> str:
    """The exact data margin (direction=svm records it) when present, else the configured one."""
    return "data_margin" if "data_margin" in df and df["data_margin"].notna().all() else "data.margin"


@dataclass(frozen=True)
class TransitionSaturates(Criterion):
    """Wu et al.; Crawshaw & Liu: the unstable phase ends after τ steps, and τ stops growing with
    η once η is large. Per (n, μ) setting, the median τ at the two largest η:

    - equal within max(abs_tol, rel_tol·τ): τ is an integer count (±1 from where a discrete
      step lands) and the bound is up to constants, so 2 steps or 10%;
    - in ≥ frac_min of the settings (one setting in five may sit at its own crossover).
    Regime: τ > 0 at the largest η in some setting (otherwise there is no unstable phase)."""
    abs_tol: float = 2.0
    rel_tol: float = 0.1
    frac_min: float = 0.8

    def expected(self) -> str:
        return (f"τ at the two largest η equal within max({fmt(self.abs_tol)}, {fmt(100 * self.rel_tol)}%) in "
                f"≥ {fmt(100 * self.frac_min)}% of the (n, μ) settings")

    def measure(self, runs, traj):
        df = ok_runs(runs)
        lrs = sorted(df["lr"].unique())
        if len(lrs) < 2:
            return Verdict(INCONCLUSIVE, "a single step size", "sweep algorithm.lr")
        pairs = []
        for _, g in df.groupby(["n", _margin_column(df)]):
            tau = g.groupby("lr")["transition_time"].median()
            pairs.append((float(tau.get(lrs[-2], np.nan)), float(tau.get(lrs[-1], np.nan))))
        by_eta = df.groupby("lr")["transition_time"].median()
        text = (f"{len(pairs)} (n, μ) settings; τ at η={fmt(lrs[-2])} and η={fmt(lrs[-1])}: "
                + ", ".join(f"{fmt(a)}/{fmt(b)}" for a, b in pairs)
                + "; median τ over settings by η: " + ", ".join(f"{fmt(k)}: {fmt(v)}" for k, v in by_eta.items()))
        return {"pairs": pairs, "text": text}

    def judge(self, m):
        if not any(b > 0 for _, b in m["pairs"]):
            return Verdict(INCONCLUSIVE, m["text"], "τ = 0 at the largest η everywhere: no unstable phase "
                           "(regime not reached)")
        equal = [abs(a - b) <= max(self.abs_tol, self.rel_tol * max(a, b)) for a, b in m["pairs"]]
        frac = float(np.mean(equal))
        if frac >= self.frac_min:
            return Verdict(HOLDS, m["text"], f"τ stops growing with η ({fmt(100 * frac)}% of the settings)")
        return Verdict(FAILS, m["text"], f"τ still changes between the two largest η in {fmt(100 * (1 - frac))}% "
                       "of the settings")


@dataclass(frozen=True)
class TransitionScaling(Criterion):
    """Crawshaw & Liu: the transition time scales with X = n/μ + 1/μ² (μ the data margin). The
    saturated τ (median at the largest η) per (n, μ) setting, log-log against X:

    - slope in [0.5, 1.5]: the bound is Θ(X) up to constants that depend on the data's shape;
      over a range of X of one to two decades a constant offset moves the slope by a few tenths;
    - r2_min: R² ≥ 0.7 for the power law to be read at all (below: inconclusive);
    - tau_min: only settings with τ ≥ 10 count (τ is an integer: below 10 the rounding alone is
      ≥ 10%), and at least min_settings of them are needed, spanning a factor spread_min in X."""
    slope: Band = Band(0.5, 1.5)
    r2_min: float = 0.7
    tau_min: float = 10.0
    min_settings: int = 3
    spread_min: float = 3.0

    def expected(self) -> str:
        return (f"log-log slope of the saturated τ against n/μ + 1/μ² in {self.slope} with R² ≥ {fmt(self.r2_min)}, "
                f"over ≥ {self.min_settings} settings with τ ≥ {fmt(self.tau_min)} spanning ≥ {fmt(self.spread_min)}× "
                "in n/μ + 1/μ²")

    def measure(self, runs, traj):
        df = ok_runs(runs)
        mu_col, top = _margin_column(df), df["lr"].max()
        g = df[df["lr"] == top].groupby(["n", mu_col])["transition_time"].median().reset_index()
        g["x"] = g["n"] / g[mu_col] + 1 / g[mu_col] ** 2
        use = g[g["transition_time"] >= self.tau_min]
        fit = analysis.fit_loglog(use["x"], use["transition_time"]) if len(use) else {"exponent": np.nan, "r2": np.nan}
        spread = float(use["x"].max() / use["x"].min()) if len(use) else np.nan
        text = (f"at η={fmt(top)}: τ ∝ (n/μ + 1/μ²)^{fmt(fit['exponent'])} (R² {fmt(fit['r2'])}; {len(use)} of "
                f"{len(g)} settings with τ ≥ {fmt(self.tau_min)}, spanning {fmt(spread)}× in X; μ from {mu_col}); "
                f"τ range {fmt(g['transition_time'].min())}–{fmt(g['transition_time'].max())}")
        return {"slope": fit["exponent"], "r2": fit["r2"], "settings": len(use), "spread": spread, "text": text}

    def judge(self, m):
        if m["settings"] < self.min_settings or not m["spread"] >= self.spread_min:
            return Verdict(INCONCLUSIVE, m["text"], f"fewer than {self.min_settings} settings with τ ≥ "
                           f"{fmt(self.tau_min)} spanning {fmt(self.spread_min)}× in X: the study did not reach a "
                           "long enough unstable phase")
        if not m["r2"] >= self.r2_min:
            return Verdict(INCONCLUSIVE, m["text"], f"the power law fits poorly (R² < {fmt(self.r2_min)})")
        if m["slope"] in self.slope:
            return Verdict(HOLDS, m["text"], "τ grows about linearly in n/μ + 1/μ²")
        return Verdict(FAILS, m["text"], f"τ follows a power of n/μ + 1/μ² outside {self.slope}")
