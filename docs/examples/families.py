"""An example dataset family for `data=custom` (see the README, "Your own data family"):

    .venv/bin/gdbench -m data=custom data.fn=docs/examples/families.py:tilted_pair \
        data.d=8,16,32 data.tilt=0.1,0.3 model=linear,relu_net algorithm.lr=1,10,100

Every data.<key> other than fn is passed to the function; `seed` is passed when the function
takes one (it is data.seed). Return x as an (n, d) array and y in {-1, +1}.
"""
import numpy as np


def tilted_pair(d: int = 8, n: int = 40, tilt: float = 0.3, seed: int = 0):
    """n points in R^d, half labelled +1, separable along e_0 with margin `tilt`: each point is
    y·tilt·e_0 plus Gaussian noise N(0, I/d) in the other d - 1 coordinates, so a small tilt
    makes a long unstable phase for large steps."""
    rng = np.random.default_rng(seed)
    y = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    x = rng.standard_normal((n, d)) / np.sqrt(d)
    x[:, 0] = y * (tilt + np.abs(rng.standard_normal(n)) / np.sqrt(d))
    return x, y
