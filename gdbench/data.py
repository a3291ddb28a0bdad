"""Datasets: x as an (n, d) float64 array, y ∈ {−1, +1}^n (docs/design.md §1). Nothing is downloaded.

Every dataset is one function decorated with `@dataset`, which adds the options shared by all
of them (keyword-only, applied in this order):

    standardize    per-feature zero mean, unit variance (constant features become 0)
    project        None, "random" (Gaussian N(0, 1/k) matrix) or "pca" (scikit-learn), to
    project_dim    k features
    unit_max_norm  scale so that max_i ‖x_i‖ = 1
    bias           0 = none; c ≠ 0 appends the constant feature c (a bias for the linear model)
    label_noise    fraction of labels flipped at random (0 by default: data stay separable)
    seed           seeds the generator, the subset choice, the projection and the label noise

and returns a `Dataset`. Adding a dataset: one decorated function here + `conf/data/<name>.yaml`.
"""
from __future__ import annotations

import functools
import inspect
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gdbench import checks


@dataclass
class Dataset:
    x: np.ndarray
    y: np.ndarray
    name: str
    info: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return self.x.shape[0]

    @property
    def d(self) -> int:
        return self.x.shape[1]


def dataset(fn):
    takes_seed = "seed" in inspect.signature(fn).parameters

    @functools.wraps(fn)
    def make(*args, standardize: bool = False, project: str | None = None, project_dim: int | None = None,
             unit_max_norm: bool = False, bias: float = 0.0, label_noise: float = 0.0, seed: int = 0,
             **kwargs) -> Dataset:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:  # numpy's own message names no key
            raise ValueError(f"data.seed={seed!r}: expected an integer >= 0")
        x, y, *name = fn(*args, **({"seed": seed} if takes_seed else {}), **kwargs)  # (x, y) or (x, y, name)
        name = name[0] if name else fn.__name__
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        rng = np.random.default_rng([int(seed), 1])  # a stream apart from the generator's own
        if standardize:
            std = x.std(0)
            x = (x - x.mean(0)) / np.where(std > 0, std, 1.0)
        if project is not None:
            x = _project(x, project, project_dim, rng)
        if unit_max_norm:
            x = x / np.linalg.norm(x, axis=1).max()
        if bias:
            x = np.hstack([x, np.full((x.shape[0], 1), float(bias))])
        if not 0.0 <= label_noise <= 1.0:
            raise ValueError(f"data.label_noise={label_noise!r}: expected a fraction in [0, 1]")
        if label_noise:
            flip = rng.permutation(len(y))[: int(round(label_noise * len(y)))]
            y = y.copy()
            y[flip] *= -1
        check(x, y, name)
        return Dataset(x=x, y=y, name=name, info={"n": x.shape[0], "d": x.shape[1]})

    return make


def check(x: np.ndarray, y: np.ndarray, name: str) -> None:
    """The data contract every stage relies on (`checks.dataset`); errors name the dataset."""
    checks.dataset(x, y, f"data {name!r}")


def _project(x, how, k, rng):
    if k is None or isinstance(k, bool) or int(k) != k or k < 1:
        raise ValueError(f"data.project_dim={k!r}: expected an integer ≥ 1 with data.project={how!r}")
    k = int(k)
    if how == "random":
        return x @ (rng.standard_normal((x.shape[1], k)) / math.sqrt(k))
    if how == "pca":
        from sklearn.decomposition import PCA
        if k > min(x.shape):
            raise ValueError(f"data.project_dim={k}: PCA needs project_dim ≤ min(n, d) = {min(x.shape)}")
        return PCA(n_components=k, random_state=0).fit_transform(x)
    raise ValueError(f"data.project={how!r}: expected null, 'random' or 'pca'")


# ---- synthetic generators ---------------------------------------------------------------------

