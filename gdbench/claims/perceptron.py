"""Claims of Tyurin 2025 (arXiv:2412.08424) about the perceptron limit of large-step GD."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from gdbench import analysis
from gdbench.claims.base import FAILS, HOLDS, INCONCLUSIVE, Band, Criterion, Verdict, fmt, ok_runs, with_model_name


@dataclass(frozen=True)
class PerceptronLimit(Criterion):
    """Thm 3.2 (linear) and the 2026 reduction (1-homogeneous two-layer models): W_t/γ → Ŵ_t as
    γ → ∞. Per (dataset, model), over the medians across seeds at each γ:

    - rho_max: Spearman ρ(log γ, gap) ≤ −0.8 — the gap falls with γ; −0.8 rather than −1 so
      that a rounding-level gap at the two largest γ (1e-16 against 1e-17) does not decide it.
      Needs min_levels step sizes (a rank correlation of two points is always ±1).
    - gap_max: the gap at the largest γ ≤ 1e-2. The theorem bounds the gap by O(1/γ); at the
      largest γ of the study (10^6) any gap above 1e-2 means no convergence.
    - agree_min: the misclassified sets of GD and the perceptron coincide on ≥ 99% of the
      iterations at the largest γ (one iteration in a hundred may sit on a tie of a margin at 0)."""
    rho_max: float = -0.8
    gap_max: float = 1e-2
    agree_min: float = 0.99
    min_levels: int = 3

    def expected(self) -> str:
        return (f"per dataset and model, over ≥ {self.min_levels} step sizes γ: Spearman ρ(log γ, gap) ≤ "
                f"{fmt(self.rho_max)}; gap ‖W_t/γ − Ŵ_t‖/‖Ŵ_t‖ ≤ {fmt(self.gap_max)} at the largest γ; "
                f"identical misclassified sets on ≥ {fmt(100 * self.agree_min)}% of the iterations there")

    def measure(self, runs, traj):
        if "final_perceptron_gap" not in runs or runs["final_perceptron_gap"].isna().all():
            return Verdict(INCONCLUSIVE, "no perceptron companion in these runs", "run with companion=true")
        groups, parts = [], []
        for (ds, m), g in with_model_name(ok_runs(runs)).groupby(["dataset", "model_name"]):
            med = g.groupby("lr")[["final_perceptron_gap", "misclassified_agree_frac"]].median().sort_index()
            gaps = med["final_perceptron_gap"]
            rho = (stats.spearmanr(np.log(med.index), gaps).statistic if gaps.nunique() > 1 else 0.0) \
                if len(med) >= self.min_levels else np.nan
            groups.append({"name": f"{ds}/{m}", "levels": len(med), "rho": rho, "gap": gaps.iloc[-1],
                           "agree": med["misclassified_agree_frac"].iloc[-1]})
            parts.append(f"{ds}/{m}: gap {fmt(gaps.iloc[0])} at γ={fmt(med.index[0])} → {fmt(gaps.iloc[-1])} at "
                         f"γ={fmt(med.index[-1])} (ρ={fmt(rho)}), same misclassified sets "
                         f"{fmt(100 * groups[-1]['agree'])}% of iterations")
        return {"groups": groups, "text": "; ".join(parts)}

    def judge(self, m):
        few = [g["name"] for g in m["groups"] if g["levels"] < self.min_levels]
        if few:
            return Verdict(INCONCLUSIVE, m["text"], f"fewer than {self.min_levels} step sizes for {', '.join(few)}")
        bad = [g["name"] for g in m["groups"]
               if not (g["rho"] <= self.rho_max and g["gap"] <= self.gap_max and g["agree"] >= self.agree_min)]
        if bad:
            return Verdict(FAILS, m["text"], f"criterion missed for {', '.join(bad)}")
        return Verdict(HOLDS, m["text"], "the gap falls with γ to the tolerance and the misclassified sets coincide")


@dataclass(frozen=True)
class UnreliableLoss(Criterion):
    """Thm 4.1: on the two-point data GD from 0 has F(W_1) = Θ(γ), yet W_2 separates.

    - slope: the log-log slope of F(W_1) on γ in [0.8, 1.2]. F(W_1) = (log(1 + e^{aγ}) +
      log(1 + e^{−bγ}))/2 with a, b > 0 is γa/2 + O(e^{−aγ}); over γ ≥ 10 the slope is 1 to within
      10^-2 (hand computation), so ±0.2 only absorbs rounding of the recorded losses.
    - t_sep_max: every run separates by t = 2 (the theorem's second iterate)."""
    slope: Band = Band(0.8, 1.2)
    t_sep_max: int = 2
    min_levels: int = 3

    def expected(self) -> str:
        return (f"over ≥ {self.min_levels} step sizes γ: log-log slope of F(W_1) on γ in {self.slope} (linear growth); "
                f"t_sep ≤ {self.t_sep_max} for every γ")

    def measure(self, runs, traj):
        f1 = traj[traj["iter"] == 1].merge(runs[["run_id", "lr"]], on="run_id").groupby("lr")["log_loss"].median()
        if len(f1) < self.min_levels:  # a slope through two points always "fits"
            return Verdict(INCONCLUSIVE, f"{len(f1)} step sizes", f"sweep at least {self.min_levels} γ")
        fit = analysis.fit_loglog(f1.index, log_y=f1.to_numpy())
        t_sep = runs.groupby("lr")["t_sep"].max()
        text = (", ".join(f"F(W_1) = {fmt(float(np.exp(v)))} at γ={fmt(k)}" for k, v in f1.items())
                + f"; slope of log F(W_1) on log γ = {fmt(fit['exponent'])}; t_sep = "
                + ", ".join(fmt(v) for v in t_sep.to_numpy()))
        return {"slope": fit["exponent"], "t_sep_max": float(t_sep.max()) if t_sep.notna().all() else np.inf,
                "text": text}

    def judge(self, m):
        grows, separates = m["slope"] in self.slope, m["t_sep_max"] <= self.t_sep_max
        if grows and separates:
            return Verdict(HOLDS, m["text"], "F(W_1) grows linearly in γ while W_2 already separates")
        return Verdict(FAILS, m["text"], "; ".join(
            ([f"the slope is outside {self.slope}"] if not grows else [])
            + ([f"some run has not separated by t = {self.t_sep_max}"] if not separates else [])))


@dataclass(frozen=True)
class PerceptronLowerBound(Criterion):
    """Thm 5.1 (Ω(n) for the batch perceptron and large-step GD on the lower-bound data) against
    Thm 6.1 / Table 1 (normalized GD: O(log n)-type bounds).

    - exponent_min: the exponent of t_sep against n ≥ 0.8 for the batch perceptron and GD. The
      construction gives t_sep = a·n + b; the constant b biases a log-log slope over n = 10…1000
      below 1 (t_sep = 0.3n + 2 gives 0.93, hand computation), so 0.8 leaves room for b, not for
      √n (0.5).
    - speedup_min: at the largest n, normalized GD at its best step needs ≤ 1/10 of the batch
      perceptron's iterations ("far fewer": an order of magnitude)."""
    exponent_min: float = 0.8
    speedup_min: float = 10.0
    min_levels: int = 3

    def expected(self) -> str:
        return (f"over ≥ {self.min_levels} values of n: exponent of t_sep in n ≥ {fmt(self.exponent_min)} for the "
                f"batch perceptron and for GD (Θ(n): 1); normalized GD at its best step ≥ {fmt(self.speedup_min)}× "
                "faster than the batch perceptron at the largest n")

    def measure(self, runs, traj):
        df = ok_runs(runs)
        if df["n"].nunique() < self.min_levels:
            return Verdict(INCONCLUSIVE, f"{df['n'].nunique()} values of n", f"sweep at least {self.min_levels} data.n")
        exps = {}
        for alg in ("batch_perceptron", "gd"):
            g = df[(df["algorithm"] == alg) & df["t_sep"].notna()]
            exps[alg] = analysis.fit_loglog(g["n"], g["t_sep"])["exponent"] if len(g) else np.nan
        n_max = df["n"].max()
        bp = df[(df["algorithm"] == "batch_perceptron") & (df["n"] == n_max)]["t_sep"].median()
        ngd = df[(df["algorithm"] == "normalized_gd") & (df["n"] == n_max)].groupby("lr")["t_sep"].median().min()
        text = (f"batch_perceptron: t_sep ∝ n^{fmt(exps['batch_perceptron'])}; gd: t_sep ∝ n^{fmt(exps['gd'])}; "
                f"at n={n_max}: batch perceptron {fmt(bp)} iterations, normalized GD (best step) {fmt(ngd)}")
        return {"exponents": exps, "perceptron_t_sep": float(bp), "normalized_t_sep": float(ngd), "text": text}

    def judge(self, m):
        linear = all(e >= self.exponent_min for e in m["exponents"].values())
        bp, ngd = m["perceptron_t_sep"], m["normalized_t_sep"]
        fast = bool(np.isfinite(bp) and np.isfinite(ngd) and ngd * self.speedup_min <= bp)
        if linear and fast:
            return Verdict(HOLDS, m["text"], "Ω(n) for the perceptron and large-step GD; normalized GD far faster")
        return Verdict(FAILS, m["text"], "; ".join(
            ([f"an exponent below {fmt(self.exponent_min)}"] if not linear else [])
            + ([f"normalized GD not {fmt(self.speedup_min)}× faster"] if not fast else [])))
