"""Sharpness λ_max(∇²F(W_t)): the engine's batched Lanczos on closed-form Hessian-vector products,
checked against independent routes — the linear model's closed-form Hessian (1/n) Xᵀdiag(ℓ''(z))X
with numpy's eigvalsh, autograd's full Hessian for the two-layer models, a one-at-a-time run, the
characteristic roots of the momentum recursions, and the CLI end to end."""

import numpy as np
import pandas as pd
import pytest
import torch

from gdbench import algorithms, engine, losses, models, store
from gdbench.sharpness import SharpnessSettings, lanczos_top, run_metrics
from tests.conftest import gdbench

LOSSES = (losses.Logistic(), losses.Squared(), losses.Exponential())
EXACT = SharpnessSettings(every=5, iters=400, tol=1e-13)  # Lanczos to convergence: eigensolver accuracy


def _data(n=24, d=6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    y = np.sign(x @ rng.standard_normal(d))
    return x, y


def _second_derivative_numpy(loss_name, z):  # the losses' ℓ'' by hand, not through gdbench.losses
    return {"logistic": np.exp(-np.logaddexp(0, z) - np.logaddexp(0, -z)),
            "squared": np.ones_like(z), "exponential": np.exp(-z)}[loss_name]


@pytest.mark.parametrize("loss", LOSSES, ids=lambda l: l.name)
def test_linear_sharpness_equals_closed_form_hessian_along_the_run(loss):
    """Every estimate along a run equals eigvalsh of (1/n) Xᵀ diag(ℓ''(z)) X at that iterate, where
    the iterates come from a plain numpy GD loop (not the engine)."""
    x, y = _data()
    lrs, T = [0.2, 0.8], 20  # both stable for every loss here: the numpy loop must not overflow
    res = engine.run_cell(x, y, model=models.Linear(), loss=loss, algorithm=algorithms.GD(), lrs=lrs, seeds=[0, 0],
                          iterations=T, sharpness=EXACT)
    n = len(y)
    for r, lr in enumerate(lrs):
        v = np.zeros(x.shape[1])
        for t in range(T + 1):
            z = y * (x @ v)
            if t % 5 == 0:
                H = x.T @ (_second_derivative_numpy(loss.name, z)[:, None] * x) / n
                expected = np.linalg.eigvalsh(H)[-1]
                got = res.trajectory["sharpness"][list(res.trajectory_iter).index(t), r]
                assert abs(got - expected) <= 1e-8 * abs(expected), (t, got, expected)
            ell1 = {"logistic": -1 / (1 + np.exp(z)), "squared": z - 1, "exponential": -np.exp(-z)}[loss.name]
            v = v - lr * (ell1 * y) @ x / n


def _autograd_top_eigenvalue(model, loss, params, fixed, x, y):
    """λ_max of autograd's full Hessian of F at `params` (one replica), with its own forward pass."""
    keys = sorted(params)
    shapes = [params[k].shape[1:] for k in keys]
    X, Y = torch.tensor(x), torch.tensor(y)

    def F(flat):
        full, at = {k: v[0] for k, v in fixed.items()}, 0
        for k, shape in zip(keys, shapes):
            size = int(np.prod(shape))
            full[k] = flat[at:at + size].reshape(shape)
            at += size
        h = X @ full["W"].T
        phi = {"relu": torch.relu, "tanh": torch.tanh, "quadratic": lambda u: u * u, "identity": lambda u: u,
               "gelu": lambda u: torch.nn.functional.gelu(u),
               # torch's leaky_relu differentiates with α rounded to float32; this one is exact
               "leaky_relu": lambda u: torch.where(u > 0, u, model.alpha * u)}[model.activation](h)
        return loss.value(Y * (phi @ full["a"]) * model.s).mean()

    flat = torch.cat([torch.as_tensor(params[k][0]).reshape(-1) for k in keys])
    H = torch.autograd.functional.hessian(F, flat).numpy()
    return np.linalg.eigvalsh((H + H.T) / 2)[-1]


@pytest.mark.parametrize("activation", sorted(models.ACTIVATIONS))
@pytest.mark.parametrize("train", models.TRAINED)
def test_two_layer_sharpness_equals_autograd_hessian(activation, train):
    """At t = 0 and at the last iterate, for every loss: the engine's estimate against the top
    eigenvalue of autograd's Hessian (d·m = 30 parameters in W)."""
    x, y = _data(n=20, d=6)
    for loss in LOSSES:
        model = models.TwoLayer(width=5, activation=activation, train=train, outer="gaussian")
        res = engine.run_cell(x, y, model=model, loss=loss, algorithm=algorithms.GD(), lrs=[0.2], seeds=[3],
                              iterations=10, sharpness=EXACT, keep_params=True)
        trained0, fixed = model.init(x.shape[1], [3])
        final = {k: torch.as_tensor(v) for k, v in res.final_params.items()}
        for t, params in ((0, trained0), (10, final)):
            expected = _autograd_top_eigenvalue(model, loss, params, fixed, x, y)
            got = res.trajectory["sharpness"][list(res.trajectory_iter).index(t), 0]
            assert abs(got - expected) <= 1e-6 * abs(expected), (loss.name, t, got, expected)


def test_sharpness_of_a_run_does_not_depend_on_its_cell_mates():
    x, y = _data(n=30, d=5)
    model = models.TwoLayer(width=8, activation="tanh")
    settings = SharpnessSettings(every=4, iters=20, tol=1e-4)  # early stops at different steps per replica
    kw = dict(model=model, loss=losses.Squared(), algorithm=algorithms.GD(), iterations=16, sharpness=settings)
    together = engine.run_cell(x, y, lrs=[0.05, 0.8, 3.0], seeds=[1, 2, 3], **kw)
    alone = engine.run_cell(x, y, lrs=[0.8], seeds=[2], **kw)
    np.testing.assert_allclose(together.trajectory["sharpness"][:, 1], alone.trajectory["sharpness"][:, 0],
                               rtol=1e-12, atol=0)
    for col in ("max_sharpness", "final_sharpness", "t_eos", "frac_above_eos"):
        np.testing.assert_allclose(together.metrics[col][1], alone.metrics[col][0], rtol=1e-12)


@pytest.mark.parametrize("model", [models.Linear(init_mode="normal"),
                                   *(models.TwoLayer(width=4, activation="tanh", train=t, outer="gaussian")
                                     for t in models.TRAINED)], ids=lambda m: getattr(m, "train", m.name))
def test_hessian_products_match_autograd_and_restrict_to_rows(model):
    """The model's product H·V, per replica, against torch.autograd.functional.hvp of F on that
    replica alone (the estimates' operator, before any Lanczos); and the operator restricted to
    some rows (what the shrinking Lanczos batch uses) gives those rows of the full one."""
    x, y = _data(n=15, d=5)
    X, Y = torch.tensor(x), torch.tensor(y)
    loss, seeds = losses.Logistic(), [0, 1, 2]
    trained, fixed = model.init(x.shape[1], seeds)
    keys = sorted(trained)
    g, point = model.hessian_point(trained, fixed, X)
    z = Y * g
    c, w = loss.derivative(z) * Y / len(y), loss.second_derivative(z) * Y * Y / len(y)
    product = model.hvp_operator(trained, fixed, X, point, c, w)
    V = torch.randn(len(seeds), sum(trained[k][0].numel() for k in keys), dtype=torch.float64,
                    generator=torch.Generator().manual_seed(5))
    got = product(V)
    for r in range(len(seeds)):
        def F(*flat):
            params = {k: v.unsqueeze(0) for k, v in zip(keys, flat)}
            out, _ = model.forward(params, {k: v[r:r + 1] for k, v in fixed.items()}, X)
            return loss.value(Y * out[0]).mean()
        at = [trained[k][r] for k in keys]
        sizes = [t.numel() for t in at]
        direction = [part.reshape(t.shape) for part, t in zip(V[r].split(sizes), at)]
        _, expected = torch.autograd.functional.hvp(F, tuple(at), tuple(direction))
        np.testing.assert_allclose(got[r].numpy(), torch.cat([e.reshape(-1) for e in expected]).numpy(),
                                   rtol=1e-10, atol=1e-14)
    rows = torch.tensor([2, 0])  # (a GEMM over fewer rows may round differently: not bit for bit)
    np.testing.assert_allclose(product.rows(rows)(V[rows]).numpy(), got[rows].numpy(), rtol=1e-13, atol=1e-16)


def test_a_diverging_replica_leaves_the_others_estimates_alone():
    x, y = _data(n=30, d=5)
    # the squared loss on a quadratic net: at η = 10 the iterates blow up within a few steps
    kw = dict(model=models.TwoLayer(width=8, activation="quadratic"), loss=losses.Squared(),
              algorithm=algorithms.GD(), iterations=40, sharpness=SharpnessSettings(every=5))
    both = engine.run_cell(x, y, lrs=[0.1, 10.0], seeds=[0, 0], **kw)
    alone = engine.run_cell(x, y, lrs=[0.1], seeds=[0], **kw)
    assert both.metrics["status"].tolist() == ["ok", "diverged"]
    np.testing.assert_allclose(both.trajectory["sharpness"][:, 0], alone.trajectory["sharpness"][:, 0], rtol=1e-12)
    dead = both.trajectory_iter > both.metrics["diverged_at"][1]
    assert np.isnan(both.trajectory["sharpness"][dead, 1]).all()


def test_warm_started_estimates_with_the_default_tolerance_track_the_exact_ones():
    """sharpness.tol bounds the estimated relative error of the eigenvalue, min(residual,
    residual²/gap)/θ. With the defaults (20 steps, tol 1e-3) every estimate along a run, warm
    started, is within that 1e-3 of the value Lanczos converges to."""
    x, y = _data(n=40, d=8)
    kw = dict(model=models.TwoLayer(width=16, activation="tanh"), loss=losses.Squared(), algorithm=algorithms.GD(),
              lrs=[0.5, 2.0], seeds=[0, 1], iterations=60)
    default = engine.run_cell(x, y, sharpness=SharpnessSettings(every=5), **kw)
    exact = engine.run_cell(x, y, sharpness=EXACT, **kw)
    assert 0 < default.sharpness_s < default.wall_time_s  # the estimates' share, for the benchmark
    np.testing.assert_allclose(default.trajectory["sharpness"], exact.trajectory["sharpness"], rtol=1e-3)


def test_lanczos_finds_the_largest_algebraic_eigenvalue_and_survives_a_small_space():
    """Spectrum {−5, 1, 2, 3}: the top is 3, not the largest in magnitude (−5), which power
    iteration would return; with P = 4 < iters the Krylov space is exhausted (exact answer)."""
    Q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((4, 4)))
    A = torch.tensor(Q @ np.diag([-5.0, 1.0, 2.0, 3.0]) @ Q.T)
    theta, vec = lanczos_top(lambda rows: lambda V: V @ A, torch.ones(2, 4, dtype=torch.float64), iters=20, tol=1e-12)
    np.testing.assert_allclose(theta.numpy(), [3.0, 3.0], rtol=1e-12)
    np.testing.assert_allclose(np.abs(vec.numpy() @ Q[:, 3]), [1.0, 1.0], rtol=1e-10)
    # a start that is exactly the eigenvector of 2 (a stale warm start) still finds 3 within MIN_STEPS…
    stale = torch.tensor(Q[:, 2] + 1e-3 * Q[:, 3]).unsqueeze(0)
    theta, _ = lanczos_top(lambda rows: lambda V: V @ A, stale, iters=20, tol=1e-3)
    assert abs(theta.item() - 3.0) < 1e-6
    # … also in float32, where the second step's β is at rounding level without being zero
    stale32 = torch.tensor(Q[:, 2] + 1e-5 * Q[:, 3], dtype=torch.float32).unsqueeze(0)
    theta, _ = lanczos_top(lambda rows: lambda V: V @ A.float(), stale32, iters=20, tol=1e-3)
    assert abs(theta.item() - 3.0) < 1e-4