@dataset
def gaussian(n: int = 200, d: int = 16, margin: float = 0.1, spread: float = 1.0, *, seed: int = 0):
    """Two Gaussian classes N(0, I/d) made separable along a random unit direction u: the
    component along u is set to y·(margin + |ξ|), ξ ~ N(0, spread²/d), shifted so the closest
    sample sits at exactly `margin` (so the data margin is ≥ margin). Labels balanced."""
    _positive_int("data.n", n, 2)
    _positive_int("data.d", d, 1)
    if not margin >= 0:
        raise ValueError(f"data.margin={margin!r}: expected ≥ 0")
    rng = np.random.default_rng(seed)
    u = rng.standard_normal(d)
    u /= np.linalg.norm(u)
    y = rng.permutation(np.where(np.arange(n) % 2 == 0, 1.0, -1.0))
    x = rng.standard_normal((n, d)) / math.sqrt(d)
    x -= np.outer(x @ u, u)
    t = np.abs(rng.standard_normal(n)) * spread / math.sqrt(d)
    x += np.outer(y * (margin + t - t.min()), u)
    return x, y


@dataset
def two_point():
    """Tyurin 2025, Thm 4.1: x_1 = (1, −1), y_1 = +1; x_2 = (−1, −4), y_2 = −1."""
    return np.array([[1.0, -1.0], [-1.0, -4.0]]), np.array([1.0, -1.0])


@dataset
def perceptron_lower_bound(n: int = 100, margin: float = 0.5):
    """Tyurin 2025, Thm 5.1: (μ, −1) labelled +1 and n − 1 points (−μ, −1) labelled −1, μ = margin
    (the theorem's data have μ = 0.5). The max-margin direction is e_0 and the margin is exactly
    μ. With large steps GD spends Θ(1/μ²) steps in an unstable phase on these data (the
    transition_time study); with an even n the first steps can land exactly on the boundary,
    which cuts that phase short, so that study uses odd n."""
    _positive_int("data.n", n, 2)
    if not margin > 0:
        raise ValueError(f"data.margin={margin!r}: expected > 0")
    x = np.tile([-float(margin), -1.0], (n, 1))
    x[0] = [margin, -1.0]
    y = -np.ones(n)
    y[0] = 1.0
    return x, y


@dataset
def margin_2d(n_pos: int = 50, n_neg: int = 50, margin: float = 0.1, width: float = 1.0, skew: float = 0.0,
              *, seed: int = 0):
    """2-D separable data for the large-step studies (Wu et al. 2024; Crawshaw & Liu 2026): one
    support point of each class with y·x = (−skew, margin), the others with
    y·x = (skew + y·a, margin + b), a ~ U(−width, width), b ~ |N(0, 1/4)|.

    skew = 0: the max-margin direction is e_2 and the margin is exactly `margin` — but the class
    mean points along e_2 too, so the first GD step already separates. skew > 0 tilts the mean
    toward e_1 while the support points lean the other way: the first large step misclassifies
    them and GD goes through an unstable phase. The max-margin direction then tilts slightly off
    e_2 and the margin is ≥ `margin`; `direction=svm` records the exact values (data_margin)."""
    _positive_int("data.n_pos", n_pos, 1)
    _positive_int("data.n_neg", n_neg, 1)
    if not margin > 0:
        raise ValueError(f"data.margin={margin!r}: expected > 0")
    if not skew >= 0:
        raise ValueError(f"data.skew={skew!r}: expected ≥ 0")
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.ones(n_pos), -np.ones(n_neg)])
    a = rng.uniform(-width, width, n_pos + n_neg)
    b = np.abs(rng.standard_normal(n_pos + n_neg)) / 2
    yx1 = skew + y * a
    support = [0, n_pos]
    yx1[support] = -skew
    b[support] = 0.0
    return np.stack([y * yx1, y * (margin + b)], axis=1), y


@dataset
def many_easy_one_hard(d: int = 32, eps: float = 0.5, s: float = 0.5):
    """Candidate for the dimension study (docs/design.md §7, ours): n = d − 1 unit-norm samples; with
    u = e_{d−2}, v = e_{d−1}: easy x_i = √(1−ε²) u + ε e_i (i < d − 2, label +1) and one hard
    x_h = s u − √(1−s²) v (label −1). Separable with a constant margin; linear GD from 0 is slow."""
    _positive_int("data.d", d, 3)
    if not (0 < eps < 1 and 0 < s < 1):
        raise ValueError(f"data.eps={eps!r}, data.s={s!r}: both must lie in (0, 1)")
    x = np.zeros((d - 1, d))
    x[: d - 2, d - 2] = math.sqrt(1 - eps**2)
    x[np.arange(d - 2), np.arange(d - 2)] = eps
    x[d - 2, d - 2], x[d - 2, d - 1] = s, -math.sqrt(1 - s**2)
    y = np.ones(d - 1)
    y[-1] = -1.0
    return x, y


