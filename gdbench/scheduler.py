"""Cells → Ray tasks → results. The only module that imports Ray (docs/design.md §3).

Embedded local Ray by default (`cluster.address: null`), or an existing cluster by address.
Workers get their environment at start (docs/design.md §8: glibc allocator settings that keep
freed tensors mapped, and as many intra-op threads as the task has CPUs). Datasets are `ray.put` once by the
driver, so workers need no files; results come back to the driver (`results` yields them to the
sweep's one writing loop), which alone writes the store,
so no shared filesystem is needed. Code reaches workers through the installed package (the same
environment on every node), or, with `cluster.ship_code: true`, through Ray's runtime environment
(`py_modules` = this gdbench package).
"""
from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import ray

import gdbench
from gdbench import worker
from gdbench.errors import ClusterUnreachable

WORKER_ENV = {
    "MALLOC_MMAP_THRESHOLD_": "1000000000",
    "MALLOC_TRIM_THRESHOLD_": "100000000000",
    "MALLOC_TOP_PAD_": "1000000000",
}


def _execute(task, device, compile, num_threads, keys, *arrays):
    """The Ray task body: run a task's chunks with the engine; plain data back."""
    import torch
    torch.set_num_threads(max(1, int(num_threads)))
    out = worker.run_task(task, dict(zip(keys, arrays)), device=device, compile=compile)
    node = ray.get_runtime_context().get_node_id()
    for r in out:
        r["node_id"] = node
    return out


def check_reachable(address: str, timeout_s: float) -> None:
    """Fail within `timeout_s` unless a Ray head answers at a host:port address (ray://host:port
    too): Ray's own connect retries for minutes before it gives up, also against a port where
    some other service listens. `auto` is Ray's to resolve."""
    host_port = address.split("://", 1)[-1]
    if address == "auto" or ":" not in host_port:
        return
    host, port = host_port.rsplit(":", 1)
    try:
        if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):  # a TLS head: only the TCP
            socket.create_connection((host, int(port)), timeout=timeout_s).close()  # connection probes
            return                                                                 # in plain text
        speaks = _speaks_http2(host, int(port), timeout_s)
    except (OSError, ValueError) as e:
        why = "timed out" if isinstance(e, socket.timeout) else (getattr(e, "strerror", None) or str(e))
        raise ClusterUnreachable(f"cluster.address={address}: nothing answers there ({why}, within "
                                 f"cluster.connect_timeout_s={timeout_s:g} s); start the head node "
                                 "(ray start --head) or correct the address") from None
    why = "it does not speak gRPC" if not speaks else _not_a_gcs(address) if "://" not in address else None
    if why:
        raise ClusterUnreachable(f"cluster.address={address}: something listens there but it is not a Ray head "
                                 f"({why}); check the port (the GCS port of `ray start --head`, default 6379)")


def _not_a_gcs(address: str, timeout_s: float = 5.0) -> str | None:
    """Why the gRPC service at host:port is not Ray's GCS (it lacks the GCS's services: gRPC's
    UNIMPLEMENTED, or HTTP 404 from a proxy), or None. Only that answer counts: any other
    failure (authentication, a slow head) is left to ray.init, whose own message is clearer.
    A key-value read through Ray's GCS client, as `ray health-check` does."""
    try:
        ray._raylet.GcsClient(address=address).internal_kv_get(b"gdbench-probe", None, timeout=timeout_s)
    except AttributeError:  # Ray's private layout changed: no probe
        return None
    except Exception as e:  # RpcError: gRPC's UNIMPLEMENTED is code 12; a proxy's 404 is in the text
        text = str(e)
        if getattr(e, "rpc_code", None) == 12 or "status: 404" in text or "UNIMPLEMENTED" in text:
            return f"it has no GCS service: {text.splitlines()[0][:120]}"
    return None


