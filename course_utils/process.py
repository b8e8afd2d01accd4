"""Run a command as a bounded child: its own process group, output kept, HTTP readiness, TERM-then-KILL stop.

Every server and tool the course starts in a subprocess goes through `Process`: `ServerProcess` (uvicorn
apps, LitServe's script), the grader's `SandboxedApp` (a submission under limits, as another uid), the
benchmark, and `run` (wrk, locust, a one-line query). One implementation, so every caller gets the same
guarantees:

- a new session, so stopping reaches the children (uvicorn workers, LitServe's inference processes);
- stdout and stderr merged into a log file, or into an `OutputCapture` that keeps only the head and the
  tail (a submission that prints gigabytes must neither fill the disk nor hit its file-size limit);
- readiness by polling an HTTP URL for a status, bounded, failing at once when the process exits, and
  quoting the end of its output in the error;
- a bounded stop: SIGTERM to the group (and SIGCONT, so a paused group can act on it), a wait, SIGKILL.

`ProcessGroup` reads, pauses and stops a running group (the benchmark measures one server while the others
sleep). Where the OS has no process groups (Windows: no `os.killpg`/`os.getpgid`, no SIGKILL/SIGSTOP),
it falls back to the leader's process tree through psutil: terminate/kill/suspend/resume of the leader and
every descendant it has seen, as far as they still run. There a process whose parent exited before the
group was first listed is not found (it has left the tree), and terminate() is TerminateProcess, which
allows no graceful shutdown.
"""

from __future__ import annotations

import collections
import contextlib
import os
import shlex
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import httpx
import psutil

from course_utils.errors import CourseUtilsError, ServerStartError, ServerStopError

__all__ = ["OutputCapture", "Process", "ProcessGroup", "Readiness", "StartStop", "run"]

_MIB = 1024 * 1024
_POLL_S = 0.05  # readiness poll interval; the wait for an exit doubles as the sleep, so an exit shows at once
_PROBE_TIMEOUT = httpx.Timeout(1.0, connect=0.5)
DEFAULT_STOP_TIMEOUT_S = 10.0


class OutputCapture:
    """Reads a pipe in a thread and keeps the first `head_bytes` and the last `tail_bytes` of it.

    The tail is kept in whole reads (up to 64 kB each), so it may hold a little more than `tail_bytes`.

    >>> import io
    >>> capture = OutputCapture()
    >>> capture.attach(io.BytesIO(b"Uvicorn running on http://127.0.0.1:8000"))
    >>> capture.join(5)
    >>> capture.text()
    'Uvicorn running on http://127.0.0.1:8000'
    """

    def __init__(self, *, head_bytes: int = _MIB, tail_bytes: int = 2 * _MIB) -> None:
        self._head = bytearray()
        self._tail: collections.deque[bytes] = collections.deque()
        self._tail_size = 0
        self._head_limit = head_bytes
        self._tail_limit = tail_bytes
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.total_bytes = 0

    def attach(self, stream: IO[bytes]) -> None:
        """Start reading `stream` until its end (every writer gone); once per capture."""
        if self._thread is not None:
            raise RuntimeError("This OutputCapture already reads a stream: make one capture per process.")
        self._thread = threading.Thread(target=self._pump, args=(stream,), name="process-output", daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[bytes]) -> None:
        read = getattr(stream, "read1", stream.read)
        with contextlib.suppress(OSError, ValueError):
            while chunk := read(65536):
                with self._lock:
                    self.total_bytes += len(chunk)
                    room = self._head_limit - len(self._head)
                    if room > 0:
                        self._head += chunk[:room]
                        chunk = chunk[room:]
                    if chunk:
                        self._tail.append(chunk)
                        self._tail_size += len(chunk)
                        while self._tail_size - len(self._tail[0]) >= self._tail_limit:
                            self._tail_size -= len(self._tail.popleft())

    def text(self) -> str:
        """Everything kept so far, with a marker where bytes were dropped."""
        with self._lock:
            head = bytes(self._head)
            tail = b"".join(self._tail)
            dropped = self.total_bytes - len(head) - len(tail)
        middle = f"\n[... {dropped} bytes of output not kept ...]\n".encode() if dropped > 0 else b""
        return (head + middle + tail).decode("utf-8", errors="replace")

    def join(self, timeout_s: float) -> None:
        """Wait for the end of the stream (all writers gone), at most `timeout_s`."""
        if self._thread is not None:
            self._thread.join(timeout_s)


