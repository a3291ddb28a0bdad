"""The report stage on a real sweep: the real CLI on the embedded Ray with the end-of-sweep report,
tables checked against direct pandas computations on the runs table, LaTeX validity, figures'
axes, a partial (interrupted) sweep, and gdbench-report's errors."""
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import gdbench
from gdbench import analysis, figures
from conftest import BIN, cli_env, gdbench as run_gdbench

pytestmark = pytest.mark.slow
LRS = (1.0, 100.0, 1e5)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    # linear vs two-layer, logistic vs squared (the squared loss diverges at large steps), two
    # dimensions, three seeds, with perceptron companions: every table and figure applies.
    tmp = tmp_path_factory.mktemp("report")
    proc = run_gdbench("-m", "model=linear,two_layer", "loss=logistic,squared", "algorithm.lr=1,100,1e5",
                       "seed=range(3)", "data.d=4,16", "data.n=40", "iterations=80", "companion=true",
                       "report.bootstrap=200", "hydra.sweep.dir=sw", cwd=tmp, timeout=600)
    return tmp / "sw", proc


def test_end_of_sweep_report_writes_every_table_and_figure(sweep):
    root, proc = sweep
    assert "report: " in proc.stdout and "Summary:" in proc.stdout
    # drawing PDFs with embedded fonts does not flood the terminal with fontTools' INFO lines
    assert "glyf" not in proc.stdout + proc.stderr and "Glyph names" not in proc.stdout + proc.stderr
    # the terminal summary puts separation next to oscillation (zeros cannot read as "never separated")
    summary = proc.stdout[proc.stdout.index("Summary:"):]
    assert "separated" in summary.splitlines()[1] and "increases" in summary.splitlines()[1]
    rep = root / "report"
    for name in ("summary", "rates", "oscillation", "acceleration", "scaling_d", "perceptron"):
        for ext in ("md", "tex", "csv"):
            assert (rep / "tables" / f"{name}.{ext}").stat().st_size > 0, (name, ext)
    figs = sorted(p.name for p in (rep / "figures").iterdir())
    for stem in ("transition_time", "perceptron_gap"):
        assert f"{stem}.png" in figs and f"{stem}.pdf" in figs, stem
    # d = 4, 16 are two levels: no exponent, so no scaling figure; the table says why (mark ˡ)
    assert not any(f.startswith("t_sep_vs_d") for f in figs)
    assert "—ˡ" in (rep / "tables" / "scaling_d.md").read_text()
    assert sum(f.startswith("loss_curves_") and f.endswith(".png") for f in figs) == 2  # one per d
    assert all((rep / "figures" / f).stat().st_size > 1000 for f in figs)
    index = (rep / "index.md").read_text()
    assert "72 runs finished, 0 failed, 0 of 72 planned runs not finished" in index
    assert "git_commit" in index and "![Transition time against the step size](figures/transition_time.png)" in index
    html = (rep / "index.html").read_text()
    assert html.count("<table") == 6 and '<img src="figures/transition_time.png"' in html
    assert set(__import__("json").loads((rep / "manifest.json").read_text())) >= {f"figures/{f}" for f in figs}


def test_every_pdf_embeds_truetype_fonts(sweep):
    # venues reject Type 3 fonts; matplotlib's pdf.fonttype = 42 embeds TrueType (pdffonts: "TrueType")
    pdfs = sorted((sweep[0] / "report" / "figures").glob("*.pdf"))
    assert pdfs
    for pdf in pdfs:
        out = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, timeout=60).stdout
        fonts = out.splitlines()[2:]
        assert fonts and all("TrueType" in f for f in fonts), (pdf.name, out)


def test_no_figure_of_a_real_report_clips_a_text(sweep, tmp_path, monkeypatch):
    # rebuild the report with figures.save checking each figure before it is written
    root = tmp_path / "copy"
    shutil.copytree(sweep[0], root, ignore=shutil.ignore_patterns("report"))
    from gdbench import report
    clipped, saved = [], []
    original = figures.save

    def checked_save(fig, stem):
        clipped.extend((Path(str(stem)).name, t) for t in figures.clipped_texts(fig))
        saved.append(stem)
        return original(fig, stem)

    monkeypatch.setattr(figures, "save", checked_save)
    report.build(root, n_boot=50, echo=False, figure_workers=1)  # in this process, where the check runs
    assert len(saved) >= 8 and clipped == []


