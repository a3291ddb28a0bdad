"""Hydra composition: every YAML in conf/ instantiates, every experiment composes and validates,
and grid shaping (lists, ranges, tied axes, exclusions) expands as documented."""
from pathlib import Path

import pytest
from conftest import ROOT
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from gdbench import cells, grid
from gdbench.cli import CONF_DIR
from gdbench.launcher import job_config

GROUPS = ["data", "model", "loss", "algorithm"]
NEEDS_FILES = {"npz", "mnist", "fashion_mnist", "cifar10"}  # real loaders: tested on tiny files in test_data


def options(group):
    return sorted(p.stem for p in (Path(CONF_DIR) / group).glob("*.yaml") if not p.stem.startswith("_"))


@pytest.mark.parametrize("group,name", [(g, n) for g in GROUPS for n in options(g)])
def test_every_catalogue_yaml_instantiates(group, name):
    extra = [f"data.fn={ROOT / 'docs' / 'examples' / 'families.py'}:tilted_pair"] if (group, name) == ("data", "custom") \
        else []
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("config", overrides=[f"{group}={name}", *extra])
    if group == "data" and name in NEEDS_FILES:  # the target exists and is a dataset function
        from hydra.utils import get_method
        assert callable(get_method(cfg.data._target_))
        return
    obj = instantiate(cfg[group])
    assert obj is not None and (group != "data" or obj.x.shape[0] == obj.y.shape[0])


@pytest.mark.parametrize("name", options("experiment"))
def test_every_experiment_composes_and_validates(name):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("config", overrides=[f"experiment={name}"], return_hydra_config=True)
    assert cfg.hydra.mode.name == "MULTIRUN" and cfg.hydra.sweeper.params
    run = grid.run_from_config(job_config(cfg))
    try:
        grid.build(run)  # raises ValueError naming the key if the experiment is invalid
    except ValueError as e:
        if "data.root" in str(e) and "missing" in str(e):  # local data files (CIFAR-10) not on this machine
            pytest.skip(f"{name}: {e}")
        raise


def test_grid_tie_and_exclude():
    jobs = [[f"data.n={n}", f"data.d={d}", f"model={m}"] for n in (10, 20, 30) for d in (2, 4, 8)
            for m in ("linear", "two_layer")]
    tied = grid.shape_grid(jobs, tie=[["data.n", "data.d"]])
    assert [(j[0], j[1]) for j in tied[::2]] == [("data.n=10", "data.d=2"), ("data.n=20", "data.d=4"),
                                                ("data.n=30", "data.d=8")]
    assert len(tied) == 6
    excl = grid.shape_grid(jobs, exclude=[{"model": "two_layer", "data.d": 8}])
    assert len(excl) == 18 - 3 and not any(j[1] == "data.d=8" and j[2] == "model=two_layer" for j in excl)
    with pytest.raises(ValueError, match="grid.tie: key 'data.m'"):
        grid.shape_grid(jobs, tie=[["data.n", "data.m"]])
    with pytest.raises(ValueError, match="same number of values"):
        grid.shape_grid([["a=1", "b=1"], ["a=1", "b=2"]], tie=[["a", "b"]])


def _run(**over):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("config", overrides=[f"{k}={v}" for k, v in over.items()])
    return grid.run_from_config(job_config(cfg), [f"{k}={v}" for k, v in over.items()])


def test_cells_group_by_everything_but_lr_and_seed_and_size_tasks():
    runs = [_run(**{"algorithm.lr": lr, "seed": s, "model": m}) for lr in (0.1, 1) for s in (0, 1)
            for m in ("linear", "two_layer")]
    p = cells.plan(runs, task_seconds=1e9)
    assert p.n_cells == 2 and len(p.tasks) == 1  # tiny cells packed into one task
    p = cells.plan(runs, task_seconds=1e9, max_replicas=3)
    assert sorted(len(c.runs) for t in p.tasks for c in t.chunks) == [1, 1, 3, 3]  # split at 3 replicas
    p = cells.plan(runs, task_seconds=1e-9)
    assert len(p.tasks) == 8  # every replica its own chunk and task when one replica exceeds 4·task_seconds
    assert len({r.run_id for r in runs}) == 8
    p = cells.plan(runs, done_run_ids={runs[0].run_id})
    assert p.skipped == 1 and sum(t.n_runs for t in p.tasks) == 7