@dataclass(frozen=True, slots=True)
class Readiness:
    """What polling a URL found: ready or not, after how long, and what the process or server said last.

    `response` is the answer that made it ready (None when a connection was accepted but not answered);
    `exit_code` is set when the process ended first; `last` describes the last probe ("HTTP 503",
    "ConnectError").
    """

    ready: bool
    seconds: float
    last: str
    response: httpx.Response | None = None
    exit_code: int | None = None


#: True where the OS has process groups (Linux, macOS); else `ProcessGroup` uses the leader's process tree.
HAS_PROCESS_GROUPS = all(hasattr(os, name) for name in ("killpg", "getpgid")) and all(
    hasattr(signal, name) for name in ("SIGKILL", "SIGSTOP", "SIGCONT")
)


class ProcessGroup:
    """The processes of one group: their CPU time, pause/resume, terminate/kill.

    `pgid` is the group's id, which is its leader's pid (`start_new_session` makes it so). `by_tree=True`
    uses the leader's process tree instead of the group (the default where the OS has no groups, see the
    module docstring); it can be forced, e.g. to test that path on Linux.

    >>> group = ProcessGroup(os.getpid(), by_tree=True)  # this process and its children, on any OS
    >>> group.cpu_s() > 0
    True
    """

    def __init__(self, pgid: int, *, by_tree: bool | None = None) -> None:
        self.pgid = pgid
        self.by_tree = not HAS_PROCESS_GROUPS if by_tree is None else by_tree
        self._seen: dict[int, psutil.Process] = {}  # by_tree: every member found so far, by pid

    def processes(self) -> list[psutil.Process]:
        """Every live process of the group (the leader, its children, LitServe's worker processes...)."""
        if self.by_tree:
            return self._tree()
        found = []
        for proc in psutil.process_iter():
            with contextlib.suppress(psutil.Error, ProcessLookupError):
                if os.getpgid(proc.pid) == self.pgid:
                    found.append(proc)
        return found

    def _tree(self) -> list[psutil.Process]:
        """The leader and its descendants now, plus members seen before that still run (orphans)."""
        with contextlib.suppress(psutil.Error):
            if not self._seen:  # the first look: the leader's pid is ours while we have not reaped it
                self._seen[self.pgid] = psutil.Process(self.pgid)
        for proc in list(self._seen.values()):
            with contextlib.suppress(psutil.Error):
                for child in proc.children(recursive=True):
                    self._seen.setdefault(child.pid, child)
        # is_running() compares the creation time too, so a reused pid is not taken for a member
        return [proc for proc in self._seen.values() if _alive(proc)]

    def cpu_s(self) -> float:
        """User + system CPU seconds used so far by the live processes of the group."""
        total = 0.0
        for proc in self.processes():
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
        return total

    def _signal(self, sig_name: str, method: Callable[[psutil.Process], None]) -> None:
        """`killpg(sig_name)` on the group, or `method` on each member of the tree; gone is not an error."""
        if not self.by_tree:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pgid, getattr(signal, sig_name))
            return
        for proc in self.processes():
            with contextlib.suppress(psutil.Error):
                method(proc)

    def terminate(self) -> None:
        """Ask every process to exit (SIGTERM; TerminateProcess on Windows)."""
        self._signal("SIGTERM", psutil.Process.terminate)

    def kill(self) -> None:
        """Kill every process (SIGKILL; TerminateProcess on Windows)."""
        self._signal("SIGKILL", psutil.Process.kill)

    def pause(self) -> None:
        """Suspend every process (SIGSTOP): it uses no CPU until `resume()`."""
        self._signal("SIGSTOP", psutil.Process.suspend)

    def resume(self) -> None:
        """Continue every process (SIGCONT)."""
        self._signal("SIGCONT", psutil.Process.resume)

    def __repr__(self) -> str:
        return f"ProcessGroup(pgid={self.pgid}{', by_tree=True' if self.by_tree else ''})"


def _alive(proc: psutil.Process) -> bool:
    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


