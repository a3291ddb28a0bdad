"""gdbench: a distributed benchmarking workflow for the dynamics of gradient descent."""
__version__ = "0.1.0"


def load(sweep_dir, **kw):
    """`runs, trajectory = gdbench.load(sweep_dir)`: the two tables of a sweep as DataFrames
    (see gdbench.store.load). Imported lazily so that Ray workers never import pandas for it."""
    from gdbench.store import load as _load
    return _load(sweep_dir, **kw)
