"""The results store: one directory per sweep (DESIGN §3, §4). Only the driver writes here.

    <sweep>/runs/<chunk_id>.parquet        the runs rows of one finished chunk
    <sweep>/trajectory/<chunk_id>.parquet  its trajectory rows (a parquet dataset directory)
    <sweep>/runs.parquet                   the consolidated runs table (rebuilt by `collect`)
    <sweep>/failures.jsonl                 one line per failed chunk: ids, error, traceback
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
        for col in INT_COLUMNS:
            if col in runs:
                runs[col] = runs[col].astype("Int64")  # null stays null, never a sentinel
        runs["status"] = runs["status"].astype(str)
        self._write(runs, self.root / "runs" / f"{cid}.parquet")

    def write_failure(self, result: dict, extra: dict) -> None:
        with open(self.root / "failures.jsonl", "a") as f:
            f.write(json.dumps({k: result[k] for k in ("chunk_id", "run_ids", "error", "traceback")} | extra) + "\n")

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
        """Rebuild runs.parquet from whatever has finished; return it."""
        files = sorted((self.root / "runs").glob("*.parquet"))
        runs = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True) if files else pd.DataFrame()
        if len(runs):
            runs = runs.sort_values(["cell_id", "lr", "seed"], kind="stable").reset_index(drop=True)
        self._write(runs, self.root / "runs.parquet")
        return runs

    def write_provenance(self, info: dict) -> None:
        path = self.root / "provenance.json"
        old = json.loads(path.read_text()) if path.exists() else {}
        sessions = old.get("sessions", []) + [info]
        path.write_text(json.dumps({"sessions": sessions}, indent=2, default=str))


def load(sweep_dir) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The `runs` and `trajectory` tables of a sweep directory (finished chunks only)."""
    root = Path(sweep_dir).expanduser()
    runs_files = sorted((root / "runs").glob("*.parquet"))
    if not runs_files:
        raise FileNotFoundError(f"{root}: no finished runs (no runs/*.parquet) — is this a gdbench sweep directory?")
    runs = pd.concat([pd.read_parquet(f) for f in runs_files], ignore_index=True)
    traj_files = [root / "trajectory" / f.name for f in runs_files]
    traj = pd.concat([pd.read_parquet(f) for f in traj_files if f.exists()], ignore_index=True)
    return runs, traj
