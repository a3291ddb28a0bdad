"""A built wheel, installed without -e into a fresh virtual environment, runs from another
directory: conf/ travels inside the package (gdbench/conf), the Hydra plugins come with it, and
the `gdbench` console script that pip generates works (help, a dry run, a tiny sweep)."""
import importlib.util
import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT, cli_env

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    flags = ["--no-build-isolation"] if _setuptools_builds_wheels() else []  # else pip fetches a build backend
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", *flags, "-w", str(tmp / "dist"),
                    str(ROOT)], check=True, capture_output=True, timeout=600)
    wheel = next((tmp / "dist").glob("gdbench-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "gdbench/conf/config.yaml" in names and "gdbench/conf/experiment/default.yaml" in names
    assert "hydra_plugins/gdbench_launcher/gdbench_launcher.py" in names
    # a fresh venv with the wheel alone (no index: nothing is downloaded); its dependencies (torch,
    # Ray, Hydra, …) come from this environment through a .pth line, which puts this environment's
    # site-packages after the venv's own, and does not run this environment's editable-install hook
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=600)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True, timeout=600)
    own = subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         check=True, capture_output=True, text=True).stdout.strip()
    (Path(own) / "outer-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = tmp / "elsewhere"
    work.mkdir()
    return venv, work


def _setuptools_builds_wheels() -> bool:
    """This environment's setuptools can build the wheel itself (bdist_wheel is built in from 70.1)."""
    if importlib.util.find_spec("setuptools") is None:
        return False
    from importlib.metadata import version
    major, minor = (int(p) for p in version("setuptools").split(".")[:2])
    return (major, minor) >= (70, 1)


def _gdbench(venv, work, *args):
    env = cli_env()
    env.pop("PYTHONPATH", None)
    return subprocess.run([str(venv / "bin" / "gdbench"), *args], cwd=work, env=env, capture_output=True, text=True,
                          timeout=300)


def test_the_installed_package_is_the_wheel_with_its_own_conf(installed):
    venv, work = installed
    env = cli_env()
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([str(venv / "bin" / "python"), "-c",
                           "import gdbench; print(gdbench.__file__); print(gdbench.CONF_DIR)"],
                          cwd=work, env=env, capture_output=True, text=True, check=True)
    where, conf = proc.stdout.split()
    assert where.startswith(str(venv)) and conf.startswith(str(venv)) and conf.endswith(os.path.join("gdbench", "conf"))
    assert str(ROOT) not in where


def test_help_plan_and_a_tiny_sweep_from_another_directory(installed):
    venv, work = installed
    helped = _gdbench(venv, work, "--help")
    assert helped.returncode == 0 and "experiment" in helped.stdout, helped.stderr
    plan = _gdbench(venv, work, "experiment=default", "plan=true", "hydra.sweep.dir=p")
    assert plan.returncode == 0 and "runs: 42 " in plan.stdout, plan.stdout + plan.stderr
    assert not (work / "p").exists()
    run = _gdbench(venv, work, "-m", "algorithm.lr=1,10", "iterations=5", "hydra.sweep.dir=s",
                   "report.enabled=false", "progress=false")
    assert run.returncode == 0, run.stdout + run.stderr
    assert (work / "s" / "runs.parquet").exists() and "2 of 2 runs finished" in run.stdout
    prov = json.loads((work / "s" / "provenance.json").read_text())["sessions"][-1]
    assert prov["argv"][0] == str(venv / "bin" / "gdbench")  # the console script pip wrote ran it
