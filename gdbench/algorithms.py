"""Full-batch update rules over the batched state (docs/design.md §1).

Every direction is D = Σ_i c_i ∇_W g(x_i; W) for per-sample coefficients c (R, n) that depend
only on the margins; the model's `vjp` turns c into D. An algorithm therefore provides:

    coefficients(z, y, loss) -> c            (R, n)
    grad_scale(z, loss) -> (R,) or None      ∇F = grad_scale · D (None: D is not a loss gradient,
                                             and the engine reports ‖D‖ as the gradient norm)
    init_state(trained) -> state
    step(trained, D, lr, state) -> (trained, state)      lr: (R,) step sizes, one per replica
    stability_threshold(lr) -> array         the largest curvature λ on which the rule is stable
                                             on a quadratic (2/η for GD), NaN where it has none;
                                             the edge-of-stability line of gdbench/sharpness.py

`lr` in each config is the default step size; a sweep overrides it per run and the engine receives
the per-replica vector. Adding an algorithm: one class here + `conf/algorithm/<name>.yaml`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gdbench._lazy import lazy_import
from gdbench import checks
from gdbench.models import Params

torch = lazy_import("torch")  # loaded on first use: the sweep driver validates algorithms without it


def _expand(lr: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return lr.view(-1, *([1] * (like.dim() - 1)))


def perceptron_weights(z: torch.Tensor) -> torch.Tensor:
    """p_i = 1[z_i < 0] + ½·1[z_i = 0] = lim_{γ→∞} σ(−γ z_i)  (Tyurin 2025, eq. for θ̂)."""
    return (z < 0).to(z.dtype) + 0.5 * (z == 0).to(z.dtype)


class _Plain:
    """W ← W − lr·D."""

    def init_state(self, trained: Params):
        return None

    def step(self, trained: Params, D: Params, lr: torch.Tensor, state):
        # one fused pass (v + (−lr)·D, rounded as v − lr·D); the result keeps v's memory layout
        return {k: torch.addcmul(v, _expand(lr, v), D[k], value=-1) for k, v in trained.items()}, state

    def __post_init__(self):
        checks.step_size(self.lr)

    def stability_threshold(self, lr):
        # normalized steps and the perceptrons have no fixed step on a quadratic
        return np.full(np.shape(lr), np.nan)


@dataclass(frozen=True)
class GD(_Plain):
    """Gradient descent W ← W − η ∇F(W), ∇F = (1/n) Σ_i ℓ'(z_i) y_i ∇g_i."""

    lr: float = 1.0
    name: str = "gd"

    def coefficients(self, z, y, loss):
        return loss.derivative(z) * y / z.shape[-1]

    def grad_scale(self, z, loss):
        return torch.ones(z.shape[0], dtype=z.dtype, device=z.device)

    def stability_threshold(self, lr):
        return 2.0 / np.asarray(lr, dtype=np.float64)  # w ← (1 − ηλ)w is stable iff ηλ ≤ 2


@dataclass(frozen=True)
class NormalizedGD(_Plain):
    """Normalized GD (Tyurin 2025, Thm 6.1): W ← W − η β ∇F, β = ((1/n) Σ |ℓ'(z_i)|)^{-1}.

    β∇F = Σ_i w_i sign(ℓ'(z_i)) y_i ∇g_i with w = softmax(log|ℓ'(z)|): computed from the log
    weights so the step stays defined once every σ(−z_i) underflows after separation.
    """

    lr: float = 1.0
    name: str = "normalized_gd"

    def coefficients(self, z, y, loss):
        w = torch.softmax(loss.log_abs_derivative(z), dim=-1)
        return torch.sign(loss.derivative(z)) * w * y

    def grad_scale(self, z, loss):
        return torch.exp(torch.logsumexp(loss.log_abs_derivative(z), dim=-1) - math.log(z.shape[-1]))


@dataclass(frozen=True)
class BatchPerceptron(_Plain):
    """Batch (generalized) perceptron: W ← W + η (1/n) Σ_i p_i y_i ∇g_i, p = perceptron_weights(z).

    From v_0 = 0 the first step is (1/2n) Σ y_i x_i, as in Tyurin 2025. For a nonlinear model this
    is the generalized perceptron of Tyurin 2025b. η = 1 is the classical algorithm.
    """

    lr: float = 1.0
    name: str = "batch_perceptron"

    def coefficients(self, z, y, loss):
        return -perceptron_weights(z) * y / z.shape[-1]

    def grad_scale(self, z, loss):
        return None


@dataclass(frozen=True)
class NormalizedBatchPerceptron(_Plain):
    """As the batch perceptron with 1/|S| in place of 1/n, S = {i : p_i > 0}; no step when S = ∅."""

    lr: float = 1.0
    name: str = "normalized_batch_perceptron"

    def coefficients(self, z, y, loss):
        p = perceptron_weights(z)
        size = (p > 0).sum(dim=-1, keepdim=True).clamp(min=1).to(z.dtype)
        return -p * y / size

    def grad_scale(self, z, loss):
        return None


class _Momentum(GD):
    def __post_init__(self):
        super().__post_init__()
        if not (0.0 <= self.momentum < 1.0):
            raise ValueError(f"algorithm.momentum={self.momentum!r}: expected 0 ≤ momentum < 1")

    def init_state(self, trained: Params):
        return {k: torch.zeros_like(v) for k, v in trained.items()}


@dataclass(frozen=True)
class HeavyBall(_Momentum):
    """Polyak heavy ball, in torch.optim.SGD's form: b ← μ b + ∇F;  W ← W − η b."""

    lr: float = 1.0
    momentum: float = 0.9
    name: str = "heavy_ball"

    def step(self, trained, D, lr, state):
        buf = {k: self.momentum * state[k] + D[k] for k in trained}
        return {k: v - _expand(lr, v) * buf[k] for k, v in trained.items()}, buf

    def stability_threshold(self, lr):
        # on λw²/2 the recursion's characteristic roots stay in the unit disc iff ηλ ≤ 2 + 2μ
        return (2.0 + 2.0 * self.momentum) / np.asarray(lr, dtype=np.float64)


@dataclass(frozen=True)
class Nesterov(_Momentum):
    """Nesterov GD, in torch.optim.SGD's form (gradient at the stored point):
    b ← μ b + ∇F;  W ← W − η (∇F + μ b)."""

    lr: float = 1.0
    momentum: float = 0.9
    name: str = "nesterov"

    def step(self, trained, D, lr, state):
        buf = {k: self.momentum * state[k] + D[k] for k in trained}
        return {k: v - _expand(lr, v) * (D[k] + self.momentum * buf[k]) for k, v in trained.items()}, buf

    def stability_threshold(self, lr):
        # on λw²/2: stable iff ηλ ≤ (2 + 2μ)/(1 + 2μ) (the root at −1 of the characteristic polynomial)
        return (2.0 + 2.0 * self.momentum) / ((1.0 + 2.0 * self.momentum) * np.asarray(lr, dtype=np.float64))
