"""The results store: one directory per sweep (DESIGN §3, §4). Only the driver writes here.

    <sweep>/runs/<chunk_id>.parquet        the runs rows of one finished chunk
    <sweep>/trajectory/<chunk_id>.parquet  its trajectory rows (a parquet dataset directory)
    <sweep>/runs.parquet                   the consolidated runs table (rebuilt by `collect`)
    <sweep>/failures.jsonl                 one line per failed chunk: ids, error, traceback
    <sweep>/failed/<chunk_id>.parquet      the configuration columns of a failed chunk's runs
    <sweep>/plan.json                      the run ids the sweep was asked for (how much is missing)
    <sweep>/provenance.json                versions, git commit, host, device, timings, overrides

Chunk files are written to a hidden temporary name and renamed, so a reader never sees half a
file; a chunk is finished when its runs file reads back. Resume = skip the runs found in readable
runs files; an unreadable (truncated) file is removed and its runs are planned again.
"""
from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

INT_COLUMNS = ("t_sep", "t_sep_stay", "n_increases", "transition_time", "n_misclassified_increases",
               "diverged_at", "iterations_run")


class Store:
    def __init__(self, root):
        self.root = Path(root).expanduser().resolve()
        (self.root / "runs").mkdir(parents=True, exist_ok=True)
        (self.root / "trajectory").mkdir(parents=True, exist_ok=True)

    def _write(self, df: pd.DataFrame, path: Path) -> None:
        tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
        df.to_parquet(tmp, index=False)
        os.replace(tmp, path)  # atomic on POSIX

    def write_chunk(self, result: dict, extra: dict) -> None:
        """Trajectory first, runs second: the runs file is the 'finished' mark."""
        cid = result["chunk_id"]
        traj = pd.DataFrame(result["trajectory"])
        self._write(traj, self.root / "trajectory" / f"{cid}.parquet")
        runs = pd.DataFrame(result["rows"])
        for k, v in extra.items():
            runs[k] = v
        runs = runs.drop(columns=["trajectory_rows"], errors="ignore")
        for col in [c for c in runs if c in INT_COLUMNS or c.startswith("t_eps_")]:
            runs[col] = runs[col].astype("Int64")  # null stays null, never a sentinel
        runs["status"] = runs["status"].astype(str)
        self._write(runs, self.root / "runs" / f"{cid}.parquet")
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
        old = json.loads(path.read_text())["run_ids"] if path.exists() else []
        tmp = path.parent / f".plan.{uuid.uuid4().hex}.tmp"
        tmp.write_text(json.dumps({"run_ids": sorted(set(old) | set(run_ids))}))
        os.replace(tmp, path)

    def finished_run_ids(self) -> set[str]:
        """Run ids of every readable runs file; unreadable (truncated) chunk files are removed."""
        done = set()
        for f in sorted((self.root / "runs").glob("*.parquet")):
            try:
                ids = pq.read_table(f, columns=["run_id"]).column("run_id").to_pylist()
                traj = self.root / "trajectory" / f.name
                pq.read_metadata(traj)
            except Exception:
                f.unlink(missing_ok=True)
                (self.root / "trajectory" / f.name).unlink(missing_ok=True)
                continue
            done.update(ids)
        return done

    def failures(self) -> list[dict]:
        path = self.root / "failures.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def collect(self) -> pd.DataFrame:
        """Rebuild runs.parquet from whatever has finished; return it (finished runs only)."""
        runs = _read_runs(self.root)
        self._write(runs, self.root / "runs.parquet")
        return runs

    def write_provenance(self, info: dict) -> None:
        path = self.root / "provenance.json"
        old = json.loads(path.read_text()) if path.exists() else {}
        sessions = old.get("sessions", []) + [info]
        path.write_text(json.dumps({"sessions": sessions}, indent=2, default=str))


def _read_runs(root: Path) -> pd.DataFrame:
    files = sorted((root / "runs").glob("*.parquet"))
    runs = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True) if files else pd.DataFrame()
    if len(runs):
        runs = runs.sort_values(["cell_id", "lr", "seed"], kind="stable").reset_index(drop=True)
    return runs


def load(sweep_dir, *, trajectory_columns=None, failed: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The `runs` and `trajectory` tables of a sweep directory (DESIGN §4), from the chunks that
    have finished so far (a running or interrupted sweep loads fine).

    runs: one row per finished run; with `failed=True` also one row per run of a failed chunk that
    has not finished since (status "failed", the error, configuration columns, null metrics).
    trajectory: long format; `trajectory_columns` selects columns (run_id and iter always come);
    run_id is categorical, which keeps 10^7 rows small.
    """
    root = Path(sweep_dir).expanduser()
    if not (root / "runs").is_dir():
        raise FileNotFoundError(f"{root}: not a gdbench sweep directory (no runs/ folder)")
    runs = _read_runs(root)
    if failed and (root / "failed").is_dir():
        done = set(runs["run_id"]) if len(runs) else set()
        bad = [pd.read_parquet(f) for f in sorted((root / "failed").glob("*.parquet"))]
        bad = pd.concat(bad, ignore_index=True) if bad else pd.DataFrame()
        if len(bad):
            bad = bad[~bad["run_id"].isin(done)].drop_duplicates("run_id", keep="last")
            runs = pd.concat([runs, bad], ignore_index=True) if len(runs) else bad.reset_index(drop=True)
    if not len(runs):
        raise FileNotFoundError(f"{root}: no finished runs yet (runs/ is empty)")
    cols = None if trajectory_columns is None else list(dict.fromkeys(["run_id", "iter", *trajectory_columns]))
    files = [root / "trajectory" / f.name for f in sorted((root / "runs").glob("*.parquet"))]
    tables = [pq.read_table(f, columns=cols, read_dictionary=["run_id"]) for f in files if f.exists()]
    traj = pa.concat_tables(tables, promote_options="permissive").to_pandas() if tables else pd.DataFrame()
    return runs, traj


def planned_run_ids(sweep_dir) -> set[str] | None:
    path = Path(sweep_dir).expanduser() / "plan.json"
    return set(json.loads(path.read_text())["run_ids"]) if path.exists() else None
