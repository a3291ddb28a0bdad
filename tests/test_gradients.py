"""Closed-form gradients (models.vjp) against autograd through the independent formulas of
gdbench.reference, for every model × activation × trained-layer option × loss."""
import itertools

import pytest
import torch

from gdbench import data, losses, models, reference

LOSSES = [losses.Logistic(), losses.Exponential(), losses.Squared()]
TWO_LAYER = [models.TwoLayer(width=6, activation=act, train=train, scale=scale, outer=outer)
             for act, train, (scale, outer) in itertools.product(
                 ["identity", "relu", "leaky_relu", "quadratic", "tanh", "gelu"],
                 ["inner", "outer", "both"],
                 [("1", "alternating"), ("1/m", "random_sign"), ("1/sqrt_m", "gaussian")])]
MODELS = [models.Linear(init_mode="normal")] + TWO_LAYER


@pytest.mark.parametrize("loss", LOSSES, ids=lambda l: l.name)
@pytest.mark.parametrize("model", MODELS, ids=repr)
def test_closed_form_gradient_equals_autograd(model, loss):
    ds = data.gaussian(n=15, d=5, seed=3)
    x = torch.tensor(ds.x)
    y = torch.tensor(ds.y)
    seeds = [0, 1, 2]
    trained, fixed = model.init(5, seeds)
    g, cache = model.forward(trained, fixed, x)
    z = y * g
    c = loss.derivative(z) * y / len(y)  # ∇F = Σ_i [ℓ'(z_i) y_i / n] ∇g_i
    closed = model.vjp(trained, fixed, x, c, cache)
    for r, seed in enumerate(seeds):
        params = {k: v[r].clone().requires_grad_(True) for k, v in trained.items()}
        fix = {k: v[r] for k, v in fixed.items()}
        zr = y * reference.output(model, params, fix, x)
        torch.testing.assert_close(g[r], reference.output(model, params, fix, x).detach(), rtol=1e-12, atol=1e-14)
        grads = torch.autograd.grad(reference.loss_value(loss.name, zr), list(params.values()))
        for (k, _), ga in zip(params.items(), grads):
            torch.testing.assert_close(closed[k][r], ga, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("loss", LOSSES, ids=lambda l: l.name)
def test_loss_derivative_equals_autograd(loss):
    z = torch.linspace(-30, 30, 121, dtype=torch.float64, requires_grad=True)
    (dz,) = torch.autograd.grad(reference.LOSS[loss.name](z).sum(), z)
    torch.testing.assert_close(loss.derivative(z.detach()), dz, rtol=1e-12, atol=1e-300)
    torch.testing.assert_close(loss.value(z.detach()), reference.LOSS[loss.name](z).detach(), rtol=1e-12, atol=0)
    nz = dz != 0
    torch.testing.assert_close(loss.log_abs_derivative(z.detach())[nz], dz.abs().log()[nz], rtol=1e-12, atol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "quadratic", "tanh", "gelu"])
def test_compiled_closed_form_gradient_equals_autograd(activation):
    # Under torch.compile, TwoLayer.vjp folds s·a_j into the fused pass before the gradient GEMM
    # (a different expression from the eager one above). Independent route: autograd through
    # gdbench.reference, one replica at a time. train="both" checks ∂/∂a beside ∂/∂W.
    model = models.TwoLayer(width=6, activation=activation, train="both", scale="1/sqrt_m", outer="gaussian")
    loss = losses.Logistic()
    ds = data.gaussian(n=15, d=5, seed=3)
    x, y = torch.tensor(ds.x), torch.tensor(ds.y)
    trained, fixed = model.init(5, [0, 1, 2])

    def gradient(trained):
        g, cache = model.forward(trained, fixed, x)
        return model.vjp(trained, fixed, x, loss.derivative(y * g) * y / len(y), cache)

    closed = torch.compile(gradient, dynamic=False)(trained)
    for r in range(3):
        params = {k: v[r].clone().requires_grad_(True) for k, v in trained.items()}
        zr = y * reference.output(model, params, {k: v[r] for k, v in fixed.items()}, x)
        grads = torch.autograd.grad(reference.loss_value(loss.name, zr), list(params.values()))
        for (k, _), ga in zip(params.items(), grads):
            torch.testing.assert_close(closed[k][r], ga, rtol=1e-10, atol=1e-14)
