"""Analysis on synthetic runs and trajectories with known answers (each test says how they were made)."""
import numpy as np
import pandas as pd
import pytest

from gdbench import analysis
from conftest import synthetic_runs


def _runs(rows):
    return synthetic_runs(rows)


def test_rate_fit_recovers_a_power_law_after_the_transition():
    # Made: log F_t = log 3 − a log t exactly for t ≥ τ = 50, wild oscillation before τ (which
    # must be excluded by the window [max(τ, t0), T]). Expected slope −a, R² = 1 (exact line).
    t = np.arange(0, 1001)
    rows, traj = [], []
    for i, (a, tau) in enumerate([(1.0, 50), (2.0, 0), (0.5, 200)]):
        y = np.log(3.0) - a * np.log(np.maximum(t, 1))
        y[1:tau] += 5 * np.sin(t[1:tau])  # chaotic unstable phase
        rows.append({"model": "linear", "lr": 1.0 + i, "seed": 0, "t_sep": 1, "transition_time": tau})
        traj.append(pd.DataFrame({"run_id": f"r{i}", "iter": t, "log_loss": y}))
    runs = _runs(rows)
    fit = analysis.fit_rates(runs, pd.concat(traj), t0=10)
    assert np.allclose(fit["rate_slope"], [-1.0, -2.0, -0.5], atol=1e-12)
    assert np.allclose(fit["rate_r2"], 1.0, atol=1e-12)
    assert list(fit["rate_window_start"]) == [50, 10, 200]
    assert list(fit["rate_points"]) == [951, 991, 801]  # t = start … 1000, counted by hand


def test_rate_fit_skips_diverged_runs_and_short_windows():
    runs = _runs([{"model": "linear", "lr": 1.0, "seed": 0, "t_sep": None, "status": "diverged"},
                  {"model": "linear", "lr": 2.0, "seed": 0, "t_sep": 1, "transition_time": 99}])
    traj = pd.DataFrame({"run_id": ["r0"] * 3 + ["r1"] * 3, "iter": [10, 50, 100] * 2,
                         "log_loss": [-1.0, -2.0, -3.0] * 2})
    fit = analysis.fit_rates(runs, traj)
    assert fit["rate_slope"].isna().all()  # r0 diverged; r1 has 1 point (t=100) in [99, 100]


def test_loglog_fit_and_bootstrap_interval_match_ols_theory():
    # Made: t_sep = 4·d^0.5·exp(σ ε), ε ~ N(0,1), 200 seeds at each of 6 dimensions. The OLS slope
    # has standard error σ/sqrt(Σ(log d − mean)²) (closed form); the bootstrap 95% interval must
    # contain the true 0.5 and have a width ≈ 2·1.96·SE.
    rng = np.random.default_rng(1)
    d = np.repeat([4, 8, 16, 32, 64, 128], 200)
    sigma = 0.3
    y = 4 * d ** 0.5 * np.exp(sigma * rng.standard_normal(len(d)))
    fit = analysis.fit_loglog(d, y)
    lx = np.log(d)
    se = sigma / np.sqrt(((lx - lx.mean()) ** 2).sum())
    assert abs(fit["exponent"] - 0.5) < 4 * se
    assert fit["prefactor"] == pytest.approx(4, rel=0.1)
    lo, hi = analysis.bootstrap_exponent(d, y, n_boot=2000, seed=0)
    assert lo < 0.5 < hi
    assert (hi - lo) == pytest.approx(2 * 1.96 * se, rel=0.2)
    exact = analysis.fit_loglog([1, 2, 4], [3, 6, 12])  # y = 3x: slope 1, prefactor 3, R² 1
    assert exact["exponent"] == pytest.approx(1) and exact["prefactor"] == pytest.approx(3) and exact["r2"] == 1


def test_censored_quantiles_read_null_as_never():
    s = pd.Series([1, 2, None, None], dtype="Int64")
    # sorted [1, 2, ∞, ∞]: position 0.75 for q = 0.25 → 1 + 0.75·(2 − 1) = 1.75 (numpy's linear rule)
    assert analysis.censored_quantile(s, 0.25) == 1.75
    assert np.isnan(analysis.censored_quantile(s, 0.5))  # halfway between 2 and ∞: not reached
    assert analysis.censored_quantile(pd.Series([1, 2, None], dtype="Int64"), 0.5) == 2  # exactly the 2nd value
    assert analysis.censored_quantile(pd.Series([1, 3, 5, 7]), 0.5) == 4  # uncensored: usual median


def _scaling_runs(seeds=8, sigma=0.1):
    # Made: linear t_sep = 2·d (exponent 1), two-layer t_sep = 5·sqrt(d) (exponent 0.5), each with
    # lognormal seed noise, at the best step 10; the other step 0.1 is 10× slower and must not be used.
    rng = np.random.default_rng(0)
    rows = []
    for model, law in (("linear", lambda d: 2 * d), ("two_layer", lambda d: 5 * np.sqrt(d))):
        for d in (10, 20, 40, 80, 160):
            for lr, slow in ((0.1, 10), (10.0, 1)):
                for seed in range(seeds):
                    rows.append({"model": model, "d": d, "lr": lr, "seed": seed,
                                 "t_sep": int(round(slow * law(d) * np.exp(sigma * rng.standard_normal())))})
    return _runs(rows)