# An HTTP/2 client's opening (RFC 9113 §3.4): the preface, then an empty SETTINGS frame
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def _speaks_http2(host: str, port: int, timeout_s: float) -> bool:
    """Whether the service at host:port answers an HTTP/2 opening with its own SETTINGS frame, as
    every gRPC server (Ray's GCS, Ray's client server) does. OSError when nothing answers in time
    (socket.timeout when the TCP connection or the answer takes longer than `timeout_s`)."""
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        sock.sendall(_HTTP2_PREFACE)
        head = b""
        while len(head) < 9:
            part = sock.recv(9 - len(head))
            if not part:  # closed on us: not HTTP/2
                return False
            head += part
    return head[3] == 0x4 and head[5:9] == b"\0\0\0\0"  # frame type SETTINGS, on stream 0


def start(address: str | None, *, num_cpus: int | None, object_store_mb: int, ship_code: bool,
          num_threads: int, connect_timeout_s: float = 30.0) -> dict:
    global _embedded
    _embedded = not address
    worker_env = {**WORKER_ENV, "OMP_NUM_THREADS": str(num_threads)}
    env = {"py_modules": [str(Path(gdbench.__file__).parent)]} if ship_code else {}
    if address:
        check_reachable(address, connect_timeout_s)
        env["env_vars"] = worker_env  # an existing cluster: workers get the variables per job
        try:
            ray.init(address=address, runtime_env=env, log_to_driver=False)
        except ConnectionError as e:  # a gRPC service that is not a Ray head: Ray gives up after its retries
            raise ClusterUnreachable(f"cluster.address={address}: Ray could not join a cluster there "
                                     f"({str(e).splitlines()[0][:200]})") from None
    else:
        # Embedded Ray: the raylet, and every worker it starts, inherit this process's environment
        # at ray.init. Setting the variables there (not as a runtime_env) lets the workers Ray
        # prestarts at init serve the first tasks; a runtime_env would make every task wait for a
        # fresh worker. The driver's own environment is restored right after.
        saved = {k: os.environ.get(k) for k in worker_env}
        os.environ.update(worker_env)
        try:
            # address="local": always a new instance of our own — without it, Ray joins whatever
            # its temp folder's ray_current_cluster file names (a local cluster someone else runs,
            # or a stale file from one that was killed) and then rejects object_store_memory
            ray.init(address="local", num_cpus=num_cpus, object_store_memory=object_store_mb * 2**20,
                     include_dashboard=False, runtime_env=env or None, log_to_driver=False)
            _start_watchdog()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    return ray.cluster_resources()


def _start_watchdog() -> None:
    """Reap this embedded instance if the driver is killed outright (gdbench/_watchdog.py)."""
    import subprocess
    import sys
    try:
        node = ray._private.worker._global_node
        session = node.get_session_dir_path()
        pids = [str(info.process.pid) for name in ("raylet", "gcs_server") for info in node.all_processes.get(name, [])]
    except AttributeError:  # Ray's private layout changed: run without the watchdog
        return
    subprocess.Popen([sys.executable, "-m", "gdbench._watchdog", str(os.getpid()), session, *pids],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True, env={**os.environ, "PYTHONPATH": str(Path(gdbench.__file__).parents[1])})


def connect(address, *, num_cpus: float, num_gpus: float, device: str, local_num_cpus: int | None,
            object_store_mb: int, ship_code: bool, connect_timeout_s: float) -> tuple[dict, float]:
    """Start the embedded instance or join the cluster, and check what only the cluster knows (its
    GPUs, its CPUs per node; the settings themselves were validated before planning); returns its
    resources and the GPUs per task. A Ctrl-C even while Ray starts stops
    what it started."""
    try:
        resources = start(address, num_cpus=local_num_cpus, object_store_mb=object_store_mb, ship_code=ship_code,
                          num_threads=max(1, int(num_cpus)), connect_timeout_s=connect_timeout_s)
        if device.startswith("cuda"):
            if resources.get("GPU", 0) <= 0:
                raise ValueError(f"device={device!r}: the Ray cluster has no GPU "
                                 f"(resources: {dict(resources)}); use device=cpu or a GPU cluster")
            num_gpus = num_gpus if num_gpus > 0 else 1.0
        if num_cpus > resources.get("CPU", 0):
            raise ValueError(f"resources.num_cpus={num_cpus}: no node of this cluster has that many CPUs "
                             f"(cluster CPUs: {resources.get('CPU', 0)})")
    except BaseException:
        _shutdown()
        raise
    return resources, num_gpus


