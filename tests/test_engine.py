"""The batched engine against independent routes: one-at-a-time engine runs, the autograd loop of
gdbench.reference (torch.optim.SGD for the momentum methods), and the perceptron limit."""
import numpy as np
import pytest

from gdbench import algorithms, data, engine, losses, models, reference

DS = data.gaussian(n=30, d=6, margin=0.05, seed=1)
TWO = models.TwoLayer(width=8, activation="tanh", train="both")


def run(model, algorithm, lrs, seeds, T=60, **kw):
    return engine.run_cell(DS.x, DS.y, model=model, loss=losses.Logistic(), algorithm=algorithm,
                           lrs=lrs, seeds=seeds, iterations=T, **kw)


@pytest.mark.parametrize("model", [models.Linear(init_mode="normal"), TWO], ids=lambda m: m.name)
def test_batched_cell_equals_one_at_a_time(model):
    lrs, seeds = [0.1, 1.0, 10.0, 0.1, 100.0], [0, 0, 1, 2, 3]
    batched = run(model, algorithms.GD(), lrs, seeds, record=engine.RecordSchedule(dense=20, log_points=10))
    for r, (lr, seed) in enumerate(zip(lrs, seeds)):
        alone = run(model, algorithms.GD(), [lr], [seed], record=engine.RecordSchedule(dense=20, log_points=10))
        for k, v in alone.metrics.items():
            if v.dtype == object:
                assert batched.metrics[k][r] == v[0], k
            else:
                np.testing.assert_allclose(batched.metrics[k][r], v[0], rtol=1e-12, atol=1e-300, err_msg=k)
        for k, v in alone.trajectory.items():
            np.testing.assert_allclose(batched.trajectory[k][:, r], v[:, 0], rtol=1e-12, atol=1e-300, err_msg=k)


ALGOS = [algorithms.GD(), algorithms.NormalizedGD(), algorithms.BatchPerceptron(),
         algorithms.NormalizedBatchPerceptron(), algorithms.HeavyBall(momentum=0.8),
         algorithms.Nesterov(momentum=0.7)]


@pytest.mark.parametrize("algorithm", ALGOS, ids=lambda a: a.name)
@pytest.mark.parametrize("model", [models.Linear(), models.TwoLayer(width=8, activation="relu")], ids=lambda m: m.name)
def test_engine_equals_naive_autograd_loop(model, algorithm):
    lrs, seeds, T = [0.5, 5.0], [0, 1], 40
    res = run(model, algorithm, lrs, seeds, T=T, record=engine.RecordSchedule(dense=T + 1), keep_params=True)
    for r in range(2):
        ref = reference.run_one(DS.x, DS.y, model=model, loss=losses.Logistic(), algorithm=algorithm,
                                lr=lrs[r], seed=seeds[r], iterations=T)
        np.testing.assert_allclose(res.trajectory["loss"][:, r], ref["loss"], rtol=1e-10)
        np.testing.assert_allclose(res.trajectory["min_margin"][:, r], ref["min_margin"], rtol=1e-10, atol=1e-12)
        for k, v in ref["params"].items():
            np.testing.assert_allclose(res.final_params[k][r], v, rtol=1e-10, atol=1e-12)
        assert (np.isnan(res.metrics["t_sep"][r]) and ref["t_sep"] is None) or res.metrics["t_sep"][r] == ref["t_sep"]


def test_first_perceptron_step_from_zero_is_half_mean_of_yx():
    # Tyurin 2025: θ̂_1 = (1/2n) Σ y_i x_i, since every margin is 0 at θ̂_0 = 0 and p_i = ½.
    res = run(models.Linear(), algorithms.BatchPerceptron(), [1.0], [0], T=1, keep_params=True)
    expected = (DS.y[:, None] * DS.x).sum(0) / (2 * len(DS.y))
    np.testing.assert_allclose(res.final_params["v"][0], expected, rtol=1e-14)


@pytest.mark.parametrize("model", [models.Linear(),
                                   models.TwoLayer(width=16, activation="leaky_relu", alpha=0.2, train="inner")],
                         ids=lambda m: m.name)
