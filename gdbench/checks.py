"""The rules a run's settings and data must satisfy, each written once (no torch, no Hydra).

Every entry point applies the same rule with the same message naming the key: the sweep driver
before anything is scheduled (`grid`), the engine's Python API (`engine.run_cell`), and the
catalogue objects' own constructors (`algorithms`)."""
from __future__ import annotations

import math

import numpy as np

DTYPES = ("float64", "float32")


def _number(v) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float))


def step_size(lr) -> None:
    if not (_number(lr) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"algorithm.lr={lr!r}: expected a finite step size > 0")


def iterations(it) -> None:
    if isinstance(it, bool) or not isinstance(it, int) or it < 0:
        raise ValueError(f"iterations={it!r}: expected an integer ≥ 0")


def eps(values) -> None:
    for e in values:
        if not (_number(e) and math.isfinite(e) and e > 0):
            raise ValueError(f"eps: {e!r} is not a finite number > 0")


def dtype(name) -> None:
    if name not in DTYPES:
        raise ValueError(f"dtype={name!r}: expected one of {list(DTYPES)}")


def companion(algorithm_name: str, model) -> None:
    """The perceptron companion is GD's large-step limit, for models 1-homogeneous in their
    trained parameters (docs/design.md §1)."""
    if algorithm_name != "gd":
        raise ValueError(f"companion=true needs algorithm=gd: the perceptron is the large-step limit of "
                         f"'gd', not of {algorithm_name!r}")
    if model.homogeneity != 1:
        raise ValueError(f"companion=true needs a model 1-homogeneous in its trained parameters; "
                         f"{model.name} with these options has homogeneity {model.homogeneity}")


def sharpness(every, iters, tol) -> None:
    """sharpness.every (0 = off), .iters (Lanczos steps per estimate) and .tol (relative residual)."""
    if isinstance(every, bool) or not isinstance(every, int) or every < 0:
        raise ValueError(f"sharpness.every={every!r}: expected an integer ≥ 0 (0 = off)")
    if isinstance(iters, bool) or not isinstance(iters, int) or iters < 1:
        raise ValueError(f"sharpness.iters={iters!r}: expected an integer ≥ 1 (Lanczos steps per estimate)")
    if not (_number(tol) and math.isfinite(tol) and tol > 0):
        raise ValueError(f"sharpness.tol={tol!r}: expected a finite number > 0 (the estimated relative error at which an estimate stops)")


def dataset(x: np.ndarray, y: np.ndarray, what: str) -> None:
    """x an (n, d) finite array, y (n,) labels in {−1, +1} with both classes; `what` names the
    data in the message (the dataset, or the engine's arguments)."""
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ValueError(f"{what}: x must be (n, d) and y (n,); got {x.shape} and {y.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{what}: x contains NaN or Inf")
    if not np.isin(y, (-1.0, 1.0)).all():
        raise ValueError(f"{what}: labels must be in {{-1, +1}}, found {np.unique(y[~np.isin(y, (-1.0, 1.0))])[:5].tolist()}")
    # rejected, not warned about: with one class every quantity gdbench measures (separation
    # time, margin, the perceptron's steps) is trivial, so a sweep on it is a mistake upstream
    if len(np.unique(y)) < 2:
        raise ValueError(f"{what}: every label is {int(y[0]):+d}; a classification benchmark needs "
                         "both classes (check the file, data.classes or data.n)")
