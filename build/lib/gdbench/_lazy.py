"""`lazy_import(name)`: a module that is imported on its first attribute access.

Why: the driver of a sweep validates every run by instantiating its catalogue objects (models,
losses, algorithms), but it never computes with them — the Ray workers do. Importing torch costs
seconds of CPU (see the README's speed section), so the catalogue modules import torch lazily and
the driver of `gdbench -m …` never loads it; a worker loads it on its first tensor operation.

This is the recipe of the importlib documentation ("Implementing lazy imports"): the module is
registered in `sys.modules` at once and executed by `importlib.util.LazyLoader` on first use, after
which it is the ordinary module object (so torch.compile and isinstance checks see plain torch).
If the module is already imported, it is returned as is. Submodules (`torch.nn.functional`) cannot
be made lazy this way (finding them imports the parent), so lazy modules reach them by attribute.
Before Python 3.12 the first attribute access is not thread-safe (two threads touching the module
first at the same moment could both execute it); gdbench's processes first touch torch from one
thread, and a program that uses gdbench from several threads should `import torch` up front.
"""
from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def lazy_import(name: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
