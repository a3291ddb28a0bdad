"""Losses of the margin z = y·g(x; W) (docs/design.md §1).

Every loss is a small stateless class with the same five methods, each taking margins of any
shape and returning per-sample values of that shape (the caller reduces):

    value(z)              ℓ(z)
    log_value(z)          log ℓ(z), finite where ℓ(z) underflows (margins of several thousand)
    derivative(z)         ℓ'(z)
    second_derivative(z)  ℓ''(z), for the Hessian-vector products of the sharpness (gdbench/sharpness.py)
    log_abs_derivative(z) log |ℓ'(z)|, used for the softmax weights of normalized GD

The objective is F(W) = (1/n) Σ_i ℓ(z_i); the engine records log F = logsumexp_i log ℓ(z_i) − log n
so that a loss of 1e-400 is still a number.

Adding a loss: one class here with these methods + `conf/loss/<name>.yaml`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from gdbench._lazy import lazy_import

torch = lazy_import("torch")  # loaded on first use: the sweep driver validates losses without it

# softplus(x) is returned as x for x > threshold (torch default 20, an error of e^{-20} ≈ 2e-9);
# 40 keeps it exact to double precision.


@dataclass(frozen=True)
class Logistic:
    """ℓ(z) = log(1 + e^{−z}),  ℓ'(z) = −σ(−z).  The loss of both Tyurin papers."""

    name: str = "logistic"

    def value(self, z: torch.Tensor) -> torch.Tensor:
        return -torch.nn.functional.logsigmoid(z)  # = softplus(−z), stable; about twice as fast as softplus on CPU

    def log_value(self, z: torch.Tensor) -> torch.Tensor:
        # log softplus(−z). For z > 30, softplus(−z) = e^{−z} − e^{−2z}/2 + …, so
        # log ℓ = −z + log1p(−e^{−z}/2 + …); the correction is below 1e-13 relative there.
        large = z > 30.0
        safe_small = torch.where(large, torch.zeros_like(z), z)
        safe_large = torch.where(large, z, torch.full_like(z, 30.0))
        return torch.where(
            large,
            -safe_large + torch.log1p(-0.5 * torch.exp(-safe_large)),
            torch.log(torch.nn.functional.softplus(-safe_small, threshold=40.0)),
        )

    def derivative(self, z: torch.Tensor) -> torch.Tensor:
        return -torch.sigmoid(-z)

    def second_derivative(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(z) * torch.sigmoid(-z)  # σ(z)σ(−z): no cancellation at either tail

    def log_abs_derivative(self, z: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.logsigmoid(-z)


@dataclass(frozen=True)
class Exponential:
    """ℓ(z) = e^{−z},  ℓ'(z) = −e^{−z}.  A control: same tail as the logistic loss, no saturation."""

    name: str = "exponential"

    def value(self, z: torch.Tensor) -> torch.Tensor:
        return torch.exp(-z)

    def log_value(self, z: torch.Tensor) -> torch.Tensor:
        return -z

    def derivative(self, z: torch.Tensor) -> torch.Tensor:
        return -torch.exp(-z)

    def second_derivative(self, z: torch.Tensor) -> torch.Tensor:
        return torch.exp(-z)

    def log_abs_derivative(self, z: torch.Tensor) -> torch.Tensor:
        return -z


@dataclass(frozen=True)
class Squared:
    """ℓ(z) = (1 − z)²/2,  ℓ'(z) = z − 1.  A control without an exponential tail."""

    name: str = "squared"

    def value(self, z: torch.Tensor) -> torch.Tensor:
        return 0.5 * (1.0 - z) ** 2

    def log_value(self, z: torch.Tensor) -> torch.Tensor:
        # 2 log|1 − z| − log 2; −inf exactly at z = 1, which logsumexp handles.
        return 2.0 * torch.log(torch.abs(1.0 - z)) - math.log(2.0)

    def derivative(self, z: torch.Tensor) -> torch.Tensor:
        return z - 1.0

    def second_derivative(self, z: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(z)

    def log_abs_derivative(self, z: torch.Tensor) -> torch.Tensor:
        return torch.log(torch.abs(z - 1.0))
