"""Claims: each criterion's printed expectation and its evaluator use the same numbers, every
threshold is tested just inside and just outside, and each evaluator's measurement is checked on
synthetic results built to pass and to fail (each says how it was made)."""
import dataclasses
import re

import numpy as np
import pandas as pd
import pytest

from gdbench import claims, reproduce
from gdbench.claims import FAILS, HOLDS, INCONCLUSIVE, Band, fmt

EPS = 1e-9
CRITERIA = [c.criterion for s in reproduce.STUDIES for c in s.claims]


def _numbers(value):
    if isinstance(value, Band):
        return [value.low, value.high]
    if isinstance(value, bool) or isinstance(value, (str, tuple)) or value is None:
        return []
    return [value]


def _shifted(value):
    """Another value of the same kind, for the test that the printed text follows the field."""
    if isinstance(value, Band):
        return Band(value.low - 0.05, value.high + 0.05)
    if isinstance(value, int):
        return value + 3
    if 0 < value < 1:  # a fraction stays one
        return value * 0.9
    return value * 1.37 + 0.011


@pytest.mark.parametrize("criterion", CRITERIA, ids=lambda c: type(c).__name__)
def test_printed_expectation_is_rendered_from_the_thresholds(criterion):
    text = criterion.expected()
    for name, value in criterion.thresholds().items():
        for number in _numbers(value):
            assert fmt(number) in text or fmt(100 * number) in text, (name, number, text)
        if name in ("dataset", "controls", "models"):
            assert all(str(v) in text for v in ((value,) if isinstance(value, str) else value or ())), (name, text)
            continue
        changed = dataclasses.replace(criterion, **{name: _shifted(value)}).expected()
        assert changed != text, f"{type(criterion).__name__}.{name} does not reach the printed expectation"


def test_every_claim_of_every_study_has_a_criterion_and_distinct_statement_per_study():
    for s in reproduce.STUDIES:
        for c in s.claims:
            assert isinstance(c.criterion, claims.Criterion) and c.expected
        texts = [c.expected for c in s.claims]
        assert len(set(texts)) == len(texts), s.name


# ---- each threshold just inside and just outside; the same cases again with shifted thresholds,
# so that an evaluator holding a literal of its own instead of the field fails one of them.

def _both(cls):
    base = cls()
    shifted = dataclasses.replace(base, **{k: _shifted(v) for k, v in base.thresholds().items()
                                          if k not in ("dataset", "controls", "models", "min_levels", "min_settings", "t_min")})
    return [base, shifted]


@pytest.mark.parametrize("c", _both(claims.PerceptronLimit))
def test_perceptron_limit_thresholds(c):
    def v(**kw):
        g = {"name": "d/m", "levels": c.min_levels, "rho": c.rho_max, "gap": c.gap_max, "agree": c.agree_min, **kw}
        return c.judge({"groups": [g], "text": ""}).verdict
    assert v() == HOLDS
    assert v(rho=c.rho_max + EPS) == FAILS
    assert v(gap=c.gap_max * (1 + EPS)) == FAILS
    assert v(agree=c.agree_min - EPS) == FAILS
    assert v(levels=c.min_levels - 1) == INCONCLUSIVE


@pytest.mark.parametrize("c", _both(claims.UnreliableLoss))
def test_unreliable_loss_thresholds(c):
    def v(**kw):
        return c.judge({"slope": 1.0, "t_sep_max": c.t_sep_max, "text": "", **kw}).verdict
    assert v(slope=c.slope.low) == v(slope=c.slope.high) == HOLDS
    assert v(slope=c.slope.low - EPS) == v(slope=c.slope.high + EPS) == FAILS
    assert v(t_sep_max=c.t_sep_max + 1) == FAILS


@pytest.mark.parametrize("c", _both(claims.PerceptronLowerBound))
def test_perceptron_lower_bound_thresholds(c):
    def v(exponent=c.exponent_min, ngd=100.0):
        return c.judge({"exponents": {"batch_perceptron": exponent, "gd": 1.0}, "perceptron_t_sep": 100.0 *
                        c.speedup_min, "normalized_t_sep": ngd, "text": ""}).verdict
    assert v() == HOLDS
    assert v(exponent=c.exponent_min - EPS) == FAILS
    assert v(ngd=100.0 * (1 + EPS)) == FAILS


