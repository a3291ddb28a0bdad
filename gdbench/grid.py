"""Resolved job configs → runs (docs/design.md §3). No Hydra import: configs arrive as plain dicts.

A *run* is one (dataset, model, loss, algorithm, step size, seed, budget). Its `run_id` is a stable
hash of everything that determines its numbers; its `cell_key` is the same hash without the step
size and the seed, so runs with equal cell keys can share one batched tensor program.

Grid shaping beyond Hydra's product (config key `grid`):
    grid.tie      lists of keys that vary together: a job is kept only when each tied key's value
                  sits at the same position in its sweep list (e.g. [[data.n, data.d]])
    grid.exclude  list of {key: value} dicts; a job whose overrides match every pair of one
                  entry is dropped (e.g. {model: linear, model.width: 64})
"""
from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field

from gdbench import checks

SECTIONS = ("data", "model", "loss", "algorithm")
RUN_KEYS = ("seed", "iterations", "eps", "record", "companion", "stop_loss", "dtype")
SCALAR_KEYS = ("algorithm.lr", "seed")  # what varies inside a cell


def stable_hash(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class Run:
    config: dict  # the sections and RUN_KEYS, plain data
    overrides: list = field(default_factory=list)  # the Hydra overrides that made this job

    # computed once per run (a config is not changed after the run is made): planning a large
    # grid asks for each of them several times
    @functools.cached_property
    def run_id(self) -> str:
        return stable_hash(self.config)

    @functools.cached_property
    def cell_key(self) -> str:
        c = {k: v for k, v in self.config.items() if k != "seed"}
        c["algorithm"] = {k: v for k, v in c["algorithm"].items() if k != "lr"}
        return stable_hash(c)

    @functools.cached_property
    def data_key(self) -> str:
        return stable_hash(self.config["data"])

    @property
    def lr(self) -> float:
        return float(self.config["algorithm"]["lr"])

    @property
    def seed(self) -> int:
        return int(self.config["seed"])

    def columns(self, names: dict, cache: dict | None = None) -> dict:
        """The configuration as columns of the runs table (docs/design.md §4): short names (`names` gives
        the catalogue names of dataset, model, loss and algorithm), then every section key
        flattened as `section.key`. `cache`: a dict shared over one grid's runs, so that a section
        dict the runs share is flattened once."""
        c = self.config
        out = {"run_id": self.run_id, "cell_id": self.cell_key, **names,
               "activation": c["model"].get("activation", "identity" if names["model"] == "linear" else None),
               "width": c["model"].get("width"), "lr": self.lr, "seed": self.seed,
               "iterations": c["iterations"], "companion": bool(c["companion"]), "dtype": c["dtype"],
               "direction": c.get("direction")}
        for section in SECTIONS:
            out.update(_by_identity(cache, c[section], lambda node: _flatten(section, node)))
        if "sharpness" in c:
            out.update(_flatten("sharpness", c["sharpness"]))
        return out


def _flatten(section: str, node: dict) -> dict:
    return {f"{section}.{k}": v if isinstance(v, (int, float, str, bool, type(None))) else json.dumps(v)
            for k, v in node.items() if k != "_target_"}


def _by_identity(cache: dict | None, node, compute):
    """compute(node), remembered by the node's identity in `cache` (which holds the node, so its
    id cannot be reused while the entry lives). Runs of one grid share their unchanged dicts."""
    if cache is None:
        return compute(node)
    hit = cache.get(id(node))
    if hit is None or hit[0] is not node:
        hit = cache[id(node)] = (node, compute(node))
    return hit[1]


def _json(v) -> str:
    return json.dumps(v, sort_keys=True, default=str)


_NO_KEY = object()  # encode_dict's "skip no key" (None is a key JSON can hold)


def assign_keys(runs: list) -> None:
    """Set run_id, cell_key and data_key of many runs at once (runs that have them keep them),
    encoding each value the runs share once. The strings hashed are byte for byte those of the
    per-run properties (JSON with sorted keys and default separators, assembled from its parts),
    so the ids are the same."""
    shared, scalars, layouts = {}, {}, {}

    def encode(v):
        if isinstance(v, dict):
            return _by_identity(shared, v, encode_dict)
        if isinstance(v, list):
            return _by_identity(shared, v, _json)
        key = (type(v), repr(v))  # not v itself: 0.0 == -0.0, and a value need not be hashable
        if key not in scalars:
            scalars[key] = _json(v)
        return scalars[key]

    def layout(names: tuple) -> list:  # the sorted keys, JSON-encoded, once per key set
        if names not in layouts:
            layouts[names] = [(k, json.dumps(k) + ": ") for k in sorted(names)]
        return layouts[names]

    def encode_dict(d: dict, skip=_NO_KEY) -> str:  # json.dumps(d, sort_keys=True) from cached parts
        if not all(isinstance(k, str) for k in d):
            return _json({k: v for k, v in d.items() if k != skip})
        return "{" + ", ".join(head + encode(d[k]) for k, head in layout(tuple(k for k in d if k != skip))) + "}"

    def digest(text: str) -> str:
        return hashlib.sha1(text.encode()).hexdigest()[:16]

    for r in runs:
        if "run_id" in r.__dict__:
            continue
        c = r.config
        items = [(k, head + encode(c[k])) for k, head in layout(tuple(c))]  # "key": value, sorted by key
        without_lr = '"algorithm": ' + encode_dict(c["algorithm"], skip="lr")
        r.__dict__.update(
            run_id=digest("{" + ", ".join(item for _, item in items) + "}"),
            cell_key=digest("{" + ", ".join(without_lr if k == "algorithm" else item for k, item in items
                                            if k != "seed") + "}"),
            data_key=digest(encode(c["data"])))


def run_from_config(cfg: dict, overrides=()) -> Run:
    """Pick the run-defining parts out of one resolved job config (a plain dict)."""
    missing = [k for k in SECTIONS + RUN_KEYS if k not in cfg]
    if missing:
        raise ValueError(f"config: missing keys {missing}")
    config = {k: cfg[k] for k in SECTIONS + RUN_KEYS}
    if cfg.get("direction") is not None:  # only when set, so run ids without it stay as they were
        config["direction"] = cfg["direction"]
    sharpness = cfg.get("sharpness") or {}
    if sharpness.get("every", 0) != 0:  # likewise: only runs that estimate it carry the settings
        config["sharpness"] = dict(sharpness)
    return Run(config=config, overrides=list(overrides))


def build(run: Run, cache: dict | None = None):
    """Instantiate the run's catalogue objects; a ValueError names the key and the run.

    cache: a dict shared over the runs of one grid; equal section configs then give the same
    object, built once (a grid's runs mostly differ in step size and seed, so this saves building
    the same dataset and model hundreds of times). The objects are immutable by design: frozen
    dataclasses, and datasets whose arrays nothing writes to."""
    # Hydra's instantiate only (no Hydra app state is touched), imported here: the compute side
    # unpickles runs (this module) without ever building them, and need not load Hydra
    from hydra.utils import instantiate

    def make(section):
        node = run.config[section]
        if cache is None:
            return instantiate(node)
        # runs of one grid share their unchanged section dicts: know a dict by identity first (the
        # cache holds it, so its id stays its own), by content otherwise
        seen = cache.get(("id", id(node)))
        if seen is not None and seen[0] is node:
            return seen[1]
        # the step size is a run's, not its algorithm's: the engine takes one per replica and
        # _check_run_keys validated it, so runs that differ only in lr share one algorithm object
        content = {k: v for k, v in node.items() if k != "lr"} if section == "algorithm" else node
        key = (section, json.dumps(content, sort_keys=True, default=str))
        if key not in cache:
            cache[key] = instantiate(node)
        cache[("id", id(node))] = (node, cache[key])
        return cache[key]

    try:
        _check_run_keys(run.config)
        ds, model, loss, algorithm = (make(section) for section in SECTIONS)
    except Exception as e:  # instantiate wraps errors; surface the root cause with the run
        root = e
        while root.__cause__ is not None:
            root = root.__cause__
        raise ValueError(f"{root} (in run {' '.join(run.overrides) or run.run_id})") from e
    if run.config["companion"]:
        try:
            checks.companion(algorithm.name, model)
        except ValueError as e:
            raise ValueError(f"{e} (in run {' '.join(run.overrides) or run.run_id})") from None
    if run.config.get("direction") is not None:
        if run.config["direction"] != "svm":
            raise ValueError(f"direction={run.config['direction']!r}: expected null or svm "
                             f"(in run {' '.join(run.overrides) or run.run_id})")
        if model.name != "linear":
            raise ValueError(f"direction=svm needs model=linear, got {model.name!r} "
                             f"(in run {' '.join(run.overrides) or run.run_id})")
    return ds, model, loss, algorithm


def _check_run_keys(c: dict) -> None:
    checks.iterations(c["iterations"])
    if isinstance(c["seed"], bool) or not isinstance(c["seed"], int):
        raise ValueError(f"seed={c['seed']!r}: expected an integer")
    checks.step_size(c["algorithm"].get("lr"))
    checks.eps(c["eps"])
    checks.dtype(c["dtype"])
    if c["stop_loss"] is not None and not (isinstance(c["stop_loss"], (int, float)) and c["stop_loss"] > 0):
        raise ValueError(f"stop_loss={c['stop_loss']!r}: expected null or a number > 0")
    if "sharpness" in c:
        unknown = set(c["sharpness"]) - {"every", "iters", "tol"}
        if unknown:
            raise ValueError(f"sharpness: unknown key(s) {sorted(unknown)} (expected every, iters, tol)")
        checks.sharpness(c["sharpness"].get("every"), c["sharpness"].get("iters"), c["sharpness"].get("tol"))
    rec = c["record"]
    for k in ("dense", "log_points"):
        if isinstance(rec.get(k), bool) or not isinstance(rec.get(k), int) or rec[k] < 0:
            raise ValueError(f"record.{k}={rec.get(k)!r}: expected an integer ≥ 0")


def shape_grid(jobs: list[list[str]], tie=(), exclude=()) -> list[list[str]]:
    """Apply grid.tie and grid.exclude to the sweeper's job override lists (in sweep order)."""
    if not tie and not exclude:
        return jobs
    values: dict[str, dict[str, int]] = {}  # key → its swept values in order, with their positions
    for job in jobs:
        for o in job:
            k, _, v = o.partition("=")
            seen = values.setdefault(k.lstrip("+~"), {})
            seen.setdefault(v, len(seen))
    for group in tie:
        group = list(group)
        for k in group:
            if k not in values:
                raise ValueError(f"grid.tie: key {k!r} is not swept (swept keys: {sorted(values)})")
        lengths = {k: len(values[k]) for k in group}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"grid.tie: tied keys must sweep the same number of values, got {lengths}")
    for entry in exclude:
        for k in entry:
            if k not in values:
                raise ValueError(f"grid.exclude: key {k!r} is not swept (swept keys: {sorted(values)})")

    def keep(job):
        chosen = {o.partition("=")[0].lstrip("+~"): o.partition("=")[2] for o in job}
        for group in tie:
            if len({values[k][chosen[k]] for k in group}) > 1:
                return False
        for entry in exclude:
            if all(chosen.get(k) == str(v) for k, v in entry.items()):
                return False
        return True

    return [job for job in jobs if keep(job)]
