"""`gdbench-report A B`: two real sweeps (the real CLI on the embedded Ray) that differ in the data's
margin and in their step-size grids, compared by the real `gdbench-report` and by `compare()`;
the differences checked against pandas on each sweep's runs table, the LaTeX compiled by pdflatex."""
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

import gdbench
from gdbench import compare
from conftest import BIN, cli_env, gdbench as run_gdbench

pytestmark = pytest.mark.slow
COMMON = ("-m", "model=linear,two_layer", "seed=range(2)", "data.n=30", "data.d=4", "iterations=40")


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    # a: margin 0.1 (the default), steps 1, 10, 100; b: margin 0.2, steps 10, 100, 1000 — so
    # lr = 1 is only in a and lr = 1000 only in b, and 10 and 100 are in both
    tmp = tmp_path_factory.mktemp("compare")
    run_gdbench(*COMMON, "algorithm.lr=1,10,100", "hydra.sweep.dir=a", cwd=tmp)
    run_gdbench(*COMMON, "algorithm.lr=10,100,1000", "data.margin=0.2", "hydra.sweep.dir=b", cwd=tmp)
    return tmp


def report(*args, cwd):
    return subprocess.run([str(BIN / "gdbench-report"), *map(str, args)], cwd=cwd, env=cli_env(),
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def cli_out(sweeps):
    proc = report("a", "b", "--labels", "x,y", cwd=sweeps)
    assert proc.returncode == 0, proc.stderr
    return sweeps / "a" / "compare-y", proc


def per_step(sweep, column, **agg):
    runs, _ = gdbench.load(sweep)
    return runs.groupby(["model", "lr"])[column].agg(**agg)


def test_cli_writes_tables_figures_and_index(cli_out):
    out, proc = cli_out
    assert f"comparison: {out.relative_to(out.parents[1])}/index.md" in proc.stdout
    assert "Rates side by side" in proc.stdout and "t sep median [x]" in proc.stdout
    for name in ("rates", "oscillation"):
        for ext in ("csv", "md", "tex"):
            assert (out / "tables" / f"{name}.{ext}").stat().st_size > 0
    pngs = sorted((out / "figures").glob("*.png"))
    assert [p.name for p in pngs] == ["loss_curves_gaussian_logistic_gd.png"]  # one data setting
    assert pngs[0].stat().st_size > 1000 and pngs[0].with_suffix(".pdf").stat().st_size > 1000
    md = (out / "index.md").read_text()
    assert md.startswith("# gdbench comparison — x vs y")
    assert str(out.parents[1] / "a") in md and str(out.parents[1] / "b") in md
    assert "x: 12 runs finished, 0 failed; y: 12 runs finished, 0 failed" in md
    assert "data.margin: 0.1 → 0.2" in md  # the change, named at the top
    assert "Δ = y − x" in md and "![Loss curves" in md
    assert (out / "index.html").read_text().count("<table") == 2


def test_differences_equal_pandas_on_each_sweep(sweeps, cli_out):
    out, _ = cli_out
    rates = pd.read_csv(out / "tables" / "rates.csv").set_index(["model", "lr"])
    # the expected Δ: each sweep's plain median t_sep per (model, lr) straight from its runs
    # table, used only where every run separated (there the censored median is the plain one)
    a = per_step(sweeps / "a", "t_sep", med="median", all_sep=lambda s: s.notna().all())
    b = per_step(sweeps / "b", "t_sep", med="median", all_sep=lambda s: s.notna().all())
    both = a.add_suffix("_a").join(b.add_suffix("_b"), how="inner")
    both = both[both["all_sep_a"] & both["all_sep_b"]]
    assert len(both) >= 3  # lr 10 and 100 for both models, where separation is quick
    expected = both["med_b"] - both["med_a"]
    assert np.allclose(rates.loc[expected.index, "Δ t_sep_median"], expected)
    # oscillation: the plain median of n_increases (no censoring) on each side
    osc = pd.read_csv(out / "tables" / "oscillation.csv").set_index(["model", "lr"])
    na = per_step(sweeps / "a", "n_increases", m="median")["m"]
    nb = per_step(sweeps / "b", "n_increases", m="median")["m"]
    common = na.index.intersection(nb.index)
    assert np.allclose(osc.loc[common, "Δ n_increases"], (nb - na)[common].astype(float))


def test_rows_of_one_sweep_keep_nan_on_the_other(cli_out):
    out, _ = cli_out
    rates = pd.read_csv(out / "tables" / "rates.csv")
    assert sorted(rates["lr"].unique()) == [1, 10, 100, 1000] and len(rates) == 8
    only_x, only_y = rates[rates["lr"] == 1], rates[rates["lr"] == 1000]
    assert (only_x["present_in"] == "x").all() and (only_y["present_in"] == "y").all()
    for col in ("final_loss [y]", "separated [y]", "Δ final_loss", "runs [y]"):
        assert only_x[col].isna().all(), col
    assert only_x["final_loss [x]"].notna().all() and (only_x["runs [x]"] == 2).all()
    assert only_y["final_loss [x]"].isna().all() and only_y["final_loss [y]"].notna().all()
    assert "not run" in (out / "tables" / "rates.md").read_text()


def test_latex_compiles_and_stays_narrow(cli_out, tmp_path):
    out, _ = cli_out
    for name in ("rates", "oscillation"):
        tex = (out / "tables" / f"{name}.tex").read_text()
        assert tex.isascii()
        spec = re.search(r"\\begin\{tabular\}\{(\w+)\}", tex).group(1)
        assert len(spec) <= compare.LATEX_COLUMNS
        doc = tmp_path / f"{name}.tex"
        doc.write_text("\\documentclass{article}\\usepackage{booktabs}\\begin{document}"
                       f"\\input{{{out / 'tables' / name}.tex}}\\end{{document}}\n")
        proc = subprocess.run([shutil.which("pdflatex") or "/usr/bin/pdflatex", "-interaction=nonstopmode",
                               "-halt-on-error", doc.name], cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stdout[-2000:]


def test_compare_function_and_a_changed_key(sweeps, tmp_path):
    res = compare.compare(sweeps / "a", sweeps / "b", out=tmp_path / "cmp", make_figures=False)
    assert res["changed"] == [] and res["figures"] == []
    assert res["keys"] == ["dataset", "model", "loss", "algorithm", "lr"]
    rates = res["tables"]["rates"]
    assert rates.attrs["keys"] == res["keys"] and len(rates) == 8
    assert {"t_sep_median [A]", "t_sep_median [B]", "Δ t_sep_median", "Δ rate_slope"} <= set(rates.columns)
    assert (tmp_path / "cmp" / "index.md").read_text().startswith("# gdbench comparison — A vs B")
    # grouping by the margin too: constant in each sweep but different, so it is the change and
    # rows still match on (model, lr) instead of never matching
    res = compare.compare(sweeps / "a", sweeps / "b", out=tmp_path / "by", by=["model", "lr", "data.margin"],
                          labels=("m1", "m2"), make_figures=False)
    assert res["changed"] == ["data.margin"] and res["keys"] == ["model", "lr"]
    osc = res["tables"]["oscillation"]
    assert (osc["_side"] == "both").sum() == 4 and osc["data.margin [m2]"].dropna().eq(0.2).all()


def test_errors_name_the_problem(sweeps):
    (sweeps / "empty").mkdir(exist_ok=True)
    cases = [(("a", "empty"), "empty: not a gdbench sweep directory"),
             (("a", "b", "a"), "not 3"),
             (("a", "b", "--labels", "p"), "--labels needs exactly two"),
             (("a", "--labels", "p,q"), "they apply to a comparison")]
    for args, message in cases:
        proc = report(*args, cwd=sweeps)
        assert proc.returncode != 0 and message in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr


def test_one_directory_still_reports(sweeps):
    proc = report("b", "--no-figures", "--quiet", cwd=sweeps)
    assert proc.returncode == 0, proc.stderr
    assert (sweeps / "b" / "report" / "index.md").exists() and not (sweeps / "b" / "compare-b").exists()