@pytest.mark.parametrize("c", _both(claims.LargeStepRates))
def test_large_step_rates_thresholds(c):
    def v(prop=c.exponent_max, fixed=c.exponent_max + 0.5, unstable=True):
        return c.judge({"proportional": [prop], "fixed": [fixed], "unstable": unstable, "text": ""}).verdict
    assert v() == HOLDS
    assert v(prop=c.exponent_max + EPS) == FAILS
    assert v(fixed=c.exponent_max) == FAILS  # not faster than a fixed step
    assert v(unstable=False) == INCONCLUSIVE


@pytest.mark.parametrize("c", _both(claims.TransitionSaturates))
def test_transition_saturates_thresholds(c):
    a = 1000.0  # large enough that rel_tol·τ exceeds abs_tol
    edge = a / (1 - c.rel_tol)  # |a − b| = rel_tol·b exactly

    def v(pairs):
        return c.judge({"pairs": pairs, "text": ""}).verdict
    n_ok = int(np.ceil(c.frac_min * 10))
    assert v([(a, edge * (1 - EPS))] * n_ok + [(a, 3 * a)] * (10 - n_ok)) == HOLDS
    assert v([(a, edge * (1 + EPS))] * 10) == FAILS
    assert v([(0.0, c.abs_tol)] * 9 + [(1.0, 1.0)]) == HOLDS  # small τ: the absolute tolerance
    assert v([(0.0, c.abs_tol + 1)] * 10) == FAILS
    assert v([(a, edge * (1 - EPS))] * (n_ok - 1) + [(a, 3 * a)] * (11 - n_ok)) == FAILS
    assert v([(0.0, 0.0)] * 10) == INCONCLUSIVE


@pytest.mark.parametrize("c", _both(claims.TransitionScaling))
def test_transition_scaling_thresholds(c):
    def v(**kw):
        m = {"slope": c.slope_max, "k": 1.0, "r2": c.r2_min, "n_exponent": 0.0, "text": "", **kw}
        return c.judge(m).verdict
    assert v() == v(k=c.margin_exponent.low) == v(k=c.margin_exponent.high) == HOLDS
    assert v(slope=c.slope_max + EPS) == FAILS
    assert v(k=c.margin_exponent.low - EPS) == v(k=c.margin_exponent.high + EPS) == FAILS
    assert v(r2=c.r2_min - EPS) == INCONCLUSIVE


@pytest.mark.parametrize("c", _both(claims.DimensionGap))
def test_dimension_gap_thresholds(c):
    def v(lin_low=c.linear_min + EPS, fast_high=c.fast_max - EPS, control_high=c.linear_min + EPS,
          worst=c.trivial_t_sep + 1, step=c.step_exponent_max):
        models = {"linear": {"exponent": 1.0, "low": lin_low, "high": 1.2, "step_exponent": 0.0, "worst_t_sep": 99},
                  "two_layer(identity)": {"exponent": 1.0, "low": 0.9, "high": control_high, "step_exponent": 0.0,
                                          "worst_t_sep": 99},
                  "two_layer(quadratic)": {"exponent": 0.3, "low": 0.1, "high": fast_high, "step_exponent": step,
                                           "worst_t_sep": worst}}
        return c.judge({"models": models, "name": "family", "text": ""}).verdict
    assert v() == HOLDS
    assert v(lin_low=c.linear_min) == INCONCLUSIVE  # the premise Ω(d) is not met: these data cannot show it
    assert v(fast_high=c.fast_max) == FAILS
    assert v(control_high=c.fast_max - EPS) == INCONCLUSIVE  # the linear control is fast too
    assert v(worst=c.trivial_t_sep) == INCONCLUSIVE  # holds trivially
    assert v(step=c.step_exponent_max + EPS) == INCONCLUSIVE  # fast only through a step outgrowing d