def test_tables_equal_a_direct_pandas_computation(sweep):
    root, _ = sweep
    runs, traj = gdbench.load(root)
    assert len(runs) == 72 and set(traj["run_id"]) == set(runs["run_id"])
    rates = pd.read_csv(root / "report" / "tables" / "rates.csv")
    keys = ["d", "model", "loss", "lr"]  # what varies in this sweep besides the seed
    assert list(rates.columns[:6]) == ["dataset", "d", "model", "loss", "algorithm", "lr"]
    direct = runs.groupby(keys).agg(count=("run_id", "size"), sep=("t_sep", lambda s: s.notna().mean()),
                                    div=("status", lambda s: (s == "diverged").sum()),
                                    med=("t_sep", "median"), allsep=("t_sep", lambda s: s.notna().all()),
                                    final=("final_loss", "median")).reset_index()
    m = rates.merge(direct, on=keys, validate="one_to_one")
    assert len(m) == 24 and (m["runs"] == 3).all() and (m["count"] == 3).all()
    assert np.allclose(m["separated"], m["sep"]) and (m["diverged"] == m["div"]).all()
    assert m["diverged"].sum() == (runs["status"] == "diverged").sum() > 0  # diverged runs are counted
    full = m[m["allsep"]]  # where every seed separated, the censored median is the plain median
    assert len(full) and np.allclose(full["t_sep_median"], full["med"])
    assert np.allclose(m["final_loss"], m["final"], equal_nan=True)
    osc = pd.read_csv(root / "report" / "tables" / "oscillation.csv").merge(
        runs.groupby(keys)["n_increases"].median().rename("direct").reset_index(), on=keys)
    assert np.allclose(osc["n_increases"], osc["direct"])
    # each (d, model, loss) has a best step size: the smallest median t_sep (ties are all best,
    # and say how many tie)
    best = rates[rates["best"]]
    assert len(best.drop_duplicates(["d", "model", "loss"])) == 8
    for _, row in best.iterrows():
        same = rates[(rates["d"] == row["d"]) & (rates["model"] == row["model"]) & (rates["loss"] == row["loss"])]
        assert row["t_sep_median"] == same["t_sep_median"].min()
        assert row["best_tied"] == (same["t_sep_median"] == row["t_sep_median"]).sum()


def _check_tabular(tex: str) -> None:
    """Structure of a booktabs tabular: balanced environment, rules, and every row with as many
    cells as the column spec declares (unescaped & counted)."""
    m = re.search(r"\\begin\{tabular\}\{([lrc]+)\}(.*?)\\end\{tabular\}", tex, re.S)
    assert m, tex[:300]
    ncols = len(m.group(1))
    body = m.group(2)
    assert body.count("\\toprule") == body.count("\\midrule") == body.count("\\bottomrule") == 1
    rows = [r for r in re.split(r"\\\\\s*\n", body) if r.strip() and "rule" not in r.strip().splitlines()[-1]]
    for r in rows:
        line = r.strip().splitlines()[-1]
        assert len(re.findall(r"(?<!\\)&", line)) == ncols - 1, line
    text = re.sub(r"\$[^$]*\$", "", body)  # math ($t_{\mathrm{sep}}$) may hold _ and ^
    assert not re.search(r"(?<!\\)[_#%]", text.replace("\\textsuperscript", "")), "unescaped LaTeX character"


def test_latex_tables_compile_with_a_real_pdflatex(sweep, tmp_path):
    root, _ = sweep
    tex_files = sorted((root / "report" / "tables").glob("*.tex"))
    assert len(tex_files) == 6
    for f in tex_files:
        _check_tabular(f.read_text())
        assert f.read_text().isascii(), f.name  # Unicode (τ, η, −) would need declarations to compile
    assert shutil.which("pdflatex"), "pdflatex is missing: scripts/setup.sh installs Debian's texlive"
    # each table alone in a bare article with booktabs, as a user pastes it; overfull = wider than the page
    for f in tex_files:
        doc = tmp_path / f"{f.stem}.tex"
        doc.write_text("\\documentclass{article}\\usepackage{booktabs}\\begin{document}"
                       f"\\input{{{f}}}\\end{{document}}\n")
        proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, (f.name, proc.stdout[-2000:])
        log = (tmp_path / f"{f.stem}.log").read_text(errors="replace")
        overfull = [float(m) for m in re.findall(r"Overfull \\hbox \(([0-9.]+)pt too wide\)", log)]
        assert max(overfull, default=0) < 40, (f.name, overfull)  # at most a margin's worth


