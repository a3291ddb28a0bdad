"""The report on degenerate data (synthetic runs whose right answer is known by construction):
one level, constant values, one seed, identical seeds and ±inf must give no fit, no interval, no
heatmap and a footnote saying why; ties and grid edges of the best step are flagged; numbers that
are zero up to rounding print as 0; keys sort as numbers; summaries never pool a swept key; the
declarations of a study are checked before anything runs; figures never clip a text."""
import numpy as np
import pandas as pd
import pytest

from gdbench import analysis, declarations, figures, headline, render
from conftest import synthetic_runs


def _runs(rows):
    return synthetic_runs(rows, model="linear", seed=0, lr=1.0, diverged_at=None)


def test_scaling_needs_three_levels_and_says_why():
    # Made: t_sep = 3·d exactly at d = 8, 16 (two levels) with two different seeds per level.
    two = _runs([{"d": d, "seed": s, "t_sep": 3 * d + s} for d in (8, 16) for s in (0, 1)])
    table = analysis.scaling_table(two, x="d", n_boot=50)
    assert np.isnan(table.loc[0, "exponent"]) and np.isnan(table.loc[0, "ci_low"])
    assert table.loc[0, "no_fit"] == "l"
    md = render.to_markdown(table)
    assert "—ˡ" in md and render.FOOTNOTES["l"] in md
    # a third level makes the fit: t_sep = 3d + seed, slope of log t on log d over 8, 16, 32 is ≈ 1
    three = _runs([{"d": d, "seed": s, "t_sep": 3 * d + s} for d in (8, 16, 32) for s in (0, 1)])
    table = analysis.scaling_table(three, x="d", n_boot=50)
    assert table.loc[0, "no_fit"] is None and table.loc[0, "exponent"] == pytest.approx(1.0, abs=0.02)


def test_one_seed_per_level_gives_a_fit_but_no_interval():
    # t_sep = d: three levels, one seed each — every bootstrap resample is the same line.
    runs = _runs([{"d": d, "t_sep": d} for d in (8, 16, 32)])
    table = analysis.scaling_table(runs, x="d", n_boot=50)
    assert table.loc[0, "exponent"] == pytest.approx(1.0, abs=1e-12)  # exact power law, closed form
    assert np.isnan(table.loc[0, "ci_low"]) and table.loc[0, "no_ci"] == "z"
    assert "—ᶻ" in render.to_markdown(table)


def test_constant_values_give_no_fit():
    # the batch perceptron on data where every level separates at t = 2: no spread, no exponent
    runs = _runs([{"d": d, "seed": s, "t_sep": 2} for d in (8, 16, 32) for s in (0, 1)])
    table = analysis.scaling_table(runs, x="d", n_boot=50)
    assert np.isnan(table.loc[0, "exponent"]) and table.loc[0, "no_fit"] == "z"


def test_no_heatmap_for_one_cell_or_one_value():
    one = analysis.rates_table(_runs([{"t_sep": 3}]))
    assert figures.heatmap(one, value="t_sep_median", title="x") is None
    flat = analysis.rates_table(_runs([{"lr": lr, "model": m, "t_sep": 3} for lr in (1.0, 10.0)
                                       for m in ("linear", "two_layer")]))
    assert figures.heatmap(flat, value="t_sep_median", title="x") is None
    row = analysis.rates_table(_runs([{"lr": lr, "t_sep": int(lr)} for lr in (1.0, 10.0)]))
    assert figures.heatmap(row, value="t_sep_median", title="x") is None  # one model: a line plot's job
    varied = analysis.rates_table(_runs([{"lr": lr, "model": m, "t_sep": int(lr) + len(m)} for lr in (1.0, 10.0)
                                         for m in ("linear", "two_layer")]))
    fig = figures.heatmap(varied, value="t_sep_median", title="x")
    assert fig is not None
    figures.plt.close(fig)


def test_identical_seeds_are_flagged():
    from gdbench import selection
    runs = _runs([{"model": m, "seed": s, "t_sep": 5 if m == "linear" else 5 + s,
                   "final_log_loss": -1.0 if m == "linear" else -1.0 - s} for m in ("linear", "two_layer")
                  for s in (0, 1, 2)])
    keys = [k for k in analysis.group_columns(runs) if k != "seed"]
    found = selection.identical_seeds(runs, keys)
    assert len(found) == 1 and "model=linear" in found[0]


