"""Reproduce the papers: run every study of conf/experiment/ as a sweep, build each sweep's
report, evaluate each claim from the results, and write claims.md and claims.html.

    gdbench-reproduce                       quick scale (minutes on a laptop; README has the time)
    gdbench-reproduce --scale paper         larger n, d, budgets and more seeds (a cluster)
    gdbench-reproduce --scale smoke         tiny sizes: checks the pipeline end to end (CI)
    gdbench-reproduce --studies unreliable_loss,perceptron_limit --out results/repro
    gdbench-reproduce --evaluate-only --out results/repro      re-evaluate existing sweeps

Each study is one `gdbench experiment=<name>` sweep (a subprocess: Hydra and Ray as a user runs
them) into `<out>/<name>/`; re-running resumes finished sweeps. `--scale paper` adds the study's
`paper` overrides on the command line, which take precedence over the experiment's sweep lists.
"""
from __future__ import annotations

import argparse
import html
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from gdbench import claims
from gdbench.claims import INCONCLUSIVE, Verdict


@dataclass
class Claim:
    source: str
    statement: str
    criterion: claims.Criterion  # its thresholds, its printed expectation and its evaluator

    @property
    def expected(self) -> str:
        return self.criterion.expected()


@dataclass
class Study:
    name: str  # = conf/experiment/<name>.yaml
    claims: list
    paper: list = field(default_factory=list)  # extra overrides for --scale paper
    smoke: list = field(default_factory=list)  # tiny sizes for --scale smoke (CI: the pipeline, not the science)
    requires: Callable | None = None  # () -> None, or a message saying why the study is skipped


def _cifar_missing():
    from omegaconf import OmegaConf
    from gdbench import CONF_DIR
    root = Path(str(OmegaConf.load(Path(CONF_DIR) / "data" / "cifar10.yaml")["root"])).expanduser()
    base = root / "cifar-10-batches-py" if (root / "cifar-10-batches-py").is_dir() else root
    if not (base / "data_batch_1").is_file():
        return (f"no CIFAR-10 python batches under {root} (data.root in conf/data/cifar10.yaml); "
                "put cifar-10-batches-py there to run this study")
    return None


# study sizes that later sections refer to (kept apart so each Study entry stays one screen)
DIMENSION_FAMILIES = ("lifted_lower_bound", "many_easy_one_hard", "signed_chain")
TRANSITION_PAPER = ["data.n=5,11,41,161", "data.margin=0.005,0.01,0.02,0.04", "iterations=16000"]
TRANSITION_SMOKE = ["data.n=5,11", "data.margin=0.05,0.1,0.2", "algorithm.lr=100,1000000", "iterations=300"]
REAL_DATA_PAPER = ["seed=range(5)", "iterations=5000", "algorithm.lr=0.001,0.01,0.1,1,10,100,1000,10000,100000,1000000"]
REAL_DATA_SMOKE = ["algorithm.lr=0.01,0.1,1000", "seed=0", "iterations=100"]
IMPLICIT_PAPER = ["iterations=200000", "data.seed=range(5)", "data.n_far=2,8"]
IMPLICIT_SMOKE = ["iterations=2000"]
T25, T26 = "Tyurin 2025 (arXiv:2412.08424)", "Tyurin 2026 (arXiv:2512.11587)"
DIM_SOURCE = f"{T26}, the minimalistic example (not public; our families)"


def _dimension_claim(family: str | None) -> Claim:
    on = f" — on {family}" if family else " — on PCA'd digits 0 vs 1"
    return Claim(DIM_SOURCE, "A two-layer model can need Õ(√d) iterations to separate where linear models need Ω(d)"
                 + on + ".", claims.DimensionGap(dataset=family))
REAL = [Claim(f"{T25} Figs. 1–5", "Small steps give monotone loss curves, large steps chaotic ones (linear model).",
              claims.OscillatesAtLargeSteps(models=("linear",))),
        Claim(f"{T25} Figs. 1–5", "Large steps nonetheless separate fastest and closely track the batch perceptron "
              "(linear model).", claims.LargeStepsSeparateFastest(models=("linear",))),
        Claim(f"{T26} experiments", "The loss curves of nonlinear models are chaotic at large steps too.",
              claims.OscillatesAtLargeSteps(models=("two_layer",))),
        Claim(f"{T26} experiments", "Nonlinear models separate faster than linear ones.", claims.NonlinearFaster())]
