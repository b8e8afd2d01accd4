"""What a group of processes (a server and its workers) costs in memory, measured the best way the OS allows.

Summing RSS over a server's processes counts every shared page (the Python interpreter, PyTorch, ONNX
Runtime) once per process, so it overstates what a multi-process server costs. The measures, best first:

- **PSS** (proportional set size, Linux only): each shared page is split among the processes sharing it,
  so the sum is what the server really costs.
- **USS** (unique set size: pages only that process uses; Linux, macOS, Windows): the sum leaves shared
  pages out entirely, so it is a lower bound of the cost.
- **RSS**: when the OS refuses the finer measures (another user's process), with shared pages counted once
  per process, an upper bound.

`MemoryUse.note` says in one sentence how a fallback differs from PSS. `maps_file` answers "is this
library loaded?" from the processes' memory maps, which psutil cannot list on macOS.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import psutil

__all__ = ["MAPS_AVAILABLE", "MemoryUse", "maps_file", "memory_use"]

Measure = Literal["PSS", "USS", "RSS"]
_MIB = 2**20
#: psutil lists a process's memory maps here (Linux, Windows), not on macOS.
MAPS_AVAILABLE = hasattr(psutil.Process, "memory_maps")
_NOTES: dict[Measure, str] = {
    "PSS": "",
    "USS": (
        "USS, not PSS (which only Linux reports): pages shared between the processes (the libraries each "
        "one loads) are left out, so the total is a lower bound."
    ),
    "RSS": (
        "RSS, not PSS (the OS refused the finer measures): pages shared between the processes are counted "
        "once per process, so the total is an upper bound."
    ),
}


@dataclass(frozen=True)
class MemoryUse:
    """Memory of some processes: `total_mib` sums `measure`; `note` is '' for PSS, else how it differs."""

    measure: Measure
    total_mib: float
    rss_summed_mib: float
    processes: int
    note: str


def memory_use(processes: Iterable[psutil.Process], *, measure: Measure | None = None) -> MemoryUse:
    """PSS summed over `processes` where the OS has it, else USS, else RSS (see the module docstring).

    `measure` asks for one measure; ValueError if this OS does not report it. Processes that ended while
    being measured are left out.

    >>> use = memory_use([psutil.Process()])
    >>> use.measure in ("PSS", "USS", "RSS") and 0 < use.total_mib <= use.rss_summed_mib
    True
    """
    procs = list(processes)
    rss: dict[int, int] = {}
    full: dict[int, object] = {}
    refused = False
    for proc in procs:
        try:
            rss[proc.pid] = proc.memory_info().rss
        except psutil.NoSuchProcess:
            continue
        try:
            full[proc.pid] = proc.memory_full_info()
        except psutil.NoSuchProcess:
            rss.pop(proc.pid)
        except psutil.AccessDenied:
            refused = True
    fields = {f for info in full.values() for f in getattr(info, "_fields", ())}
    available: list[Measure] = [] if refused else [m for m in ("PSS", "USS") if m.lower() in fields]
    chosen = measure or (available[0] if available else "RSS")
    if chosen != "RSS" and chosen not in available:
        raise ValueError(
            f"measure={chosen!r} is not available here: this OS or these processes report "
            f"{', '.join(available) or 'RSS only'}. Pass measure=None for the best one available."
        )
    per_process = rss if chosen == "RSS" else {pid: getattr(full[pid], chosen.lower()) for pid in rss}
    total = sum(per_process.values())
    return MemoryUse(
        measure=chosen,
        total_mib=total / _MIB,
        rss_summed_mib=sum(rss.values()) / _MIB,
        processes=len(rss),
        note=_NOTES[chosen],
    )


def maps_file(processes: Iterable[psutil.Process], fragment: str) -> bool | None:
    """Whether any of `processes` maps a file whose path contains `fragment` (e.g. 'libtorch').

    None where that cannot be known: psutil lists no memory maps on macOS, or every process refused.

    >>> maps_file([psutil.Process()], "no-such-library-anywhere") in (False, None)
    True
    """
    if not MAPS_AVAILABLE:
        return None
    known = False
    for proc in processes:
        try:
            maps = proc.memory_maps()
        except psutil.Error:
            continue
        known = True
        if any(fragment in m.path for m in maps):
            return True
    return False if known else None
