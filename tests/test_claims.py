"""Claim evaluators on synthetic results built to pass and to fail (each says how it was made)."""
import numpy as np
import pandas as pd

from gdbench import claims
from gdbench.claims import FAILS, HOLDS, INCONCLUSIVE


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


def test_unreliable_loss():
    # Made: F(W_1) = γ/8 (the two-point theorem's value, hand-computed) and t_sep = 2 → holds;
    # F(W_1) constant in γ → does not hold.
    runs = _runs([{"lr": g, "t_sep": 2} for g in (10.0, 100.0, 1000.0)])
    good = _traj(runs, lambda r, t: {"log_loss": np.log(r["lr"] / 8) if t == 1 else -1.0}, [0, 1, 2])
    assert claims.unreliable_loss(runs, good).verdict == HOLDS
    flat = _traj(runs, lambda r, t: {"log_loss": 0.0}, [0, 1, 2])
    assert claims.unreliable_loss(runs, flat).verdict == FAILS


def test_perceptron_limit():
    # Made: gap = 1/γ and identical misclassified sets → holds; gap stuck at 0.5 → does not hold.
    lrs = [1.0, 10.0, 1e3, 1e6]
    good = _runs([{"lr": g, "t_sep": 3, "final_perceptron_gap": 1 / g, "misclassified_agree_frac": 1.0} for g in lrs])
    assert claims.perceptron_limit(good, None).verdict == HOLDS
    bad = good.assign(final_perceptron_gap=0.5)
    assert claims.perceptron_limit(bad, None).verdict == FAILS
    assert claims.perceptron_limit(good.drop(columns="final_perceptron_gap"), None).verdict == INCONCLUSIVE


def test_perceptron_lower_bound():
    # Made: t_sep = 0.3 n for the perceptron and GD, 2 for normalized GD → holds;
    # t_sep = 5 for everything (no Ω(n)) → does not hold.
    rows = []
    for n in (10, 100, 1000):
        rows += [{"n": n, "algorithm": "batch_perceptron", "lr": 1.0, "t_sep": int(0.3 * n) + 1},
                 {"n": n, "algorithm": "gd", "lr": 100.0, "t_sep": int(0.3 * n) + 1},
                 {"n": n, "algorithm": "normalized_gd", "lr": 10.0, "t_sep": 2}]
    runs = _runs(rows)
    assert claims.perceptron_lower_bound(runs, None).verdict == HOLDS
    assert claims.perceptron_lower_bound(runs.assign(t_sep=5), None).verdict == FAILS


def test_large_step_rates():
    # Made: F_T = 1/(η T) (Wu et al.): η = 0.1·T gives T^−2, fixed η = 5 gives T^−1 → holds.
    # Swapped (η ∝ T decaying like T^−1) → does not hold.
    rows = []
    for T in (400, 800, 1600, 3200):
        rows += [{"lr": 0.1 * T, "iterations": T, "t_sep": 1, "final_log_loss": -np.log(0.1 * T * T)},
                 {"lr": 5.0, "iterations": T, "t_sep": 1, "final_log_loss": -np.log(5.0 * T)}]
    runs = _runs(rows)
    assert claims.large_step_rates(runs, None).verdict == HOLDS
    slow = runs.assign(final_log_loss=-np.log(runs["iterations"].astype(float)))
    assert claims.large_step_rates(slow, None).verdict == FAILS


def test_transition_time():
    # Made: τ = X/10 with X = n/μ + 1/μ² at large η (saturated: equal at the two largest η) →
    # both claims hold; τ = η-proportional → saturation fails; τ = 0 everywhere → scaling inconclusive.
    rows = []
    for n in (10, 40, 160):
        for mu in (0.05, 0.1, 0.2):
            x = n / mu + 1 / mu ** 2
            for lr in (1.0, 1e4, 1e5):
                rows.append({"n": n, "data.margin": mu, "lr": lr, "t_sep": 1, "t_sep_stay": int(x / 5),
                             "transition_time": int(x / 10) if lr > 1 else 0})
    runs = _runs(rows)
    sat, scale = claims.transition_time(runs, None)
    assert sat.verdict == HOLDS and scale.verdict == HOLDS
    growing = runs.assign(transition_time=(runs["lr"] / 100).astype(int))
    assert claims.transition_time(growing, None)[0].verdict == FAILS
    assert claims.transition_time(runs.assign(transition_time=0), None)[1].verdict == INCONCLUSIVE


