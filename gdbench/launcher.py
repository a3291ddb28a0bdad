"""Hydra's multirun → one batched sweep (docs/design.md §3): a thin adapter.

`GdbenchLauncher` is a Hydra launcher (registered as `hydra/launcher=gdbench` by the plugin in
hydra_plugins/): instead of running N jobs, it composes each job's config, turns them into runs
and hands them to the sweep pipeline (`gdbench.sweep.execute`) as one sweep into one results
directory (`hydra.sweep.dir`).
"""
from __future__ import annotations

import copy
import json
import logging
import sys
from pathlib import Path

from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, setup_globals
from hydra.plugins.launcher import Launcher
from omegaconf import OmegaConf, open_dict

import gdbench
from gdbench import grid
from gdbench.store import check_unlocked
from gdbench.sweep import SWEEP_LEVEL, execute, remove_if_unused, settings_of, user_errors_exit

log = logging.getLogger("gdbench")


def job_config(cfg) -> dict:
    """A job's resolved config as plain data, without the `hydra` node."""
    with open_dict(cfg):
        return {k: (OmegaConf.to_container(cfg[k], resolve=True) if OmegaConf.is_config(cfg[k]) else cfg[k])
                for k in cfg if k != "hydra"}


class GdbenchLauncher(Launcher):
    def __init__(self) -> None:
        self.config = self.hydra_context = self.task_function = None

    def setup(self, *, hydra_context, task_function, config) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function
        self._cache, self._parsed, self._parser, self._groups = {}, {}, None, {}
        self.config_dir = gdbench.CONF_DIR

    def _compose(self, overrides: list) -> tuple[dict, object]:
        """A job's resolved config as plain data (without the `hydra` node), and the Hydra config
        it was composed with. Hydra's load_sweep_config re-composes from scratch (expensive per
        job on a large grid), so compose once per distinct set of config-group choices; a job's plain
        `key=value` overrides of existing keys are then set on a copy of that config's plain data
        (what Hydra would do, at a fraction of the cost); any other override (`+key`, `~key`,
        interpolations, unknown keys, hydra.*) goes through Hydra's own override machinery, so
        its behaviour and error messages are Hydra's."""
        from hydra._internal.config_loader_impl import ConfigLoaderImpl
        from hydra.core.override_parser.overrides_parser import OverridesParser
        from hydra.core.override_parser.types import OverrideType
        # Hydra's ANTLR parser is slow per override, and a grid repeats the same few strings: parse each once
        if self._parser is None:
            self._parser = OverridesParser.create()
        for o in overrides:
            if o not in self._parsed:
                self._parsed[o] = self._parser.parse_overrides([o])[0]
        parsed = [self._parsed[o] for o in overrides]
        groups = [o for o, p in zip(overrides, parsed) if self._is_group(p.key_or_group)]
        values = [p for p in parsed if not self._is_group(p.key_or_group)]
        key = tuple(groups)
        if key not in self._cache:
            full = self.hydra_context.config_loader.load_sweep_config(self.config, groups)
            raw = json.dumps(OmegaConf.to_container(
                OmegaConf.masked_copy(full, [k for k in full if k != "hydra"]), resolve=False), default=str)
            # with interpolations, a changed value can change other keys: only Hydra's path is right
            self._cache[key] = (full, None if "${" in raw else job_config(full))
        full, plain = self._cache[key]
        # a shallow copy, and copies of the dicts along each override's path only: the rest of
        # the config is shared between jobs (nothing downstream mutates a run's config), which
        # keeps a 10⁵-job grid's composition fast and its memory small
        c = dict(plain) if plain is not None else None
        for p in values:
            path = p.key_or_group.split(".")
            node = c if c is not None else {}
            for part in path[:-1]:
                child = node.get(part) if isinstance(node, dict) else None
                if isinstance(child, dict):
                    child = node[part] = dict(child)
                node = child
            value = p.value()
            simple = (c is not None and p.type == OverrideType.CHANGE and p.package is None and isinstance(node, dict)
                      and path[-1] in node and path[0] != "hydra"
                      and not (isinstance(value, str) and "${" in value)
                      and isinstance(value, (int, float, str, bool, type(None))))
            if not simple:  # Hydra's general path (and its error messages)
                cfg = copy.deepcopy(full)
                ConfigLoaderImpl._apply_overrides_to_config(values, cfg)
                return job_config(cfg), cfg
            node[path[-1]] = value  # the parsed type, as Hydra keeps it (1 stays int, 1.0 float)
        if c is None:  # no value overrides, but interpolations: resolve the composed config
            return job_config(full), full
        return c, full

    def _is_group(self, key: str) -> bool:
        if key not in self._groups:
            name = key.split("@")[0]
            self._groups[key] = "/" in name or (Path(self.config_dir) / name).is_dir()
        return self._groups[key]

    def launch(self, job_overrides, initial_job_idx):
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        try:
            with user_errors_exit():
                return self._launch(job_overrides, sweep_dir)
        finally:  # a grid that failed validation, or plan=true, leaves no results directory behind
            remove_if_unused(sweep_dir)

    def _launch(self, job_overrides, sweep_dir: Path):
        check_unlocked(sweep_dir)  # before composing every job: a second writer fails at once
        base = job_config(self.config)
        g = base.get("grid") or {}
        if not job_overrides:  # Hydra's product of the swept values is empty
            raise ValueError("the grid is empty: a swept key has no values (e.g. seed='range(0)')")
        jobs = grid.shape_grid([list(o) for o in job_overrides], tie=g.get("tie") or (),
                               exclude=g.get("exclude") or ())
        if not jobs:
            raise ValueError(f"the grid is empty after grid.tie / grid.exclude ({len(job_overrides)} jobs "
                             "before them): check their values")
        runs, returns, settings, names = [], [], None, {}
        for idx, overrides in enumerate(jobs):
            c, hydra_cfg = self._compose(list(overrides))
            mine = settings_of(c)
            if settings is None:
                settings = mine
            if mine != settings:  # one sweep = one set of sweep-level settings
                key = next(k for k in SWEEP_LEVEL if mine[k] != settings[k])
                raise ValueError(f"{key}: a sweep-level setting cannot vary within a sweep "
                                 f"({settings[key]!r} vs {mine[key]!r}); run separate sweeps")
            runs.append(grid.run_from_config(c, filter_overrides(overrides)))
            # cfg: the job's config as plain data (one batched sweep; no per-job Hydra app runs)
            if id(hydra_cfg) not in names:  # OmegaConf access is slow; jobs share a few composed configs
                names[id(hydra_cfg)] = (hydra_cfg, hydra_cfg.hydra.job.name)
            ret = JobReturn(overrides=list(overrides), cfg=c, hydra_cfg=hydra_cfg, working_dir=str(sweep_dir),
                            task_name=names[id(hydra_cfg)][1], status=JobStatus.COMPLETED)
            returns.append(ret)
        grid.assign_keys(runs)  # every run's id at once (the plan needs them too)
        for ret, run in zip(returns, runs):
            ret.return_value = run.run_id
        log.info(f"gdbench: {len(job_overrides)} Hydra jobs → {len(runs)} runs after grid.tie/exclude")
        execute(runs, settings or settings_of(base), sweep_dir, overrides=sys.argv[1:])
        return returns