@pytest.mark.parametrize("c", _both(claims.OscillatesAtLargeSteps))
def test_oscillation_thresholds(c):
    def v(**kw):
        g = {"name": "digits/linear", "small": 0, "increases": float(c.min_increases), "agree": c.regime_agree, **kw}
        return c.judge({"groups": [g], "text": ""}).verdict
    assert v() == HOLDS
    assert v(increases=c.min_increases - 0.5) == FAILS
    assert v(small=1) == FAILS
    assert v(agree=c.regime_agree - EPS) == INCONCLUSIVE  # the largest step is not large yet
    assert v(agree=c.regime_agree - EPS, increases=0.0) == INCONCLUSIVE


@pytest.mark.parametrize("c", _both(claims.LargeStepsSeparateFastest))
def test_separate_fastest_thresholds(c):
    def v(**kw):
        g = {"name": "digits/linear", "best": 100.0, "largest": 100.0 * (1 + c.slack), "best_increases": 1.0,
             "agree": c.agree_min, **kw}
        return c.judge({"groups": [g], "text": ""}).verdict
    assert v() == HOLDS
    assert v(largest=100.0 * (1 + c.slack) * (1 + EPS)) == FAILS
    assert v(agree=c.agree_min - EPS) == FAILS
    assert v(best_increases=0.0) == FAILS  # the fastest step is a calm one
    assert v(best=None) == INCONCLUSIVE


@pytest.mark.parametrize("c", _both(claims.NonlinearFaster))
def test_nonlinear_faster_thresholds(c):
    def v(lin, nl):
        return c.judge({"groups": [{"name": "digits", "linear": lin, "nonlinear": nl}], "text": ""}).verdict
    assert v(c.trivial_t_sep + 2, c.trivial_t_sep + 1) == HOLDS
    assert v(c.trivial_t_sep + 1, c.trivial_t_sep + 1) == FAILS
    assert v(c.trivial_t_sep, c.trivial_t_sep - 1) == INCONCLUSIVE  # both trivially fast
    assert v(np.nan, 3.0) == INCONCLUSIVE


def test_non_separable_control():
    c = claims.NonSeparableControl()
    assert c.judge({"separated": 0, "text": ""}).verdict == HOLDS
    assert c.judge({"separated": 1, "text": ""}).verdict == FAILS


@pytest.mark.parametrize("c", _both(claims.LossRate))
def test_loss_rate_thresholds(c):
    def v(**kw):
        return c.judge({"slope": -1.0, "near": 2, "text": "", **kw}).verdict
    assert v(slope=c.slope.low) == v(slope=c.slope.high) == HOLDS
    assert v(slope=c.slope.low - EPS) == v(slope=c.slope.high + EPS) == FAILS
    assert v(near=0, slope=np.nan) == INCONCLUSIVE  # no run near its asymptote


@pytest.mark.parametrize("c", _both(claims.DirectionLogRate))
def test_direction_log_rate_thresholds(c):
    def v(**kw):
        return c.judge({"power": c.power_max + EPS, "log_slope": -1.0, "ratio_off": c.ratio_tol, "text": "",
                        **kw}).verdict
    assert v(log_slope=c.log_slope.low) == v(log_slope=c.log_slope.high) == HOLDS
    assert v(log_slope=c.log_slope.low - EPS) == v(log_slope=c.log_slope.high + EPS) == FAILS
    assert v(ratio_off=c.ratio_tol + EPS) == FAILS
    assert v(power=c.power_max) == FAILS
    assert v(log_slope=np.nan) == INCONCLUSIVE


@pytest.mark.parametrize("c", _both(claims.PerceptronNotMaxMargin))
def test_perceptron_not_max_margin_thresholds(c):
    def v(**kw):
        return c.judge({"gap": c.gap_max, "ratio": c.ratio_min, "text": "", **kw}).verdict
    assert v() == HOLDS
    assert v(gap=c.gap_max * (1 + EPS)) == FAILS
    assert v(ratio=c.ratio_min - EPS) == FAILS


# ---- measurements on synthetic results

def _runs(rows):
    base = {"dataset": "synthetic", "model": "linear", "activation": "identity", "loss": "logistic",
            "algorithm": "gd", "status": "ok", "iterations": 100, "seed": 0, "n_increases": 0, "transition_time": 0,
            "final_loss": 0.1, "final_log_loss": np.log(0.1)}
    df = pd.DataFrame([{**base, **r} for r in rows])
    df["run_id"] = [f"r{i}" for i in range(len(df))]
    for c in ("t_sep", "t_sep_stay", "transition_time", "n_increases"):
        if c in df:
            df[c] = df[c].astype("Int64")
    return df