def test_a_missing_t_eos_says_never_reached_or_not_applicable():
    from gdbench import render
    row = {"runs": 2, "diverged": 0, "failed": 0}
    assert render.missing_reason({**row, "frac_above_eos": 0.0}, "t_eos") == "n"  # estimates, never at 2/η
    assert render.missing_reason({**row, "frac_above_eos": np.nan}, "t_eos") == "x"  # no threshold or no estimates


def test_run_metrics_by_hand():
    iters = np.array([0, 1, 5, 10, 15])
    s = np.array([[1.0, 1.0], [np.nan, np.nan], [2.5, 1.5], [4.0, np.nan], [3.0, np.nan]])  # run 1 diverged
    out = run_metrics(iters, s, threshold=np.array([2.0 / 0.8, 2.0 / 1.0]))  # 2.5 and 2.0
    np.testing.assert_allclose(out["initial_sharpness"], [1.0, 1.0])
    np.testing.assert_allclose(out["max_sharpness"], [4.0, 1.5])
    np.testing.assert_allclose(out["final_sharpness"], [3.0, 1.5])
    np.testing.assert_allclose(out["t_eos"], [5.0, np.nan])  # 2.5 ≥ 2.5 at t = 5: "at or above"
    np.testing.assert_allclose(out["frac_above_eos"], [3 / 4, 0.0])
    np.testing.assert_allclose(out["sharpness_ratio_max"], [4.0 * 0.8 / 2, 1.5 / 2])
    none = run_metrics(iters, s[:, :1], threshold=np.array([np.nan]))  # a perceptron: no threshold
    assert np.isnan(none["t_eos"][0]) and np.isnan(none["frac_above_eos"][0]) and none["max_sharpness"][0] == 4.0


