"""Sources of the course notebooks, one module per notebook (each exposes `NAME` and `cells()`).

`tools/build_notebooks.py` turns them into the nbgrader source notebooks `solutions/NN_*.ipynb` and the
student release `notebooks/NN_*.ipynb`. Every module named `nNN_*.py` here is a notebook, in NN order, so
adding a notebook means adding one module.
"""

import importlib
import pkgutil
from pathlib import Path
from types import ModuleType


def _discover() -> tuple[ModuleType, ...]:
    names = sorted(
        info.name for info in pkgutil.iter_modules([str(Path(__file__).parent)]) if info.name[:1] == "n"
    )
    return tuple(importlib.import_module(f"nbsrc.{name}") for name in names)


NOTEBOOKS = _discover()

__all__ = ["NOTEBOOKS"]
