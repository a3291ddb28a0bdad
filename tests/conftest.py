"""Shared fixtures: run the real `gdbench` CLI in a subprocess, and a real two-node Ray cluster."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def cli_env(**extra):
    env = dict(os.environ)
    env.setdefault("RAY_TMPDIR", tempfile.mkdtemp(prefix="gdray", dir="/tmp"))
    env["HYDRA_FULL_ERROR"] = "0"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def gdbench(*args, cwd, env=None, timeout=300, check=True):
    # the end-of-sweep report is tested on its own (test_report.py); elsewhere it only costs time
    quiet = ["progress=false"] + ([] if any(a.startswith("report") for a in args) else ["report.enabled=false"])
    proc = subprocess.run([str(BIN / "gdbench"), *args, *quiet], cwd=cwd, env=env or cli_env(),
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"gdbench {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def two_node_cluster():
    """A real Ray cluster of two nodes on 127.0.0.1 (head + worker, `ray start --block`), token
    authentication disabled on every node and driver, stopped by PID at the end."""
    tmp = tempfile.mkdtemp(prefix="gdcl", dir="/tmp")  # short: Ray socket paths are limited
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = cli_env(RAY_AUTH_MODE="disabled", RAY_TMPDIR=tmp)
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--object-store-memory=150000000",
              "--memory=2000000000", "--block"]
    head = subprocess.Popen([str(BIN / "ray"), "start", "--head", f"--port={port}", "--include-dashboard=false",
                             "--min-worker-port=21000", "--max-worker-port=21999", f"--temp-dir={tmp}", *common],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    procs = [head]
    try:
        _wait_nodes(env, f"127.0.0.1:{port}", 1)
        worker = subprocess.Popen([str(BIN / "ray"), "start", f"--address=127.0.0.1:{port}",
                                   "--min-worker-port=22000", "--max-worker-port=22999", *common],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True)
        procs.append(worker)
        _wait_nodes(env, f"127.0.0.1:{port}", 2)
        yield {"address": f"127.0.0.1:{port}", "env": env}
    finally:
        for p in reversed(procs):  # stop what we started, by PID (never `ray stop`)
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(timeout=30)
            except Exception:
                os.killpg(p.pid, signal.SIGKILL)
        shutil.rmtree(tmp, ignore_errors=True)


def _wait_nodes(env, address, count, timeout=90):
    code = ("import ray,sys; ray.init(address=sys.argv[1], log_to_driver=False); "
            "print(sum(n['Alive'] for n in ray.nodes()))")
    deadline = time.time() + timeout
    while time.time() < deadline:
        out = subprocess.run([sys.executable, "-c", code, address], env=env, capture_output=True, text=True, timeout=60)
        if out.returncode == 0 and out.stdout.strip().splitlines()[-1:] == [str(count)]:
            return
        time.sleep(2)
    raise RuntimeError(f"the Ray cluster at {address} did not reach {count} nodes: {out.stderr[-2000:]}")


def synthetic_runs(rows, **defaults):
    """A runs table built by hand for analysis tests: each row's values over a plain successful
    logistic-loss GD run (`defaults` add or change those), run ids r0, r1, …, and the nullable
    integer columns as the store writes them."""
    import numpy as np
    import pandas as pd
    base = {"dataset": "synthetic", "loss": "logistic", "algorithm": "gd", "status": "ok", "iterations": 100,
            "transition_time": 0, "final_loss": 0.1, "final_log_loss": np.log(0.1), "n_increases": 0, **defaults}
    df = pd.DataFrame([{**base, **r} for r in rows])
    df["run_id"] = [f"r{i}" for i in range(len(df))]
    for c in ("t_sep", "transition_time", "n_increases"):
        df[c] = df[c].astype("Int64")
    return df