def _traj(runs, fn, iters):
    """trajectory rows: fn(run row, t) → dict of columns, at the given iterations."""
    rows = [{"run_id": r["run_id"], "iter": t, **fn(r, t)} for _, r in runs.iterrows() for t in iters]
    return pd.DataFrame(rows)


def test_unreliable_loss_measured():
    # Made: F(W_1) = γ/8 (the two-point theorem's value, hand-computed) and t_sep = 2 → holds;
    # F(W_1) constant in γ → does not hold; two step sizes → inconclusive.
    runs = _runs([{"lr": g, "t_sep": 2} for g in (10.0, 100.0, 1000.0)])
    good = _traj(runs, lambda r, t: {"log_loss": np.log(r["lr"] / 8) if t == 1 else -1.0}, [0, 1, 2])
    assert claims.UnreliableLoss().evaluate(runs, good).verdict == HOLDS
    flat = _traj(runs, lambda r, t: {"log_loss": 0.0}, [0, 1, 2])
    assert claims.UnreliableLoss().evaluate(runs, flat).verdict == FAILS
    assert claims.UnreliableLoss().evaluate(runs[runs["lr"] < 1000], good).verdict == INCONCLUSIVE


def test_perceptron_limit_measured():
    # Made: gap = 1/γ and identical misclassified sets → holds; gap stuck at 0.5 → does not hold.
    lrs = [1.0, 10.0, 1e3, 1e6]
    good = _runs([{"lr": g, "t_sep": 3, "final_perceptron_gap": 1 / g, "misclassified_agree_frac": 1.0} for g in lrs])
    c = claims.PerceptronLimit()
    assert c.evaluate(good, None).verdict == HOLDS
    assert c.evaluate(good.assign(final_perceptron_gap=0.5), None).verdict == FAILS
    assert c.evaluate(good.drop(columns="final_perceptron_gap"), None).verdict == INCONCLUSIVE


def test_perceptron_lower_bound_measured():
    # Made: t_sep = 0.3 n for the perceptron and GD, 2 for normalized GD → holds;
    # t_sep = 5 for everything (no Ω(n)) → does not hold.
    rows = []
    for n in (10, 100, 1000):
        rows += [{"n": n, "algorithm": "batch_perceptron", "lr": 1.0, "t_sep": int(0.3 * n) + 1},
                 {"n": n, "algorithm": "gd", "lr": 100.0, "t_sep": int(0.3 * n) + 1},
                 {"n": n, "algorithm": "normalized_gd", "lr": 10.0, "t_sep": 2}]
    runs = _runs(rows)
    assert claims.PerceptronLowerBound().evaluate(runs, None).verdict == HOLDS
    assert claims.PerceptronLowerBound().evaluate(runs.assign(t_sep=5), None).verdict == FAILS


def test_large_step_rates_measured():
    # Made: F_T = 1/(η T) (Wu et al.): η = 0.1·T gives T^−2, fixed η = 5 gives T^−1, with loss
    # increases in the η = c·T runs → holds. Swapped (η ∝ T decaying like T^−1) → does not hold.
    # No loss increase anywhere → inconclusive (the steps were not large).
    rows = []
    for T in (400, 800, 1600, 3200):
        rows += [{"lr": 0.1 * T, "iterations": T, "t_sep": 1, "final_log_loss": -np.log(0.1 * T * T), "n_increases": 3},
                 {"lr": 5.0, "iterations": T, "t_sep": 1, "final_log_loss": -np.log(5.0 * T)}]
    runs = _runs(rows)
    c = claims.LargeStepRates()
    assert c.evaluate(runs, None).verdict == HOLDS
    assert c.evaluate(runs.assign(final_log_loss=-np.log(runs["iterations"].astype(float))), None).verdict == FAILS
    assert c.evaluate(runs.assign(n_increases=0), None).verdict == INCONCLUSIVE


