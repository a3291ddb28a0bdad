"""Reproduce the papers: every study of conf/experiment/ as a sweep, each with its report, then
claims.md / claims.html with a verdict per claim computed from the runs.

    .venv/bin/python workflows/reproduce.py [--scale quick|paper|smoke] [--out results/reproduce-quick]

(= `gdbench-reproduce …`; the README says how long the quick scale takes).
"""
from gdbench.cli import reproduce

if __name__ == "__main__":
    reproduce()
