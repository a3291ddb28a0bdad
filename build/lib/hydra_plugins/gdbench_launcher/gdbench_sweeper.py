"""Registers `hydra/sweeper=gdbench`: Hydra's basic sweeper (same grid syntax, same `params`)
without its up-front validation pass. That pass composes every job from scratch (minutes for a
grid of thousands of jobs) only to throw the configs away; gdbench's launcher composes and
validates every job itself before anything is scheduled (composing once per distinct set of
config-group choices), so errors still surface first, with the job's overrides named."""
from dataclasses import dataclass
from typing import Dict, Optional

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore


class GdbenchSweeper(BasicSweeper):
    def validate_batch_is_legal(self, batch) -> None:
        """Deferred to GdbenchLauncher.launch, which composes and validates every job."""


@dataclass
class GdbenchSweeperConf:
    _target_: str = "hydra_plugins.gdbench_launcher.gdbench_sweeper.GdbenchSweeper"
    max_batch_size: Optional[int] = None
    params: Optional[Dict[str, str]] = None


ConfigStore.instance().store(group="hydra/sweeper", name="gdbench", node=GdbenchSweeperConf, provider="gdbench")
