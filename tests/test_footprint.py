"""requirement_tree, added_packages and installed_mib on a fake set of installed packages, and
measure_footprint on a real child process and on a scripted process group."""

from __future__ import annotations

import doctest
import importlib.metadata
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import psutil
import pytest

from course_utils import footprint
from course_utils.footprint import (
    ServerFootprint,
    added_packages,
    installed_mib,
    measure_footprint,
    requirement_tree,
)
from course_utils.process import Process


@dataclass
class FakeFile:
    size: int | None


@dataclass
class FakeDistribution:
    requires: list[str] | None
    files: list[FakeFile] = field(default_factory=list)


#: A small world of installed packages: a cycle, an extra, markers that hold and that do not.
INSTALLED = {
    "framework": FakeDistribution(
        ["Web_Server>=1", "queue-lib[fast]", 'old-backport; python_version < "3.0"'],
        [FakeFile(3 * 2**20), FakeFile(None)],
    ),
    "web-server": FakeDistribution(["common", 'speedups; extra == "fast"'], [FakeFile(2**20)]),
    "queue-lib": FakeDistribution(['native-queue; extra == "fast"', "common"], [FakeFile(2**19)]),
    "native-queue": FakeDistribution(["queue-lib"], [FakeFile(2**19)]),  # back to its parent: a cycle
    "common": FakeDistribution(None, [FakeFile(2**20)]),
}


def fake_distribution(name: str) -> FakeDistribution:
    key = name.lower().replace("_", "-")
    if key not in INSTALLED:
        raise ValueError(f"Package {name!r} is not installed")
    return INSTALLED[key]


@pytest.fixture
def fake_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(footprint, "_distribution", fake_distribution)


@pytest.mark.usefixtures("fake_packages")
def test_requirement_tree_follows_requirements_extras_and_markers() -> None:
    assert requirement_tree("framework") == {"framework", "web-server", "queue-lib", "native-queue", "common"}
    # web-server's own extra is not asked for, and the backport's marker does not hold on Python 3.
    assert requirement_tree("web-server") == {"web-server", "common"}


@pytest.mark.usefixtures("fake_packages")
def test_requirement_tree_raises_when_a_requirement_is_not_installed() -> None:
    # With the extra asked for, web-server needs `speedups`, which is not installed.
    with pytest.raises(ValueError, match="speedups"):
        requirement_tree("web-server", extras=["fast"])


@pytest.mark.usefixtures("fake_packages")
def test_added_packages_and_their_size() -> None:
    assert added_packages("framework", beyond=["web-server"]) == ["framework", "native-queue", "queue-lib"]
    assert added_packages("framework", beyond=["framework"]) == []
    assert installed_mib(["framework", "common"]) == pytest.approx(4.0)  # a file without a size counts 0
    assert installed_mib([]) == 0.0


def test_real_packages_and_a_clear_error_for_a_missing_one() -> None:
    tree = requirement_tree("litserve")
    assert {"litserve", "fastapi", "uvicorn", "pyzmq", "starlette"} <= tree
    assert "litserve" not in requirement_tree("fastapi")
    assert "pyzmq" in added_packages("litserve", beyond=["fastapi", "uvicorn"])
    assert installed_mib(["litserve"]) > 0
    with pytest.raises(ValueError, match="'no-such-package-here' is not installed"):
        requirement_tree("no-such-package-here")
    assert importlib.metadata.version("litserve")  # the pinned framework the notebook measures


@dataclass
class ScriptedGroup:
    """A process group whose CPU time advances by `cpu_per_call` seconds on every reading."""

    cpu_per_call: float
    readings: int = 0

    def processes(self) -> list[psutil.Process]:
        return [psutil.Process()]

    def cpu_s(self) -> float:
        self.readings += 1
        return self.readings * self.cpu_per_call


def test_idle_cpu_is_the_cpu_time_used_over_the_window() -> None:
    result = measure_footprint(ScriptedGroup(cpu_per_call=0.05), idle_s=0.1)  # type: ignore[arg-type]
    assert result.idle_cpu_cores == pytest.approx(0.5)
    assert result.processes == 1
    with pytest.raises(ValueError, match="idle_s=0 must be > 0"):
        measure_footprint(ScriptedGroup(cpu_per_call=0.0), idle_s=0)  # type: ignore[arg-type]


@pytest.fixture
def sleeper() -> Iterator[Process]:
    proc = Process([sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(60)"])
    try:
        proc.start()
        deadline = time.monotonic() + 30
        while "ready" not in proc.output():
            assert time.monotonic() < deadline, proc.output()
            time.sleep(0.05)
        yield proc
    finally:
        proc.stop(timeout_s=2.0)


def test_a_sleeping_child_is_idle_small_and_without_pytorch(sleeper: Process) -> None:
    result = measure_footprint(sleeper.group, idle_s=0.3)
    assert isinstance(result, ServerFootprint)
    assert result.processes == 1
    assert 0 < result.memory_mib <= result.rss_summed_mib < 200
    assert result.idle_cpu_cores < 0.2
    assert result.torch_loaded in (False, None)  # None only where psutil lists no memory maps
    row = result.row()
    assert row["processes"] == 1 and row["PyTorch loaded"] is result.torch_loaded
    assert f"memory, {result.measure} (MB)" in row


def test_doctests() -> None:
    assert doctest.testmod(footprint).failed == 0
