"""Run a submission's app in a sandboxed process: own session, resource limits, loopback, bounded output.

Why a process and not an import: student code can hang, crash, fork, print without end or return objects
that lie about equality. Imported into the grader it could take the grader down or fool it; in its own
process group the grader talks to it only over HTTP on 127.0.0.1 and kills the whole group afterwards.

Limits (set in the child before `exec`, via `resource.setrlimit`, soft and hard alike so the child cannot
raise them again): address space, CPU seconds, open files, file size, no core dumps, and the process count.
A limit the kernel refuses is left unset rather than failing the start (macOS may refuse the address-space
limit). Windows has no `resource` module and no `preexec_fn`: there the app runs without limits (only the
grader's timeouts bound it) and `SandboxedApp.note` says so for the report.
RLIMIT_NPROC counts every process of the child's user and does not apply to root: with a `SandboxUser`
(a uid of its own, see `isolation.py`) it is exactly `Limits.processes`; as the grader's own non-root user
it is that user's current count + `Limits.processes`; as root it is not set and the kill sweep has to do.
Every process of a run carries a marker in its environment, so the sweep also finds children that left
the process group (`setsid`, double fork); with a `SandboxUser` the sweep also kills every process of that
uid, which catches a process that rewrote its environment too.

The process is a `course_utils.process.Process` (own session, bounded stop, HTTP readiness). Its output
(stdout and stderr, merged) is read through a pipe into an `OutputCapture` (head and tail kept), so a
submission that prints gigabytes neither fills the disk nor blocks: it is truncated in the report.
"""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import psutil

from course_utils.errors import ServerStopError
from course_utils.process import OutputCapture, Process, StartStop

try:
    import resource
except ImportError:  # Windows
    RLIMITS_AVAILABLE = False
else:
    RLIMITS_AVAILABLE = True

__all__ = [
    "LIMITS_NOTE",
    "RLIMITS_AVAILABLE",
    "Limits",
    "SandboxUser",
    "SandboxedApp",
    "StartOutcome",
    "kill_processes_of",
]

#: The report's note where `Limits` cannot be applied.
LIMITS_NOTE = (
    "Resource limits (memory, CPU time, open files, file size, processes) were not applied: this OS has no "
    "setrlimit (Windows), so only the grader's timeouts bounded the app. No points depend on this."
)

_MARKER_VAR = "COURSE_GRADER_RUN"
_MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class SandboxUser:
    """An unprivileged uid/gid (no account needed) that owns nothing but the run's HOME."""

    uid: int
    gid: int

    def popen_kwargs(self) -> dict[str, Any]:
        """`subprocess.Popen` arguments that start the child as this user, with no supplementary groups.

        `umask` 077 keeps what it writes to shared places (/tmp) private from the other sandbox uids.
        """
        return {"user": self.uid, "group": self.gid, "extra_groups": [], "umask": 0o077}


def kill_processes_of(uid: int, *, rounds: int = 10) -> None:
    """Kill every process whose real or effective uid is `uid`: stop them all first, so none can fork.

    Only for a sandbox uid: it spares nothing of that user. Zombies are skipped (already dead).
    """
    if uid in (0, os.getuid(), os.geteuid()):
        raise ValueError(f"uid={uid!r} is root or the grader's own user: pass a sandbox uid.")
    for _ in range(rounds):
        procs = _live_processes_of(uid)
        if not procs:
            return
        for proc in procs:  # a stopped process cannot fork while the others are being killed
            with contextlib.suppress(psutil.Error):
                proc.suspend()
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs(procs, timeout=1.0)


def _live_processes_of(uid: int) -> list[psutil.Process]:
    return [proc for proc in psutil.process_iter(["uids", "status"]) if _is_live_process_of(proc, uid)]