def test_infinite_values_read_as_infinity_and_rounding_noise_as_zero():
    table = pd.DataFrame({"model": ["a", "b", "c"], "exponent": [7.49e-17, 1.0, -0.5],
                          "final_loss": [np.inf, 0.25, 1e-320]})
    table.attrs["keys"] = ["model"]
    md = render.to_markdown(table)
    rows = md.splitlines()
    # row a: an exponent of 7.5e-17 in a column of scale 1 is rounding noise → 0; F_T = +inf → ∞
    assert "∞" in rows[2] and "7.49e-17" not in md and "|          0 |" in rows[2]
    assert "1e-320" in md  # a loss of 1e-320 is a value (recorded in the log domain), not noise
    tex = render.to_latex(table)
    assert r"$\infty$" in tex and "$-$0.5" in tex and tex.isascii()


def test_best_step_ties_and_grid_edges_are_flagged():
    # batch perceptron from 0: t_sep = 4 at every step size — a tie, not the largest step
    tie = analysis.rates_table(_runs([{"algorithm": "batch_perceptron", "lr": lr, "t_sep": 4}
                                      for lr in (0.1, 1.0, 10.0)]))
    assert tie["best"].all() and (tie["best_tied"] == 3).all()
    assert "ᵗ" in render.to_markdown(tie) and "ˢ" in render.to_markdown(tie)  # scale-free loss columns
    # GD: the best step (t_sep 2 at lr 100) is the largest of the grid → edge; lr 10 next to a step
    # where every run diverged → edge as well
    edge = analysis.rates_table(_runs([{"lr": lr, "t_sep": t} for lr, t in ((1.0, 30), (10.0, 9), (100.0, 2))]))
    assert edge.loc[edge["best"], "lr"].tolist() == [100.0] and edge.loc[edge["best"], "best_edge"].all()
    cliff = analysis.rates_table(_runs([{"lr": 1.0, "t_sep": 9}, {"lr": 10.0, "t_sep": 2},
                                        {"lr": 100.0, "t_sep": None, "status": "diverged"}]))
    assert cliff.loc[cliff["best"], "lr"].tolist() == [10.0] and cliff.loc[cliff["best"], "best_edge"].all()
    inner = analysis.rates_table(_runs([{"lr": lr, "t_sep": t} for lr, t in ((1.0, 30), (10.0, 2), (100.0, 9))]))
    assert not inner.loc[inner["best"], "best_edge"].any()


def test_acceleration_marks_ratios_from_edge_steps():
    runs = _runs([{"model": m, "lr": lr, "t_sep": t} for m, lr, t in
                  (("linear", 1.0, 20), ("linear", 10.0, 10), ("linear", 100.0, 12),
                   ("two_layer", 1.0, 9), ("two_layer", 10.0, 6), ("two_layer", 100.0, 3))])
    table = analysis.acceleration_table(runs)
    two = table[table["model"] == "two_layer"].iloc[0]
    assert two["acceleration"] == pytest.approx(10 / 3) and two["_marks"]["acceleration"] == "e"
    lin = table[table["model"] == "linear"].iloc[0]
    assert "acceleration" not in lin["_marks"]  # linear's best (lr 10) is inside its grid


def test_numeric_keys_sort_as_numbers():
    runs = _runs([{"data.project_dim": v, "t_sep": 1} for v in ("128", "16", "256")])
    runs = analysis.numeric_keys(runs)
    table = analysis.rates_table(runs)
    assert table["data.project_dim"].tolist() == [16, 128, 256]


def test_summary_never_pools_a_swept_key():
    # t_sep = n for n = 10, 100, 1000: a median over n would be 100; the summary keeps one row per n
    runs = _runs([{"n": n, "t_sep": n} for n in (10, 100, 1000)])
    summary = analysis.summary_table(runs)
    assert summary["n"].tolist() == [10, 100, 1000] and summary["t_sep_median"].tolist() == [10, 100, 1000]
    assert {"separated", "n_increases", "transition_time"} <= set(summary.columns)