STUDIES = [
    Study("perceptron_limit", [Claim(
        f"{T25} Thm 3.2; {T26} reduction",
        "GD with step γ from the same start satisfies W_t/γ → Ŵ_t, the (generalized) batch perceptron, as γ → ∞ "
        "(linear and leaky-ReLU two-layer models).", claims.PerceptronLimit())],
        paper=["iterations=200", "seed=range(5)"],  # the data keys differ between gaussian and digits
        smoke=["iterations=10", "algorithm.lr=1,1000,1000000", "seed=0"]),
    Study("unreliable_loss", [Claim(
        f"{T25} Thm 4.1",
        "On the two-point data the first iterate's loss grows linearly with γ, yet the second iterate separates.",
        claims.UnreliableLoss())],
        paper=["algorithm.lr=10,100,1000,10000,100000"],
        smoke=["algorithm.lr=10,100,1000"]),
    Study("perceptron_lower_bound", [Claim(
        f"{T25} Thm 5.1, Thm 6.1, Table 1",
        "The batch perceptron and large-step GD need Ω(n) iterations on the lower-bound data; normalized GD far fewer.",
        claims.PerceptronLowerBound())],
        paper=["data.n=10,100,1000,10000", "iterations=50000"],
        smoke=["data.n=10,30,100", "iterations=500"]),
    Study("large_step_rates", [Claim(
        "Wu, Bartlett, Telgarsky, Yu (COLT 2024)",
        "After an O(η) oscillatory phase the loss decays like 1/(ηt); with η ∝ T the final loss scales like 1/T².",
        claims.LargeStepRates())],
        paper=["iterations=400,800,1600,3200,6400,12800,25600", "data.n_pos=100", "data.n_neg=100"],
        smoke=["iterations=100,200", "algorithm.lr=1,10,20"]),
    Study("transition_time", [
        Claim("Wu et al. (COLT 2024); Crawshaw & Liu (COLT 2026)",
              "The unstable phase ends after a number of steps that stops growing with η once η is large.",
              claims.TransitionSaturates()),
        Claim("Crawshaw & Liu (COLT 2026)", "The transition time is O(n/μ + 1/μ²) (μ the margin), and the bound "
              "is reached (tight up to logs).", claims.TransitionScaling())],
        paper=TRANSITION_PAPER, smoke=TRANSITION_SMOKE),
    Study("dimension_scaling", [_dimension_claim(family) for family in DIMENSION_FAMILIES],
          paper=["data.d=16,32,64,128,256", "seed=range(5)", "iterations=30000"],
          smoke=["data.d=8,16,32", "model=linear,quadratic_net,identity_net", "algorithm.lr=1,100", "seed=0",
                 "iterations=300"]),
    Study("dimension_scaling_digits", [_dimension_claim(None)],
          paper=["seed=range(5)"],
          smoke=["data.project_dim=8,16,32", "model=linear,quadratic_net", "algorithm.lr=1,100", "seed=0",
                 "iterations=300"]),
    Study("real_data", [*REAL, Claim(
        "control (not a claim of the papers)",
        "The non-separable control stays non-separable: the separation claims above do not apply to it.",
        claims.NonSeparableControl())],
        paper=REAL_DATA_PAPER, smoke=REAL_DATA_SMOKE),
    Study("real_data_cifar", [
        Claim(f"{T25} Figs. 1–5 (CIFAR-10)", "Small steps monotone, large steps chaotic (linear model).",
              claims.OscillatesAtLargeSteps(controls=(), models=("linear",))),
        Claim(f"{T26} experiments (CIFAR-10)", "Nonlinear models separate faster than linear ones.",
              claims.NonlinearFaster(controls=()))],
        paper=["iterations=3000", "seed=range(3)"],
        smoke=["algorithm.lr=0.01,1,100", "iterations=20"], requires=_cifar_missing),
    Study("implicit_bias", [
        Claim("Soudry et al. (JMLR 2018)", "With small steps on separable data the loss decays like 1/t.",
              claims.LossRate()),
        Claim("Soudry et al. (JMLR 2018)", "…while the direction converges to the max-margin (SVM) direction only "
              "like 1/log t.", claims.DirectionLogRate()),
        Claim(f"{T25}; Soudry et al.", "With very large steps the limit is the perceptron's direction, not the "
              "max-margin one.", claims.PerceptronNotMaxMargin())],
        paper=IMPLICIT_PAPER, smoke=IMPLICIT_SMOKE),
]
EOS = "Cohen, Kaur, Li, Kolter, Talwalkar (ICLR 2021)"
STUDIES.append(Study("edge_of_stability", [
    Claim(EOS, "On the squared loss the sharpness rises to 2/η (progressive sharpening), then stays around it while "
          "the loss keeps decreasing over the long run (the edge of stability).", claims.EdgeOfStability()),
    Claim(EOS, "The sharpness at the edge scales like 1/η across step sizes.", claims.PlateauScalesAsInverseStep()),
    Claim(f"{EOS}, cross-entropy; Wu, Bartlett, Telgarsky, Yu (COLT 2024)",
          "On the logistic loss the sharpness falls far below 2/η once the network fits the training set and the "
          "loss is small.", claims.LogisticSharpnessFalls())],
    paper=["seed=range(5)", "iterations=20000"],
    smoke=["iterations=200", "algorithm.lr=65,520", "seed=0", "sharpness.every=50"]))
