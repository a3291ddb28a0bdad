"""gdbench-reproduce end to end at smoke scale: every study's experiment runs (reduced sizes) as a
real sweep on a real two-node Ray cluster, its report is built, and every claim gets a verdict
computed from the runs. (The evaluators themselves are tested in test_claims.py.)"""
import re
import subprocess

import pytest

from conftest import BIN, cli_env
from gdbench import reproduce

pytestmark = pytest.mark.slow
VERDICTS = {"holds", "does not hold", "inconclusive"}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory, two_node_cluster):
    out = tmp_path_factory.mktemp("repro") / "out"
    proc = subprocess.run([str(BIN / "gdbench-reproduce"), "--scale", "smoke", "--out", str(out), "cluster=address",
                           f"cluster.address={two_node_cluster['address']}"],
                          capture_output=True, text=True, env=two_node_cluster["env"], timeout=900)
    return out, proc


def _claim_sections(text):
    return re.findall(r"^## \d+\. .*?(?=^## |\Z)", text, flags=re.S | re.M)


def test_every_study_runs_and_every_claim_gets_a_verdict(smoke):
    out, proc = smoke
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ran = [s for s in reproduce.STUDIES if not (s.requires and s.requires())]
    for s in ran:
        assert (out / s.name / "runs.parquet").exists() and (out / s.name / "report" / "index.md").exists(), s.name
    text = (out / "claims.md").read_text()
    sections = [s for s in _claim_sections(text) if not s.startswith("## Skipped")]
    assert len(sections) == sum(len(s.claims) for s in ran)
    for sec in sections:
        verdict = re.search(r"- verdict: \*\*(.+?)\*\*", sec).group(1)
        measured = re.search(r"- measured: (.+)", sec).group(1)
        assert verdict in VERDICTS and measured and measured != "no results", sec
    assert (out / "claims.html").stat().st_size > 1000


def test_unreliable_loss_measurement_matches_a_hand_computation(smoke):
    # Hand: from W_0 = 0, W_1 = (γ/4)·(2, 3); at γ = 10 the margins are −2.5 and 35, so
    # F(W_1) = (log(1 + e^2.5) + log(1 + e^−35)) / 2 = 1.2894…; W_2 separates (Thm 4.1).
    out, _ = smoke
    sec = next(s for s in _claim_sections((out / "claims.md").read_text()) if "two-point" in s)
    assert "F(W_1) = 1.29 at γ=10" in sec and "t_sep = 2, 2, 2" in sec and "**holds**" in sec


def test_cifar_study_is_skipped_with_a_reason_when_its_files_are_missing(smoke):
    out, proc = smoke
    study = next(s for s in reproduce.STUDIES if s.name == "real_data_cifar")
    why = study.requires()
    if why is None:
        pytest.skip("CIFAR-10 files are present on this machine: the study ran")
    assert "real_data_cifar: skipped" in proc.stdout and "data.root" in (out / "claims.md").read_text()


def test_evaluate_only_recomputes_the_same_verdicts(smoke):
    out, _ = smoke
    before = re.findall(r"- verdict: \*\*(.+?)\*\*", (out / "claims.md").read_text())
    proc = subprocess.run([str(BIN / "gdbench-reproduce"), "--scale", "smoke", "--out", str(out), "--evaluate-only"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert re.findall(r"- verdict: \*\*(.+?)\*\*", (out / "claims.md").read_text()) == before


def test_unknown_study_is_a_clear_error(tmp_path):
    proc = subprocess.run([str(BIN / "gdbench-reproduce"), "--studies", "unreliable_loss,nonsense", "--out",
                           str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "nonsense" in proc.stderr


def test_paper_scale_plan_prints_each_plan_and_the_total_without_running(tmp_path):
    # unreliable_loss at paper scale sweeps 5 step sizes; transition_time 4 n × 4 margins × 5
    # steps = 80 runs (its experiment's steps, the paper overrides' n and μ): 85 runs in all
    env = cli_env(RAY_TMPDIR=str(tmp_path / "ray"))
    (tmp_path / "ray").mkdir()
    proc = subprocess.run([str(BIN / "gdbench-reproduce"), "--scale", "paper", "--studies",
                           "unreliable_loss,transition_time", "--out", str(tmp_path / "out"), "plan=true"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("estimated compute:") == 2 and "runs: 5 " in proc.stdout and "runs: 80 " in proc.stdout
    assert re.search(r"paper scale, 2 studies: 85 runs, estimated compute \d+ s", proc.stdout), proc.stdout[-500:]
    assert not (tmp_path / "out" / "claims.md").exists() and not list((tmp_path / "out").glob("*/runs/*.parquet"))
    assert list((tmp_path / "ray").iterdir()) == []  # nothing was scheduled: Ray never started


def test_figures_copy_replaces_a_studys_earlier_copies_only(tmp_path):
    figs = tmp_path / "out" / "real_data" / "report" / "figures"
    figs.mkdir(parents=True)
    (figs / "headline_1_Loss_curves.png").write_bytes(b"new")
    dest = tmp_path / "docs"
    dest.mkdir()
    for name in ("real_data_1.png", "real_data_3.png", "real_data_cifar_1.png", "default_1.png"):
        (dest / name).write_bytes(b"old")
    copied = reproduce.copy_headline_figures(["real_data"], tmp_path / "out", dest)
    assert [p.name for p in copied] == ["real_data_1.png"] and (dest / "real_data_1.png").read_bytes() == b"new"
    assert sorted(p.name for p in dest.iterdir()) == ["default_1.png", "real_data_1.png", "real_data_cifar_1.png"]


def test_every_studys_paper_overrides_compose(tmp_path):
    # a paper-scale override that does not fit its experiment (e.g. data.d on a dataset without d)
    # must show up here, not on a cluster: every study's plan must compose
    env = cli_env(RAY_TMPDIR=str(tmp_path / "ray"))
    proc = subprocess.run([str(BIN / "gdbench-reproduce"), "--scale", "paper", "--out", str(tmp_path / "out"),
                           "plan=true"], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    ran = [s for s in reproduce.STUDIES if not (s.requires and s.requires())]
    assert proc.stdout.count("estimated compute:") == len(ran) and f"paper scale, {len(ran)} studies:" in proc.stdout
