"""The report of a sweep (finished, running or interrupted).

    .venv/bin/python workflows/report.py results/default-<time> [--group-by model,lr] [--no-figures]

(= `gdbench-report …`). Writes <sweep>/report/: tables/*.md|tex|csv, figures/*.png|pdf, index.md,
index.html; prints the rate, oscillation and acceleration tables.
"""
from gdbench.cli import report

if __name__ == "__main__":
    report()