def test_transition_time_measured():
    # Made: τ = 0.3/μ² at large η (saturated: equal at the two largest η; the margin term of the
    # bound, as on the lower-bound data) → both claims hold, with k = 1; τ proportional to η →
    # saturation fails; τ = 0 everywhere → both inconclusive (no unstable phase); τ = X²/10⁴
    # (faster than the bound) → scaling does not hold.
    rows = []
    for n in (10, 40, 160):
        for mu in (0.02, 0.04, 0.08):
            x = n / mu + 1 / mu ** 2
            for lr in (1.0, 1e4, 1e5):
                rows.append({"n": n, "data.margin": mu, "lr": lr, "t_sep": 1, "t_sep_stay": int(x / 5),
                             "transition_time": round(0.3 / mu ** 2) if lr > 1 else 0, "x": x})
    runs = _runs(rows)
    sat, scale = claims.TransitionSaturates(), claims.TransitionScaling()
    assert sat.evaluate(runs, None).verdict == HOLDS
    got = scale.evaluate(runs, None)
    assert got.verdict == HOLDS and re.search(r"at fixed n τ ∝ \(1/μ²\)\^(1|0\.99\d*) ", got.measured), got.measured
    assert "at fixed μ τ ∝ n^0" in got.measured  # τ = 0.3/μ² does not depend on n
    fast = runs.assign(transition_time=np.where(runs["lr"] > 1, (runs["x"] ** 2 / 1e4).round(), 0).astype(int))
    assert scale.evaluate(fast, None).verdict == FAILS
    growing = runs.assign(transition_time=(runs["lr"] / 100).astype(int))
    assert sat.evaluate(growing, None).verdict == FAILS
    assert sat.evaluate(runs.assign(transition_time=0), None).verdict == INCONCLUSIVE
    assert scale.evaluate(runs.assign(transition_time=0), None).verdict == INCONCLUSIVE


def _dimension_runs(laws, lr_of=lambda d: 1.0):
    rows = []
    for (model, act), law in laws.items():
        for d in (8, 16, 32, 64):
            for seed in range(3):
                rows.append({"dataset": "family", "model": model, "activation": act, "d": d, "lr": lr_of(d),
                             "seed": seed, "t_sep": int(round(law(d) * (1 + 0.02 * seed)))})
    return _runs(rows)


def test_dimension_gap_measured():
    # Made: linear t_sep = 2d, quadratic 3√d, the identity control 2d → holds (a gap the control
    # does not show); the control also 3√d → inconclusive (parametrization); quadratic 2d → fails;
    # quadratic separating at t = 2 at every d → inconclusive (trivial).
    lin, fast = (lambda d: 2 * d), (lambda d: 3 * np.sqrt(d))
    c = claims.DimensionGap()
    holds = _dimension_runs({("linear", "identity"): lin, ("two_layer", "quadratic"): fast,
                             ("two_layer", "identity"): lin})
    got = c.evaluate(holds, None)
    assert got.verdict == HOLDS and "two_layer(quadratic): d^0.5" in got.measured, got.measured
    control = _dimension_runs({("linear", "identity"): lin, ("two_layer", "quadratic"): fast,
                               ("two_layer", "identity"): fast})
    assert c.evaluate(control, None).verdict == INCONCLUSIVE
    assert c.evaluate(_dimension_runs({("linear", "identity"): lin, ("two_layer", "quadratic"): lin}),
                      None).verdict == FAILS
    trivial = _dimension_runs({("linear", "identity"): lin, ("two_layer", "quadratic"): lambda d: 2})
    assert "holds trivially" in c.evaluate(trivial, None).reason


def test_dimension_gap_reports_the_best_steps_scaling():
    # Made: every run at step η = d (one step per d, so each d's best step is η = d): the step's
    # exponent in d is 1, printed next to the t_sep exponent.
    runs = _dimension_runs({("linear", "identity"): lambda d: 2 * d, ("two_layer", "quadratic"): lambda d: 3.0 * d ** 0.5},
                           lr_of=lambda d: float(d))
    got = claims.DimensionGap().evaluate(runs, None)
    assert re.search(r"two_layer\(quadratic\): d\^0\.5 \[[^]]*\] at best steps ∝ d\^1\b", got.measured), got.measured


