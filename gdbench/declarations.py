"""The schema of study-declared figures (`report.headline` in an experiment YAML) and its
validation. Pure Python, no plotting import: the sweep driver checks a study's declarations before
anything is scheduled, and `gdbench.headline` draws them afterwards. The kinds and their keys are
described in `gdbench.headline`.
"""
from __future__ import annotations

COMMON = {"kind", "title", "caption", "where", "width"}
KEYS = {
    "versus": {"x", "y", "hue", "at", "best", "fit", "logx", "logy", "reference"},
    "curves": {"y", "hue", "xscale", "xmax", "ymin", "logy", "reference"},
    "budget": {"c", "fixed"},
    "gap": set(),
    "heatmap": {"value", "table"},
}
REQUIRED = {"versus": {"x", "y"}, "curves": {"y"}, "heatmap": {"value"}}


class SpecError(ValueError):
    pass


def validate(specs, *, where: str = "report.headline") -> list[dict]:
    """The declarations as a list of plain dicts, or SpecError naming the entry and the key."""
    if specs in (None, []):
        return []
    if not isinstance(specs, (list, tuple)):
        raise SpecError(f"{where}: expected a list of figure declarations, got {type(specs).__name__}")
    out = []
    for i, spec in enumerate(specs):
        at = f"{where}[{i}]"
        if not isinstance(spec, dict) or "kind" not in spec:
            raise SpecError(f"{at}: each entry is a mapping with a `kind` ({', '.join(KEYS)})")
        kind = spec["kind"]
        if kind not in KEYS:
            raise SpecError(f"{at}.kind={kind!r}: unknown figure kind; choose from {', '.join(KEYS)}")
        unknown = set(spec) - KEYS[kind] - COMMON
        if unknown:
            raise SpecError(f"{at}: unknown key(s) {sorted(unknown)} for kind {kind}; "
                            f"allowed: {sorted(KEYS[kind] | COMMON)}")
        missing = REQUIRED.get(kind, set()) - set(spec)
        if missing:
            raise SpecError(f"{at}: kind {kind} needs {sorted(missing)}")
        if kind == "versus" and "reference" in spec and (spec["reference"] != "2/lr" or spec["x"] != "lr"):
            raise SpecError(f"{at}.reference={spec['reference']!r}: a versus figure's reference is 2/lr "
                            f"(the stability threshold), with x: lr")
        if spec.get("width", "single") not in ("single", "double"):
            raise SpecError(f"{at}.width={spec['width']!r}: choose single or double")
        out.append(dict(spec))
    return out


def columns_needed(specs) -> set:
    """Trajectory columns the declared figures read (beyond log_loss and accuracy)."""
    need = set()
    for s in specs:
        if s["kind"] == "curves" or (s["kind"] == "versus" and s.get("at") is not None):
            y = s["y"]
            need.add("log_loss" if y in ("log10_loss", "loss") else y)
    return need