def test_gd_over_gamma_tends_to_the_perceptron(model):
    # Tyurin 2025 Thm 3.2 (linear, from 0) and its generalization to 1-homogeneous models.
    gammas = [1e1, 1e2, 1e3, 1e4, 1e6]
    res = run(model, algorithms.GD(), gammas, [0] * len(gammas), T=30, companion=True)
    gap = res.metrics["max_perceptron_gap"]
    assert np.all(np.diff(gap) < 0), gap  # strictly decreasing in γ
    assert gap[-1] < 1e-3
    assert res.metrics["misclassified_agree_frac"][-1] == 1.0
    assert res.metrics["misclassified_agree_frac"][0] < 1.0 or gap[0] > 10 * gap[-1]


def test_companion_rejects_non_homogeneous_models_and_non_gd():
    with pytest.raises(ValueError, match="1-homogeneous"):
        run(models.TwoLayer(activation="quadratic"), algorithms.GD(), [1.0], [0], companion=True)
    with pytest.raises(ValueError, match="'gd'"):
        run(models.Linear(), algorithms.NormalizedGD(), [1.0], [0], companion=True)


def test_divergence_is_data_and_does_not_disturb_other_replicas():
    # The exponential loss with a huge step overflows quickly; the small-step replica must be
    # bit-identical to the same cell with a harmless second replica (same shapes, so the same
    # GEMM blocking: a replica's last bits may depend on the batch size, never on the others).
    kw = dict(model=models.TwoLayer(width=4, activation="quadratic", train="both"),
              loss=losses.Exponential(), algorithm=algorithms.GD(), iterations=200)
    both = engine.run_cell(DS.x, DS.y, lrs=[1e-3, 1e6], seeds=[0, 0], **kw)
    alone = engine.run_cell(DS.x, DS.y, lrs=[1e-3, 2e-3], seeds=[0, 0], **kw)
    assert list(both.metrics["status"]) == ["ok", "diverged"]
    t_div = both.metrics["diverged_at"][1]
    assert 1 <= t_div < 200
    np.testing.assert_array_equal(both.trajectory["loss"][:, 0], alone.trajectory["loss"][:, 0])
    cols = both.trajectory_columns()
    kept = cols["iter"][cols["replica"] == 1]
    assert kept.max() < t_div  # the trajectory stops where the run diverged …
    assert np.isfinite(both.metrics["final_param_norm"][1])  # … and its final state is the last finite one


def test_record_schedule_dense_then_log_spaced():
    its = engine.RecordSchedule(dense=10, log_points=5).iterations(1000)
    assert list(its[:10]) == list(range(10))
    assert its[-1] == 1000 and len(its) <= 15 and np.all(np.diff(its) > 0)
    assert list(engine.RecordSchedule(dense=0, log_points=0).iterations(7)) == [7]


def test_early_stop_when_every_replica_separated_and_below_target():
    res = run(models.Linear(), algorithms.GD(), [10.0, 100.0], [0, 0], T=100000, stop_loss=1e-3, check_every=50)
    assert res.iterations_run < 100000 and res.iterations_run % 50 == 0
    assert np.all(res.metrics["final_loss"] <= 1e-3)
    assert res.trajectory_iter[-1] == res.iterations_run


def test_float32_and_runs_table_rows():
    res = run(models.Linear(), algorithms.GD(), [1.0, 2.0], [0, 1], T=20, dtype="float32")
    rows = res.run_rows()
    assert len(rows) == 2 and rows[1]["lr"] == 2.0 and rows[1]["seed"] == 1
    assert rows[0]["diverged_at"] is None  # null, not a sentinel
    cols = res.trajectory_columns()
    assert len(cols["iter"]) == 2 * len(res.trajectory_iter)


@pytest.mark.parametrize("kw, match", [
    (dict(lrs=[0.0], seeds=[0]), "algorithm.lr=0.0"),
    (dict(lrs=[float("inf")], seeds=[0]), "algorithm.lr=inf"),
    (dict(lrs=[1.0], seeds=[0], iterations=-1), "iterations=-1"),
    (dict(lrs=[1.0, 2.0], seeds=[0]), "equal non-zero lengths"),
    (dict(lrs=[1.0], seeds=[0], dtype="float16"), "dtype='float16'"),
])
def test_bad_engine_input_names_the_field(kw, match):
    args = dict(model=models.Linear(), loss=losses.Logistic(), algorithm=algorithms.GD(), iterations=5)
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        engine.run_cell(DS.x, DS.y, **args)