def _is_live_process_of(proc: psutil.Process, uid: int) -> bool:
    """Whether `proc` (from `process_iter(["uids", "status"])`) runs as `uid` and is not a zombie."""
    with contextlib.suppress(TypeError):  # info["uids"] is None where it could not be read
        uids = proc.info["uids"]
        return uid in (uids.real, uids.effective) and proc.info["status"] != psutil.STATUS_ZOMBIE
    return False


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource limits for one submission process (and its children, which inherit them)."""

    memory_mb: int = 4096
    cpu_s: int = 300
    open_files: int = 1024
    file_size_mb: int = 256
    processes: int = 256

    def preexec(self, *, own_user: bool = False) -> Callable[[], None] | None:
        """A `preexec_fn` that applies these limits in the child between fork and exec; None without rlimits.

        `own_user`: the child runs as a uid of its own (`SandboxUser`), so its process count starts at 0.
        """
        if not RLIMITS_AVAILABLE:
            return None
        nproc = self.processes if own_user else _nproc_limit(self.processes)
        settings = [
            (resource.RLIMIT_AS, self.memory_mb * _MIB),
            (resource.RLIMIT_CPU, self.cpu_s),
            (resource.RLIMIT_NOFILE, self.open_files),
            (resource.RLIMIT_FSIZE, self.file_size_mb * _MIB),
            (resource.RLIMIT_CORE, 0),
        ]
        if nproc is not None:
            settings.append((resource.RLIMIT_NPROC, nproc))

        def apply() -> (
            None
        ):  # runs in the forked child: only setrlimit calls, no locks, no allocation-heavy work
            for which, value in settings:
                _soft, hard = resource.getrlimit(which)
                capped = value if hard == resource.RLIM_INFINITY else min(value, hard)
                with contextlib.suppress(ValueError, OSError):  # refused by this kernel: left unset
                    resource.setrlimit(which, (capped, capped))  # hard too: a non-root child cannot undo it

        return apply


def _nproc_limit(extra: int) -> int | None:
    """RLIMIT_NPROC for a child: the user's current process count + `extra`; None as root (not enforced)."""
    if os.geteuid() == 0:
        return None
    uid = os.getuid()
    mine = 0
    for proc in psutil.process_iter(["uids", "num_threads"]):
        with contextlib.suppress(psutil.Error, TypeError):
            if proc.info["uids"].real == uid:
                mine += int(proc.info["num_threads"] or 1)
    return mine + extra


@dataclass(frozen=True, slots=True)
class StartOutcome:
    """Whether the app answered HTTP on the grader's port, how long it took, and why not."""

    ok: bool
    seconds: float
    detail: str


