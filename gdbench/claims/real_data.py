"""Claims about GD on real data: Tyurin 2025 (arXiv:2412.08424, Figs. 1–5) and Tyurin 2026
(arXiv:2512.11587, experiments). Each is judged per dataset and model, on the separable datasets;
a non-separable dataset is a labelled control with its own claim (`NonSeparableControl`)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gdbench import analysis
from gdbench.claims.base import FAILS, HOLDS, INCONCLUSIVE, Criterion, Verdict, fmt, ok_runs, with_model_name


def _scope(controls, per="dataset and model", models=()) -> str:
    return (f"per {per}" + (f" except the control {', '.join(controls)}" if controls else "")
            + (f", for {' and '.join(models)}" if models else ""))


def _separable_part(runs, controls, models=()):
    df = runs[~runs["dataset"].isin(controls)]
    return with_model_name(ok_runs(df[df["model"].isin(models)] if models else df))


@dataclass(frozen=True)
class OscillatesAtLargeSteps(Criterion):
    """Small steps give monotone loss curves, large steps chaotic ones (Tyurin 2025, Figs. 1–5).
    Per separable dataset and model:

    - no run has a loss increase at the two smallest η (the classical descent regime);
    - at the largest η the median run has ≥ min_increases loss increases: "chaotic" is a long
      irregular phase, not a handful of bumps (10 increases is more than any transient we have
      seen at a step just above the stability threshold).
    Regime: the largest η is large in the paper's sense when GD there tracks the perceptron
    companion (identical misclassified sets on ≥ regime_agree of the iterations); if not, the
    study did not reach the regime for that model (inconclusive)."""
    min_increases: int = 10
    regime_agree: float = 0.9
    controls: tuple = ("breast_cancer",)
    models: tuple = ()  # the runs' `model` values judged; () = every model

    def expected(self) -> str:
        return (f"{_scope(self.controls, models=self.models)}: no loss increase at the two smallest η; ≥ {self.min_increases} "
                f"increases (median run) at the largest η, where GD tracks the perceptron companion (identical "
                f"misclassified sets on ≥ {fmt(100 * self.regime_agree)}% of the iterations)")

    def measure(self, runs, traj):
        lrs = sorted(runs["lr"].unique())
        if len(lrs) < 3:
            return Verdict(INCONCLUSIVE, f"{len(lrs)} step sizes", "sweep algorithm.lr over at least three decades")
        groups, lines = [], []
        for (ds, m), g in _separable_part(runs, self.controls, self.models).groupby(["dataset", "model_name"]):
            small = int((g[g["lr"].isin(lrs[:2])]["n_increases"] > 0).sum())
            top = g[g["lr"] == lrs[-1]]
            inc = float(top["n_increases"].median())
            agree = float(top["misclassified_agree_frac"].median()) if "misclassified_agree_frac" in top else np.nan
            groups.append({"name": f"{ds}/{m}", "small": small, "increases": inc, "agree": agree})
            lines.append(f"{ds}/{m}: {small} runs with a loss increase at η ≤ {fmt(lrs[1])}; at η={fmt(lrs[-1])} "
                         f"median {fmt(inc)} increases, {fmt(100 * agree)}% identical misclassified sets")
        return {"groups": groups, "text": "; ".join(lines)}

    def judge(self, m):
        monotone_broken = [g["name"] for g in m["groups"] if g["small"] > 0]
        if monotone_broken:
            return Verdict(FAILS, m["text"], f"small steps are not monotone for {', '.join(monotone_broken)}")
        unreached = [g["name"] for g in m["groups"] if not g["agree"] >= self.regime_agree]
        calm = [g["name"] for g in m["groups"] if g["name"] not in unreached and g["increases"] < self.min_increases]
        if calm:
            return Verdict(FAILS, m["text"], f"at the largest step, in the perceptron regime, the loss is not chaotic "
                           f"for {', '.join(calm)}")
        if unreached:
            return Verdict(INCONCLUSIVE, m["text"], f"the largest step is not in the large-step regime for "
                           f"{', '.join(unreached)} (GD does not track the perceptron yet): sweep larger η")
        return Verdict(HOLDS, m["text"], "monotone at small steps, chaotic at large ones")


@dataclass(frozen=True)
class LargeStepsSeparateFastest(Criterion):
    """Large steps nonetheless separate fastest and track the batch perceptron (Tyurin 2025, whose
    steps stop at 100). With a grid that goes on into the perceptron limit, t_sep levels off at
    the perceptron's, and a step just past the stability threshold can beat that limit by a
    little (docs/claims-quick.md shows it on the standardized digit pairs). Per separable dataset and model:

    - the fastest step is a large one: its median run has a loss increase (it is past the
      stability threshold, in the oscillating regime);
    - the largest step separates within slack = 30% of the fastest step's median t_sep;
    - at the largest η the misclassified sets agree with the companion on ≥ agree_min = 90% of
      the iterations (the paper's figures show GD and the perceptron visibly overlapping).
    A model that never separates a dataset makes it inconclusive (not separable for it)."""
    slack: float = 0.3
    agree_min: float = 0.9
    controls: tuple = ("breast_cancer",)
    models: tuple = ()  # the runs' `model` values judged; () = every model

    def expected(self) -> str:
        return (f"{_scope(self.controls, models=self.models)}: the fastest-separating step oscillates (a loss "
                f"increase), the largest step separates within {fmt(100 * self.slack)}% of it, and there GD has "
                f"≥ {fmt(100 * self.agree_min)}% identical misclassified sets with the perceptron")

    def measure(self, runs, traj):
        lrs = sorted(runs["lr"].unique())
        groups, lines = [], []
        for (ds, m), g in _separable_part(runs, self.controls, self.models).groupby(["dataset", "model_name"]):
            med = g.groupby("lr")["t_sep"].apply(lambda s: analysis.censored_quantile(s, 0.5))
            top = g[g["lr"] == lrs[-1]]
            agree = float(top["misclassified_agree_frac"].median()) if "misclassified_agree_frac" in top else np.nan
            if med.isna().all():
                groups.append({"name": f"{ds}/{m}", "best": None, "agree": agree})
                lines.append(f"{ds}/{m}: never separated")
                continue
            best = float(med.idxmin())
            bumps = float(g[g["lr"] == best]["n_increases"].median())
            groups.append({"name": f"{ds}/{m}", "best": float(med.min()), "largest": float(med.get(lrs[-1], np.nan)),
                           "best_increases": bumps, "agree": agree})
            lines.append(f"{ds}/{m}: fastest at η={fmt(best)} (median t_sep {fmt(med.min())}, {fmt(bumps)} loss "
                         f"increases), at η={fmt(lrs[-1])} t_sep {fmt(med.get(lrs[-1], np.nan))} with "
                         f"{fmt(100 * agree)}% identical misclassified sets")
        return {"groups": groups, "text": "; ".join(lines)}

    def judge(self, m):
        never = [g["name"] for g in m["groups"] if g["best"] is None]
        if never:
            return Verdict(INCONCLUSIVE, m["text"], f"{', '.join(never)}: never separated (not separable for "
                           "this model?)")
        calm = [g["name"] for g in m["groups"] if not g["best_increases"] > 0]
        slow = [g["name"] for g in m["groups"] if not g["largest"] <= (1 + self.slack) * g["best"]]
        apart = [g["name"] for g in m["groups"] if not g["agree"] >= self.agree_min]
        if calm or slow or apart:
            return Verdict(FAILS, m["text"], "; ".join(
                ([f"a step without oscillation separates fastest for {', '.join(calm)}"] if calm else [])
                + ([f"the largest step is more than {fmt(100 * self.slack)}% slower for {', '.join(slow)}"]
                   if slow else [])
                + ([f"GD does not track the perceptron for {', '.join(apart)}"] if apart else [])))
        return Verdict(HOLDS, m["text"], "large (oscillating) steps separate fastest and track the perceptron")


@dataclass(frozen=True)
class NonlinearFaster(Criterion):
    """Nonlinear models separate faster than linear ones (Tyurin 2026's experiments). Per
    separable dataset: the two-layer model's median t_sep at its best step is strictly below
    the linear model's at its best step (the paper's figures show no fixed factor). Both within
    trivial_t_sep = 2 iterations decides nothing (inconclusive)."""
    trivial_t_sep: int = 2
    controls: tuple = ("breast_cancer",)

    def expected(self) -> str:
        return (f"{_scope(self.controls, 'dataset')}: best median t_sep of the two-layer model < the linear model's (not both "
                f"≤ {self.trivial_t_sep} iterations)")

    def measure(self, runs, traj):
        acc = analysis.acceleration_table(runs[~runs["dataset"].isin(self.controls)], by=["dataset", "model", "lr"])
        if not len(acc) or "linear" not in set(acc["model"]):
            return Verdict(INCONCLUSIVE, "no linear baseline", "include model=linear")
        groups, lines = [], []
        for ds, g in acc.groupby("dataset"):
            r = g.set_index("model")["t_sep_median"]
            lin, nl = float(r.get("linear", np.nan)), float(r.drop("linear", errors="ignore").min())
            groups.append({"name": ds, "linear": lin, "nonlinear": nl})
            lines.append(f"{ds}: best median t_sep linear {fmt(lin)}, two-layer {fmt(nl)}")
        return {"groups": groups, "text": "; ".join(lines)}

    def judge(self, m):
        unknown = [g["name"] for g in m["groups"] if not (np.isfinite(g["linear"]) and np.isfinite(g["nonlinear"]))]
        if unknown:
            return Verdict(INCONCLUSIVE, m["text"], f"{', '.join(unknown)}: a model never separated")
        trivial = [g["name"] for g in m["groups"] if max(g["linear"], g["nonlinear"]) <= self.trivial_t_sep]
        if trivial:
            return Verdict(INCONCLUSIVE, m["text"], f"{', '.join(trivial)}: both separate within "
                           f"{self.trivial_t_sep} iterations (holds trivially)")
        slower = [g["name"] for g in m["groups"] if not g["linear"] > g["nonlinear"]]
        if slower:
            return Verdict(FAILS, m["text"], f"the linear model is as fast or faster on {', '.join(slower)}")
        return Verdict(HOLDS, m["text"], "the two-layer model separates faster")


@dataclass(frozen=True)
class NonSeparableControl(Criterion):
    """The control: on a dataset that is not linearly separable, no linear-model run separates at
    any step size, so the separation claims do not apply to it and its runs are reported as the
    control they are. One separating run would contradict non-separability: no tolerance."""
    controls: tuple = ("breast_cancer",)

    def expected(self) -> str:
        return f"on {', '.join(self.controls)}: no linear-model run separates, at any step size"

    def measure(self, runs, traj):
        df = with_model_name(ok_runs(runs[runs["dataset"].isin(self.controls)]))
        lin = df[df["model_name"] == "linear"]
        if not len(lin):
            return Verdict(INCONCLUSIVE, "no linear runs on the control", f"include {', '.join(self.controls)}")
        separated = int(lin["t_sep"].notna().sum())
        best_acc = float(lin["final_accuracy"].max()) if "final_accuracy" in lin else np.nan
        others = ", ".join(f"{m}: {int(g['t_sep'].notna().sum())} of {len(g)} separated"
                           for m, g in df[df["model_name"] != "linear"].groupby("model_name"))
        text = (f"linear: {separated} of {len(lin)} runs separated (best final accuracy {fmt(best_acc)})"
                + (f"; {others}" if others else ""))
        return {"separated": separated, "text": text}

    def judge(self, m):
        if m["separated"] == 0:
            return Verdict(HOLDS, m["text"], "the control is not linearly separable at any step size")
        return Verdict(FAILS, m["text"], "a linear run separated the control: it is separable after all")