def test_real_data_measured():
    # Made: no loss increase at small η, 30 increases at the largest (where GD tracks the
    # perceptron on 97% of the iterations); fastest separation at the largest η, which
    # oscillates; the two-layer
    # model faster → all hold. One increase at small η → fails; agreement 50% at the largest →
    # oscillation inconclusive (regime not reached). breast_cancer, never separated by the
    # linear model, is excluded from those and holds as the control.
    rows = []
    for ds in ("digits", "breast_cancer"):
        for model, act, base in (("linear", "identity", 40), ("two_layer", "relu", 20)):
            for lr in (0.001, 0.01, 1.0, 100.0):
                sep = None if ds == "breast_cancer" and model == "linear" else int(base / lr ** 0.25)
                rows.append({"dataset": ds, "model": model, "activation": act, "lr": lr, "t_sep": sep,
                             "n_increases": 30 if lr == 100 else 0, "misclassified_agree_frac": 0.97,
                             "final_accuracy": 0.95})
    runs = _runs(rows)
    assert claims.OscillatesAtLargeSteps().evaluate(runs, None).verdict == HOLDS
    assert claims.LargeStepsSeparateFastest().evaluate(runs, None).verdict == HOLDS
    assert claims.NonlinearFaster().evaluate(runs, None).verdict == HOLDS
    assert claims.NonSeparableControl().evaluate(runs, None).verdict == HOLDS
    assert claims.OscillatesAtLargeSteps().evaluate(runs.assign(n_increases=1), None).verdict == FAILS
    assert claims.OscillatesAtLargeSteps().evaluate(runs.assign(misclassified_agree_frac=0.5), None).verdict \
        == INCONCLUSIVE
    swapped = runs.assign(t_sep=np.where(runs["model"] == "linear", 5, 50))
    assert claims.NonlinearFaster().evaluate(swapped, None).verdict == FAILS
    assert claims.LargeStepsSeparateFastest().evaluate(runs.assign(t_sep=pd.NA), None).verdict == INCONCLUSIVE
    assert claims.NonSeparableControl().evaluate(runs.assign(t_sep=3), None).verdict == FAILS


def test_implicit_bias_measured():
    # Made: μ = 0.5, F_t = 1/(μ²ηt) exactly (ρ = 1) and direction error = 0.4/log(ηt) at small η;
    # at η = 1e4 the perceptron gap is 0 and the final direction error 0.5 (≥ 3× the small steps'
    # 0.4/log(0.1·20000) ≈ 0.05) → all hold. An error falling like 1/t (a power of t) → does not
    # hold; the small-step error at 0.4 (ratio 1.25) → the third does not hold; F_t ten times
    # below the asymptote (ρ = 0.1) → not in the regime (inconclusive).
    T, mu = 20000, 0.5
    runs = _runs([{"lr": lr, "t_sep": 1, "final_perceptron_gap": 0.0 if lr > 1 else 0.5, "iterations": T,
                   "data_margin": mu, "final_log_loss": -np.log(mu ** 2 * lr * T),
                   "final_direction_error": 0.5 if lr > 1 else 0.4 / np.log(lr * T)} for lr in (0.1, 1.0, 1e4)])
    iters = np.unique(np.geomspace(1, T, 80).astype(int))
    slow = _traj(runs, lambda r, t: {"log_loss": -np.log(mu ** 2 * r["lr"] * t),
                                     "direction_error": 0.4 / np.log(r["lr"] * t + 1)}, iters)
    assert claims.LossRate().evaluate(runs, slow).verdict == HOLDS
    assert claims.DirectionLogRate().evaluate(runs, slow).verdict == HOLDS
    assert claims.PerceptronNotMaxMargin().evaluate(runs, slow).verdict == HOLDS
    fast = _traj(runs, lambda r, t: {"log_loss": -np.log(t), "direction_error": 1 / (t + 1)}, iters)
    assert claims.DirectionLogRate().evaluate(runs, fast).verdict == FAILS
    close = runs.assign(final_direction_error=np.where(runs["lr"] > 1, 0.5, 0.4))
    assert claims.PerceptronNotMaxMargin().evaluate(close, slow).verdict == FAILS
    early = runs.assign(final_log_loss=runs["final_log_loss"] + np.log(0.1))
    assert claims.LossRate().evaluate(early, slow).verdict == INCONCLUSIVE