def test_min_tasks_splits_a_small_grid_over_the_worker_slots():
    runs = [_run(**{"algorithm.lr": lr, "seed": s, "model": m}) for lr in (0.1, 1, 10) for s in (0, 1)
            for m in ("linear", "two_layer")]
    one = cells.plan(runs, task_seconds=1e9)
    assert len(one.tasks) == 1  # the whole grid is far below task_seconds: one task
    two = cells.plan(runs, task_seconds=1e9, min_tasks=2)
    assert len(two.tasks) == 2
    four = cells.plan(runs, task_seconds=1e9, min_tasks=4)
    assert len(four.tasks) >= 4  # cells are split by their share of the estimated cost
    single = [r for r in runs if r.config["model"]["_target_"].endswith("Linear")]
    quarters = cells.plan(single, task_seconds=1e9, min_tasks=2)  # one cell of 6 runs
    assert [t.n_runs for t in quarters.tasks] == [3, 3]
    for p in (two, four):  # every run exactly once, each chunk inside one cell
        ids = [r.run_id for t in p.tasks for c in t.chunks for r in c.runs]
        assert sorted(ids) == sorted(r.run_id for r in runs)
        assert all(len({r.cell_key for r in c.runs}) == 1 for t in p.tasks for c in t.chunks)
    big = cells.plan(runs, task_seconds=1e-9, min_tasks=2)
    assert len(big.tasks) == 12  # min_tasks never merges what task_seconds splits


def test_build_cache_shares_equal_sections_and_only_those():
    # Independent route: the uncached build instantiates each section from scratch.
    a, b = _run(**{"algorithm.lr": 0.1, "seed": 0}), _run(**{"algorithm.lr": 1, "seed": 1})
    cache = {}
    da, ma, la, ga = grid.build(a, cache=cache)
    db, mb, lb, gb = grid.build(b, cache=cache)
    assert da is db and ma is mb and la is lb  # equal data/model/loss configs: built once
    # the step size is the run's (the engine takes one per replica): runs that differ only in lr
    # share one algorithm object; any other algorithm option makes its own
    assert ga is gb
    c = _run(**{"algorithm": "heavy_ball", "algorithm.lr": 1})
    assert grid.build(c, cache=cache)[3] is not ga
    fresh = grid.build(b)
    import dataclasses
    assert fresh[1] == mb and dataclasses.replace(fresh[3], lr=gb.lr) == gb
    assert (fresh[0].x == db.x).all() and (fresh[0].y == db.y).all()


@pytest.mark.parametrize("over, match", [
    ({"algorithm.lr": -1}, "algorithm.lr=-1"), ({"model": "two_layer", "model.width": 0}, "model.width=0"),
    ({"model": "two_layer", "model.activation": "swish"}, "model.activation='swish'"),
    ({"iterations": -5}, "iterations=-5"), ({"data.n": 1}, "data.n=1"),
    ({"companion": True, "model": "two_layer", "model.activation": "quadratic"}, "homogeneity 2"),
    ({"companion": True, "algorithm": "normalized_gd"}, "companion=true needs algorithm=gd")])
def test_validation_names_key_value_and_run(over, match):
    run = _run(**over)
    with pytest.raises(ValueError, match=match) as e:
        cells.plan([run])
    assert "in run" in str(e.value)


def test_planning_a_sweep_never_loads_torch():
    """The sweep driver validates and plans every run without loading torch (gdbench/_lazy.py):
    ≈ 2 s less for every `gdbench` command on 2 cores. Checked in a fresh interpreter; the same
    interpreter then imports the engine, which must load torch (so the check can fail)."""
    import subprocess
    import sys
    code = f"""
import sys
from hydra import compose, initialize_config_dir
from gdbench import cells, grid, launcher, scheduler
with initialize_config_dir(config_dir={CONF_DIR!r}, version_base="1.3"):
    cfgs = [compose(config_name="config", overrides=[f"model={{m}}", "algorithm=heavy_ball", "loss=exponential"])
            for m in ("linear", "two_layer")]
p = cells.plan([grid.run_from_config(launcher.job_config(c)) for c in cfgs])
assert p.n_cells == 2 and p.tasks
print("planned", "torch._C" in sys.modules)
from gdbench import engine
print("engine", "torch._C" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["planned", "False", "engine", "True"]


def test_the_report_stage_never_loads_torch(tmp_path):
    """The driver draws the report after planning with the catalogues (whose torch is a lazy
    stand-in). matplotlib asks sys.modules for torch on every plotted array: a lazily-loading
    module registered there used to load torch (seconds) into every report. Checked in a fresh
    interpreter: a sweep's results are written by the engine in a child process, then the
    interpreter plans (the catalogue stand-ins exist) and builds the report with figures."""
    import subprocess
    import sys
    from conftest import gdbench
    gdbench("-m", "algorithm.lr=0.1,10", "iterations=30", "data.n=20", "data.d=3", "hydra.sweep.dir=sw", cwd=tmp_path)
    code = f"""
import sys
from gdbench import cells, grid, models, report
assert type(models.torch).__name__ == "_StandIn"
report.build({str(tmp_path / "sw")!r}, echo=False, n_boot=10, figure_workers=1)
print("report", "torch" in sys.modules, len(list(__import__("pathlib").Path({str(tmp_path / "sw")!r}).glob("report/figures/*.png"))))
models.torch.zeros(1)
print("used", "torch" in sys.modules, type(models.torch).__name__)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    words = out.stdout.split()
    assert words[:2] == ["report", "False"] and int(words[2]) >= 1, out.stdout
    assert words[3:] == ["used", "True", "module"], out.stdout


