"""memory_use and maps_file on real processes: PSS on Linux, and the USS/RSS and no-maps fallbacks forced."""

from __future__ import annotations

import sys
import time
from collections import namedtuple
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from course_utils import memory
from course_utils.memory import maps_file, memory_use
from course_utils.process import Process

# A child that holds 64 MiB of its own memory, so PSS, USS and RSS are all clearly above zero.
HOLDER = [
    sys.executable,
    "-c",
    "import time; b = bytearray(64 * 2**20); print('ready', flush=True); time.sleep(60)",
]


@pytest.fixture
def holders() -> Iterator[list[psutil.Process]]:
    procs = [Process(HOLDER) for _ in range(2)]
    try:
        for proc in procs:
            proc.start()
        deadline = time.monotonic() + 30
        while not all("ready" in proc.output() for proc in procs):  # both have allocated
            assert time.monotonic() < deadline, [proc.output() for proc in procs]
            time.sleep(0.05)
        yield [psutil.Process(proc.pid) for proc in procs]
    finally:
        for proc in procs:
            proc.stop(timeout_s=2.0)


def _without_pss(info: Any) -> Any:
    """The same figures in a tuple without `pss`, as psutil returns them on macOS and Windows."""
    fields = [f for f in info._fields if f != "pss"]
    return namedtuple("pfullmem", fields)(*(getattr(info, f) for f in fields))


def test_pss_on_linux_is_between_uss_and_rss(holders: list[psutil.Process]) -> None:
    pss = memory_use(holders)
    assert pss.measure == "PSS" and pss.note == "" and pss.processes == 2
    uss = memory_use(holders, measure="USS")
    assert uss.measure == "USS" and "lower bound" in uss.note
    rss = memory_use(holders, measure="RSS")
    assert rss.measure == "RSS" and "upper bound" in rss.note
    assert 128 < uss.total_mib <= pss.total_mib <= rss.total_mib == pss.rss_summed_mib
    assert rss.total_mib - uss.total_mib > 1, "the interpreter's shared pages count in RSS, not in USS"


def test_without_pss_the_best_other_measure_is_used(
    holders: list[psutil.Process], monkeypatch: pytest.MonkeyPatch
) -> None:
    full = psutil.Process.memory_full_info
    monkeypatch.setattr(psutil.Process, "memory_full_info", lambda self: _without_pss(full(self)))
    use = memory_use(holders)
    assert use.measure == "USS" and use.note.startswith("USS, not PSS") and use.total_mib > 128
    with pytest.raises(ValueError, match=r"measure='PSS' is not available here.*USS"):
        memory_use(holders, measure="PSS")

    def refused(self: psutil.Process) -> Any:
        raise psutil.AccessDenied(self.pid)

    monkeypatch.setattr(psutil.Process, "memory_full_info", refused)
    use = memory_use(holders)
    assert use.measure == "RSS" and use.total_mib == use.rss_summed_mib > 128


def test_ended_processes_are_left_out(holders: list[psutil.Process]) -> None:
    holders[0].kill()
    holders[0].wait(10)
    assert memory_use(holders).processes == 1


def test_maps_file_finds_a_loaded_library_or_says_it_cannot_know(monkeypatch: pytest.MonkeyPatch) -> None:
    me = [psutil.Process()]
    assert maps_file(me, "python") is True, "the interpreter maps its own executable"
    assert maps_file(me, "no-such-library") is False
    monkeypatch.setattr(memory, "MAPS_AVAILABLE", False)  # macOS
    assert maps_file(me, "python") is None
