"""Models g(x; W), batched over a leading replica axis R (docs/design.md §1, §3).

Every model exposes the same interface, so the algorithms never look inside:

    init(d, seeds, dtype=, device=) -> (trained, fixed)   dicts of tensors with leading axis R
                                                            (dtype None = float64);
                                                            replica r is drawn from seed r alone
    forward(trained, fixed, x) -> (g, cache)               g: (R, n) outputs g(x_i; W_r)
    vjp(trained, fixed, x, c, cache) -> dict               Σ_i c[r, i] ∇_W g(x_i; W_r), per trained
                                                            tensor (closed form; autograd is the
                                                            test oracle)
    hessian_point(trained, fixed, x) -> (g, point)        g and the forward quantities at W that the
                                                            products below reuse
    hvp_operator(trained, fixed, x, point, c, w)           V ↦ Σ_i w[r, i] (∇g_i·V) ∇g_i + Σ_i c[r, i] ∇²g_i V
                                                            on flat vectors (R, P): with c = ℓ'(z)y/n
                                                            and w = ℓ''(z)y²/n, the Hessian of F times V
                                                            (gdbench/sharpness.py). Flat = the trained
                                                            tensors in sorted-name order, each
                                                            flattened in its (R, …) shape
    homogeneity                                            degree p with g(x; cW) = c^p g(x; W) in
                                                            the trained parameters, or None
    matmul_flops(R, n, d)                                  2·multiply-adds of one forward + vjp

Every algorithm direction is Σ_i c_i ∇g_i for some per-sample coefficients c (the loss gradient
has c_i = ℓ'(z_i) y_i / n), so one `vjp` serves GD, normalized GD and the perceptrons.

Adding a model: one class here + `conf/model/<name>.yaml`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Sequence

from gdbench._lazy import lazy_import

torch = lazy_import("torch")  # loaded on first use: the sweep driver validates models without it

Params = dict  # parameter name → tensor with a leading replica axis R


def _generator(seed: int) -> torch.Generator:
    # Initial points are drawn on the CPU in float64 from a per-replica generator, then cast and
    # moved, so a replica's start does not depend on the batch it sits in, the dtype or the device.
    return torch.Generator(device="cpu").manual_seed(int(seed))


@dataclass(frozen=True)
class Linear:
    """g(x; v) = vᵀx (no bias; a bias is a constant feature appended by the data options).

    init: "zero" (the papers' v_0 = 0) or "normal" (v_0 ~ N(0, init_scale²/d)).
    """

    init_mode: str = "zero"
    init_scale: float = 1.0
    name: str = "linear"

    def __post_init__(self):
        if self.init_mode not in ("zero", "normal"):
            raise ValueError(f"model.init_mode={self.init_mode!r}: expected 'zero' or 'normal'")
        _check_positive("model.init_scale", self.init_scale)

    homogeneity = 1

    def init(self, d: int, seeds: Sequence[int], *, dtype=None, device="cpu"):
        if self.init_mode == "zero":
            v = torch.zeros(len(seeds), d, dtype=torch.float64)
        else:
            v = torch.stack([torch.randn(d, generator=_generator(s), dtype=torch.float64)
                             for s in seeds]) * (self.init_scale / math.sqrt(d))
        return {"v": v.to(device=device, dtype=dtype)}, {}

    def forward(self, trained: Params, fixed: Params, x: torch.Tensor):
        return trained["v"] @ x.T, None

    def vjp(self, trained: Params, fixed: Params, x: torch.Tensor, c: torch.Tensor, cache) -> Params:
        return {"v": c @ x}

    def hessian_point(self, trained: Params, fixed: Params, x: torch.Tensor):
        return trained["v"] @ x.T, None

    def hvp_operator(self, trained: Params, fixed: Params, x, point, c, w) -> LinearHessian:
        # g is linear in v: no second-order term, H·V = (1/n) Xᵀ diag(ℓ''(z)) X V
        return LinearHessian(x=x, w=w.T)

    def matmul_flops(self, R: int, n: int, d: int) -> float:
        return 2.0 * R * n * d * 2


# Activations φ with their derivatives φ'. Derivatives at kinks match torch autograd
# (relu'(0) = 0, leaky_relu'(0) = α) so closed form and oracle agree exactly.
def _gelu(h):
    return h * 0.5 * (1.0 + torch.erf(h / math.sqrt(2.0)))


def _gelu_prime(h):
    cdf = 0.5 * (1.0 + torch.erf(h / math.sqrt(2.0)))
    return cdf + h * torch.exp(-0.5 * h * h) / math.sqrt(2.0 * math.pi)


ACTIVATIONS: dict[str, tuple[Callable, Callable | None, int | None]] = {
    # name: (φ(h, α), (h, φ(h), c, α) ↦ φ'(h)·c, homogeneity degree of φ or None).
    # The second entry forms φ'(h)·c for c broadcast over the neurons in as few passes over the
    # (n, R, m) hidden units as possible, reusing φ(h) where it gives φ'. These passes are what
    # small two-layer cells spend their time on besides the two GEMMs, and on CPU boolean masks
    # and `where` cost several times a plain multiply; so relu and tanh use ATen's fused backward
    # kernels (one pass each). None: φ' ≡ 1.
    "identity": (lambda h, a: h, None, 1),
    # relu in place: its φ' needs only φ(h) (φ' = 1[φ(h) > 0]), so the pre-activations need not survive
    "relu": (lambda h, a: torch.relu_(h), lambda h, f, c, a: torch.ops.aten.threshold_backward(c, f, 0.0), 1),
    # leaky: p = c·1[h > 0], then lerp(p, c, α) = p + α(c − p) is c where h > 0 and αc elsewhere.
    # (ATen's leaky_relu_backward rounds α to float32, which is off by ~1e-9: not used.)
    "leaky_relu": (lambda h, a: torch.nn.functional.leaky_relu(h, a),
                   lambda h, f, c, a: torch.lerp(torch.ops.aten.threshold_backward(c, h, 0.0), c, a), 1),
    "quadratic": (lambda h, a: h * h, lambda h, f, c, a: (2.0 * h).mul_(c), 2),
    "tanh": (lambda h, a: torch.tanh(h), lambda h, f, c, a: torch.ops.aten.tanh_backward(c, f), None),
    "gelu": (lambda h, a: _gelu(h), lambda h, f, c, a: _gelu_prime(h).mul_(c), None),
}
# (φ', φ'') as plain functions of h and f = φ(h), for the Hessian-vector products (f gives them
# in one cheap pass where it can: tanh' = 1 − f², and relu works in place, so h is gone). At a kink
# they follow the gradient's convention above (relu'(0) = 0, leaky_relu'(0) = α) and take φ'' = 0
# there, which is also what autograd's double backward gives: the Hessian of the smooth piece the
# point sits on. The flag says φ'' ≡ 0, so the products skip that term (its entry is never called).
DERIVATIVES: dict[str, tuple[Callable, Callable | None, bool]] = {
    "identity": (lambda h, f, a: torch.ones_like(f), None, True),
    "relu": (lambda h, f, a: (f > 0).to(f.dtype), None, True),
    "leaky_relu": (lambda h, f, a: torch.where(h > 0, 1.0, a).to(h.dtype), None, True),
    "quadratic": (lambda h, f, a: 2.0 * h, lambda h, f, a: torch.full_like(h, 2.0), False),
    "tanh": (lambda h, f, a: 1.0 - f * f, lambda h, f, a: -2.0 * f * (1.0 - f * f), False),
    # GELU φ = hΦ(h): φ' = Φ + hφ_N, φ'' = φ_N·(2 − h²) (φ_N the standard normal density)
    "gelu": (lambda h, f, a: _gelu_prime(h),
             lambda h, f, a: torch.exp(-0.5 * h * h) / math.sqrt(2.0 * math.pi) * (2.0 - h * h), False),
}
SCALES = {"1": lambda m: 1.0, "1/m": lambda m: 1.0 / m, "1/sqrt_m": lambda m: 1.0 / math.sqrt(m)}
TRAINED = ("inner", "outer", "both")
OUTER_MODES = ("alternating", "random_sign", "gaussian")


@dataclass(frozen=True)
class TwoLayer:
    """g(x; W, a) = s · Σ_{j=1..m} a_j φ(w_jᵀx)  (docs/design.md §1).

    width m; activation φ (leaky_relu uses `alpha`); scale s ∈ {"1", "1/m", "1/sqrt_m"};
    train ∈ {"inner", "outer", "both"}; outer weights "alternating" (+1, −1, …), "random_sign" or
    "gaussian"; inner init w_j ~ N(0, init_scale²/d). `paired` copies w_{2k} into w_{2k+1}, which
    with alternating outer weights makes g ≡ 0 at the start (a symmetric small initialization).
    """

    width: int = 32
    activation: str = "relu"
    alpha: float = 0.1
    scale: str = "1/sqrt_m"
    train: str = "inner"
    outer: str = "alternating"
    init_scale: float = 1.0
    paired: bool = False
    name: str = "two_layer"

    def __post_init__(self):
        if isinstance(self.width, bool) or not isinstance(self.width, int) or self.width < 1:
            raise ValueError(f"model.width={self.width!r}: expected an integer ≥ 1")
        _check_choice("model.activation", self.activation, ACTIVATIONS)
        _check_choice("model.scale", self.scale, SCALES)
        _check_choice("model.train", self.train, TRAINED)
        _check_choice("model.outer", self.outer, OUTER_MODES)
        _check_positive("model.init_scale", self.init_scale)
        if not math.isfinite(self.alpha):
            raise ValueError(f"model.alpha={self.alpha!r}: expected a finite number")
        if self.paired and (self.width % 2 or self.outer != "alternating"):
            raise ValueError(f"model.paired=True needs an even model.width (got {self.width}) and "
                             f"model.outer='alternating' (got {self.outer!r})")

    @property
    def homogeneity(self) -> int | None:
        p = ACTIVATIONS[self.activation][2]
        if self.train == "outer":
            return 1
        if self.train == "inner" or p is None:
            return p
        return p + 1

    @property
    def s(self) -> float:
        return SCALES[self.scale](self.width)

    def init(self, d: int, seeds: Sequence[int], *, dtype=None, device="cpu"):
        m = self.width
        ws, as_ = [], []
        for seed in seeds:
            gen = _generator(seed)
            w = torch.randn(m, d, generator=gen, dtype=torch.float64) * (self.init_scale / math.sqrt(d))
            if self.paired:
                w[1::2] = w[0::2]
            if self.outer == "alternating":
                a = torch.tensor([(-1.0) ** j for j in range(m)], dtype=torch.float64)
            elif self.outer == "random_sign":
                a = torch.randint(0, 2, (m,), generator=gen).to(torch.float64) * 2 - 1
            else:
                a = torch.randn(m, generator=gen, dtype=torch.float64)
            ws.append(w)
            as_.append(a)
        # W is (R, m, d) as every parameter (replica axis first), stored d-major — a (R, m, d)
        # view of a (d, R, m) buffer — so that X·W and the gradient Xᵀ·P are plain GEMMs on it
        # with no copies; the engine's elementwise updates keep that layout.
        W = torch.stack(ws).to(device=device, dtype=dtype).permute(2, 0, 1).contiguous().permute(1, 2, 0)
        a = torch.stack(as_).to(device=device, dtype=dtype)
        trained, fixed = {}, {}
        (trained if self.train in ("inner", "both") else fixed)["W"] = W
        (trained if self.train in ("outer", "both") else fixed)["a"] = a
        return trained, fixed

    # Layout: hidden pre-activations are kept as Hᵀ of shape (n, R, m), so that both big GEMMs,
    # Hᵀ = X Wᵀ and ∇_W = Xᵀ P, put the long R·m axis in the output's columns — faster than the
    # (R·m, n) layout for the small cells of the theory papers, where K = d or n is small
    # (benchmarks/engine.py).
    def forward(self, trained: Params, fixed: Params, x: torch.Tensor):
        W = trained.get("W", fixed.get("W"))
        a = trained.get("a", fixed.get("a"))
        R, m, d = W.shape
        phi = ACTIVATIONS[self.activation][0]
        HT = (x @ _d_major(W).view(d, R * m)).view(-1, R, m)  # one GEMM for all replicas: (n, R, m)
        AT = phi(HT, self.alpha)
        g = (AT * a).sum(-1).T * self.s  # g[r, i] = s Σ_j a_rj φ(h_rji) (one pass; einsum/bmm would copy)
        return g, (HT, AT)

    def vjp(self, trained: Params, fixed: Params, x: torch.Tensor, c: torch.Tensor, cache) -> Params:
        HT, AT = cache
        W = trained.get("W", fixed.get("W"))
        a = trained.get("a", fixed.get("a"))
        R, m, d = W.shape
        n = x.shape[0]
        out = {}
        if "a" in trained:  # ∂g_i/∂a_j = s φ(w_jᵀx_i)
            out["a"] = (AT * c.T.unsqueeze(-1)).sum(0) * self.s
        if "W" in trained:  # ∂g_i/∂w_j = s a_j φ'(w_jᵀx_i) x_i;  Σ_i c_i ∂g_i/∂w_j = s a_j Σ_i φ'_ji c_i x_i
            times_dphi = ACTIVATIONS[self.activation][1]
            if times_dphi is None:  # φ' ≡ 1: every neuron gets the same Σ_i c_i x_i
                GT = (c @ x).T.unsqueeze(-1).expand(d, R, m)
            elif torch.compiler.is_compiling():
                # Under torch.compile the factor s·a_j rides along in the fused pass that forms
                # P, so the GEMM's output is the direction itself: no pass over it afterwards, and
                # nothing more to write when the program returns it (eager, the same product would
                # cost a pass over the larger (n, R, m) array, so it scales the (d, R, m) result).
                PT = times_dphi(HT, AT, c.T.unsqueeze(-1) * (a * self.s), self.alpha)  # (n, R, m)
                out["W"] = (x.T.contiguous() @ PT.reshape(n, R * m)).view(d, R, m).permute(1, 2, 0)
                return out
            else:
                PT = times_dphi(HT, AT, c.T.unsqueeze(-1), self.alpha)  # (n, R, m)
                # a contiguous Xᵀ (d·n numbers) makes this GEMM faster than the transposed view (benchmarks/engine.py)
                GT = (x.T.contiguous() @ PT.reshape(n, R * m)).view(d, R, m)
            out["W"] = (GT * (a * self.s)).permute(1, 2, 0)  # (d, R, m) storage = W's layout
        return out

    def hessian_point(self, trained: Params, fixed: Params, x: torch.Tensor):
        """g, and the hidden units' φ(H), φ'(H) and φ''(H) (None where φ'' ≡ 0), all (n, R, m):
        computed once per sharpness estimate and shared by its Hessian-vector products."""
        W = trained.get("W", fixed.get("W"))
        a = trained.get("a", fixed.get("a"))
        R, m, d = W.shape
        HT = (x @ _d_major(W).view(d, R * m)).view(-1, R, m)
        dphi, ddphi, flat = DERIVATIVES[self.activation]
        # relu works in place and identity returns HT itself, so φ(H) may be H's own storage: the
        # derivatives of those two read φ only
        AT = ACTIVATIONS[self.activation][0](HT, self.alpha)
        g = (AT * a).sum(-1).T * self.s
        return g, (AT, dphi(HT, AT, self.alpha), None if flat else ddphi(HT, AT, self.alpha))

    def hvp_operator(self, trained: Params, fixed: Params, x, point, c, w) -> TwoLayerHessian:
        """V ↦ Σ_i w_i (∇g_i·V) ∇g_i + Σ_i c_i ∇²g_i V at `point`, on flat directions V = (V_W, V_a)
        (the trained ones). With h_ji = w_jᵀx_i and the tangent δh_ji = V_W,jᵀx_i:
            ∇g_i·V          = s Σ_j (V_a,j φ(h_ji) + a_j φ'(h_ji) δh_ji)
            (∇²g_i V)_{w_j} = s (a_j φ''(h_ji) δh_ji + V_a,j φ'(h_ji)) x_i
            (∇²g_i V)_{a_j} = s φ'(h_ji) δh_ji
        The (n, R, m) factors that do not depend on V are formed here, once per point."""
        AT, D1, D2 = point
        W = trained.get("W", fixed.get("W"))
        a = trained.get("a", fixed.get("a"))
        R, m, d = W.shape
        s, cT = self.s, c.T.unsqueeze(-1)  # (n, R, 1)
        inner, outer = "W" in trained, "a" in trained
        return TwoLayerHessian(
            x=x, m=m, inner=inner, outer=outer, w=w.T,
            Da=D1 * (a * s) if inner else None,  # ∂g_i/∂h_ji
            Dc=D2 * (cT * (a * s)) if inner and D2 is not None else None,  # c_i ∂²g_i/∂h_ji²
            As=AT * s if outer else None,  # ∂g_i/∂a_j
            D1c=D1 * (cT * s) if inner and outer else None)  # c_i ∂²g_i/∂a_j∂h_ji

    def matmul_flops(self, R: int, n: int, d: int) -> float:
        m = self.width
        flops = 2.0 * R * m * n * d + 2.0 * R * m * n  # H = W x, g = a·φ(H)
        if self.train in ("inner", "both"):
            flops += 2.0 * R * m * n * d
        if self.train in ("outer", "both"):
            flops += 2.0 * R * m * n
        return flops


@dataclass(frozen=True)
class LinearHessian:
    """V (R, d) ↦ ((w ⊙ V Xᵀ) X) per replica: Linear.hvp_operator's product. Every tensor but x
    has the replica axis second, so `rows` selects replicas."""

    x: torch.Tensor
    w: torch.Tensor  # (n, R)

    def __call__(self, V: torch.Tensor) -> torch.Tensor:
        return (self.w.T * (V @ self.x.T)) @ self.x

    def rows(self, idx) -> LinearHessian:
        return replace(self, w=self.w[:, idx])


@dataclass(frozen=True)
class TwoLayerHessian:
    """TwoLayer.hvp_operator's product on flat directions (R, P): V_W in W's (R, m, d) order,
    then V_a. One product is two GEMMs on V's own layout (δH = X V_Wᵀ, then Pᵀ X; no copies) and
    two elementwise passes over the (n, R, m) hidden units, two more with φ'' or a trained `a`.
    Every tensor but x has the replica axis second, so `rows` selects replicas by slicing."""

    x: torch.Tensor
    m: int
    inner: bool  # W trained
    outer: bool  # a trained
    w: torch.Tensor  # (n, R): ℓ''(z_i) y_i² / n
    Da: torch.Tensor | None
    Dc: torch.Tensor | None
    As: torch.Tensor | None
    D1c: torch.Tensor | None

    def __call__(self, V: torch.Tensor) -> torch.Tensor:
        (n, d), R, m = self.x.shape, V.shape[0], self.m
        size_W = m * d if self.inner else 0
        Va = V[:, size_W:] if self.outer else None  # (R, m)
        dHT = (self.x @ V[:, :size_W].reshape(R * m, d).T).view(n, R, m) if self.inner else None
        dg = (self.Da * dHT).sum(-1) if self.inner else (self.As * Va).sum(-1)  # ∇g_i·V, (n, R)
        if self.inner and self.outer:
            dg += (self.As * Va).sum(-1)
        u = (self.w * dg).unsqueeze(-1)  # (n, R, 1): w_i (∇g_i·V)
        out = []
        if self.inner:
            PT = self.Da * u
            if self.Dc is not None:
                PT.addcmul_(self.Dc, dHT)
            if self.outer:
                PT.addcmul_(self.D1c, Va)
            out.append((PT.view(n, R * m).T @ self.x).view(R, size_W))  # Σ_i P_ji x_i in (R, m, d) order
        if self.outer:
            Pa = (self.As * u).sum(0)
            out.append(Pa.add_((self.D1c * dHT).sum(0)) if self.inner else Pa)
        return out[0] if len(out) == 1 else torch.cat(out, 1)

    def rows(self, idx) -> TwoLayerHessian:
        return replace(self, **{k: getattr(self, k)[:, idx] for k in ("w", "Da", "Dc", "As", "D1c")
                                if getattr(self, k) is not None})


def _d_major(W: torch.Tensor) -> torch.Tensor:
    """W (R, m, d) as a (d, R, m) tensor: a free view for the engine's d-major W, a copy for any
    other layout (a W built by a caller, e.g. the autograd oracle)."""
    return W.permute(2, 0, 1).contiguous()


def _check_choice(key: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{key}={value!r}: expected one of {sorted(choices)}")


def _check_positive(key: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
        raise ValueError(f"{key}={value!r}: expected a finite number > 0")
