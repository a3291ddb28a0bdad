"""docs/design.md §2 online metrics on hand-made sequences; each expected value is worked out in the comment."""
import math

import numpy as np
import torch

from gdbench.metrics import OnlineMetrics, eps_column


def feed(losses, min_margins, n_mis, eps=(0.5, 0.1)):
    m = OnlineMetrics(1, eps)
    one = torch.ones(1, dtype=torch.bool)
    for t, (F, mm, k) in enumerate(zip(losses, min_margins, n_mis)):
        m.update(t, torch.tensor([math.log(F)], dtype=torch.float64), torch.tensor([k]),
                 torch.tensor([mm], dtype=torch.float64), one)
    return {k: v[0] for k, v in m.finalize().items()}


def test_hand_made_oscillating_sequence():
    F = [1.0, 2.0, 0.5, 0.6, 0.4, 0.05, 0.05 * (1 + 1e-13)]
    margins = [-1.0, -0.5, 0.2, -0.1, 0.3, 0.4, 0.5]
    n_mis = [3, 4, 0, 1, 0, 0, 0]
    out = feed(F, margins, n_mis)
    assert out["t_sep"] == 2             # first t with min margin > 0
    assert out["t_sep_stay"] == 4        # last non-separated t is 3
    assert out["n_increases"] == 2       # t=1 (1→2) and t=3 (0.5→0.6); t=6 is within the 1e-12 tolerance
    assert out["transition_time"] == 3   # the last of those increases
    assert out["n_misclassified_increases"] == 2  # 3→4 and 0→1
    assert out["peak_loss"] == 2.0 and out["peak_ratio"] == 2.0
    assert math.isclose(out["max_jump"], math.log(2.0), rel_tol=1e-14)  # log(2/1)
    assert out[eps_column(0.5)] == 2     # F_2 = 0.5 ≤ 0.5
    assert out[eps_column(0.1)] == 5     # F_5 = 0.05


def test_monotone_never_separated_sequence_gives_nulls_not_sentinels():
    out = feed([1.0, 0.9, 0.8], [-1.0, -0.5, 0.0], [2, 2, 1], eps=(1e-3,))
    assert math.isnan(out["t_sep"]) and math.isnan(out["t_sep_stay"])  # margin 0 is not separated
    assert math.isnan(out[eps_column(1e-3)])
    assert out["n_increases"] == 0 and out["transition_time"] == 0
    assert math.isclose(out["max_jump"], math.log(0.9), rel_tol=1e-14)


def test_underflowed_losses_still_compare_in_the_log_domain():
    # log F = −2000 then −1990: F itself underflows to 0 in float64, yet the increase is counted.
    m = OnlineMetrics(1, ())
    one = torch.ones(1, dtype=torch.bool)
    for t, lf in enumerate([-2000.0, -1990.0, -2100.0]):
        m.update(t, torch.tensor([lf], dtype=torch.float64), torch.tensor([0]), torch.tensor([1.0], dtype=torch.float64), one)
    out = m.finalize()
    assert out["n_increases"][0] == 1 and out["transition_time"][0] == 1
    assert out["max_jump"][0] == 10.0


def test_inactive_replica_is_not_updated():
    m = OnlineMetrics(2, ())
    for t, lf in enumerate([0.0, 1.0, 2.0]):
        active = torch.tensor([True, t < 1])
        m.update(t, torch.tensor([lf, lf], dtype=torch.float64), torch.tensor([0, 0]),
                 torch.tensor([1.0, 1.0], dtype=torch.float64), active)
    out = m.finalize()
    assert list(out["n_increases"]) == [2, 0]
    assert np.isnan(out["max_jump"][1])  # it only lived at t = 0: no step, no jump
