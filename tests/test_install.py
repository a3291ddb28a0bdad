"""A built wheel, installed without -e, runs from another directory: conf/ travels inside the
package (gdbench/conf), the Hydra plugins come with it, and the console entry point works."""
import importlib.util
import os
import subprocess
import sys
import zipfile

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
    # the dependencies come from this environment; gdbench itself only from the wheel: the target
    # directory goes first on the path, ahead of the editable checkout
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(tmp / "site"),
                    str(wheel)], check=True, capture_output=True, timeout=600)
    work = tmp / "elsewhere"
    work.mkdir()
    return tmp / "site", work


def _setuptools_builds_wheels() -> bool:
    """This environment's setuptools can build the wheel itself (bdist_wheel is built in from 70.1)."""
    if importlib.util.find_spec("setuptools") is None:
        return False
    from importlib.metadata import version
    major, minor = (int(p) for p in version("setuptools").split(".")[:2])
    return (major, minor) >= (70, 1)


def _gdbench(site, work, *args):
    code = "import sys; from gdbench.cli import main; sys.argv[0] = 'gdbench'; main()"
    env = cli_env(PYTHONPATH=str(site))
    return subprocess.run([sys.executable, "-c", code, *args], cwd=work, env=env, capture_output=True, text=True,
                          timeout=300)


def test_the_installed_package_is_the_wheel_with_its_own_conf(installed):
    site, work = installed
    proc = subprocess.run([sys.executable, "-c", "import gdbench; print(gdbench.__file__); print(gdbench.CONF_DIR)"],
                          cwd=work, env=cli_env(PYTHONPATH=str(site)), capture_output=True, text=True, check=True)
    where, conf = proc.stdout.split()
    assert where.startswith(str(site)) and conf == os.path.join(str(site), "gdbench", "conf")


def test_help_plan_and_a_tiny_sweep_from_another_directory(installed):
    site, work = installed
    helped = _gdbench(site, work, "--help")
    assert helped.returncode == 0 and "experiment" in helped.stdout, helped.stderr
    plan = _gdbench(site, work, "experiment=default", "plan=true", "hydra.sweep.dir=p")
    assert plan.returncode == 0 and "runs: 42 " in plan.stdout, plan.stdout + plan.stderr
    assert not (work / "p").exists()
    run = _gdbench(site, work, "-m", "algorithm.lr=1,10", "iterations=5", "hydra.sweep.dir=s",
                   "report.enabled=false", "progress=false")
    assert run.returncode == 0, run.stdout + run.stderr
    assert (work / "s" / "runs.parquet").exists() and "2 of 2 runs finished" in run.stdout
