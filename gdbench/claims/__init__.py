"""The papers' claims as criteria over one sweep's results (runs, trajectory) → a verdict.

Every claim is a frozen dataclass whose fields are its thresholds and tolerance bands, defined
once, next to the claim, with each band's reason in the docstring. From those same fields:

    expected()          the criterion as printed in claims.md ("expected: …")
    measure(runs, traj) the numbers the criterion needs, computed from the results (nothing typed
                        in), as a dict with a "text" entry (what claims.md prints as "measured"),
                        or a Verdict straight away when the results cannot decide
    judge(measured)     the thresholds applied to those numbers → Verdict
    evaluate(runs, traj) = judge(measure(runs, traj))

A verdict is one of three, and its reason says which case it is:
    holds           the criterion printed is the criterion tested, and it is met;
    does not hold   the study reached the claim's regime and the criterion failed there;
    inconclusive    the study could not decide: it did not reach the regime (no run oscillated, data
                    that a model cannot separate, too few levels for a fit), or the criterion is
                    met for a reason that is not the paper's mechanism ("holds trivially").

`gdbench/reproduce.py` maps each study to its claims; docs/claims.md lists them.
"""
from gdbench.claims.base import FAILS, HOLDS, INCONCLUSIVE, Band, Criterion, Verdict, fmt
from gdbench.claims.perceptron import PerceptronLimit, PerceptronLowerBound, UnreliableLoss
from gdbench.claims.large_steps import LargeStepRates, TransitionSaturates, TransitionScaling
from gdbench.claims.dimension import DimensionGap
from gdbench.claims.real_data import (NonlinearFaster, NonSeparableControl, OscillatesAtLargeSteps,
                                      LargeStepsSeparateFastest)
from gdbench.claims.implicit_bias import DirectionLogRate, LossRate, PerceptronNotMaxMargin
from gdbench.claims.edge_of_stability import (EdgeOfStability, LogisticSharpnessFalls,
                                              PlateauScalesAsInverseStep)

__all__ = ["HOLDS", "FAILS", "INCONCLUSIVE", "Verdict", "Band", "Criterion", "fmt",
           "PerceptronLimit", "UnreliableLoss", "PerceptronLowerBound", "LargeStepRates", "TransitionSaturates",
           "TransitionScaling", "DimensionGap", "OscillatesAtLargeSteps", "LargeStepsSeparateFastest",
           "NonlinearFaster", "NonSeparableControl", "LossRate", "DirectionLogRate", "PerceptronNotMaxMargin",
           "EdgeOfStability", "PlateauScalesAsInverseStep", "LogisticSharpnessFalls"]
