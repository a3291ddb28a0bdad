"""The figures of a comparison of two sweeps (`gdbench.compare`): for each data setting both
sweeps have, log10 F(W_t) against t, median over seeds — the first sweep solid, the second dashed,
one colour per step size (the same step the same colour in both), one panel per model.
"""
from __future__ import annotations

import re
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd

from gdbench import analysis, figures

MAX_FIGURES = 12    # data settings that get an overlaid loss-curve figure
MAX_PANELS = 4      # models per figure (as in figures.loss_curves)
MAX_STEPS = 8       # step sizes per figure: more colours cannot be told apart


def overlay_figures(a, b, keys: list[str], match: list[str], folder: Path) -> list[str]:
    """One figure per data setting both sweeps have (at most MAX_FIGURES); returns the paths.
    `a`, `b` are `compare.Sweep`s (path, label, runs, trajectory)."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("loss_curves_*.*"):  # a rebuild must not leave figures of settings now gone
        old.unlink()
    ca = analysis.curve_quantiles(a.runs, a.traj, by=keys)
    cb = analysis.curve_quantiles(b.runs, b.traj, by=keys)
    data_keys = [k for k in match if k not in analysis.model_columns(match) and k != "lr"]
    paths = []
    for slug, name, part_a, part_b in list(_common_settings(ca, cb, data_keys))[:MAX_FIGURES]:
        fig = overlay_figure(part_a, part_b, match, (a.label, b.label), title=name)
        paths += [str(p) for p in figures.save(fig, folder / f"loss_curves_{slug}")]
    return paths


def _common_settings(ca: pd.DataFrame, cb: pd.DataFrame, data_keys: list[str]):
    """(slug, label, curves a, curves b) per data setting present in both curve tables."""
    if not data_keys:
        yield "all", "all runs", ca, cb
        return
    groups_b = {_key(k): part for k, part in cb.groupby(data_keys, dropna=False, sort=True)}
    for k, part_a in ca.groupby(data_keys, dropna=False, sort=True):
        part_b = groups_b.get(_key(k))
        if part_b is not None:
            name = figures.label(part_a.iloc[0], data_keys)
            yield re.sub(r"[^A-Za-z0-9=.+-]+", "_", name)[:80], name, part_a, part_b


def _key(k) -> tuple:
    """A group key comparable across the two sweeps (NaN == NaN, 16 == 16.0)."""
    k = k if isinstance(k, tuple) else (k,)
    return tuple("<null>" if pd.isna(v) else (float(v) if isinstance(v, (int, float, np.number)) else str(v))
                 for v in k)


def overlay_figure(ca: pd.DataFrame, cb: pd.DataFrame, match: list[str], labels, *, title=None):
    """log10 F(W_t) median over seeds against t: sweep a solid, sweep b dashed, one colour per step
    size (viridis, the same step the same colour in both), one panel per model (at most MAX_PANELS)."""
    model_keys = [k for k in analysis.model_columns(match) if k in ca and k in cb]
    both = pd.concat([ca.assign(_side=0), cb.assign(_side=1)], ignore_index=True)
    panels = list(figures.series(both, model_keys))[:MAX_PANELS]
    steps = _thin(sorted(both["lr"].dropna().unique()))
    if len(panels) == 1:  # one model: a single-column figure
        fig, axes = figures.new_figure("single", aspect=0.8)
    else:
        fig, axes = figures.new_figure("double", aspect=0.42 * len(panels), ncols=len(panels), sharex=True)
    cmap = matplotlib.colormaps["viridis"].resampled(max(len(steps), 2))
    for j, (panel_title, part) in enumerate(panels):
        ax = axes[0, j]
        for k, lr in enumerate(steps):
            for side, style in ((0, "-"), (1, "--")):
                sub = part[(part["_side"] == side) & (part["lr"] == lr)]
                if len(sub):
                    ax.plot(sub["iter"], sub["log10_loss_median"], ls=style, color=cmap(k))
        ax.set_title(panel_title)
        ax.set_xlabel("iteration $t$")
        figures.log_scale(ax, "x", symlog=True)  # symlog keeps t = 0, the initial point
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel(r"$\log_{10} F(W_t)$ (median over seeds)")
    n = _legend_proxies(axes[0, 0], steps, cmap, labels)
    figures.legend(fig, axes[0, 0], n)
    if title and title != "all runs":
        fig.suptitle(title)
    return fig


def _thin(steps: list) -> list:
    if len(steps) <= MAX_STEPS:
        return steps
    return [steps[i] for i in np.unique(np.linspace(0, len(steps) - 1, MAX_STEPS).round().astype(int))]


def _legend_proxies(ax, steps, cmap, labels) -> int:
    """Legend entries without data: one per step size (colour) and one per sweep (line style)."""
    for k, lr in enumerate(steps):
        ax.plot([], [], color=cmap(k), label=f"η = {figures.step_label(lr)}")
    ax.plot([], [], color="0.3", ls="-", label=f"{labels[0]} (solid)")
    ax.plot([], [], color="0.3", ls="--", label=f"{labels[1]} (dashed)")
    return len(steps) + 2


# ---------------------------------------------------------------- the index
