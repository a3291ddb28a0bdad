"""The main job: a Hydra-configured sweep on Ray, then its report.

    .venv/bin/python workflows/sweep.py experiment=default          (= `gdbench experiment=default`)
    .venv/bin/python workflows/sweep.py -m model=linear,two_layer algorithm.lr=0.1,10 seed='range(3)'

Writes one sweep directory (hydra.sweep.dir, default results/<name>-<time>/): runs.parquet,
trajectory/, failures.jsonl, provenance.json and report/ (tables, figures, index.md/html).
"""
from gdbench.cli import main

if __name__ == "__main__":
    main()
