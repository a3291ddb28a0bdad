"""What plain `ray` and `ray[default]` cost a sweep: Ray's start, its processes, and what a killed
driver leaves behind.

    .venv/bin/python benchmarks/ray_start.py                   # this environment only
    .venv/bin/python benchmarks/ray_start.py other=PYTHON       # side by side with another interpreter
    .venv/bin/python benchmarks/ray_start.py make_plain=DIR     # first create DIR, a venv with plain
                                                                # `ray` (this Ray version, no extras)

Each round starts the embedded instance exactly as gdbench does (address="local", no dashboard,
2 CPUs), runs one task per CPU, and stops it; the interpreters alternate, because this VM's speed
drifts over minutes. Printed per interpreter: the medians of `import ray`, `ray.init`, the first
tasks and `ray.shutdown`, the processes of the instance, and — once — which of them outlive a
driver killed with SIGKILL (without gdbench's watchdog, which would reap them).
"""
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROBE = r"""
import os, sys, time, json
t0 = time.perf_counter()
import ray
t1 = time.perf_counter()
ray.init(address="local", num_cpus=2, object_store_memory=200 * 2**20, include_dashboard=False, log_to_driver=False)
t2 = time.perf_counter()
@ray.remote
def f():
    return os.getpid()
ray.get([f.remote() for _ in range(2)])
t3 = time.perf_counter()
if sys.argv[1] == "kill":  # report, then wait to be killed
    print(json.dumps({"pid": os.getpid()}), flush=True)
    time.sleep(600)
ray.shutdown()
t4 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "init": t2 - t1, "first tasks": t3 - t2, "shutdown": t4 - t3}))
"""


def processes_of(temp: str) -> dict:
    """pid → command of every process whose command line names this instance's temp folder, and
    their descendants (Ray's workers and agents name it only through their parent)."""
    table = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                args = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            table[int(d.name)] = (ppid, args)
    mine = {pid for pid, (_, args) in table.items() if temp in args}
    grew = True
    while grew:
        more = {pid for pid, (ppid, _) in table.items() if ppid in mine} - mine
        mine |= more
        grew = bool(more)
    return {pid: table[pid][1] for pid in sorted(mine)}


def label(args: str) -> str:
    for key in ("gcs_server", "raylet", "dashboard.py", "log_monitor.py", "monitor.py", "DashboardAgent",
                "RuntimeEnvAgent", "ray::"):
        if key in args:
            return key
    return args.split()[0].rsplit("/", 1)[-1]


def one_round(python: str) -> dict:
    temp = tempfile.mkdtemp(prefix="rs", dir="/tmp")
    env = dict(os.environ, RAY_TMPDIR=temp, RAY_AUTH_MODE="disabled")
    out = subprocess.run([python, "-c", PROBE, "time"], env=env, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        sys.exit(f"{python}: {out.stderr[-2000:]}")
    import json
    return json.loads(out.stdout.strip().splitlines()[-1])


def after_kill(python: str) -> tuple[list, list]:
    """(the instance's processes, those of them alive 5 s after the driver's SIGKILL); the
    survivors are then killed here, by PID. (An orphan's command line no longer leads to the
    folder — its parent is gone — so the survivors are looked up by the PIDs seen before.)"""
    import json
    temp = tempfile.mkdtemp(prefix="rk", dir="/tmp")
    env = dict(os.environ, RAY_TMPDIR=temp, RAY_AUTH_MODE="disabled")
    driver = subprocess.Popen([python, "-c", PROBE, "kill"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    json.loads(driver.stdout.readline())
    before = processes_of(temp)
    driver.kill()
    driver.wait()
    time.sleep(5)
    left = {pid: args for pid, args in before.items() if Path(f"/proc/{pid}").exists()}
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return sorted(label(a) for a in before.values()), sorted(label(a) for a in left.values())


def make_plain_venv(folder: Path) -> str:
    """A venv with plain `ray` at this environment's Ray version (no extras)."""
    from importlib.metadata import version
    if not (folder / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
        subprocess.run([str(folder / "bin" / "pip"), "install", "-q", f"ray=={version('ray')}"], check=True)
    return str(folder / "bin" / "python")


def main(argv: list[str]) -> None:
    opts = dict(a.split("=", 1) for a in argv)
    rounds = int(opts.get("rounds", 6))
    pythons = [sys.executable]
    if "make_plain" in opts:
        pythons.append(make_plain_venv(Path(opts["make_plain"])))
    if "other" in opts:
        pythons.append(opts["other"])
    times = {p: [] for p in pythons}
    for _ in range(rounds):
        for p in pythons:
            times[p].append(one_round(p))
    for p in pythons:
        extras = subprocess.run([p, "-c", "import aiohttp"], capture_output=True).returncode == 0
        med = {k: statistics.median(r[k] for r in times[p]) for k in times[p][0]}
        total = [sum(r.values()) for r in times[p]]
        print(f"{p} ({'ray[default]' if extras else 'plain ray'}), medians of {rounds}: " +
              ", ".join(f"{k} {v:.2f} s" for k, v in med.items()) +
              f"; total {statistics.median(total):.2f} s (range {min(total):.2f}–{max(total):.2f})")
        before, left = after_kill(p)
        print(f"   processes: {', '.join(before)}")
        print(f"   alive 5 s after the driver's SIGKILL: {', '.join(left) or 'none'}")


if __name__ == "__main__":
    main(sys.argv[1:])