def test_declarations_are_validated_with_the_key_named():
    ok = declarations.validate([{"kind": "versus", "x": "n", "y": "t_sep", "fit": True}])
    assert ok[0]["x"] == "n"
    with pytest.raises(declarations.SpecError, match=r"report.headline\[0\].kind='scatter'"):
        declarations.validate([{"kind": "scatter"}])
    with pytest.raises(declarations.SpecError, match=r"\[1\]: unknown key\(s\) \['colour'\]"):
        declarations.validate([{"kind": "gap"}, {"kind": "gap", "colour": "red"}])
    with pytest.raises(declarations.SpecError, match=r"needs \['x'\]"):
        declarations.validate([{"kind": "versus", "y": "t_sep"}])


def test_versus_figure_fits_only_from_three_levels_and_matches_a_direct_fit():
    # t_sep = 2·n^1.5 (rounded) at n = 10, 100, 1000, two algorithms; the slope of the declared
    # figure must equal numpy's least-squares slope of log t_sep on log n over the same runs
    rows = [{"n": n, "algorithm": a, "seed": s, "t_sep": int(round((2 + s) * n ** (1.5 if a == "gd" else 1.0)))}
            for n in (10, 100, 1000) for a in ("gd", "normalized_gd") for s in (0, 1)]
    runs = _runs(rows)
    got = headline.draw({"kind": "versus", "x": "n", "y": "t_sep", "hue": "algorithm", "logx": True, "logy": True,
                         "fit": True}, runs, pd.DataFrame({"run_id": [], "iter": []}))
    gd = runs[runs["algorithm"] == "gd"]
    slope = np.polyfit(np.log(gd["n"].astype(float)), np.log(gd["t_sep"].astype(float)), 1)[0]
    assert f"gd: fitted slope {slope:.2f}" in got.caption
    assert set(got.table["n"]) == {10, 100, 1000} and len(got.table) == 6
    assert figures.clipped_texts(got.figure) == []
    figures.plt.close(got.figure)
    two = headline.draw({"kind": "versus", "x": "n", "y": "t_sep", "fit": True}, runs[runs["n"] < 1000],
                        pd.DataFrame({"run_id": [], "iter": []}))
    assert "no fit (fewer than 3 levels)" in two.caption
    figures.plt.close(two.figure)


def test_figures_with_many_series_do_not_clip():
    # nine series with long names: the legend goes below the axes and the figure grows to hold it
    table = pd.DataFrame([{"model": f"a_rather_long_model_name_{i}", "lr": lr, "transition_time": i * lr}
                          for i in range(9) for lr in (0.1, 1.0, 10.0)])
    table.attrs["keys"] = ["model", "lr"]
    for width in ("single", "double"):
        fig = figures.transition_time(table, width=width)
        assert figures.clipped_texts(fig) == []
        figures.plt.close(fig)


def test_file_datasets_still_show_n_and_d():
    # data=npz data.path=…: the path determines n and d, which a reader needs as columns anyway
    runs = _runs([{"dataset": "npz", "data.path": p, "n": n, "d": d, "t_sep": d}
                  for p, n, d in (("a.npz", 100, 16), ("b.npz", 200, 32), ("c.npz", 400, 64))])
    rates = analysis.rates_table(runs)
    assert {"data.path", "n", "d"} <= set(rates.attrs["keys"])
    assert "| n " in render.to_markdown(rates) and "| d " in render.to_markdown(rates)


def test_curves_ymin_cuts_the_axis_at_the_declared_value_and_fits_the_rest():
    # log10 F falls from 0.5 to −100 at t = 10 (separation): with ymin −3 the axis spans
    # [−3, 0.5 + 5% of 3.5] (hand computation), and the caption says curves leave the panel
    runs = _runs([{"lr": 1.0, "seed": 0, "t_sep": 10}])
    traj = pd.DataFrame({"run_id": "r0", "iter": np.arange(20),
                         "log_loss": np.where(np.arange(20) < 10, np.log(10 ** 0.5), np.log(10.0) * -100)})
    got = headline.draw({"kind": "curves", "y": "log10_loss", "xscale": "linear", "ymin": -3}, runs, traj)
    lo, hi = got.figure.axes[0].get_ylim()
    assert lo == -3 and hi == pytest.approx(0.5 + 0.05 * 3.5)
    assert "the axis stops at -3" in got.caption
    figures.plt.close(got.figure)
