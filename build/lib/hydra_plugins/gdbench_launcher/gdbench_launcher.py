"""Registers gdbench's batching launcher with Hydra as `hydra/launcher=gdbench`. Hydra only loads
launchers defined under the hydra_plugins package, so this shim subclasses the real one
(gdbench.launcher.GdbenchLauncher) without changing it."""
from dataclasses import dataclass

from hydra.core.config_store import ConfigStore

from gdbench import launcher


class GdbenchLauncher(launcher.GdbenchLauncher):
    pass


@dataclass
class GdbenchLauncherConf:
    _target_: str = "hydra_plugins.gdbench_launcher.gdbench_launcher.GdbenchLauncher"


ConfigStore.instance().store(group="hydra/launcher", name="gdbench", node=GdbenchLauncherConf,
                             provider="gdbench")