def test_scaling_exponents_at_the_best_step_size():
    table = analysis.scaling_table(_scaling_runs(), x="d", n_boot=500)
    by_model = table.set_index("model")
    assert by_model.loc["linear", "exponent"] == pytest.approx(1.0, abs=0.05)
    assert by_model.loc["two_layer", "exponent"] == pytest.approx(0.5, abs=0.05)
    for m in ("linear", "two_layer"):
        assert by_model.loc[m, "ci_low"] < by_model.loc[m, "exponent"] < by_model.loc[m, "ci_high"]
        assert by_model.loc[m, "levels"] == 5 and by_model.loc[m, "runs"] == 40  # best lr only


def test_acceleration_ratio_against_the_linear_baseline():
    runs = _scaling_runs(seeds=3, sigma=0.0)
    acc = analysis.acceleration_table(runs)
    row = acc[(acc["model"] == "two_layer") & (acc["d"] == 160)].iloc[0]
    # hand: linear best t_sep = 2·160 = 320; two-layer = round(5·sqrt(160)) = 63 → ratio 320/63
    assert row["best_lr"] == 10.0 and row["baseline_t_sep"] == 320 and row["acceleration"] == pytest.approx(320 / 63)
    assert (acc.loc[acc["model"] == "linear", "acceleration"] == 1).all()


def test_budget_exponents_for_fixed_and_budget_proportional_steps():
    # Made: final loss = 1/(η T) (Wu et al.'s rate): with η = c·T that is T^−2/c, with η fixed T^−1.
    rows = []
    for T in (400, 800, 1600, 3200):
        for seed in range(2):
            rows.append({"model": "linear", "lr": 0.01 * T, "seed": seed, "iterations": T, "t_sep": 1,
                         "final_log_loss": -np.log(0.01 * T * T)})
            rows.append({"model": "linear", "lr": 5.0, "seed": seed, "iterations": T, "t_sep": 1,
                         "final_log_loss": -np.log(5.0 * T)})
    table = analysis.budget_table(_runs(rows), n_boot=100)
    got = table.set_index("schedule")["exponent"]
    assert got[analysis.PROPORTIONAL] == pytest.approx(-2) and got[analysis.FIXED] == pytest.approx(-1)


def test_rates_table_counts_best_step_and_failed_runs():
    rows = [{"model": "linear", "lr": lr, "seed": s, "t_sep": t} for lr, ts in ((1.0, (30, 40, 50)), (10.0, (5, 6, None)))
            for s, t in enumerate(ts)]
    rows.append({"model": "linear", "lr": 10.0, "seed": 3, "t_sep": None, "status": "failed"})
    rows.append({"model": "linear", "lr": 100.0, "seed": 0, "t_sep": None, "status": "diverged"})
    table = analysis.rates_table(_runs(rows)).set_index("lr")
    assert list(table["runs"]) == [3, 4, 1] and list(table["failed"]) == [0, 1, 0]
    assert list(table["diverged"]) == [0, 0, 1]
    # hand: lr=10 → non-failed t_sep (5, 6, never) → separated 2/3, censored median 6
    assert table.loc[10.0, "separated"] == pytest.approx(2 / 3) and table.loc[10.0, "t_sep_median"] == 6
    assert table.loc[1.0, "t_sep_median"] == 40 and np.isnan(table.loc[100.0, "t_sep_median"])
    assert list(table["best"]) == [False, True, False]


def test_group_columns_skip_keys_determined_by_others():
    runs = _runs([{"model": m, "lr": 1.0, "seed": 0, "t_sep": 1, "model.scale": ("1/m" if m == "two_layer" else None),
                   "data.n": n, "n": n, "d": 2 * n} for m in ("linear", "two_layer") for n in (10, 20)])
    keys = analysis.group_columns(runs)
    # scale is tied to the model: left out; d is tied to n but n and d are always shown (a sweep over
    # npz files has only data.path to tell them apart otherwise)
    assert "n" in keys and "d" in keys and "model.scale" not in keys
    with pytest.raises(KeyError, match="nope"):
        analysis.group_columns(runs, by=["model", "nope"])


def test_curve_quantiles_equal_numpy_quartiles():
    rng = np.random.default_rng(3)
    runs = _runs([{"model": "linear", "lr": 1.0, "seed": s, "t_sep": 1} for s in range(5)])
    vals = rng.normal(size=(5, 4))
    traj = pd.DataFrame({"run_id": np.repeat(runs["run_id"], 4).to_numpy(), "iter": np.tile([0, 1, 2, 3], 5),
                         "log_loss": vals.ravel() * np.log(10), "accuracy": vals.ravel() ** 2})
    curves = analysis.curve_quantiles(runs, traj)
    assert np.allclose(curves["log10_loss_median"], np.median(vals, axis=0))
    assert np.allclose(curves["accuracy_q25"], np.quantile(vals ** 2, 0.25, axis=0))
    assert list(curves["runs"]) == [5] * 4
