"""One writer per sweep directory, and an embedded Ray that is always the sweep's own.

- Two gdbench commands on one sweep directory: the second fails at once, naming the first (pid,
  host, start time); the runs table never holds a run twice. A lock left by a killed gdbench is
  taken over. gdbench-collect waits its turn the same way.
- Without a cluster address the sweep starts its own Ray even when Ray's temp folder names
  another cluster (a live local head, or a stale file from one that was killed): before, Ray
  joined it and refused the sweep's object-store setting.
"""
import json
import os
import subprocess
import sys
import time

import pandas as pd
import pytest

from conftest import BIN, cli_env, gdbench

pytestmark = pytest.mark.slow
SWEEP = ["-m", "model=linear", "algorithm.lr=1,10", "seed=range(2)", "iterations=40", "data.n=30", "data.d=4"]


def _holder(lock):
    return lock.read_text().strip() if lock.exists() else ""


def test_a_second_writer_fails_at_once_naming_the_first(tmp_path):
    env = cli_env()
    # a first sweep long enough to still hold the lock when the second starts (~10^7 iteration-runs)
    first = subprocess.Popen([str(BIN / "gdbench"), "-m", "model=two_layer", "algorithm.lr=1,10,100", "seed=range(4)",
                              "iterations=20000", "data.n=200", "data.d=32", "hydra.sweep.dir=sw", "progress=false",
                              "report.enabled=false"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    lock = tmp_path / "sw" / ".writer.lock"
    deadline = time.time() + 120
    while not _holder(lock) and time.time() < deadline and first.poll() is None:
        time.sleep(0.2)
    assert _holder(lock).startswith(f"pid {first.pid} on "), _holder(lock)
    start = time.perf_counter()
    second = gdbench(*SWEEP, "hydra.sweep.dir=sw", cwd=tmp_path, env=cli_env(), check=False)
    waited = time.perf_counter() - start
    out = second.stdout + second.stderr
    assert second.returncode != 0 and f"is being written by another gdbench (pid {first.pid} on" in out, out
    assert waited < 30 and first.poll() is None  # refused before scheduling anything; the first goes on
    collect = subprocess.run([str(BIN / "gdbench-collect"), str(tmp_path / "sw")], capture_output=True, text=True,
                             env=cli_env(), timeout=120)
    assert collect.returncode != 0 and "being written by another gdbench" in collect.stderr
    assert first.wait(timeout=600) == 0, first.stdout.read()
    assert _holder(lock) == ""  # released and emptied on a clean exit
    runs = pd.read_parquet(tmp_path / "sw" / "runs.parquet")
    assert len(runs) == runs["run_id"].nunique() == 12  # 3 steps × 4 seeds, each once


def test_a_lock_left_by_a_killed_gdbench_is_taken_over(tmp_path):
    sw = tmp_path / "sw"
    sw.mkdir()
    # a lock file naming a process that no longer exists (flock locks die with their process)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (sw / ".writer.lock").write_text(f"pid {dead.stdout.strip()} on somehost, started 2026-01-01 00:00:00\n")
    proc = gdbench(*SWEEP, "hydra.sweep.dir=sw", cwd=tmp_path)
    assert f"(pid {dead.stdout.strip()} on somehost" in proc.stderr and "resuming what it left" in proc.stderr
    assert len(pd.read_parquet(sw / "runs.parquet")) == 4


def test_the_embedded_ray_ignores_a_stale_cluster_file(tmp_path):
    env = cli_env()
    # what `ray start --head` leaves in Ray's temp folder, pointing at nothing (the head was killed)
    address_file = os.path.join(env["RAY_TMPDIR"], "ray", "ray_current_cluster")
    os.makedirs(os.path.dirname(address_file), exist_ok=True)
    with open(address_file, "w") as f:
        f.write("127.0.0.1:1")
    proc = gdbench(*SWEEP, "executor=ray", "hydra.sweep.dir=sw", cwd=tmp_path, env=env)
    assert "results:" in proc.stdout


def test_the_embedded_ray_does_not_join_a_live_local_cluster(tmp_path, two_node_cluster):
    # Ray's temp folder names a live two-node cluster; without cluster.address the sweep still
    # runs on an instance of its own: one node, not the cluster's two
    env = cli_env(RAY_AUTH_MODE="disabled")
    address_file = os.path.join(env["RAY_TMPDIR"], "ray", "ray_current_cluster")
    os.makedirs(os.path.dirname(address_file), exist_ok=True)
    with open(address_file, "w") as f:
        f.write(two_node_cluster["address"])
    gdbench(*SWEEP, "executor=ray", "hydra.sweep.dir=sw", cwd=tmp_path, env=env)
    session = json.loads((tmp_path / "sw" / "provenance.json").read_text())["sessions"][-1]
    # the cluster's nodes have 150 MB object stores each (conftest); the sweep's own has the
    # configured 512 MiB (conf/cluster/local.yaml), so the store size says which Ray ran it
    assert session["result"]["resources"]["object_store_memory"] == 512 * 2**20
    assert len(session["result"]["nodes"]) == 1


def _damage(path, n_bytes, *, at=0.5):
    """Overwrite n_bytes in the middle of a file with garbage (the file keeps its size)."""
    raw = bytearray(path.read_bytes())
    i = int(len(raw) * at)
    raw[i:i + n_bytes] = b"\x5a" * n_bytes
    path.write_bytes(bytes(raw))


def test_damaged_chunks_are_named_quarantined_and_recomputed(tmp_path):
    gdbench("-m", "model=linear,two_layer", "algorithm.lr=1,10", "seed=range(2)", "iterations=300", "data.n=40",
            "data.d=4", "hydra.sweep.dir=sw", cwd=tmp_path)
    sw = tmp_path / "sw"
    clean = pd.read_parquet(sw / "runs.parquet").set_index("run_id")["final_log_loss"]
    chunks = sorted((sw / "runs").glob("*.parquet"))
    assert len(chunks) >= 2
    bad_runs, bad_traj = chunks[0].stem, chunks[1].stem
    gone = set(pd.read_parquet(chunks[0])["run_id"])
    _damage(sw / "runs" / f"{bad_runs}.parquet", 8)
    _damage(sw / "trajectory" / f"{bad_traj}.parquet", 64)
    lost = set(pd.read_parquet(sw / "runs" / f"{bad_traj}.parquet")["run_id"])

    # a reader skips both damaged chunks with a warning that names them; no value changes silently
    from gdbench.store import load
    runs, traj = load(sw)
    assert not (set(runs["run_id"]) & (lost | gone)) and len(runs) == len(clean) - len(lost) - len(gone)
    assert (runs.set_index("run_id")["final_log_loss"] == clean.reindex(runs["run_id"]).to_numpy()).all()
    report = subprocess.run([str(BIN / "gdbench-report"), str(sw), "--no-figures", "--quiet", "--bootstrap", "20"],
                            capture_output=True, text=True, env=cli_env(), timeout=300)
    assert report.returncode == 0 and bad_runs in report.stderr and bad_traj in report.stderr, report.stderr

    # the writer (gdbench-collect holds the lock) moves them to quarantine/ and says so
    collect = subprocess.run([str(BIN / "gdbench-collect"), str(sw)], capture_output=True, text=True, env=cli_env(),
                             timeout=300)
    assert collect.returncode == 0 and "quarantine" in collect.stderr, collect.stderr
    assert {p.name for p in (sw / "quarantine").glob("*.parquet")} >= {f"{bad_runs}.runs.parquet",
                                                                       f"{bad_traj}.trajectory.parquet"}
    # the next run computes exactly the quarantined runs again, with the same numbers
    again = gdbench("-m", "model=linear,two_layer", "algorithm.lr=1,10", "seed=range(2)", "iterations=300",
                    "data.n=40", "data.d=4", "hydra.sweep.dir=sw", cwd=tmp_path)
    assert f"{len(lost) + len(gone)} to run" in again.stdout
    final = pd.read_parquet(sw / "runs.parquet").set_index("run_id")["final_log_loss"]
    assert len(final) == final.index.nunique() == len(clean)
    assert (final.reindex(clean.index) == clean).all()  # deterministic engine: recomputed = original


def test_lost_or_broken_sums_and_damaged_side_files_are_named_never_fatal(tmp_path):
    grid = ["-m", "model=linear,two_layer", "algorithm.lr=1,10", "seed=range(2)", "iterations=50", "data.n=30",
            "data.d=4", "hydra.sweep.dir=sw"]
    gdbench(*grid, cwd=tmp_path)
    sw = tmp_path / "sw"
    clean = pd.read_parquet(sw / "runs.parquet").set_index("run_id")["final_log_loss"]
    lost, broken = sorted(p.stem for p in (sw / "runs").glob("*.parquet"))[:2]
    unverifiable = {r for c in (lost, broken) for r in pd.read_parquet(sw / "runs" / f"{c}.parquet")["run_id"]}
    (sw / "checksums" / f"{lost}.json").unlink()  # a chunk without its sums cannot be verified
    (sw / "checksums" / f"{broken}.json").write_text('{"runs": "ab')  # …nor one with broken sums
    (sw / "provenance.json").write_text("{not json")
    (sw / "plan.json").write_bytes(b"\0" * 10)
    (sw / "failed").mkdir(exist_ok=True)
    (sw / "failed" / "deadbeef.parquet").write_bytes(b"garbage")

    # a reader skips what it cannot trust and names each file; no traceback
    report = subprocess.run([str(BIN / "gdbench-report"), str(sw), "--no-figures", "--quiet", "--bootstrap", "20"],
                            capture_output=True, text=True, env=cli_env(), timeout=300)
    err = report.stderr
    assert report.returncode == 0 and "Traceback" not in err, err
    assert f"{lost}.parquet: cannot be verified" in err and f"{broken}.parquet: cannot be verified" in err, err
    assert "deadbeef.parquet: damaged" in err and "provenance.json: damaged" in err and "plan.json: damaged" in err

    # the next run quarantines the two chunks, sets the damaged JSON files aside and computes the
    # unverifiable runs again: the same numbers (a deterministic engine), each run once
    again = gdbench(*grid, cwd=tmp_path)
    assert f"{len(unverifiable)} to run" in again.stdout, again.stdout
    assert (sw / "provenance.json.damaged").read_text() == "{not json"
    assert (sw / "plan.json.damaged").exists()
    assert len(json.loads((sw / "provenance.json").read_text())["sessions"]) == 1
    assert set(json.loads((sw / "plan.json").read_text())["run_ids"]) == set(clean.index)
    final = pd.read_parquet(sw / "runs.parquet").set_index("run_id")["final_log_loss"]
    assert len(final) == final.index.nunique() == len(clean) and (final.reindex(clean.index) == clean).all()


def test_a_truncated_chunk_is_skipped_not_a_traceback(tmp_path):
    gdbench(*SWEEP, "hydra.sweep.dir=sw", cwd=tmp_path)
    chunk = sorted((tmp_path / "sw" / "runs").glob("*.parquet"))[0]
    chunk.write_bytes(chunk.read_bytes()[:-20])
    proc = subprocess.run([str(BIN / "gdbench-collect"), str(tmp_path / "sw")], capture_output=True, text=True,
                          env=cli_env(), timeout=300)
    assert proc.returncode == 0 and chunk.stem in proc.stderr and "Traceback" not in proc.stderr


def test_an_address_where_nothing_answers_fails_fast_and_says_so(tmp_path):
    # port 1 on loopback: nothing listens there; Ray alone would retry for minutes
    start = time.perf_counter()
    proc = gdbench(*SWEEP, "cluster=address", "cluster.address=127.0.0.1:1", "cluster.connect_timeout_s=5",
                   "hydra.sweep.dir=sw", cwd=tmp_path, check=False, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and time.perf_counter() - start < 60
    assert "cluster.address=127.0.0.1:1: nothing answers there" in out and "ray start --head" in out, out


def test_an_address_where_another_service_listens_fails_fast_and_says_so(tmp_path):
    # an HTTP server accepts the connection but is no Ray head: Ray alone would retry for minutes
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):  # until it listens
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        start = time.perf_counter()
        proc = gdbench(*SWEEP, "cluster=address", f"cluster.address=127.0.0.1:{port}", "cluster.connect_timeout_s=5",
                       "hydra.sweep.dir=sw", cwd=tmp_path, check=False, timeout=120)
    finally:
        server.kill()
        server.wait()
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1 and time.perf_counter() - start < 30, out
    assert f"cluster.address=127.0.0.1:{port}: something listens there but it is not a Ray head" in out, out
    assert "Traceback" not in out and not (tmp_path / "sw").exists()


def test_an_address_where_a_grpc_service_other_than_ray_listens_fails_fast(tmp_path):
    # a gRPC server with no services answers HTTP/2 but not Ray's GCS calls (UNIMPLEMENTED): Ray
    # alone would retry its connection for a long while
    import grpc
    from concurrent import futures
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        start = time.perf_counter()
        proc = gdbench(*SWEEP, "cluster=address", f"cluster.address=127.0.0.1:{port}", "cluster.connect_timeout_s=5",
                       "hydra.sweep.dir=sw", cwd=tmp_path, check=False, timeout=120)
    finally:
        server.stop(None)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1 and time.perf_counter() - start < 30, out
    assert f"cluster.address=127.0.0.1:{port}: something listens there but it is not a Ray head (it has no GCS" in out, out
    assert "Traceback" not in out and not (tmp_path / "sw").exists()


def test_the_watchdog_leaves_with_a_normally_stopped_instance(tmp_path):
    # a process that starts and stops the embedded Ray twice (a notebook, Hydra's basic launcher)
    # must not collect watchdogs: each one exits once its instance's raylet and GCS are gone
    code = """
import os, sys, time
from pathlib import Path
from gdbench import scheduler
for _ in range(2):
    scheduler.start(None, num_cpus=1, object_store_mb=100, ship_code=False, num_threads=1)
    scheduler._shutdown()
def watchdogs():
    found = []
    for p in Path("/proc").iterdir():
        try:
            if p.name.isdigit() and f"gdbench._watchdog\\0{os.getpid()}\\0".encode() in (p / "cmdline").read_bytes():
                found.append(p.name)
        except OSError:  # gone meanwhile
            pass
    return found
deadline = time.time() + 20
while time.time() < deadline:
    mine = watchdogs()
    if not mine:
        break
    time.sleep(0.5)
print("watchdogs left:", len(mine))
"""
    proc = subprocess.run([sys.executable, "-c", code], env=cli_env(), capture_output=True, text=True, timeout=180)
    assert "watchdogs left: 0" in proc.stdout, proc.stdout + proc.stderr
