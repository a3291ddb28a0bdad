"""The generic figures of a report — what every sweep gets, with or without study declarations:
loss and accuracy curves per data setting, heatmaps of t_sep and loss increases over step size ×
model, τ against η, t_sep against d or n, and the perceptron gap. A figure that the data cannot
make honestly (a heatmap of one cell or of a constant) is left out and the index says so.
"""
from __future__ import annotations

import re

from gdbench import analysis, figures, index

MAX_FACETS = 12  # data settings that get their own loss-curve and heatmap figures

LOSS_CAPTION = ("log₁₀ F(Wₜ) (top) and training accuracy (bottom) against t on a symmetric-log axis that keeps "
                "t = 0; one colour per step size, one column per model (and loss or algorithm where they vary); "
                "median over seeds with an interquartile band.")


def sections(writer, runs, traj, made, *, by=None) -> list:
    out = []
    curves = analysis.curve_quantiles(runs, traj, by=by)
    for i, (slug, name, part) in enumerate(facets(curves)):
        if i >= MAX_FACETS:
            break
        panel = [k for k in part.attrs["keys"] if k in analysis.model_columns(part.attrs["keys"])
                 or k in ("loss", "algorithm")]
        for j, chunk in enumerate(_panel_chunks(part, panel)):  # at most 4 panels a figure
            suffix = "" if j == 0 else f"_{j + 1}"
            out.append(writer.figure(f"loss_curves_{slug}{suffix}", figures.loss_curves(chunk, panel=panel, title=name),
                                     f"Loss and accuracy curves — {name}" + (f" ({j + 1})" if suffix else ""),
                                     LOSS_CAPTION))
    out += _sharpness_figures(writer, runs, traj, by=by)
    out += _heatmaps(writer, made)
    osc = made["oscillation"]
    # τ ≤ 1 everywhere (no unstable phase, or one step of it) draws flat lines that say nothing
    if "lr" in osc and osc["lr"].nunique() > 1 and osc["transition_time"].max() > 1:
        out.append(writer.figure("transition_time", figures.transition_time(osc, width=writer.width),
                                 "Transition time against the step size",
                                 "τ, the last iteration at which the loss increased (median over seeds), against η; "
                                 "one line per setting."))
    for x in ("d", "n"):
        if f"scaling_{x}" not in made:
            continue
        for i, (slug, name, part) in enumerate(facets(made[f"scaling_{x}"])):
            if i >= MAX_FACETS:
                break
            if part["exponent"].isna().all():  # no fit anywhere (< 3 levels): the table says why
                continue
            fig = figures.tsep_scaling(runs, part, x=x, by=by, title=None if name == "all runs" else name,
                                       width=writer.width)
            out.append(writer.figure(f"t_sep_vs_{x}" + ("" if slug == "all" else f"_{slug}"), fig,
                                     f"t_sep against {x}" + ("" if name == "all runs" else f" — {name}"),
                                     f"Median t_sep at each {x}'s best step size on log-log axes, one marker per "
                                     "model; a line and its exponent only where ≥ 3 levels allow a fit."))
    if "perceptron" in made:
        out.append(writer.figure("perceptron_gap", figures.perceptron_gap(made["perceptron"], width=writer.width),
                                 "Gap to the batch perceptron", "Final (solid) and largest (dashed) "
                                 "‖Wₜ/γ − Ŵₜ‖/‖Ŵₜ‖ against γ, medians over seeds."))
    return [s for s in out if s is not None]


SHARPNESS_CAPTION = ("Left: log₁₀ F(Wₜ); right: the sharpness λ_max(∇²F(Wₜ)) at its estimates, against t; one "
                     "colour per step size, medians over seeds with an interquartile band. Dashed: the step's "
                     "stability threshold (2/η for GD), which gradient descent on a quadratic with that curvature "
                     "cannot exceed without diverging (the edge of stability, Cohen et al. 2021).")