@pytest.mark.parametrize("cls", sorted({type(c) for c in CRITERIA}, key=lambda t: t.__name__), ids=lambda t: t.__name__)
def test_judges_hold_no_threshold_of_their_own(cls):
    # Every number a verdict depends on is a field: judge() may use 0 and 1 (comparisons, counts)
    # and 100 (printing a fraction as a percentage), nothing else.
    import ast
    import inspect
    import textwrap
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls.judge)))
    literals = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and type(n.value) in (int, float)}
    assert literals <= {0, 1, 100}, f"{cls.__name__}.judge holds literals {literals - {0, 1, 100}}"


def test_level_counts_just_inside_and_outside():
    # min_levels of the lower bound: 3 values of n decide, 2 do not; tau_min and min_settings of
    # the transition scaling: τ = tau_min counts, τ = tau_min − 1 does not (hand-made τ values).
    rows = [{"n": n, "algorithm": a, "lr": 1.0, "t_sep": n} for n in (10, 100, 1000)
            for a in ("batch_perceptron", "gd", "normalized_gd")]
    runs = _runs(rows)
    lb = claims.PerceptronLowerBound()
    assert lb.evaluate(runs, None).verdict != INCONCLUSIVE
    assert lb.evaluate(runs[runs["n"] < 1000], None).verdict == INCONCLUSIVE
    ts = claims.TransitionScaling()
    for tau, counted in ((ts.tau_min, True), (ts.tau_min - 1, False)):
        rows = [{"n": 5, "data.margin": mu, "lr": 1e6, "t_sep": 1, "transition_time": int(tau * k)}
                for mu, k in ((0.01, 16), (0.02, 4), (0.04, 1))]
        got = ts.evaluate(_runs(rows), None)
        assert (got.verdict != INCONCLUSIVE) == counted, got


# ---- edge of stability (sharpness)

def _eos_row(c, **kw):
    return {"lr": 1.0, "start": c.start_max, "estimates": c.min_estimates, "q10": c.band.low, "q90": c.band.high,
            "f_early": 1.0, "f_late": c.loss_drop, **kw}


@pytest.mark.parametrize("c", _both(claims.EdgeOfStability))
def test_edge_of_stability_thresholds(c):
    def v(n=None, **kw):
        rows = [_eos_row(c, lr=float(i + 1), **kw) for i in range(c.min_runs if n is None else n)]
        return c.judge({"groups": [{"activation": "tanh", "runs": rows, "total": len(rows)}], "text": ""}).verdict
    assert v() == HOLDS
    assert v(q10=c.band.low - EPS) == v(q90=c.band.high + EPS) == v(f_late=c.loss_drop + EPS) == FAILS
    assert v(start=c.start_max + EPS) == v(estimates=c.min_estimates - 1) == v(n=c.min_runs - 1) == INCONCLUSIVE
    # frac_min: of 100 runs at the edge, round(100·frac_min) good ones pass, one fewer fails
    good = int(round(100 * c.frac_min))
    for n_good, verdict in ((good, HOLDS), (good - 1, FAILS)):
        rows = [_eos_row(c, lr=float(i + 1), q10=c.band.low if i < n_good else 0.0) for i in range(100)]
        assert c.judge({"groups": [{"activation": "tanh", "runs": rows, "total": 100}], "text": ""}).verdict == verdict


@pytest.mark.parametrize("c", _both(claims.PlateauScalesAsInverseStep))
def test_plateau_scaling_thresholds(c):
    def v(slope=-1.0, n=None, span=None):
        n = c.min_levels if n is None else n
        lrs = np.geomspace(1.0, c.min_span if span is None else span, n)
        return c.judge({"groups": [{"activation": "tanh", "levels": {lr: 2 / lr for lr in lrs}, "slope": slope}],
                        "text": ""}).verdict
    assert v(c.slope_band.low) == v(c.slope_band.high) == HOLDS
    assert v(c.slope_band.low - EPS) == v(c.slope_band.high + EPS) == FAILS
    assert v(n=c.min_levels - 1) == v(span=c.min_span * (1 - EPS)) == INCONCLUSIVE