STUDY_NAMES = [s.name for s in STUDIES]


def _command(study: Study, out: Path, scale: str, extra=()) -> list:
    sized = {"paper": study.paper, "smoke": study.smoke}.get(scale, [])
    return [sys.executable, "-m", "gdbench.cli", f"experiment={study.name}", f"hydra.sweep.dir={out / study.name}",
            "progress=false", *sized, *extra]


def run_study(study: Study, out: Path, scale: str, extra=()) -> int:
    """One sweep as a user runs it; returns the exit status (non-zero = some runs failed)."""
    cmd = _command(study, out, scale, extra)
    print(f"\n=== {study.name}: {' '.join(cmd[3:])}", flush=True)
    return subprocess.run(cmd).returncode


def plan_studies(studies: list, out: Path, scale: str, extra=()) -> int:
    """`plan=true`: each study's dry run (its grid, cells, tasks and estimated compute), then the
    total; nothing runs and no claim is evaluated."""
    runs = cost = 0.0
    for study in studies:
        cmd = _command(study, out, scale, extra)
        print(f"\n=== {study.name}: {' '.join(cmd[3:])}", flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        print(proc.stdout.rstrip(), proc.stderr.rstrip() if proc.returncode else "", sep="\n")
        if proc.returncode:
            return proc.returncode
        runs += float(re.search(r"^runs: (\d+)", proc.stdout, re.M).group(1))
        cost += float(re.search(r"estimated compute: ([\d.]+) s", proc.stdout).group(1))
    print(f"\n{scale} scale, {len(studies)} studies: {runs:.0f} runs, estimated compute {cost:.0f} s "
          f"(≈ {cost / 3600:.1f} h on one worker; divide by the number of workers)")
    return 0


def evaluate(study: Study, sweep_dir: Path) -> list[dict]:
    """Each claim of a study with its verdict, computed from the sweep's results."""
    from gdbench.store import load
    try:
        runs, traj = load(sweep_dir)
        error = None
    except FileNotFoundError as e:
        runs = traj = None
        error = str(e)
    out = []
    for c in study.claims:
        if error:
            v = Verdict(INCONCLUSIVE, "no results", error)
        else:
            v = c.criterion.evaluate(runs, traj)
        out.append({"study": study.name, "source": c.source, "statement": c.statement, "expected": c.expected,
                    "measured": v.measured, "verdict": v.verdict, "reason": v.reason,
                    "report": f"{study.name}/report/index.md"})
    return out


def _tally(counts: dict) -> str:
    h, f, i = counts[claims.HOLDS], counts[claims.FAILS], counts[INCONCLUSIVE]
    return f"{h} hold{'s' if h == 1 else ''}, {f} do{'es' if f == 1 else ''} not hold, {i} inconclusive"


def write_claims(rows: list[dict], out: Path, scale: str, skipped: dict) -> Path:
    counts = {k: sum(r["verdict"] == k for r in rows) for k in (claims.HOLDS, claims.FAILS, INCONCLUSIVE)}
    md = [f"# gdbench — claims reproduced ({scale} scale)", "",
          f"Generated {time.strftime('%Y-%m-%d %H:%M:%S')} from the sweeps under `{out}`. Every measured value "
          "below is computed from those results by `gdbench/claims/`; nothing is typed in.", "",
          f"**{_tally(counts)}.**", "",
          "| # | study | source | claim | verdict |", "|---|---|---|---|---|"]
    for i, r in enumerate(rows, 1):
        md.append(f"| {i} | {r['study']} | {r['source']} | {r['statement']} | **{r['verdict']}** |")
    md.append("")
    for i, r in enumerate(rows, 1):
        md += [f"## {i}. {r['statement']}", "", f"- source: {r['source']}", f"- expected: {r['expected']}",
               f"- measured: {r['measured']}", f"- verdict: **{r['verdict']}** — {r['reason']}",
               f"- report: [{r['report']}]({r['report']})", ""]
    if skipped:
        md += ["## Skipped studies", ""] + [f"- {k}: {v}" for k, v in skipped.items()] + [""]
    (out / "claims.md").write_text("\n".join(md))
    colour = {claims.HOLDS: "#1a7f37", claims.FAILS: "#cf222e", INCONCLUSIVE: "#9a6700"}
    body = [f"<h1>gdbench — claims reproduced ({scale} scale)</h1>",
            f"<p>{_tally(counts)}.</p>"]
    for i, r in enumerate(rows, 1):
        body.append(f"<h2>{i}. {html.escape(r['statement'])}</h2><ul><li>source: {html.escape(r['source'])}</li>"
                    f"<li>expected: {html.escape(r['expected'])}</li><li>measured: {html.escape(r['measured'])}</li>"
                    f"<li>verdict: <b style='color:{colour[r['verdict']]}'>{r['verdict']}</b> — "
                    f"{html.escape(r['reason'])}</li><li><a href='{r['study']}/report/index.html'>report</a></li></ul>")
    body += [f"<p>skipped {html.escape(k)}: {html.escape(v)}</p>" for k, v in skipped.items()]
    (out / "claims.html").write_text("<!doctype html><html><head><meta charset='utf-8'><title>gdbench claims</title>"
                                     "<style>body{font-family:sans-serif;max-width:1000px;margin:auto}</style></head>"
                                     f"<body>{''.join(body)}</body></html>\n")
    return out / "claims.md"


def copy_headline_figures(studies: list, out: Path, dest: Path) -> list:
    """Each study's headline PNGs (report/figures/headline_<i>_*.png) as dest/<study>_<i>.png,
    replacing that study's earlier copies (a study that now declares fewer figures leaves none
    behind)."""
    import shutil
    dest.mkdir(parents=True, exist_ok=True)
    copied = []
    for name in studies:
        for old in dest.glob(f"{name}_*.png"):
            if old.stem[len(name) + 1:].isdigit():
                old.unlink()
        for png in sorted((out / name / "report" / "figures").glob("headline_*.png")):
            i = png.name.split("_")[1]
            shutil.copyfile(png, dest / f"{name}_{i}.png")
            copied.append(dest / f"{name}_{i}.png")
    return copied


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="gdbench-reproduce", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", choices=("quick", "paper", "smoke"), default="quick",
                    help="quick: a laptop; paper: a cluster; smoke: tiny sizes that check the "
                         "pipeline only (CI) — their verdicts say nothing about the science")
    ap.add_argument("--out", default=None, help="results folder (default results/reproduce-<scale>)")
    ap.add_argument("--studies", default=None, help=f"comma-separated subset of: {', '.join(STUDY_NAMES)}")
    ap.add_argument("--evaluate-only", action="store_true", help="do not run sweeps; evaluate what is there")
    ap.add_argument("--figures", default=None, metavar="DIR",
                    help="also copy each study's headline figures (PNG) to DIR as <study>_<i>.png "
                         "(the README's figures: --figures docs/figures)")
    ap.add_argument("overrides", nargs="*", help="extra Hydra overrides for every sweep, e.g. cluster.address=auto")
    args = ap.parse_args(argv)
    chosen = STUDIES
    if args.studies:
        names = [s.strip() for s in args.studies.split(",") if s.strip()]
        unknown = [n for n in names if n not in STUDY_NAMES]
        if unknown:
            ap.error(f"--studies: unknown {unknown}; choose from {STUDY_NAMES}")
        chosen = [s for s in STUDIES if s.name in names]
    out = Path(args.out or f"results/reproduce-{args.scale}").resolve()
    if "plan=true" in args.overrides:
        return plan_studies([s for s in chosen if not (s.requires and s.requires())], out, args.scale,
                            args.overrides)
    out.mkdir(parents=True, exist_ok=True)
    start, rows, skipped, failed = time.perf_counter(), [], {}, []
    for study in chosen:
        why = study.requires() if study.requires else None
        if why:
            print(f"\n=== {study.name}: skipped — {why}")
            skipped[study.name] = why
            continue
        if not args.evaluate_only and run_study(study, out, args.scale, args.overrides) != 0:
            failed.append(study.name)
        rows += evaluate(study, out / study.name)
    path = write_claims(rows, out, args.scale, skipped)
    if args.figures:
        copied = copy_headline_figures([s.name for s in chosen if s.name not in skipped], out, Path(args.figures))
        print(f"{len(copied)} headline figures copied to {args.figures}")
    print(f"\n{path}  ({len(rows)} claims; {time.perf_counter() - start:.0f} s)")
    for r in rows:
        print(f"  {r['verdict']:>14}  {r['study']}: {r['statement'][:90]}")
    if failed:
        print(f"sweeps with failed runs: {failed} (re-run the same command to retry them)", file=sys.stderr)
    return 1 if failed else 0
