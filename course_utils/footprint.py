"""What a way of serving costs besides its latency: processes, memory and idle CPU, and added packages.

Two servers that answer alike can cost very differently to run and to ship. `measure_footprint` reads a
running server's process group: how many processes, their memory (PSS where the OS has it, see
`course_utils.memory`), the CPU they burn while nobody sends requests, and whether PyTorch is loaded.
`added_packages` answers "what does this framework add to my image?": the installed packages it requires,
transitively, minus those the service needs anyway; `installed_mib` weighs them on disk.

Example:
    >>> "packaging" in requirement_tree("packaging")
    True
    >>> added_packages("packaging", beyond=["packaging"])
    []
"""

from __future__ import annotations

import importlib.metadata
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from course_utils.memory import maps_file, memory_use

if TYPE_CHECKING:
    from course_utils.process import ProcessGroup

__all__ = ["ServerFootprint", "added_packages", "installed_mib", "measure_footprint", "requirement_tree"]

_MIB = 2**20


def _distribution(name: str) -> importlib.metadata.Distribution:
    try:
        return importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError as exc:
        raise ValueError(
            f"Package {name!r} is not installed in {sys.prefix!r}, so its requirements and files are "
            "unknown: install it, or run from the course's .venv."
        ) from exc


def requirement_tree(name: str, extras: Iterable[str] = ()) -> frozenset[str]:
    """Normalised names of the installed package `name` and of everything it requires, transitively.

    Requirements under an environment marker count only when the marker holds here (this Python, this
    OS) for `extras` or for no extra; a requirement that is not installed raises ValueError.

    >>> sorted(requirement_tree("Packaging"))
    ['packaging']
    """
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [(name, frozenset(extras))]
    while todo:
        package, wanted = todo.pop()
        key = (canonicalize_name(package), wanted)
        if key in seen:
            continue
        seen.add(key)
        for line in _distribution(package).requires or []:
            req = Requirement(line)
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in wanted or {""}):
                todo.append((req.name, frozenset(req.extras)))
    return frozenset(package for package, _ in seen)


def added_packages(framework: str, *, beyond: Iterable[str]) -> list[str]:
    """The packages `framework` brings (itself included) that the packages `beyond` do not, sorted.

    >>> added_packages("packaging", beyond=[])
    ['packaging']
    """
    already: set[str] = set().union(*(requirement_tree(name) for name in beyond))
    return sorted(requirement_tree(framework) - already)


def installed_mib(names: Iterable[str]) -> float:
    """Disk size (MiB) of the installed files of the packages `names`, as their RECORD lists them."""
    total = 0
    for name in names:
        for file in _distribution(name).files or []:
            total += file.size or 0
    return total / _MIB


@dataclass(frozen=True)
class ServerFootprint:
    """A running server's processes, memory (`measure`: PSS, USS or RSS), idle CPU and PyTorch use.

    `torch_loaded` is None where it cannot be known (psutil lists no memory maps on macOS); `note` says
    how a memory measure other than PSS differs (see `course_utils.memory.MemoryUse.note`).
    """

    processes: int
    measure: str
    memory_mib: float
    rss_summed_mib: float
    idle_cpu_cores: float
    torch_loaded: bool | None
    note: str

    def row(self) -> dict[str, object]:
        """The footprint as one table column: rounded values under labels that carry their units."""
        return {
            "processes": self.processes,
            f"memory, {self.measure} (MB)": round(self.memory_mib),
            "memory, RSS summed (MB)": round(self.rss_summed_mib),
            "idle CPU (cores)": round(self.idle_cpu_cores, 3),
            "PyTorch loaded": self.torch_loaded,
        }


def measure_footprint(group: ProcessGroup, *, idle_s: float = 1.0) -> ServerFootprint:
    """Measure `group` (e.g. `ServerProcess.group`) while it is idle for `idle_s` seconds.

    Send it no requests meanwhile: the CPU used in that window is what the server burns doing nothing
    (a polling loop shows up here; an idle event loop is near 0).
    """
    if idle_s <= 0:
        raise ValueError(f"idle_s={idle_s!r} must be > 0: idle CPU is measured over that window (try 1.0).")
    processes, cpu_before = group.processes(), group.cpu_s()
    time.sleep(idle_s)  # the measurement window itself, not a wait for readiness
    cpu_cores = (group.cpu_s() - cpu_before) / idle_s
    memory = memory_use(processes)
    return ServerFootprint(
        processes=memory.processes,
        measure=memory.measure,
        memory_mib=memory.total_mib,
        rss_summed_mib=memory.rss_summed_mib,
        idle_cpu_cores=max(cpu_cores, 0.0),
        torch_loaded=maps_file(processes, "libtorch"),
        note=memory.note,
    )