@pytest.mark.parametrize("algorithm", [algorithms.GD(), algorithms.HeavyBall(momentum=0.7),
                                       algorithms.Nesterov(momentum=0.7)], ids=lambda a: a.name)
def test_stability_threshold_is_where_the_quadratic_stops_converging(algorithm):
    """On F(w) = λw²/2 the algorithm itself (its step, on a 1-parameter linear model's state)
    converges for λ = 0.98·threshold and blows up for λ = 1.02·threshold."""
    lr = 0.5
    threshold = float(algorithm.stability_threshold(np.array([lr]))[0])
    for factor, stable in ((0.98, True), (1.02, False)):
        lam = factor * threshold
        w = {"v": torch.ones(1, 1, dtype=torch.float64)}
        state = algorithm.init_state(w)
        for _ in range(3000):
            w, state = algorithm.step(w, {"v": lam * w["v"]}, torch.tensor([lr], dtype=torch.float64), state)
        assert (abs(w["v"].item()) < 1e-3) == stable, (factor, w["v"].item())
    assert np.isnan(algorithms.BatchPerceptron().stability_threshold(np.array([1.0]))[0])


def test_float32_and_compile_paths_agree_with_float64_eager():
    x, y = _data(n=30, d=5)
    kw = dict(model=models.TwoLayer(width=8, activation="tanh"), loss=losses.Logistic(), algorithm=algorithms.GD(),
              lrs=[0.5, 4.0], seeds=[0, 1], iterations=30, sharpness=SharpnessSettings(every=10, tol=1e-8))
    ref = engine.run_cell(x, y, **kw)
    f32 = engine.run_cell(x, y, dtype="float32", **kw)
    np.testing.assert_allclose(f32.trajectory["sharpness"], ref.trajectory["sharpness"], rtol=1e-4)