def test_bad_data_input_names_the_field():
    args = dict(model=models.Linear(), loss=losses.Logistic(), algorithm=algorithms.GD(), lrs=[1.0],
                seeds=[0], iterations=5)
    with pytest.raises(ValueError, match="labels must be in"):
        engine.run_cell(DS.x, np.where(DS.y > 0, 1.0, 0.0), **args)
    bad = DS.x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        engine.run_cell(bad, DS.y, **args)
    with pytest.raises(ValueError, match=r"x must be \(n, d\) and y \(n,\)"):
        engine.run_cell(DS.x, DS.y[:-1], **args)
    with pytest.raises(ValueError, match="both classes"):  # the same rule as for a dataset (checks.dataset)
        engine.run_cell(DS.x, np.ones_like(DS.y), **args)


@pytest.mark.parametrize("kw, match", [
    (dict(width=0), "model.width=0"), (dict(activation="swish"), "model.activation='swish'"),
    (dict(scale="2"), "model.scale='2'"), (dict(train="middle"), "model.train='middle'"),
    (dict(init_scale=-1.0), "model.init_scale=-1.0")])
def test_bad_model_options(kw, match):
    with pytest.raises(ValueError, match=match):
        models.TwoLayer(**kw)


def test_bad_algorithm_options():
    with pytest.raises(ValueError, match="algorithm.lr=-1"):
        algorithms.GD(lr=-1)
    with pytest.raises(ValueError, match="algorithm.momentum=1.0"):
        algorithms.HeavyBall(momentum=1.0)


def test_direction_error_to_the_svm_direction():
    # margin_2d with skew = 0 is built with max-margin direction e_2 (by construction), so the
    # SVM route must return (0, ±1); the engine's final direction_error must equal
    # ‖v/‖v‖ − u‖ computed with numpy from the final parameters.
    ds = data.margin_2d(n_pos=15, n_neg=15, margin=0.2, seed=3)
    u = data.max_margin_direction(ds.x, ds.y)
    assert np.allclose(u, [0.0, 1.0], atol=1e-6)
    res = engine.run_cell(ds.x, ds.y, model=models.Linear(), loss=losses.Logistic(), algorithm=algorithms.GD(),
                          lrs=[0.5, 50.0], seeds=[0, 0], iterations=300, direction=u, keep_params=True)
    v = res.final_params["v"]
    expected = np.linalg.norm(v / np.linalg.norm(v, axis=1, keepdims=True) - u, axis=1)
    assert np.allclose(res.metrics["final_direction_error"], expected, rtol=1e-12)
    err = res.trajectory["direction_error"]
    assert np.isnan(err[0]).all() and np.all(np.isfinite(err[1:]))  # undefined at W_0 = 0
    with pytest.raises(ValueError, match="direction"):
        engine.run_cell(ds.x, ds.y, model=models.TwoLayer(width=4), loss=losses.Logistic(),
                        algorithm=algorithms.GD(), lrs=[1.0], seeds=[0], iterations=2, direction=u)


def test_skewed_margin_2d_makes_the_first_large_step_misclassify_the_support_points():
    # skew = 1: Σ y_i x_i leans along e_1 (bulk y·x_1 = 1 + y·a), while the two support points
    # have y·x = (−1, margin): after one large step from 0 exactly they are misclassified (hand).
    ds = data.margin_2d(n_pos=20, n_neg=20, margin=0.1, skew=1.0, width=0.5)
    step = (ds.y[:, None] * ds.x).mean(0)
    assert step[0] > 0.5 and (ds.y * (ds.x @ step) <= 0).sum() == 2
    res = engine.run_cell(ds.x, ds.y, model=models.Linear(), loss=losses.Logistic(), algorithm=algorithms.GD(),
                          lrs=[1e4], seeds=[0], iterations=3, record=engine.RecordSchedule(dense=10, log_points=0))
    assert res.trajectory["n_misclassified"][1, 0] == 2