def disconnect(background: bool) -> None:
    """Leave Ray (stopping the embedded instance). background=True: in a thread the caller
    overlaps with its own work, and joins with `wait_shutdown()` before exiting."""
    global _shutdown_thread
    if background:
        _shutdown_thread = threading.Thread(target=_shutdown, name="gdbench-ray-shutdown")
        _shutdown_thread.start()
    else:
        _shutdown()


def _shutdown() -> None:
    """ray.shutdown(), faster for an embedded instance. Ray stops its processes one by one
    (raylet, GCS, then the autoscaler monitor, …), each with SIGTERM and up to 1 s of grace. The
    monitor's SIGTERM handler reports its own death to the GCS, which is already gone, so it always
    uses the whole second and is then killed. An embedded instance has no autoscaling to wind
    down, so its monitor is killed first. Ray keeps the processes it started in a private table;
    if that changes, this falls back to the plain ray.shutdown()."""
    try:  # processes this driver started: none when it only connected to a cluster
        started = ray._private.worker._global_node.all_processes
    except AttributeError:
        started = {}
    for info in started.get("monitor", []):
        try:
            info.process.kill()
            info.process.wait(timeout=1)
        except Exception:  # already gone, or not a Popen any more: ray.shutdown copes
            pass
    ray.shutdown()


_shutdown_thread: threading.Thread | None = None
_embedded = False  # this process started the Ray instance it is connected to (start(address=None))


def wait_shutdown() -> None:
    """Wait for a background shutdown started by run(background_shutdown=True)."""
    global _shutdown_thread
    if _shutdown_thread is not None:
        _shutdown_thread.join()
        _shutdown_thread = None


def results(plan, resources, *, num_cpus, num_gpus, device, compile, max_in_flight=None):
    """Submit the plan's tasks (at most twice as many in flight as the cluster has slots) and
    yield (task, results) as each finishes. A task lost after its retries yields a failure
    record per chunk; closing the generator (Ctrl-C, an error in the caller) cancels what is
    still in flight."""
    refs = {k: ray.put(v) for k, v in plan.datasets.items()}
    remote = ray.remote(_execute)
    limit = max_in_flight or max(2, int(2 * resources.get("CPU", 1) / max(num_cpus, 1e-9)))
    pending, in_flight = list(plan.tasks), {}
    try:
        while pending or in_flight:
            while pending and len(in_flight) < limit:
                task = pending.pop(0)
                keys = sorted({c.data_key for c in task.chunks})
                ref = remote.options(num_cpus=num_cpus, num_gpus=num_gpus, max_retries=3,
                                     name=f"gdbench-task-{task.task_id}").remote(
                    task, device, compile, num_cpus, keys, *[refs[k] for k in keys])
                in_flight[ref] = task
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in ready:
                task = in_flight.pop(ref)
                try:
                    out = ray.get(ref)
                except Exception as e:  # the task itself was lost after its retries
                    out = [{"chunk_id": c.chunk_id, "ok": False, "run_ids": [r.run_id for r in c.runs],
                            "error": f"{type(e).__name__}: {e}", "traceback": "", "host": None,
                            "pid": None, "node_id": None, "wall_time_s": 0.0} for c in task.chunks]
                yield task, out
    finally:
        # On a cluster, stop what is still in flight. An embedded instance is shut down next,
        # which stops its workers anyway; there, force-cancelling tasks that a terminal's Ctrl-C
        # (SIGINT to the whole process group, Ray's workers included) is ending at that moment
        # is a race we can do without: once, Ray's core worker aborted in that situation ("Tried
        # to complete task that was not pending")
        if not _embedded:
            for ref in in_flight:
                ray.cancel(ref, force=True)
