"""Claims about the sharpness S_t = λ_max(∇²F(W_t)) against the stability threshold 2/η: Cohen,
Kaur, Li, Kolter, Talwalkar (ICLR 2021) on the squared loss; on the logistic loss, their
cross-entropy experiments and the large-step analysis of Wu, Bartlett, Telgarsky, Yu (COLT 2024).
Each is judged per activation, from the `sharpness` trajectory column and the runs columns of
gdbench/sharpness.py (docs/sharpness.md)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gdbench.claims.base import FAILS, HOLDS, INCONCLUSIVE, Band, Criterion, Verdict, fmt, ok_runs
from gdbench.fits import fit_loglog


def _after_eos(runs: pd.DataFrame, traj: pd.DataFrame) -> dict:
    """Per run id that reached its threshold: the ratios S_t/threshold at the estimates from t_eos
    on, and the median loss over the first and over the last quarter of those estimates (a
    median, because at the edge the loss oscillates from one step to the next)."""
    est = traj.dropna(subset=["sharpness"])
    out = {}
    for row in runs[runs["t_eos"].notna()].itertuples():
        mine = est[(est["run_id"] == row.run_id) & (est["iter"] >= row.t_eos)]
        if len(mine):
            quarter = max(1, len(mine) // 4)
            log_loss = mine["log_loss"].to_numpy()
            out[row.run_id] = (mine["sharpness"].to_numpy() / row.stability_threshold,
                               float(np.exp(np.median(log_loss[:quarter]))),
                               float(np.exp(np.median(log_loss[-quarter:]))))
    return out


def _squared_at_edge(runs: pd.DataFrame, traj: pd.DataFrame):
    """(the squared-loss runs with sharpness estimates, `_after_eos` of them), or the Verdict that
    the sweep has none."""
    df = ok_runs(runs)
    df = df[(df["loss"] == "squared") & df["max_sharpness"].notna()] if "max_sharpness" in df else df.iloc[:0]
    if not len(df):
        return Verdict(INCONCLUSIVE, "no squared-loss runs with sharpness estimates",
                       "run the study with loss=squared and sharpness.every > 0")
    return df, _after_eos(df, traj)


@dataclass(frozen=True)
class EdgeOfStability(Criterion):
    """Cohen et al. (2021), squared loss: the sharpness rises from well below 2/η to it
    (progressive sharpening), then stays around 2/η while the loss still decreases over the long
    run. Per run of the squared loss, the ratios r_t = S_t·η/2 at the estimates from t_eos (the
    first estimate with r ≥ 1) to T:

    - the 10th and 90th percentiles of r lie in `band`. Below 1: the estimates are taken at the
      iterates of a period-two oscillation across the valley, where the curvature reads a few
      percent under the edge (Damian et al. 2023 describe the mechanism); 0.9 allows that. Above
      1: Cohen et al. report the sharpness hovering *just above* 2/η, with an overshoot when it
      first arrives and a higher level for ReLU networks, whose kinks make the curvature jump;
      1.2 allows that, and no more: a run at 1.5·(2/η) is not at the edge.
    - F_late ≤ loss_drop·F_early, the median losses over the last and the first quarter of the
      estimates from t_eos to T: the loss still decreases over the long run. Medians, because
      at the edge the loss jumps by up to a factor of two from one step to the next; 0.9 asks for
      a decrease beyond that noise (a 10% fall of a median), not for a rate.
    - It holds in ≥ frac_min of the runs that reached the regime.
    Regime: a run counts if it started at r_0 ≤ start_max (so the sharpness had to rise: with r_0
    close to 1 there is nothing to sharpen) and has ≥ min_estimates estimates after t_eos (a
    plateau, not its first point); fewer than min_runs such runs per activation: inconclusive."""
    band: Band = Band(0.9, 1.2)
    loss_drop: float = 0.9
    start_max: float = 0.5
    min_estimates: int = 10
    min_runs: int = 2
    frac_min: float = 0.75

    def expected(self) -> str:
        return (f"per activation, squared loss: in ≥ {fmt(100 * self.frac_min)}% of the runs that start at "
                f"S_0·η/2 ≤ {fmt(self.start_max)} and reach 2/η with ≥ {self.min_estimates} estimates left "
                f"(≥ {self.min_runs} runs), the 10th–90th percentiles of S_t·η/2 from t_eos to T lie in {self.band} "
                f"and the median loss over the last quarter of that span is ≤ {fmt(self.loss_drop)}× the one over "
                f"its first quarter")

    def measure(self, runs, traj):
        got = _squared_at_edge(runs, traj)
        if isinstance(got, Verdict):
            return got
        df, after = got
        groups = []
        for act, g in df.groupby("activation"):
            rows = []
            for r in g.itertuples():
                ratios, f_early, f_late = after.get(r.run_id, (np.array([]), np.nan, np.nan))
                rows.append({"lr": r.lr, "start": r.initial_sharpness / r.stability_threshold,
                             "estimates": len(ratios), "q10": np.quantile(ratios, 0.1) if len(ratios) else np.nan,
                             "q90": np.quantile(ratios, 0.9) if len(ratios) else np.nan,
                             "f_early": f_early, "f_late": f_late})
            groups.append({"activation": act, "runs": rows, "total": len(g)})
        return {"groups": groups, "text": "; ".join(self._describe(g) for g in groups)}

    def _in_regime(self, row) -> bool:
        return row["start"] <= self.start_max and row["estimates"] >= self.min_estimates

    def _describe(self, g) -> str:
        reg = [r for r in g["runs"] if self._in_regime(r)]
        parts = ", ".join(f"η={fmt(r['lr'])}: [{fmt(r['q10'])}, {fmt(r['q90'])}], F {fmt(r['f_early'])}→{fmt(r['f_late'])}"
                          for r in sorted(reg, key=lambda r: r["lr"]))
        return f"{g['activation']}: {len(reg)} of {g['total']} runs at the edge" + (f" ({parts})" if parts else "")

    def judge(self, m):
        verdicts = []
        for g in m["groups"]:
            reg = [r for r in g["runs"] if self._in_regime(r)]
            if len(reg) < self.min_runs:
                verdicts.append(f"{g['activation']}: regime not reached ({len(reg)} runs rose to 2/η with a plateau)")
                continue
            good = [r["q10"] in self.band and r["q90"] in self.band and r["f_late"] <= self.loss_drop * r["f_early"]
                    for r in reg]
            verdicts.append((g["activation"], float(np.mean(good))))
        decided = [v for v in verdicts if isinstance(v, tuple)]
        notes = [v for v in verdicts if isinstance(v, str)]
        if not decided:
            return Verdict(INCONCLUSIVE, m["text"], "; ".join(notes))
        failing = [f"{a}: {fmt(100 * f)}% of the runs" for a, f in decided if f < self.frac_min]
        if failing:
            return Verdict(FAILS, m["text"], f"the band or the loss decrease holds in fewer than "
                           f"{fmt(100 * self.frac_min)}% of the runs at the edge ({'; '.join(failing)})")
        return Verdict(HOLDS, m["text"], "the sharpness rose to 2/η and stayed around it while the loss decreased"
                       + (f" ({'; '.join(notes)})" if notes else ""))


@dataclass(frozen=True)
class PlateauScalesAsInverseStep(Criterion):
    """Cohen et al. (2021): the plateau sharpness is set by the step, ≈ 2/η, so across step sizes
    it scales like 1/η. Per activation, on the squared loss: the median over seeds of each step's
    plateau sharpness (the median estimate from t_eos to T), fitted against η on log-log axes.

    - slope in `slope_band` = −1 ± 0.15. That width follows from EdgeOfStability's band: plateaus
      anywhere in [0.9, 1.2]·2/η across a span of η of at least min_span = 8× bend the slope by at
      most log(1.2/0.9)/log 8 ≈ 0.14 (over a 4× span they could bend it by 0.21).
    Regime: ≥ min_levels step sizes spanning ≥ min_span× that reached 2/η with ≥ min_estimates
    estimates left; otherwise inconclusive."""
    slope_band: Band = Band(-1.15, -0.85)
    min_levels: int = 3
    min_span: float = 8.0
    min_estimates: int = 10

    def expected(self) -> str:
        return (f"per activation, squared loss: the plateau sharpness (median estimate after t_eos) ∝ η^k with "
                f"k in {self.slope_band} (reference −1), over ≥ {self.min_levels} step sizes spanning "
                f"≥ {fmt(self.min_span)}× that reached 2/η with ≥ {self.min_estimates} estimates left")

    def measure(self, runs, traj):
        got = _squared_at_edge(runs, traj)
        if isinstance(got, Verdict):
            return got
        df, after = got
        groups = []
        for act, g in df.groupby("activation"):
            plateau = {}
            for r in g.itertuples():
                ratios = after.get(r.run_id, (np.array([]),))[0]
                if len(ratios) >= self.min_estimates:
                    plateau.setdefault(r.lr, []).append(float(np.median(ratios)) * r.stability_threshold)
            lrs = sorted(plateau)
            levels = {lr: float(np.median(v)) for lr, v in plateau.items()}
            fit = fit_loglog(np.array(lrs), np.array([levels[lr] for lr in lrs])) if lrs else {"exponent": np.nan}
            groups.append({"activation": act, "levels": levels, "slope": fit["exponent"]})
        text = "; ".join(f"{g['activation']}: " + ", ".join(f"η={fmt(lr)}: {fmt(s)}" for lr, s in g["levels"].items())
                         + f" → k = {fmt(g['slope'])}" for g in groups)
        return {"groups": groups, "text": text}

    def judge(self, m):
        decided, notes = [], []
        for g in m["groups"]:
            lrs = sorted(g["levels"])
            if len(lrs) < self.min_levels or lrs[-1] / lrs[0] < self.min_span:
                notes.append(f"{g['activation']}: regime not reached ({len(lrs)} step sizes at the edge"
                             + (f", spanning {fmt(lrs[-1] / lrs[0])}×" if lrs else "") + ")")
                continue
            decided.append((g["activation"], g["slope"]))
        if not decided:
            return Verdict(INCONCLUSIVE, m["text"], "; ".join(notes))
        off = [f"{a}: k = {fmt(k)}" for a, k in decided if k not in self.slope_band]
        if off:
            return Verdict(FAILS, m["text"], f"slope outside {self.slope_band}: {'; '.join(off)}")
        return Verdict(HOLDS, m["text"], "the plateau follows 2/η across step sizes"
                       + (f" ({'; '.join(notes)})" if notes else ""))


@dataclass(frozen=True)
class LogisticSharpnessFalls(Criterion):
    """Logistic loss: the sharpness does not stay at the edge. Its Hessian carries ℓ''(z) ≈ e^{−z},
    so once the training set is separated and the loss is small the sharpness decays with the
    loss (Cohen et al. 2021 observe it falling at the end of cross-entropy training; in Wu et al.
    2024 the iterates leave the oscillatory phase for a stable one where F_t ~ 1/(ηt)). Per
    activation, the runs that end separated with F_T ≤ small_loss:

    - S_T·η/2 ≤ final_ratio_max: well inside the stable region. 0.25: a quarter of the edge, far
      below the plateau band's 0.9 — a run that stayed at the edge cannot pass;
    - S_T ≤ drop·max_t S_t: it fell from its own peak (by half at least);
    - in ≥ frac_min of those runs.
    Regime: ≥ 1 such run per activation, and some logistic run reached 2/η (else the falling
    is only from a sub-edge peak, and the claim says so in its reason)."""
    small_loss: float = 1e-2
    final_ratio_max: float = 0.25
    drop: float = 0.5
    frac_min: float = 0.9

    def expected(self) -> str:
        return (f"per activation, logistic loss: in ≥ {fmt(100 * self.frac_min)}% of the runs that end separated "
                f"with F_T ≤ {fmt(self.small_loss)}, S_T·η/2 ≤ {fmt(self.final_ratio_max)} and "
                f"S_T ≤ {fmt(self.drop)}·max_t S_t; some run had reached 2/η")

    def measure(self, runs, traj):
        df = ok_runs(runs)
        df = df[(df["loss"] == "logistic") & df["max_sharpness"].notna()] if "max_sharpness" in df else df.iloc[:0]
        if not len(df):
            return Verdict(INCONCLUSIVE, "no logistic-loss runs with sharpness estimates",
                           "run the study with loss=logistic and sharpness.every > 0")
        groups = []
        for act, g in df.groupby("activation"):
            done = g[(g["final_min_margin"] > 0) & (g["final_loss"] <= self.small_loss)]
            groups.append({"activation": act, "runs": len(g), "reached": int(g["t_eos"].notna().sum()),
                           "final_ratio": (done["final_sharpness"] / done["stability_threshold"]).tolist(),
                           "fall": (done["final_sharpness"] / done["max_sharpness"]).tolist(),
                           "peak_ratio": float(g["sharpness_ratio_max"].max())})
        text = "; ".join(f"{g['activation']}: {len(g['final_ratio'])} of {g['runs']} runs separated with small loss, "
                         f"{g['reached']} reached 2/η (largest max S·η/2 {fmt(g['peak_ratio'])}); S_T·η/2 up to "
                         f"{fmt(max(g['final_ratio'], default=np.nan))}, S_T/max S up to {fmt(max(g['fall'], default=np.nan))}"
                         for g in groups)
        return {"groups": groups, "text": text}

    def judge(self, m):
        decided, notes = [], []
        for g in m["groups"]:
            if not g["final_ratio"]:
                notes.append(f"{g['activation']}: no run ended separated with a small loss (regime not reached)")
                continue
            ok = [r <= self.final_ratio_max and f <= self.drop for r, f in zip(g["final_ratio"], g["fall"])]
            decided.append((g["activation"], float(np.mean(ok)), g["reached"]))
        if not decided:
            return Verdict(INCONCLUSIVE, m["text"], "; ".join(notes))
        if not any(reached for _, _, reached in decided):
            return Verdict(INCONCLUSIVE, m["text"], "no logistic run reached 2/η: the sharpness fell, but not from "
                           "the edge (regime not reached)")
        failing = [f"{a}: {fmt(100 * f)}%" for a, f, _ in decided if f < self.frac_min]
        if failing:
            return Verdict(FAILS, m["text"], f"the sharpness stayed high in too many runs ({'; '.join(failing)})")
        return Verdict(HOLDS, m["text"], "once the loss is small the sharpness falls far below 2/η"
                       + (f" ({'; '.join(notes)})" if notes else ""))
