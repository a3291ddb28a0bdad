"""`lazy_import(name)`: a stand-in for a module that imports it on its first attribute access.

Why: the driver of a sweep validates every run by instantiating its catalogue objects (models,
losses, algorithms), but it never computes with them — the compute process, forked workers or Ray
workers do. Importing torch costs seconds of CPU (see the README's speed section), so the
catalogue modules import torch lazily and the driver of `gdbench -m …` never loads it; a worker
loads it on its first tensor operation.

The stand-in is not registered in `sys.modules`, on purpose: libraries test
`sys.modules.get("torch")` to decide whether an argument could be a tensor (matplotlib does, for
every array it plots), and a lazily-loading module found there would load torch into the report
stage for nothing. On first use the stand-in imports the module the ordinary way and puts the real
module in its place in the globals of the modules that asked for it, so from then on they call
plain torch with no indirection (torch.compile and isinstance checks see plain torch). If the
module is already imported, it is returned as is. Submodules (`torch.nn.functional`) are reached
by attribute. The first access is thread-safe (an ordinary import).
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType

_STAND_INS: dict = {}  # module name → its stand-in, shared by every module that asked for it


class _StandIn(ModuleType):
    def __init__(self, name: str):
        super().__init__(name)
        self.__dict__["_owners"] = []  # the globals of the modules that hold this stand-in

    def __getattr__(self, attr: str):  # called only for what the stand-in lacks: the module's own names
        real = importlib.import_module(self.__name__)
        for owner in self._owners:  # replace the stand-in by the module, once
            for key, value in list(owner.items()):
                if value is self:
                    owner[key] = real
        return getattr(real, attr)


def lazy_import(name: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    if importlib.util.find_spec(name) is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    stand_in = _STAND_INS.setdefault(name, _StandIn(name))
    stand_in._owners.append(sys._getframe(1).f_globals)
    return stand_in