@dataset
def signed_chain(d: int = 32, *, seed: int = 0):
    """Candidate for the dimension study (docs/design.md §7, ours): x_k = (e_k − e_{k+1})/√2 for k < d,
    x_d = e_d, each sample and its label multiplied by a random sign. A first-order linear method
    from 0 uncovers at most one new coordinate per step, so it needs ≥ d − 1 steps."""
    _positive_int("data.d", d, 2)
    x = np.zeros((d, d))
    k = np.arange(d - 1)
    x[k, k], x[k, k + 1] = 1 / math.sqrt(2), -1 / math.sqrt(2)
    x[d - 1, d - 1] = 1.0
    sign = np.random.default_rng(seed).choice([-1.0, 1.0], size=d)
    return x * sign[:, None], sign


@dataset
def lifted_lower_bound(d: int = 32, delta: float = 1.0):
    """Tyurin 2025's Thm 5.1 lower bound lifted to d dimensions (n = d − 1 samples, coordinates
    from 0): one hard sample x_0 = 0.5·e_0 − e_1 labelled +1, and d − 2 easy samples
    x_i = −0.5·e_0 − e_1 + δ·e_{i+1} (i = 1…d−2) labelled −1. In 2-D (all easy samples equal) the
    batch perceptron needs Ω(n) steps; here each easy sample has its own coordinate, so a linear
    model needs Θ(d) steps, and a two-layer network can use the directions e_{i+1} jointly."""
    _positive_int("data.d", d, 3)
    if not delta > 0:
        raise ValueError(f"data.delta={delta!r}: expected > 0")
    x = np.zeros((d - 1, d))
    x[:, 0], x[:, 1] = -0.5, -1.0
    x[0, 0] = 0.5
    x[np.arange(1, d - 1), np.arange(2, d)] = delta
    y = -np.ones(d - 1)
    y[0] = 1.0
    return x, y


@dataset
def support_vectors_2d(n_far: int = 2, p_low: float = 2.0, p_high: float = 4.0, k_min: float = 1.5,
                       a_max: float = 1.0, *, seed: int = 0):
    """2-D data on which small-step GD's direction error is exactly K/log(ηt) asymptotically (the
    implicit_bias study). Signed points y·x: two support vectors (p, μ) and (−1, μ), p ~ U(p_low,
    p_high), and n_far points (a_j, μ·k_j), a_j ~ U(0, a_max), k_j = k_min + |N(0, 1)|/2, so every
    other point has margin ≥ k_min·μ. Labels alternate +1, −1, …

    The max-margin direction is e_1 with margin μ (ŵ = e_1/μ). Soudry et al.'s Thm 3 (mean loss)
    gives w_t = ŵ log(ηt/n) + w̃ + o(1) with exp(−x_sᵀw̃) = α_s on the support vectors;
    μ² = n/(p + 1)·p^{p/(p+1)} makes μ·w̃_1 = log n, so w_t = ŵ log(ηt) + w̃_⊥ + o(1) with no
    offset inside the log, and the direction error tends to K/log(ηt), K = μ log p/(p + 1). The
    far points' pull dies like t^(1 − k_min), so the asymptote is reached within a few decades."""
    _positive_int("data.n_far", n_far, 0)
    if not (1.0 < p_low <= p_high and k_min > 1.0 and a_max >= 0.0):
        raise ValueError(f"data.p_low={p_low!r}, data.p_high={p_high!r}, data.k_min={k_min!r}, data.a_max={a_max!r}: "
                         "need 1 < p_low ≤ p_high, k_min > 1 and a_max ≥ 0")
    rng = np.random.default_rng(seed)
    p, n = float(rng.uniform(p_low, p_high)), 2 + n_far
    mu = math.sqrt(n / (p + 1) * p ** (p / (p + 1)))
    a = rng.uniform(0.0, a_max, n_far)
    k = k_min + np.abs(rng.standard_normal(n_far)) / 2
    yx = np.vstack([[p, mu], [-1.0, mu], np.stack([a, mu * k], 1)])
    y = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    return yx * y[:, None], y