def _dimension_runs(laws):
    rows = []
    for (model, act), law in laws.items():
        for d in (8, 16, 32, 64):
            for seed in range(3):
                rows.append({"dataset": "family", "model": model, "activation": act, "d": d, "lr": 1.0, "seed": seed,
                             "t_sep": int(round(law(d) * (1 + 0.02 * seed)))})
    return _runs(rows)


def test_dimension_scaling():
    # Made: linear t_sep = 2d, quadratic 3√d, the identity control 2d → holds (a gap the control
    # does not show); the control also 3√d → inconclusive (parametrization); quadratic 2d → fails.
    lin, fast = (lambda d: 2 * d), (lambda d: 3 * np.sqrt(d))
    holds = _dimension_runs({("linear", "identity"): lin, ("two_layer", "quadratic"): fast,
                             ("two_layer", "identity"): lin})
    assert claims.dimension_scaling(holds, None)[0].verdict == HOLDS
    control = _dimension_runs({("linear", "identity"): lin, ("two_layer", "quadratic"): fast,
                               ("two_layer", "identity"): fast})
    assert claims.dimension_scaling(control, None)[0].verdict == INCONCLUSIVE
    none = _dimension_runs({("linear", "identity"): lin, ("two_layer", "quadratic"): lin})
    assert claims.dimension_scaling(none, None)[0].verdict == FAILS


def test_real_data_claims():
    # Made: no loss increase at small η, increases at the largest; fastest separation at the
    # largest η with full agreement; the two-layer model faster → all hold. Reversed → fail.
    rows = []
    for model, act, base in (("linear", "identity", 40), ("two_layer", "relu", 20)):
        for lr in (0.001, 0.01, 1.0, 100.0):
            rows.append({"model": model, "activation": act, "lr": lr, "n_increases": 3 if lr == 100 else 0,
                         "t_sep": int(base / lr ** 0.25), "misclassified_agree_frac": 0.97})
    runs = _runs(rows)
    assert claims.real_data_dynamics(runs, None).verdict == HOLDS
    assert claims.real_data_fastest(runs, None).verdict == HOLDS
    assert claims.real_data_nonlinear_faster(runs, None).verdict == HOLDS
    assert claims.real_data_dynamics(runs.assign(n_increases=1), None).verdict == FAILS
    swapped = runs.assign(t_sep=np.where(runs["model"] == "linear", 5, 50))
    assert claims.real_data_nonlinear_faster(swapped, None).verdict == FAILS
    assert claims.real_data_fastest(runs.assign(t_sep=pd.NA), None).verdict == INCONCLUSIVE


def test_implicit_bias():
    # Made: F_t = 1/t and direction error = 1/log t at small η; at η = 1e4 the perceptron gap is
    # 0 and the final direction error 0.5 (≥ 3× the small steps' 1/log 20000 ≈ 0.1) → all hold. An error falling like
    # 1/t (a power of t) → inconclusive (the 1/log t claim is asymptotic).
    runs = _runs([{"lr": lr, "t_sep": 1, "final_perceptron_gap": 0.0 if lr > 1 else 0.5,
                   "final_direction_error": 0.5 if lr > 1 else 1 / np.log(20000)} for lr in (0.1, 1.0, 1e4)])
    iters = np.unique(np.geomspace(1, 20000, 60).astype(int))
    slow = _traj(runs, lambda r, t: {"log_loss": -np.log(t + 1), "direction_error": 1 / np.log(t + 2)}, iters)
    a, b, c = claims.implicit_bias(runs, slow)
    assert (a.verdict, b.verdict, c.verdict) == (HOLDS, HOLDS, HOLDS)
    fast = _traj(runs, lambda r, t: {"log_loss": -np.log(t + 1), "direction_error": 1 / (t + 1)}, iters)
    assert claims.implicit_bias(runs, fast)[1].verdict == INCONCLUSIVE
    assert claims.implicit_bias(runs.assign(final_direction_error=0.01), slow)[2].verdict == FAILS
