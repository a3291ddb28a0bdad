"""The log-domain loss: equal to log(loss) where the loss is representable, finite where it underflows."""
import math

import pytest
import torch

from gdbench import losses


@pytest.mark.parametrize("loss", [losses.Logistic(), losses.Exponential(), losses.Squared()], ids=lambda l: l.name)
def test_log_value_equals_log_of_value_where_representable(loss):
    z = torch.linspace(-50, 600, 5000, dtype=torch.float64)
    v = loss.value(z)
    ok = (v > 1e-300) & (v < 1e300)
    torch.testing.assert_close(loss.log_value(z)[ok], torch.log(v[ok]), rtol=1e-12, atol=1e-13)


def test_logistic_log_loss_finite_below_underflow():
    # log(1 + e^{-z}) = e^{-z}(1 + O(e^{-z})): for z = 5000 the loss is e^{-5000} ≈ 1e-2172, far below
    # the smallest float64, but its log is −5000 to double precision (closed form).
    z = torch.tensor([800.0, 5000.0, 1e6], dtype=torch.float64)
    assert losses.Logistic().value(z).eq(0).all()  # the plain loss underflows …
    torch.testing.assert_close(losses.Logistic().log_value(z), -z, rtol=1e-15, atol=0)  # … the log does not
    # the objective in the log domain: log F = logsumexp_i log ℓ(z_i) − log n
    logF = torch.logsumexp(losses.Logistic().log_value(z), 0) - math.log(3)
    assert math.isclose(logF.item(), -800 - math.log(3), rel_tol=1e-14)


def test_logistic_log_value_is_continuous_at_the_branch_switch():
    z = torch.tensor([30.0 - 1e-9, 30.0 + 1e-9], dtype=torch.float64)
    lv = losses.Logistic().log_value(z)
    assert abs((lv[1] - lv[0]).item() + 2e-9) < 1e-12
