"""The naive route: one run at a time, autograd, plain torch formulas written from docs/design.md §1.

It shares no code with the engine's models, losses or algorithms, which makes it the test oracle
for the closed-form gradients and the batched engine, and the baseline of `benchmarks/engine.py`
(what a researcher would write by hand: a Python loop per run, autograd for the gradient).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

PHI = {
    "identity": lambda h, a: h,
    "relu": lambda h, a: F.relu(h),
    "leaky_relu": lambda h, a: F.leaky_relu(h, a),
    "quadratic": lambda h, a: h * h,
    "tanh": lambda h, a: torch.tanh(h),
    "gelu": lambda h, a: F.gelu(h),
}
LOSS = {
    "logistic": lambda z: torch.logaddexp(torch.zeros_like(z), -z),  # exact backward (softplus thresholds at 20)
    "exponential": lambda z: torch.exp(-z),
    "squared": lambda z: 0.5 * (1 - z) ** 2,
}


def output(model, params: dict, fixed: dict, x: torch.Tensor) -> torch.Tensor:
    """g(x_i; W) for one run, from the docs/design.md §1 formulas."""
    if model.name == "linear":
        return x @ params["v"]
    W = params.get("W", fixed.get("W"))
    a = params.get("a", fixed.get("a"))
    return model.s * (PHI[model.activation](x @ W.T, model.alpha) @ a)


def loss_value(loss_name: str, z: torch.Tensor) -> torch.Tensor:
    return LOSS[loss_name](z).mean()


def run_one(x, y, *, model, loss, algorithm, lr: float, seed: int, iterations: int,
            dtype=torch.float64) -> dict:
    """Run one GD-family run with autograd; return per-iteration loss and min margin, and the
    final parameters. Uses the model's init (so both routes start from the same point)."""
    X = torch.as_tensor(np.asarray(x), dtype=dtype)
    Y = torch.as_tensor(np.asarray(y), dtype=dtype)
    trained, fixed = model.init(X.shape[1], [seed], dtype=dtype)
    params = {k: v[0].clone().requires_grad_(True) for k, v in trained.items()}
    fixed = {k: v[0] for k, v in fixed.items()}
    n = X.shape[0]
    opt = None
    if algorithm.name in ("heavy_ball", "nesterov"):
        opt = torch.optim.SGD(list(params.values()), lr=lr, momentum=algorithm.momentum,
                              nesterov=algorithm.name == "nesterov")
    losses, margins, t_sep = [], [], None
    for t in range(iterations + 1):
        z = Y * output(model, params, fixed, X)
        F_t = loss_value(loss.name, z)
        losses.append(F_t.item())
        margins.append(z.min().item())
        if t_sep is None and margins[-1] > 0:
            t_sep = t
        if t == iterations:
            break
        if algorithm.name in ("batch_perceptron", "normalized_batch_perceptron"):
            p = ((z < 0).to(dtype) + 0.5 * (z == 0).to(dtype)).detach()
            size = n if algorithm.name == "batch_perceptron" else max(int((p > 0).sum()), 1)
            objective = -(p * z).sum() / size  # ∇ = −(1/size) Σ p_i y_i ∇g_i
        else:
            objective = F_t
        grads = torch.autograd.grad(objective, list(params.values()))
        with torch.no_grad():
            if opt is not None:
                for p_, g_ in zip(params.values(), grads):
                    p_.grad = g_
                opt.step()
                continue
            step = lr
            if algorithm.name == "normalized_gd":
                with torch.enable_grad():  # ℓ'(z_i) by autograd, for β = (mean |ℓ'|)^{-1}
                    zd = z.detach().requires_grad_(True)
                    (dl,) = torch.autograd.grad(LOSS[loss.name](zd).sum(), zd)
                step = lr / dl.abs().mean().item()
            for p_, g_ in zip(params.values(), grads):
                p_ -= step * g_
    return {"loss": np.array(losses), "min_margin": np.array(margins), "t_sep": t_sep,
            "params": {k: v.detach().numpy().copy() for k, v in params.items()},
            "final_loss": losses[-1]}