def _sharpness_figures(writer, runs, traj, *, by=None) -> list:
    """Sharpness next to the loss, per data setting, where the sweep estimated it."""
    if "sharpness" not in traj or "stability_threshold" not in runs or traj["sharpness"].isna().all():
        return []
    sharp = runs[runs["max_sharpness"].notna()]
    curves = analysis.curve_quantiles(sharp, traj, by=by, columns=("log10_loss", "sharpness"))
    keys = curves.attrs["keys"]
    threshold = sharp.groupby(keys, dropna=False)["stability_threshold"].median().rename("stability_threshold")
    curves = curves.merge(threshold.reset_index(), on=keys, how="left")
    curves.attrs["keys"] = keys
    out = []
    for i, (slug_, name, part) in enumerate(facets(curves)):
        if i >= MAX_FACETS:
            break
        panel = [k for k in keys if k in analysis.model_columns(keys) or k in ("loss", "algorithm")]
        for j, chunk in enumerate(_panel_chunks(part, panel)):
            suffix = "" if j == 0 else f"_{j + 1}"
            out.append(writer.figure(f"sharpness_{slug_}{suffix}",
                                     figures.sharpness_curves(chunk, panel=panel, title=name),
                                     f"Sharpness and the edge of stability — {name}" + (f" ({j + 1})" if suffix else ""),
                                     SHARPNESS_CAPTION))
    return out


def _heatmaps(writer, made) -> list:
    out, skipped = [], []
    for table_name, value, plain, label in (("rates", "t_sep_median", "median t_sep", r"median $t_{\mathrm{sep}}$"),
                                            ("oscillation", "n_increases", "median loss increases",
                                             "median loss increases")):
        for i, (slug_, name, part) in enumerate(facets(made[table_name])):
            if i >= MAX_FACETS or "lr" not in part:
                break
            rows = [k for k in part.attrs["keys"] if k != "lr" and k in part and part[k].nunique() > 1] or None
            fig = figures.heatmap(part, value=value, title=name, rows=rows, value_label=label)
            if fig is None:
                skipped.append(f"{plain} — {name}")
                continue
            out.append(writer.figure(f"heatmap_{value}_{slug_}", fig, f"Heatmap of {plain} — {name}",
                                     f"The {plain} for each step size (columns) and model (rows); the colour scale "
                                     "is logarithmic for positive values; — marks a value that is missing."))
    if skipped:
        out.append(index.Section(slug="heatmaps-skipped", title="Heatmaps not drawn", group="Figures",
                                 caption="A heatmap needs at least two cells with different values; these would show "
                                         "one cell or one value and are left out: " + "; ".join(skipped) + "."))
    return out


def _panel_chunks(curves, panel: list, per: int = 4):
    """The curves split into frames of at most `per` panels (model × loss × algorithm combinations)."""
    import pandas as pd
    parts = [p for _, p in figures.series(curves, panel)]
    for i in range(0, len(parts), per):
        chunk = pd.concat(parts[i:i + per])
        chunk.attrs = curves.attrs
        yield chunk


def slug(text: str) -> str:
    """A file-name-safe form of a label."""
    for a, b in (("μ", "mu"), ("η", "eta"), ("γ", "gamma"), ("τ", "tau")):
        text = text.replace(a, b)
    return re.sub(r"[^A-Za-z0-9=.+-]+", "_", text).strip("_")[:80] or "all"


def facets(table):
    """(slug, label, rows) per data setting: every key that is not the model's, the loss, the
    algorithm or lr (those share a figure as panels or lines)."""
    keys = table.attrs.get("keys", [])
    shared = set(analysis.model_columns(keys)) | {"lr", "loss", "algorithm"}
    data_keys = [k for k in keys if k not in shared]
    if not data_keys:
        yield "all", "all runs", table
        return
    for _, part in table.groupby(data_keys, dropna=False, sort=True):
        part.attrs = table.attrs
        name = figures.label(part.iloc[0], data_keys)
        yield slug(name), name, part