@pytest.mark.parametrize("c", _both(claims.LogisticSharpnessFalls))
def test_logistic_sharpness_falls_thresholds(c):
    def v(ratio=None, fall=None, reached=1, n=1):
        ratio = c.final_ratio_max if ratio is None else ratio
        fall = c.drop if fall is None else fall
        return c.judge({"groups": [{"activation": "tanh", "runs": n, "reached": reached, "final_ratio": [ratio] * n,
                                    "fall": [fall] * n, "peak_ratio": 1.0}], "text": ""}).verdict
    assert v() == HOLDS
    assert v(ratio=c.final_ratio_max + EPS) == v(fall=c.drop + EPS) == FAILS
    assert v(reached=0) == v(n=0) == INCONCLUSIVE


def _eos_study(plateau, logistic_end):
    """Synthetic squared- and logistic-loss runs at η = 65, 130, 260, 520 (threshold 2/η), estimates
    every 20 iterations to T = 2000: the sharpness rises linearly from 0.1·(2/η) to plateau(η) by
    t = 400 and stays there with a ±3% two-step wobble (squared); on the logistic loss it rises to
    2/η and then decays geometrically to logistic_end·(2/η) at T. The runs columns come from
    gdbench.sharpness.run_metrics on that trajectory, as the engine computes them."""
    from gdbench.sharpness import run_metrics
    iters = np.arange(0, 2001, 20)
    runs, traj = [], []
    for loss in ("squared", "logistic"):
        for lr in (65.0, 130.0, 260.0, 520.0):
            thr = 2 / lr
            if loss == "squared":
                top = plateau(lr)
                s = np.where(iters < 400, 0.1 * thr + (top - 0.1 * thr) * iters / 400,
                             top * (1 + 0.03 * (-1.0) ** (iters // 20)))
            else:
                s = np.where(iters < 400, 0.1 * thr + 0.9 * thr * iters / 400,
                             thr * logistic_end ** ((iters - 400) / 1600))
            log_loss = np.log(0.5) - 3 * np.log1p(iters / 100)  # F falls from 0.5 by ≈ 9000× by T
            rid = f"{loss}-{lr}"
            m = {k: float(v[0]) for k, v in run_metrics(iters, s[:, None], np.array([thr])).items()}
            runs.append({"run_id": rid, "loss": loss, "activation": "tanh", "lr": lr, "final_loss": np.exp(log_loss[-1]),
                         "final_min_margin": 1.0, **m})
            traj.append(pd.DataFrame({"run_id": rid, "iter": iters, "sharpness": s, "log_loss": log_loss}))
    return _runs(runs).assign(run_id=[r["run_id"] for r in runs]), pd.concat(traj, ignore_index=True)


def test_edge_of_stability_measured():
    at_edge = _eos_study(lambda lr: 2 / lr, logistic_end=0.05)
    for c in (claims.EdgeOfStability(), claims.PlateauScalesAsInverseStep(), claims.LogisticSharpnessFalls()):
        assert c.evaluate(*at_edge).verdict == HOLDS, c.evaluate(*at_edge)
    m = claims.PlateauScalesAsInverseStep().measure(*at_edge)
    assert m["groups"][0]["slope"] == pytest.approx(-1.0, abs=1e-9)  # median plateau = 2/η exactly
    # a plateau at 1.5·(2/η) is above the edge: the band fails, the slope still holds
    above = _eos_study(lambda lr: 3 / lr, logistic_end=0.05)
    assert claims.EdgeOfStability().evaluate(*above).verdict == FAILS
    assert claims.PlateauScalesAsInverseStep().evaluate(*above).verdict == HOLDS
    # a sharpness that stays at 2/η on the logistic loss does not fall
    stays = _eos_study(lambda lr: 2 / lr, logistic_end=1.0)
    assert claims.LogisticSharpnessFalls().evaluate(*stays).verdict == FAILS
    # no run rises to the edge (a constant sharpness of 0.05 everywhere): regime not reached
    low = _eos_study(lambda lr: 2 / lr, logistic_end=0.05)
    flat_runs = low[0].assign(t_eos=np.nan)
    assert claims.EdgeOfStability().evaluate(flat_runs, low[1]).verdict == INCONCLUSIVE
    assert claims.PlateauScalesAsInverseStep().evaluate(flat_runs, low[1]).verdict == INCONCLUSIVE
    assert claims.LogisticSharpnessFalls().evaluate(flat_runs, low[1]).verdict == INCONCLUSIVE