def test_figure_functions_label_axes_and_draw_one_series_per_group(sweep):
    root, _ = sweep
    runs, traj = gdbench.load(root)
    logistic = runs[(runs["loss"] == "logistic") & (runs["d"] == 4)]
    curves = analysis.curve_quantiles(logistic, traj)
    fig = figures.loss_curves(curves)
    axes = fig.axes
    assert len(axes) == 4  # 2 rows (loss, accuracy) × 2 models
    # fig.axes is row-major: [loss | model 1, loss | model 2, accuracy | model 1, accuracy | model 2]
    assert axes[0].get_ylabel() == r"$\log_{10} F(W_t)$" and axes[2].get_ylabel() == "training accuracy"
    assert axes[3].get_xlabel() == "iteration $t$" and {axes[0].get_title(), axes[1].get_title()} == {"linear", "two layer"}
    assert all(len(ax.get_lines()) == len(LRS) for ax in axes)  # one median line per step size
    osc = analysis.oscillation_table(logistic)
    ax = figures.transition_time(osc).axes[0]
    assert ax.get_xlabel() == r"step size $\eta$" and "transition time" in ax.get_ylabel()
    assert len(ax.get_lines()) == 2 and ax.get_xscale() == "log"
    scaling = analysis.scaling_table(runs, x="d", n_boot=50)
    ax = figures.tsep_scaling(runs, scaling, x="d").axes[0]
    legend = ax.figure.legends[0] if ax.figure.legends else ax.get_legend()
    assert ax.get_xlabel() == "dimension $d$" and len(legend.get_texts()) == 4
    # two levels of d (4, 16): a line through two points says nothing, so no exponent is drawn
    assert all("no fit (< 3 levels)" in t.get_text() for t in legend.get_texts())
    heat = figures.heatmap(analysis.rates_table(logistic), value="t_sep_median", title="t").axes[0]
    assert len(heat.get_xticklabels()) == len(LRS) and len(heat.get_yticklabels()) == 2
    gap = figures.perceptron_gap(analysis.perceptron_table(logistic)).axes[0]
    # final (+ max over t, dashed, where it differs from the final gap somewhere) for each model,
    # and then two grey legend entries saying which line style is which
    table = analysis.perceptron_table(logistic)
    same = np.allclose(table["final_gap"], table["max_gap"], rtol=1e-9, equal_nan=True)
    assert len(gap.get_lines()) == (2 if same else 6) and "gamma" in gap.get_xlabel()


def test_partial_sweep_reports_what_finished_and_what_is_missing(sweep, tmp_path):
    root, _ = sweep
    part = tmp_path / "partial"
    shutil.copytree(root, part, ignore=shutil.ignore_patterns("report", "runs.parquet"))
    chunks = sorted((part / "runs").glob("*.parquet"))
    assert len(chunks) >= 2
    gone = pd.read_parquet(chunks[0])
    chunks[0].unlink()  # as if the sweep had been interrupted before this chunk finished
    proc = subprocess.run([str(BIN / "gdbench-report"), str(part), "--no-figures", "--bootstrap", "20"],
                          capture_output=True, text=True, env=cli_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"{len(gone)} of 72 planned runs not finished" in proc.stdout
    assert f"{72 - len(gone)} runs finished" in (part / "report" / "index.md").read_text()


def test_report_errors_name_the_key_or_the_directory(sweep, tmp_path):
    root, _ = sweep
    proc = subprocess.run([str(BIN / "gdbench-report"), str(root), "--group-by", "model,nosuchcolumn", "--quiet"],
                          capture_output=True, text=True, env=cli_env(), timeout=300)
    assert proc.returncode != 0 and "nosuchcolumn" in proc.stderr
    proc = subprocess.run([str(BIN / "gdbench-report"), str(tmp_path)], capture_output=True, text=True,
                          env=cli_env(), timeout=60)
    assert proc.returncode != 0 and "not a gdbench sweep directory" in proc.stderr


def test_group_by_option_changes_the_rows(sweep, tmp_path):
    root, _ = sweep
    copy = tmp_path / "copy"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("report"))
    proc = subprocess.run([str(BIN / "gdbench-report"), str(copy), "--group-by", "model,lr", "--no-figures",
                           "--quiet"], capture_output=True, text=True, env=cli_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr
    rates = pd.read_csv(copy / "report" / "tables" / "rates.csv")
    assert len(rates) == 6 and (rates["runs"] == 12).all()  # 2 models × 3 lrs, over d, loss and seeds


def test_no_figures_keeps_figures_and_a_rebuild_removes_only_its_own_files(sweep, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(sweep[0], root)
    rep = root / "report"
    figs_before = sorted(p.name for p in (rep / "figures").iterdir())
    (rep / "figures" / "my_own_plot.png").write_bytes(b"not the report's")  # a user's file beside the report
    stale = rep / "tables" / "budget.csv"  # as if an earlier build had written a table this one does not
    stale.write_text("x\n")
    manifest = json.loads((rep / "manifest.json").read_text())
    (rep / "manifest.json").write_text(json.dumps(manifest + ["tables/budget.csv"]))
    proc = subprocess.run([str(BIN / "gdbench-report"), str(root), "--no-figures", "--quiet", "--bootstrap", "20"],
                          capture_output=True, text=True, env=cli_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (rep / "figures").iterdir()) == sorted(figs_before + ["my_own_plot.png"])
    assert not stale.exists()  # the report's own stale file is gone, the user's file stays
    assert '<img src="figures/transition_time.png"' in (rep / "index.html").read_text()  # still shown