@pytest.mark.slow
def test_compiled_engine_records_the_same_sharpness():
    x, y = _data(n=30, d=5)
    kw = dict(model=models.TwoLayer(width=8, activation="tanh"), loss=losses.Squared(), algorithm=algorithms.GD(),
              lrs=[0.5, 4.0], seeds=[0, 1], iterations=30, sharpness=SharpnessSettings(every=10, tol=1e-8))
    np.testing.assert_allclose(engine.run_cell(x, y, compile=True, **kw).trajectory["sharpness"],
                               engine.run_cell(x, y, **kw).trajectory["sharpness"], rtol=1e-9)


def test_bad_sharpness_settings_name_the_key():
    for kw, needle in (({"every": -1}, "sharpness.every=-1"), ({"every": 5, "iters": 0}, "sharpness.iters=0"),
                       ({"every": 5, "tol": float("nan")}, "sharpness.tol=nan")):
        with pytest.raises(ValueError, match=needle.replace(".", r"\.")):
            SharpnessSettings(**kw)


def test_cli_records_sharpness_on_its_cadence_and_rejects_bad_settings(tmp_path):
    gdbench("-m", "model=two_layer", "model.width=8", "loss=squared", "data.n=40", "data.d=5",
            "algorithm.lr=0.1,1", "iterations=23", "sharpness.every=10", "record.dense=5", "record.log_points=0",
            "hydra.sweep.dir=sw", cwd=tmp_path)
    runs, traj = store.load(tmp_path / "sw")
    assert set(runs["sharpness.every"]) == {10} and runs["max_sharpness"].notna().all()
    estimated = traj.dropna(subset=["sharpness"]).groupby("run_id")["iter"].apply(sorted)
    assert all(its == [0, 10, 20, 23] for its in estimated), estimated  # t = 0, every 10, and T
    assert set(traj["iter"]) == {0, 1, 2, 3, 4, 10, 20, 23}  # the estimate iterations are recorded
    for row in runs.itertuples():  # the runs columns come from the trajectory's estimates
        s = traj[(traj["run_id"] == row.run_id)]["sharpness"].dropna()
        assert row.max_sharpness == s.max() and row.sharpness_ratio_max == pytest.approx(s.max() * row.lr / 2)
    # without sharpness.every the run ids and columns are those of a plain sweep
    plain = gdbench("-m", "model=two_layer", "model.width=8", "algorithm.lr=0.1", "iterations=3", "data.n=40",
                    "data.d=5", "hydra.sweep.dir=plain", cwd=tmp_path)
    assert "max_sharpness" not in store.load(tmp_path / "plain")[0] and plain.returncode == 0
    for args, needle in ((["sharpness.every=-3"], "sharpness.every=-3"),
                         (["sharpness.every=5", "sharpness.tol=0"], "sharpness.tol=0")):
        proc = gdbench("-m", *args, "hydra.sweep.dir=bad", cwd=tmp_path, check=False)
        err = proc.stdout + proc.stderr
        assert proc.returncode == 1 and needle in err and "Traceback" not in err, err
        assert not (tmp_path / "bad").exists()


def test_versus_headline_draws_the_stability_threshold_and_rejects_other_references():
    from gdbench import headline
    from gdbench.declarations import SpecError, validate
    runs = pd.DataFrame({"run_id": [f"r{i}" for i in range(6)], "lr": [1.0, 2.0, 4.0] * 2, "seed": [0] * 3 + [1] * 3,
                         "status": "ok", "iterations": 10, "final_sharpness": [2.0, 1.0, 0.5] * 2})
    h = headline.draw({"kind": "versus", "x": "lr", "y": "final_sharpness", "reference": "2/lr"}, runs, pd.DataFrame())
    ax = h.figure.axes[0]
    line = next(l for l in ax.get_lines() if l.get_label() == "2/η")
    np.testing.assert_allclose(line.get_ydata(), 2 / np.asarray(line.get_xdata()))  # GD's threshold, by hand
    assert "2/η" in h.caption
    for bad in ({"x": "d", "reference": "2/lr"}, {"x": "lr", "reference": "1/t"}):
        with pytest.raises(SpecError, match="reference"):
            validate([{"kind": "versus", "y": "final_sharpness", **bad}])