@dataset
def custom(fn: str, *, seed: int = 0, **params):
    """A user's dataset family: `data=custom data.fn=mypkg.families:lifted data.d=16,32` calls
    lifted(d=16) (and seed=data.seed when the function takes a `seed`). `fn` is
    "module:function" (a module importable from the directory gdbench runs in) or
    "path/to/file.py:function"; every other key of the data node is passed through. The function
    returns (x, y) with x an (n, d) array and y in {−1, +1}; the shared options (standardize, …)
    apply as for every dataset, and the runs table names the dataset after the function."""
    func = _import_function(fn)
    sig = inspect.signature(func)
    takes_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    unknown = [k for k in params if k not in sig.parameters and not takes_any]
    if unknown:
        raise ValueError(f"data.{unknown[0]}: {fn} has no parameter {unknown[0]!r} "
                         f"(its parameters: {', '.join(sig.parameters) or 'none'})")
    if "seed" in sig.parameters or takes_any:
        params = {**params, "seed": seed}
    out = func(**params)
    if not (isinstance(out, tuple) and len(out) == 2):
        raise ValueError(f"data.fn={fn}: expected the function to return (x, y), got {type(out).__name__}")
    return out[0], out[1], func.__name__


def _import_function(spec: str):
    """"module:function", "module.function" or "file.py:function" → the function; a ValueError
    naming data.fn otherwise. The working directory is importable, as for `python -m`."""
    import importlib
    import importlib.util
    import os
    import sys
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"data.fn={spec!r}: expected 'module:function' or 'path/to/file.py:function'")
    where, sep, name = spec.rpartition(":") if ":" in spec else spec.rpartition(".")
    if not sep or not where or not name:
        raise ValueError(f"data.fn={spec!r}: expected 'module:function' or 'path/to/file.py:function'")
    try:
        if where.endswith(".py"):
            file = Path(where).expanduser().resolve()
            if not file.is_file():
                raise ValueError(f"data.fn={spec!r}: no such file {str(file)!r}")
            loader = importlib.util.spec_from_file_location(f"gdbench_custom_{file.stem}", file)
            module = importlib.util.module_from_spec(loader)
            loader.loader.exec_module(module)
        else:
            if os.getcwd() not in sys.path:
                sys.path.append(os.getcwd())
            module = importlib.import_module(where)
    except ValueError:
        raise
    except Exception as e:  # ImportError, or an error raised while importing the user's module
        raise ValueError(f"data.fn={spec!r}: cannot import {where!r} ({type(e).__name__}: {e})") from e
    func = getattr(module, name, None)
    if not callable(func):
        raise ValueError(f"data.fn={spec!r}: {where!r} has no function {name!r}")
    return func


def _positive_int(key, value, least):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise ValueError(f"{key}={value!r}: expected an integer ≥ {least}")


def max_margin_direction(x, y) -> np.ndarray:
    """Unit direction of the hard-margin SVM through the origin, argmax_{‖u‖=1} min_i y_i x_iᵀu
    (the limit direction of GD with small steps, Soudry et al. 2018), by scikit-learn's SVC.
    SVC fits an intercept; on the symmetrized data {(x_i, y_i)} ∪ {(−x_i, −y_i)} the max-margin
    hyperplane passes through the origin by symmetry, so the intercept comes out 0."""
    from sklearn.svm import SVC
    x, y = np.asarray(x, float), np.asarray(y, float)
    svm = SVC(kernel="linear", C=1e10, tol=1e-10, max_iter=10**7).fit(np.vstack([x, -x]), np.concatenate([y, -y]))
    u = svm.coef_.ravel()
    if not np.all(y * (x @ u) > 0):
        raise ValueError("direction=svm: the data are not linearly separable through the origin")
    return u / np.linalg.norm(u)