class SandboxedApp(StartStop):
    """`python -m uvicorn app:app --app-dir SRC --host 127.0.0.1 --port PORT` under `Limits`.

    Use as a context manager: leaving it kills the process group and every marked straggler (and, with a
    `user`, every process of that uid).
    """

    def __init__(
        self,
        app_dir: Path,
        *,
        port: int,
        env: dict[str, str],
        cwd: Path,
        limits: Limits | None = None,
        python: str = sys.executable,
        app: str = "app:app",
        user: SandboxUser | None = None,
    ) -> None:
        self.app_dir = app_dir
        self.port = port
        self.cwd = cwd
        self.limits = limits or Limits()
        self.user = user
        self.marker = uuid.uuid4().hex
        self.env = {**env, _MARKER_VAR: self.marker}
        self.app = app
        self.args = [python, "-m", "uvicorn", app, "--app-dir", str(app_dir)]
        self.args += ["--host", "127.0.0.1", "--port", str(port)]
        self.url = f"http://127.0.0.1:{port}"
        self._process: Process | None = None
        self._stopped = False

    def start(self) -> Self:
        """Spawn the process (returns at once; use `wait_until_answering`)."""
        self._process = Process(
            self.args,
            cwd=self.cwd,
            env=self.env,
            output=OutputCapture(),
            label=f"uvicorn {self.app} --app-dir {self.app_dir}",
            preexec_fn=self.limits.preexec(own_user=self.user is not None),
            **(self.user.popen_kwargs() if self.user is not None else {}),
        ).start()
        return self

    @property
    def note(self) -> str:
        """What the report should say about this run's limits: LIMITS_NOTE where none apply, else ''."""
        return "" if RLIMITS_AVAILABLE else LIMITS_NOTE

    def output(self) -> str:
        """The captured stdout+stderr so far (bounded)."""
        return self._process.output() if self._process is not None else ""

    @property
    def exit_code(self) -> int | None:
        """The exit code once the main process ended, else None."""
        return self._process.returncode if self._process is not None else None

    def wait_until_answering(self, timeout_s: float) -> StartOutcome:
        """Poll the port until any HTTP answer (any status) or a read timeout after connecting.

        Any answer counts: whether /health is *correct* is a separate check, and a server that accepts the
        connection but hangs in the handler has started too (its handlers are graded later).
        """
        if self._process is None:
            raise RuntimeError("The app has not been started: use `with SandboxedApp(...) as app:`.")
        found = self._process.probe_ready(self.url + "/health", status=None, timeout_s=timeout_s)
        if found.exit_code is not None:
            detail = f"the process exited with code {found.exit_code} after {found.seconds:.1f}s"
            return StartOutcome(False, found.seconds, detail)
        if not found.ready:
            return StartOutcome(False, timeout_s, self._why_silent(timeout_s))
        if found.response is None:  # connected, then the handler hung or broke the protocol: it listens
            return StartOutcome(True, found.seconds, f"accepted connections after {found.seconds:.1f}s")
        return StartOutcome(True, found.seconds, f"answered HTTP after {found.seconds:.1f}s")

    def _why_silent(self, timeout_s: float) -> str:
        ports = sorted(self.listening_ports() - {self.port})
        if ports:
            return (
                f"nothing answered on the grader's port {self.port} within {timeout_s:.0f}s, but the app "
                f"listens on {', '.join(map(str, ports))}: it ignores --port (a hard-coded port, or "
                "uvicorn.run at import)"
            )
        return (
            f"nothing answered on port {self.port} within {timeout_s:.0f}s: the import or the startup blocks "
            "(an endless loop, a download, or a very slow model load)"
        )

    def listening_ports(self) -> set[int]:
        """TCP ports on which any process of this run listens."""
        pids = {p.pid for p in self._processes()}
        ports: set[int] = set()
        with contextlib.suppress(psutil.Error, OSError):
            for conn in psutil.net_connections(kind="tcp"):
                if conn.pid in pids and conn.status == psutil.CONN_LISTEN and conn.laddr:
                    ports.add(conn.laddr.port)
        return ports

    def cpu_times(self) -> dict[tuple[int, float], float]:
        """CPU seconds (user + system, reaped children included) of every live process of this run.

        Keyed by (pid, creation time), so a reused pid is a new process: `readiness.IdleWatch` turns two
        of these into the CPU used in between, which is how the grader tells an app that is still loading
        from one that is idle.
        """
        times: dict[tuple[int, float], float] = {}
        for proc in self._processes():
            with contextlib.suppress(psutil.Error, OSError):
                cpu = proc.cpu_times()
                times[proc.pid, proc.create_time()] = (
                    cpu.user + cpu.system + cpu.children_user + cpu.children_system
                )
        return times

    def _processes(self) -> list[psutil.Process]:
        """Every live process of this run: those carrying its marker (the main process, its group, escaped
        children) and, when the app runs as a sandbox uid, every process of that uid (the uid is this run's
        alone).

        Why both: the marker is read from a process's environment, which the kernel shows to root only
        with CAP_SYS_PTRACE once the process belongs to another uid. In a container (Gradescope's) root
        lacks it, so only the uid finds the app there.
        """
        found = []
        for proc in psutil.process_iter(["uids", "status"]):  # one pass over the machine's processes
            with contextlib.suppress(psutil.Error, OSError):
                if (self.user is not None and _is_live_process_of(proc, self.user.uid)) or (
                    proc.environ().get(_MARKER_VAR) == self.marker
                ):
                    found.append(proc)
        return found

    def stop(self, timeout_s: float = 3.0) -> None:
        """Kill the process group, then any marked process that escaped it; idempotent."""
        process = self._process
        if process is None or self._stopped:
            return
        with contextlib.suppress(ServerStopError):
            process.terminate_group(timeout_s)
        for _ in range(3):  # a fork loop may spawn while we kill: sweep until nothing is left
            stragglers = self._processes()
            if not stragglers:
                break
            for straggler in stragglers:
                with contextlib.suppress(psutil.Error):
                    straggler.kill()
            psutil.wait_procs(stragglers, timeout=1.0)
        if self.user is not None:  # also what rewrote its environment (and so lost the marker)
            kill_processes_of(self.user.uid)
        process.close_output(timeout_s)  # every writer is gone now, so the capture reaches the end
        self._stopped = True  # the output stays readable
