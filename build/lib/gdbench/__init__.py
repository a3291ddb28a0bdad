"""gdbench: a distributed benchmarking workflow for the dynamics of gradient descent."""
from pathlib import Path

__version__ = "0.1.0"
# Hydra's config directory: conf/ at the repository root in a source checkout (also an editable
# install), gdbench/conf inside an installed wheel (pyproject.toml maps conf/ there)
_HERE = Path(__file__).resolve().parent
CONF_DIR = str(_HERE / "conf" if (_HERE / "conf" / "config.yaml").is_file() else _HERE.parent / "conf")


def load(sweep_dir, **kw):
    """`runs, trajectory = gdbench.load(sweep_dir)`: the two tables of a sweep as DataFrames
    (see gdbench.store.load). Imported lazily so that Ray workers never import pandas for it."""
    from gdbench.store import load as _load
    return _load(sweep_dir, **kw)