@pytest.mark.slow
def test_compiled_run_is_one_program_after_another_cell():
    # A compiled run with every replica live is one compiled program (two iterations per call)
    # for all its iterations, also in a process that compiled another cell before (as a sweep's
    # worker does). Counted by dynamo: a recompilation at some t > 0 (e.g. a guard that fails
    # from the second call on) would add a graph and cost a compilation per run.
    from torch._dynamo.utils import counters
    kw = dict(loss=losses.Logistic(), algorithm=algorithms.GD(), iterations=9, compile=True,
              record=engine.RecordSchedule(dense=3, log_points=2))
    engine.run_cell(DS.x, DS.y, model=models.Linear(), lrs=[1.0, 2.0, 3.0], seeds=[0, 1, 2], **kw)
    before = counters["stats"]["unique_graphs"]
    res = engine.run_cell(DS.x, DS.y, model=models.TwoLayer(width=5), lrs=[1.0, 2.0, 3.0], seeds=[0, 1, 2], **kw)
    assert counters["stats"]["unique_graphs"] == before + 1
    assert res.iterations_run == 9 and list(res.metrics["status"]) == ["ok"] * 3


@pytest.mark.slow
def test_compiled_engine_equals_eager():
    # compile=True runs the same per-iteration program through torch.compile (one compilation
    # per cell shape, ~10 s each on a 2-core CPU). Independent route: the eager engine, whose
    # agreement with autograd is tested above. Fused kernels round differently, so equality is
    # to 1e-9, and the integer metrics (times, counts) must agree exactly. Compiled, iterations
    # run in pairs while every replica is live, and the second of a pair is dropped when the
    # first changes what it started from; each case below makes that happen. The second cell
    # diverges (exponential loss, step 1e6), so the freezing and the log-domain fallback of the
    # loss run under compilation too. The third carries the perceptron companion and stops early
    # at a check every 7 iterations, on the first iteration of a pair. In the fourth, step 1e6
    # drives the loss below 1e-289 with every replica live (the log-domain fallback alone).
    cases = [dict(model=models.TwoLayer(width=8, activation="relu"), loss=losses.Logistic(),
                  lrs=[0.1, 1.0, 10.0, 1000.0], seeds=[0, 1, 2, 3], iterations=300),
             dict(model=models.TwoLayer(width=4, activation="quadratic", train="both"), loss=losses.Exponential(),
                  lrs=[1e-3, 1e6], seeds=[0, 0], iterations=200),
             dict(model=models.Linear(), loss=losses.Logistic(), lrs=[10.0, 100.0], seeds=[0, 0], iterations=100000,
                  companion=True, stop_loss=1e-3, check_every=7),
             dict(model=models.Linear(), loss=losses.Logistic(), lrs=[1.0, 1e6], seeds=[0, 0], iterations=40)]

    def gap_atol(column):  # a perceptron gap is relative to ‖Ŵ_t‖; at large γ it is rounding (~1e-16)
        return 1e-12 if "perceptron_gap" in column else 1e-300

    from torch._dynamo.utils import counters
    counters.clear()
    stopped = []
    for kw in cases:
        runs = {c: engine.run_cell(DS.x, DS.y, algorithm=algorithms.GD(), keep_params=True, compile=c, **kw)
                for c in (False, True)}
        eager, compiled = runs[False], runs[True]
        for k, v in eager.metrics.items():
            if v.dtype == object:
                assert list(compiled.metrics[k]) == list(v), k
            elif k.startswith(("t_", "n_", "diverged", "transition")):
                np.testing.assert_array_equal(compiled.metrics[k], v, err_msg=k)
            else:
                np.testing.assert_allclose(compiled.metrics[k], v, rtol=1e-9, atol=gap_atol(k), err_msg=k)
        for k, v in eager.trajectory.items():
            np.testing.assert_allclose(compiled.trajectory[k], v, rtol=1e-9, atol=gap_atol(k), err_msg=k)
        for k, v in eager.final_params.items():
            np.testing.assert_allclose(compiled.final_params[k], v, rtol=1e-9, atol=1e-12, err_msg=k)
        assert compiled.iterations_run == eager.iterations_run
        stopped.append(compiled.iterations_run)
    # pairs start at even t, so the stop at an even t dropped the pair's second iteration
    assert stopped[2] < 100000 and stopped[2] % 7 == 0 and stopped[2] % 2 == 0, stopped
    assert list(compiled.metrics["status"]) == ["ok", "ok"]
    assert np.isfinite(compiled.trajectory["log_loss"]).all() and compiled.metrics["final_log_loss"][1] < -700
    assert counters["stats"]["unique_graphs"] >= 4  # it did compile: one graph per cell shape
