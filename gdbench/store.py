"""The results store: one directory per sweep (docs/design.md §3, §4). Only the driver writes here.

    <sweep>/runs/<chunk_id>.parquet        the runs rows of one finished chunk
    <sweep>/trajectory/<chunk_id>.parquet  its trajectory rows (a parquet dataset directory)
    <sweep>/runs.parquet                   the consolidated runs table (rebuilt by `collect`)
    <sweep>/failures.jsonl                 one line per failed chunk: ids, error, traceback
    <sweep>/failed/<chunk_id>.parquet      the configuration columns of a failed chunk's runs
    <sweep>/plan.json                      the run ids the sweep was asked for (how much is missing)
    <sweep>/provenance.json                versions, git commit, host, device, timings, overrides

    <sweep>/checksums/<chunk_id>.json      the SHA-256 of the chunk's two files

Chunk files are written to a hidden temporary name and renamed, so a reader never sees half a
file; a chunk is finished when its runs file reads back. The SHA-256 of both files is written
before the runs file appears and verified on every read, so any changed byte is found, not only a
truncated end (parquet's own page checksums miss damage outside the data pages). A damaged chunk
is named in a warning; the writer moves it to `<sweep>/quarantine/` (resume then plans its runs
again), readers (gdbench.load, reports) skip it. A chunk whose sums file is missing or damaged
cannot be verified and counts as damaged. Resume = skip the runs found in verified chunks.
The other files are written whole and renamed too; a damaged one (provenance.json, plan.json, a
failed/ file, a line of failures.jsonl) is named in a warning and set aside or skipped, never fatal.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import socket
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from gdbench.errors import SweepLocked

log = logging.getLogger("gdbench")
INT_COLUMNS = ("t_sep", "t_sep_stay", "n_increases", "transition_time", "n_misclassified_increases",
               "diverged_at", "iterations_run")


class Store:
    def __init__(self, root):
        self.root = Path(root).expanduser().resolve()
        (self.root / "runs").mkdir(parents=True, exist_ok=True)
        (self.root / "trajectory").mkdir(parents=True, exist_ok=True)

    def _write(self, df: pd.DataFrame, path: Path) -> None:
        os.replace(self._staged(df, path), path)  # atomic on POSIX

    def _staged(self, df: pd.DataFrame, path: Path) -> Path:
        tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
        df.to_parquet(tmp, index=False)
        return tmp

    def write_chunk(self, result: dict, extra: dict) -> None:
        """Checksums first, trajectory second, runs last: the runs file is the 'finished' mark,
        and when it appears the hashes it is checked against are already on disk."""
        cid = result["chunk_id"]
        traj = pd.DataFrame(result["trajectory"])
        traj_tmp = self._staged(traj, self.root / "trajectory" / f"{cid}.parquet")
        runs = pd.DataFrame(result["rows"])
        for k, v in extra.items():
            runs[k] = v
        runs = runs.drop(columns=["trajectory_rows"], errors="ignore")
        for col in [c for c in runs if c in INT_COLUMNS or c.startswith("t_eps_")]:
            runs[col] = runs[col].astype("Int64")  # null stays null, never a sentinel
        runs["status"] = runs["status"].astype(str)
        runs_tmp = self._staged(runs, self.root / "runs" / f"{cid}.parquet")
        (self.root / "checksums").mkdir(exist_ok=True)
        sums = {"runs": _sha256(runs_tmp.read_bytes()), "trajectory": _sha256(traj_tmp.read_bytes())}
        tmp = self.root / "checksums" / f".{cid}.{uuid.uuid4().hex}.tmp"
        tmp.write_text(json.dumps(sums))
        os.replace(tmp, self.root / "checksums" / f"{cid}.json")
        os.replace(traj_tmp, self.root / "trajectory" / f"{cid}.parquet")
        os.replace(runs_tmp, self.root / "runs" / f"{cid}.parquet")
        (self.root / "failed" / f"{cid}.parquet").unlink(missing_ok=True)

    def write_failure(self, result: dict, extra: dict, columns: list | None = None) -> None:
        """A failed chunk: a line in failures.jsonl, and (given the runs' configuration columns)
        `failed/<chunk>.parquet` so that reports count failed runs in their groups. Neither marks
        the runs finished: a re-run retries them."""
        with open(self.root / "failures.jsonl", "a") as f:
            f.write(json.dumps({k: result[k] for k in ("chunk_id", "run_ids", "error", "traceback")} | extra) + "\n")
        if columns:
            (self.root / "failed").mkdir(exist_ok=True)
            rows = pd.DataFrame(columns).assign(status="failed", error=result["error"], **extra)
            self._write(rows, self.root / "failed" / f"{result['chunk_id']}.parquet")

    def write_plan(self, run_ids: list[str]) -> None:
        """The run ids this sweep was asked for (the union over sessions), so a report on a running
        or interrupted sweep can say how many are missing."""
        path = self.root / "plan.json"
        old = (_read_json(path, set_aside=True) or {}).get("run_ids") or []
        _write_json({"run_ids": sorted(set(old) | set(run_ids))}, path)

    def finished_run_ids(self) -> set[str]:
        """Run ids of every verified chunk; a damaged chunk is quarantined (its runs run again)."""
        return _finished_ids(self.root, on_damaged=self.quarantine)

    @staticmethod
    def finished_run_ids_of(root) -> set[str]:
        """The same without writing anything (planning happens before the writer lock is taken,
        and a dry run creates nothing): a damaged chunk only counts as not finished."""
        return _finished_ids(Path(root), on_damaged=lambda chunk_id, why: None)

    def quarantine(self, chunk_id: str, why: str) -> None:
        """Move a damaged chunk's files to quarantine/ (kept for a post-mortem, never read)."""
        folder = self.root / "quarantine"
        folder.mkdir(exist_ok=True)
        for kind, ext in (("runs", "parquet"), ("trajectory", "parquet"), ("checksums", "json")):
            src = self.root / kind / f"{chunk_id}.{ext}"
            if src.exists():
                os.replace(src, folder / f"{chunk_id}.{kind}.{ext}")
        with open(folder / "quarantine.log", "a") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {chunk_id}: {why}\n")
        log.warning(f"{why}; moved to {folder} — its runs count as not finished: a sweep run computes them again")

    def failures(self) -> list[dict]:
        path = self.root / "failures.jsonl"
        if not path.exists():
            return []
        out = []
        for i, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            try:
                if line.strip():
                    out.append(json.loads(line))
            except ValueError:
                log.warning(f"{path}, line {i}: damaged; skipped")
        return out

    def collect(self) -> pd.DataFrame:
        """Rebuild runs.parquet from the verified chunks (damaged ones are quarantined); return it."""
        self.finished_run_ids()  # verifies every chunk, quarantining what fails
        runs, _ = _read_runs(self.root)
        self._write(runs, self.root / "runs.parquet")
        return runs

    def write_provenance(self, info: dict) -> None:
        path = self.root / "provenance.json"
        sessions = (_read_json(path, set_aside=True) or {}).get("sessions") or []
        _write_json({"sessions": sessions + [info]}, path, indent=2, default=str)


@contextmanager
def writer_lock(root):
    """Hold `<root>/.writer.lock` while writing the sweep: the store has one writer, so two
    gdbench commands on one directory cannot write the same chunks twice. The file names its
    holder (pid, host, start time) for the message a second writer gets at once. flock(2) locks
    belong to the open file and the kernel drops them when their process dies, so a lock file
    left by a killed gdbench is taken over; the holder it named is yielded (None after a clean
    exit, which empties the file)."""
    root = Path(root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    f = open(root / ".writer.lock", "a+")
    if not _flock_within(f, fcntl.LOCK_EX, seconds=1.0):
        f.seek(0)
        holder = f.read().strip() or "holder unknown"
        f.close()
        raise SweepLocked(_locked_message(root, holder))
    f.seek(0)
    left = f.read().strip() or None
    f.seek(0)
    f.truncate()
    f.write(f"pid {os.getpid()} on {socket.gethostname()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    f.flush()
    try:
        yield left
    finally:
        f.seek(0)
        f.truncate()
        f.close()  # releases the lock


def _read_json(path: Path, *, set_aside: bool = False):
    """A JSON object from `path`; None when it is missing or damaged (named in a warning; the
    writer, `set_aside`, renames a damaged file to <name>.damaged so that it is kept but not read
    again)."""
    try:
        data = json.loads(path.read_text())
        if isinstance(data, dict):
            return data
        why = f"expected a JSON object, found {type(data).__name__}"
    except FileNotFoundError:
        return None
    except (ValueError, OSError) as e:
        why = type(e).__name__
    if set_aside:
        os.replace(path, path.with_name(path.name + ".damaged"))
    log.warning(f"{path}: damaged ({why}); " + (f"kept as {path.name}.damaged and started afresh" if set_aside
                                                  else "ignored"))
    return None


def _write_json(data: dict, path: Path, **kw) -> None:
    tmp = path.parent / f".{path.stem}.{uuid.uuid4().hex}.tmp"
    tmp.write_text(json.dumps(data, **kw))
    os.replace(tmp, path)  # a reader never sees half a file


def _flock_within(f, kind: int, seconds: float) -> bool:
    """Take flock `kind` on f, retrying for up to `seconds`: another command's probe
    (writer_held, writer_lock_if_free) holds the file for a moment only, and must not read as a
    writer."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            fcntl.flock(f, kind | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)


@contextmanager
def writer_lock_if_free(root):
    """Yield True while holding the writer lock of an existing sweep folder, without touching the
    file's contents; False (holding nothing) when a writer holds it. For removing a folder that
    wrote no results, so that a writer cannot start in it meanwhile."""
    path = Path(root).expanduser() / ".writer.lock"
    if not path.exists():
        yield True
        return
    with open(path) as f:
        yield _flock_within(f, fcntl.LOCK_EX, seconds=0.2)


def writer_held(root) -> str | None:
    """The holder of `<root>/.writer.lock` (pid, host, start time) while a live process holds it,
    else None: a probe that takes nothing and writes nothing."""
    try:
        f = open(Path(root).expanduser() / ".writer.lock")
    except FileNotFoundError:
        return None
    with f:  # the shared lock, if taken, is released when the file closes
        if not _flock_within(f, fcntl.LOCK_SH, seconds=0.3):
            return f.read().strip() or "holder unknown"
    return None


def check_unlocked(root) -> None:
    """SweepLocked, naming the holder, when another gdbench writes this sweep: asked before the
    plan so that a second command fails at once (writer_lock then takes the lock for real)."""
    root = Path(root).expanduser()
    if root.exists() and not root.is_dir():
        raise ValueError(f"{root}: the results directory is a file (hydra.sweep.dir / hydra.run.dir)")
    holder = writer_held(root)
    if holder is not None:
        raise SweepLocked(_locked_message(Path(root).expanduser(), holder))


def _locked_message(root: Path, holder: str) -> str:
    return (f"{root} is being written by another gdbench ({holder}); wait for it to finish "
            "or give this sweep another hydra.sweep.dir")


class ChunkDamaged(OSError):
    """A chunk file that does not read back verified (checksum mismatch, truncation, not parquet)."""


def _finished_ids(root: Path, on_damaged) -> set[str]:
    done = set()
    for f in sorted((root / "runs").glob("*.parquet")) if (root / "runs").is_dir() else []:
        try:
            ids = read_chunk(f, columns=["run_id"]).column("run_id").to_pylist()
            verify_chunk(root / "trajectory" / f.name)
        except ChunkDamaged as e:
            on_damaged(f.stem, str(e))
            continue
        done.update(ids)
    return done


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _recorded_sha256(path: Path) -> str:
    """The SHA-256 written with a chunk file (checksums/<chunk>.json). The sums are on disk before
    the chunk's files appear, so a file without them is damage too (a lost or broken sums file)."""
    sums = path.parent.parent / "checksums" / f"{path.stem}.json"
    try:
        want = json.loads(sums.read_text()).get(path.parent.name)
    except FileNotFoundError:
        raise ChunkDamaged(f"{path}: cannot be verified ({sums} is missing)") from None
    except (ValueError, AttributeError, OSError) as e:
        raise ChunkDamaged(f"{path}: cannot be verified ({sums} is damaged: {type(e).__name__})") from None
    if not isinstance(want, str):
        raise ChunkDamaged(f"{path}: cannot be verified ({sums} has no sum for it)")
    return want


_VERIFIED: dict = {}  # path → (size, mtime, inode) of the file version this process verified whole


def verify_chunk(path: Path) -> None:
    """ChunkDamaged unless the file matches its recorded SHA-256 and its parquet footer reads.
    Without parsing the table; and once per version of the file in this process (a resume asks
    before planning, under the lock and in collect)."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ChunkDamaged(f"{path}: missing (the other file of its chunk exists)") from None
    version = (st.st_size, st.st_mtime_ns, st.st_ino)
    if _VERIFIED.get(path) == version:
        return
    data = path.read_bytes()
    if _sha256(data) != _recorded_sha256(path):
        raise ChunkDamaged(f"{path}: damaged (its SHA-256 differs from the one written with it)")
    try:
        pq.read_metadata(pa.BufferReader(data))
    except Exception as e:
        raise ChunkDamaged(f"{path}: damaged ({type(e).__name__}: {str(e).splitlines()[0][:160]})") from None
    _VERIFIED[path] = version


def read_chunk(path: Path, columns=None, **kw) -> pa.Table:
    """A chunk file (runs/ or trajectory/), checked against the SHA-256 recorded when it was
    written, then parsed; ChunkDamaged naming the file when either fails. `columns`: those of
    them the file has."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ChunkDamaged(f"{path}: missing (the other file of its chunk exists)") from None
    want = _recorded_sha256(path)
    if _sha256(data) != want:
        raise ChunkDamaged(f"{path}: damaged (its SHA-256 differs from the one written with it)")
    try:
        if columns is not None:  # a column only some chunks have (sharpness, the companion's) is
            present = set(pq.read_schema(pa.BufferReader(data)).names)  # absent here, not damage
            columns = [c for c in columns if c in present]
        return pq.read_table(pa.BufferReader(data), columns=columns, **kw)
    except Exception as e:  # pyarrow's OSError / ArrowInvalid: any damage reads as "not this file"
        raise ChunkDamaged(f"{path}: damaged ({type(e).__name__}: {str(e).splitlines()[0][:160]})") from None


def _verified_chunks(root: Path, traj_columns="all"):
    """(runs table, trajectory table or None) of every chunk that reads back verified; a
    damaged one is skipped with a warning naming it (readers never move files: the writer's
    next run quarantines it)."""
    for f in sorted((root / "runs").glob("*.parquet")):
        try:
            runs = read_chunk(f)
            traj = None if traj_columns is None else read_chunk(
                root / "trajectory" / f.name, columns=None if traj_columns == "all" else traj_columns,
                read_dictionary=["run_id"])
        except ChunkDamaged as e:
            log.warning(f"skipping chunk {f.stem}: {e}")
            continue
        yield runs, traj


def _read_runs(root: Path, traj_columns=None) -> tuple[pd.DataFrame, list]:
    """The runs table of every verified chunk, and (with `traj_columns`: "all" or a list) the
    same chunks' trajectory tables, in one pass: a chunk is read and checked once, and a run is
    in the table only if its trajectory is too."""
    runs_tables, traj_tables = [], []
    for r, t in _verified_chunks(root, traj_columns=traj_columns):
        runs_tables.append(r.to_pandas())
        if t is not None:
            traj_tables.append(t)
    runs = pd.concat(runs_tables, ignore_index=True) if runs_tables else pd.DataFrame()
    if len(runs):
        twice = int(runs["run_id"].duplicated().sum())
        if twice:  # two chunks with one run (a store from before the writer lock): keep the newer
            log.warning(f"{root}: {twice} runs appear in two chunks; keeping one of each")
            runs = runs.drop_duplicates("run_id", keep="last")
        runs = runs.sort_values(["cell_id", "lr", "seed"], kind="stable").reset_index(drop=True)
    return runs, traj_tables


def load(sweep_dir, *, trajectory_columns=None, failed: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The `runs` and `trajectory` tables of a sweep directory (docs/design.md §4), from the chunks that
    have finished so far (a running or interrupted sweep loads fine).

    runs: one row per finished run; with `failed=True` also one row per run of a failed chunk that
    has not finished since (status "failed", the error, configuration columns, null metrics).
    trajectory: long format; `trajectory_columns` selects columns (run_id and iter always come);
    run_id is categorical, which keeps 10^7 rows small.
    """
    root = Path(sweep_dir).expanduser()
    if not (root / "runs").is_dir():
        raise FileNotFoundError(f"{root}: not a gdbench sweep directory (no runs/ folder)")
    cols = "all" if trajectory_columns is None else list(dict.fromkeys(["run_id", "iter", *trajectory_columns]))
    runs, tables = _read_runs(root, traj_columns=cols)
    if failed and (root / "failed").is_dir():
        done = set(runs["run_id"]) if len(runs) else set()
        bad = [t for t in map(_read_failed, sorted((root / "failed").glob("*.parquet"))) if t is not None]
        bad = pd.concat(bad, ignore_index=True) if bad else pd.DataFrame()
        if len(bad):
            bad = bad[~bad["run_id"].isin(done)].drop_duplicates("run_id", keep="last")
            runs = pd.concat([runs, bad], ignore_index=True) if len(runs) else bad.reset_index(drop=True)
    if not len(runs):
        raise FileNotFoundError(f"{root}: no finished runs yet (runs/ is empty)")
    traj = pa.concat_tables(tables, promote_options="permissive").to_pandas() if tables else pd.DataFrame()
    return runs, traj


def _read_failed(path: Path) -> pd.DataFrame | None:
    """A failed/ file (the configuration of a failed chunk's runs); a damaged one is skipped with
    a warning (the runs are retried by the next run anyway)."""
    try:
        return pd.read_parquet(path)
    except Exception as e:  # pyarrow's errors for a file that is not (whole) parquet
        log.warning(f"skipping {path}: damaged ({type(e).__name__})")
        return None


def last_session(sweep_dir) -> dict | None:
    """The provenance of the sweep's last session (settings, versions, timings); None before the
    first session finished, or when provenance.json is damaged (named in a warning)."""
    prov = _read_json(Path(sweep_dir).expanduser() / "provenance.json")
    sessions = (prov or {}).get("sessions")
    return sessions[-1] if isinstance(sessions, list) and sessions and isinstance(sessions[-1], dict) else None


def planned_run_ids(sweep_dir) -> set[str] | None:
    plan = _read_json(Path(sweep_dir).expanduser() / "plan.json")
    return set(plan.get("run_ids") or []) if plan is not None else None