def test_keys_assigned_in_bulk_equal_the_per_run_properties():
    # grid.assign_keys assembles the hashed JSON from shared parts; the per-run properties hash
    # the whole config at once: both routes must give the same run_id, cell_key and data_key
    import copy
    from gdbench import grid
    # (values of every JSON kind, a nested dict and a string that needs escaping included)
    base = {"data": {"_target_": "gdbench.data.gaussian", "n": 20, "d": 3, "margin": 0.1, "classes": [3, 5],
                     "options": {"z": None, "a": True, "name": 'tilt "é"\n'}},
            "model": {"_target_": "gdbench.models.Linear", "init_mode": "zero"},
            "loss": {"_target_": "gdbench.losses.Logistic"},
            "algorithm": {"_target_": "gdbench.algorithms.GD", "lr": 1.0, "eps": 1e-05, "beta": 1, "flag": False},
            "seed": 0, "iterations": 10, "eps": [0.01], "record": {"dense": 5, "log_points": 2},
            "companion": False, "stop_loss": None, "dtype": "float64", "direction": "svm"}
    runs = []
    for lr in (0.5, 2.0):
        for seed in (0, 1):
            c = dict(base, seed=seed, algorithm=dict(base["algorithm"], lr=lr))  # data/model/loss shared
            runs.append(grid.Run(config=c))
    # values that compare equal but encode differently (0.0 and -0.0), after the first of them
    runs.append(grid.Run(config=dict(base, model=dict(base["model"], init_scale=0.0))))
    runs.append(grid.Run(config=dict(base, model=dict(base["model"], init_scale=-0.0))))
    fresh = [grid.Run(config=copy.deepcopy(r.config)) for r in runs]
    grid.assign_keys(runs)
    for bulk, one in zip(runs, fresh):
        assert (bulk.run_id, bulk.cell_key, bulk.data_key) == (one.run_id, one.cell_key, one.data_key)
    assert len({r.cell_key for r in runs[:4]}) == 1 and len({r.run_id for r in runs}) == 6


def test_each_rule_is_one_message_at_every_entry_point():
    # the sweep driver (grid, before scheduling), the engine's Python API and the algorithm's own
    # constructor apply gdbench.checks' rule: the same words, naming the key
    import numpy as np
    from gdbench import algorithms, checks, engine, losses, models
    with pytest.raises(ValueError) as rule:
        checks.step_size(-1.0)
    expected = str(rule.value)
    with pytest.raises(ValueError) as sweep:
        cells.plan([_run(**{"algorithm.lr": -1.0})])
    with pytest.raises(ValueError) as api:
        engine.run_cell(np.eye(2), np.array([1.0, -1.0]), model=models.Linear(), loss=losses.Logistic(),
                        algorithm=algorithms.GD(), lrs=[-1.0], seeds=[0], iterations=1)
    with pytest.raises(ValueError) as ctor:
        algorithms.GD(lr=-1.0)
    assert expected.startswith("algorithm.lr=-1.0") and expected in str(sweep.value)
    assert str(api.value) == expected == str(ctor.value)


def test_modules_import_only_earlier_modules():
    # docs/design.md §5 lists the modules in data-flow order and promises that each imports only
    # modules listed before it (the one exception: the sweep's lazy import of the report stage).
    # The order comes from the document itself; the imports from the sources' syntax trees.
    import ast
    import re
    from conftest import ROOT
    text = (ROOT / "docs" / "design.md").read_text()
    block = text.split("## 5. Module layout", 1)[1].split("```", 2)[1]
    order = [m for line in block.splitlines() for m in re.findall(r"(\w+)\.py|(claims)/", line.split("   ")[0] + " ")]
    order = [a or b for a, b in order]
    assert {"engine", "cells", "store", "sweep", "executors", "report", "cli", "claims"} <= set(order), order
    pos = {m: i for i, m in enumerate(order)}
    backwards = []
    for f in sorted((ROOT / "gdbench").rglob("*.py")):
        mod = "claims" if f.parent.name == "claims" else f.stem
        if mod == "__init__":
            continue
        assert mod in pos, f"{f.name} is not listed in docs/design.md §5"
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gdbench"):
                parts = node.module.split(".")
                names = [parts[1]] if len(parts) > 1 else [a.name for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name.split(".")[1] for a in node.names if a.name.startswith("gdbench.")]
            else:
                continue
            backwards += [f"{f.name}:{node.lineno} imports {n}" for n in names
                          if n in pos and n != mod and pos[n] > pos[mod] and (mod, n) != ("sweep", "report")]
    assert backwards == []