class StartStop:
    """`with obj as started:` for a class with `start() -> Self` and an idempotent `stop()`.

    `__exit__` always stops, so an exception inside the block never leaks the process or thread.
    """

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> object:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class Process(StartStop):
    """`args` in a process group of its own: start, wait for HTTP readiness, stop within a bound.

    `env` is the child's whole environment (None: this process's); `output` is a log file (appended to;
    a temporary one by default) or an `OutputCapture`. `preexec_fn` and `popen_options` (`user=`,
    `group=`, `extra_groups=`, `umask=`) go to `subprocess.Popen`: the grader applies its limits and drops
    privileges with them.

    >>> import sys
    >>> with Process([sys.executable, "-c", "print('hi')"]) as proc:
    ...     proc.wait(timeout_s=30)
    0
    >>> proc.output()
    'hi\\n'
    """

    def __init__(
        self,
        args: Sequence[str],
        *,
        cwd: Path | str | None = None,
        env: Mapping[str, str] | None = None,
        output: Path | str | OutputCapture | None = None,
        label: str | None = None,
        stop_timeout_s: float = DEFAULT_STOP_TIMEOUT_S,
        preexec_fn: Callable[[], None] | None = None,
        **popen_options: Any,
    ) -> None:
        if not args:
            raise ValueError("args is empty: pass a command and its arguments, e.g. [sys.executable, '-V'].")
        self.args = [str(arg) for arg in args]
        self.cwd = cwd
        self.env = dict(env) if env is not None else None
        self.label = label or shlex.join(self.args)
        self.stop_timeout_s = stop_timeout_s
        self.preexec_fn = preexec_fn
        self.popen_options = popen_options
        self.capture: OutputCapture | None = None
        self.log_path: Path | None = None
        if isinstance(output, OutputCapture):
            self.capture = output
        else:
            self.log_path = Path(output or Path(tempfile.mkdtemp(prefix="process-")) / "output.log")
        self.popen: subprocess.Popen[bytes] | None = None
        self._group: ProcessGroup | None = None
        self._stopped = False

    # --- starting ---------------------------------------------------------------------------------------

    def start(self) -> Self:
        """Spawn the process, returning at once (see `wait_ready`); later calls do nothing."""
        if self.popen is not None:
            return self
        stdout: Any = subprocess.PIPE
        log = None
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            stdout = log = self.log_path.open("ab")
        try:
            self.popen = subprocess.Popen(
                self.args,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                env=self.env,
                start_new_session=True,
                preexec_fn=self.preexec_fn,
                **self.popen_options,
            )
        finally:
            if log is not None:
                log.close()  # the child holds its own copy of the descriptor
        self._group = ProcessGroup(self.popen.pid)
        if self._group.by_tree:
            self._group.processes()  # records the leader while its pid is surely ours
        if self.capture is not None:
            assert self.popen.stdout is not None
            self.capture.attach(self.popen.stdout)
        return self

    @property
    def pid(self) -> int:
        """The process id, which is also its process group id (only once started)."""
        if self.popen is None:
            raise RuntimeError(f"`{self.label}` has not been started: call start() first.")
        return self.popen.pid

    @property
    def group(self) -> ProcessGroup:
        """The process group the process leads (start_new_session made its pgid its pid)."""
        if self._group is None:
            raise RuntimeError(f"`{self.label}` has not been started: call start() first.")
        return self._group

    @property
    def returncode(self) -> int | None:
        """The exit code once the process ended (negative: killed by that signal), else None."""
        return self.popen.poll() if self.popen is not None else None

    @property
    def running(self) -> bool:
        """True between `start()` and the end of the process."""
        return self.popen is not None and self.popen.poll() is None

    def wait(self, timeout_s: float) -> int:
        """The exit code, waiting at most `timeout_s`; `subprocess.TimeoutExpired` if it still runs."""
        if self.popen is None:
            raise RuntimeError(f"`{self.label}` has not been started: call start() first.")
        return self.popen.wait(timeout=timeout_s)

    # --- readiness --------------------------------------------------------------------------------------

    def probe_ready(self, url: str, *, status: int | None = 200, timeout_s: float) -> Readiness:
        """Poll GET `url` until it answers `status`, the process exits, or `timeout_s` passes.

        `status=None` waits only for the port to listen: any HTTP answer counts, and so does a connection
        that was accepted but never answered (a handler that hangs still means the server started).
        """
        if self.popen is None:
            raise RuntimeError(f"`{self.label}` has not been started: call start() first.")
        started = time.monotonic()
        deadline = started + timeout_s
        last = "no answer yet"
        with httpx.Client(timeout=_PROBE_TIMEOUT, trust_env=False) as client:
            while True:
                elapsed = time.monotonic() - started
                code = self.popen.poll()
                if code is not None:
                    return Readiness(False, elapsed, last, exit_code=code)
                try:
                    response = client.get(url)
                except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                    last = type(exc).__name__
                except httpx.HTTPError as exc:  # connected, then no (valid) answer: the port listens
                    last = type(exc).__name__
                    if status is None:
                        return Readiness(True, elapsed, last)
                else:
                    last = f"HTTP {response.status_code}"
                    if status is None or response.status_code == status:
                        return Readiness(True, elapsed, last, response=response)
                if time.monotonic() >= deadline:
                    return Readiness(False, time.monotonic() - started, last)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.popen.wait(timeout=_POLL_S)

    def wait_ready(self, url: str, *, status: int = 200, timeout_s: float) -> httpx.Response:
        """`probe_ready` returning the answer; if not ready: stop, and ServerStartError with the output."""
        found = self.probe_ready(url, status=status, timeout_s=timeout_s)
        if found.ready and found.response is not None:
            return found.response
        if found.exit_code is not None:
            what = f"exited with code {found.exit_code} before answering {status} on {url}"
        else:
            what = f"did not answer {status} on {url} within {timeout_s:.1f}s (last: {found.last})"
        self.stop()
        raise ServerStartError(
            f"`{self.label}` {what}. Fix the error in its output and start again; "
            f"output ({self.log_path or 'captured'}):\n{self.tail(30)}"
        )

    # --- output -----------------------------------------------------------------------------------------

    def output(self) -> str:
        """Everything kept of the process's stdout+stderr so far ('' before it wrote anything)."""
        if self.capture is not None:
            return self.capture.text()
        assert self.log_path is not None
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, n_lines: int = 40) -> str:
        """The last `n_lines` of the output, for error messages."""
        return "\n".join(self.output().rstrip("\n").splitlines()[-n_lines:])

    # --- stopping ---------------------------------------------------------------------------------------

    def terminate_group(self, timeout_s: float | None = None) -> int | None:
        """SIGTERM the group, wait up to `timeout_s`, then SIGKILL it; the exit code (None if never started).

        The group gets SIGKILL even when the leader ended on SIGTERM: its children may live on.
        """
        popen = self.popen
        if popen is None:
            return None
        if self._stopped:  # the group is gone: never signal its id again (a new group might reuse it)
            return popen.returncode
        timeout_s = self.stop_timeout_s if timeout_s is None else timeout_s
        group = self.group  # a group id is valid until the leader is reaped; a tree remembers its members
        if popen.poll() is None:
            group.terminate()
            group.resume()  # a paused (SIGSTOPped) process acts on SIGTERM only once continued
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(timeout=timeout_s)
        # Once the leader is reaped its id stays ours only while members of its group live on (Linux never
        # reuses a pid that is still a process group's id), so the group is killed only then.
        if popen.poll() is None or group.processes():
            group.kill()
        try:
            code = popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise ServerStopError(
                f"`{self.label}` (pid {popen.pid}) survived SIGKILL for {timeout_s:.1f}s: it is stuck in the "
                "kernel (uninterruptible I/O). See `ps -o stat,wchan -p PID`; it cannot be stopped from here."
            ) from None
        self._stopped = True
        return code

    def close_output(self, timeout_s: float | None = None) -> None:
        """Wait (bounded) for the end of a captured output and release the pipe; nothing to do for a file."""
        if self.capture is not None:
            self.capture.join(self.stop_timeout_s if timeout_s is None else timeout_s)
        if self.popen is not None and self.popen.stdout is not None:
            self.popen.stdout.close()

    def stop(self, timeout_s: float | None = None) -> int | None:
        """`terminate_group`, then `close_output`; idempotent. The exit code (None if never started)."""
        code = self.terminate_group(timeout_s)
        self.close_output(timeout_s)
        return code

    def __repr__(self) -> str:
        state = "not started" if self.popen is None else f"pid {self.popen.pid}"
        if self.popen is not None and self.popen.poll() is not None:
            state = f"exited {self.popen.returncode}"
        return f"Process({self.label!r}, {state})"


def run(
    args: Sequence[str],
    *,
    timeout_s: float,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    label: str | None = None,
    ok_codes: Sequence[int] = (0,),
) -> str:
    """Run `args` to completion within `timeout_s` (else stop its group) and return its output.

    >>> import sys
    >>> run([sys.executable, "-c", "print(6 * 7)"], timeout_s=30)
    '42\\n'
    """
    with (
        tempfile.TemporaryDirectory(prefix="process-") as folder,
        Process(
            args, cwd=cwd, env=env, label=label, output=Path(folder) / "output.log", stop_timeout_s=5.0
        ) as proc,
    ):
        try:
            code = proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.stop()
            raise CourseUtilsError(
                f"`{proc.label}` did not finish within {timeout_s:.0f}s and was stopped: it hangs or has too "
                f"much to do. Give it less work or more time (timeout_s). Its output:\n{proc.tail()}"
            ) from None
        if code not in ok_codes:
            raise CourseUtilsError(
                f"`{proc.label}` failed with exit code {code}. Fix what its output says:\n{proc.tail()}"
            )
        return proc.output()
