"""gdbench: a distributed benchmarking workflow for the dynamics of gradient descent."""
from pathlib import Path

__version__ = "0.1.0"
CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")  # Hydra's config directory (conf/)


def load(sweep_dir, **kw):
    """`runs, trajectory = gdbench.load(sweep_dir)`: the two tables of a sweep as DataFrames
    (see gdbench.store.load). Imported lazily so that Ray workers never import pandas for it."""
    from gdbench.store import load as _load
    return _load(sweep_dir, **kw)
