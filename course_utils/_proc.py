"""Private helpers for bounded subprocesses: own process group, output to a file, TERM then KILL."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from course_utils.errors import CourseUtilsError

__all__ = ["run_bounded", "spawn", "stop_process_group", "tail"]


def spawn(
    args: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.Popen[bytes]:
    """Start `args` in its own process group (a new session), stdout and stderr appended to `log_path`.

    >>> import sys, tempfile
    >>> log = Path(tempfile.mkdtemp()) / "out.log"
    >>> proc = spawn([sys.executable, "-c", "print('hi')"], log_path=log)
    >>> proc.wait(timeout=30)
    0
    >>> "hi" in log.read_text()
    True
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as out:
        return subprocess.Popen(
            list(args),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=preexec_fn,
        )


def stop_process_group(proc: subprocess.Popen[bytes], *, timeout_s: float) -> int:
    """SIGTERM the process group of `proc`, wait up to `timeout_s`, then SIGKILL it; return the exit code.

    >>> import sys, tempfile
    >>> proc = spawn([sys.executable, "-c", "import time; time.sleep(60)"],
    ...              log_path=Path(tempfile.mkdtemp()) / "out.log")
    >>> stop_process_group(proc, timeout_s=5) != 0
    True
    """
    if proc.poll() is None:
        _signal_group(proc, signal.SIGTERM)
        try:
            return proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            pass
    # The leader may be gone while children of its group live on: always finish the group.
    _signal_group(proc, signal.SIGKILL)
    return proc.wait(timeout=timeout_s)


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    # start_new_session=True made the child a group leader: its pgid is its pid, valid until reaped.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def tail(path: Path, *, n_lines: int = 40) -> str:
    """The last `n_lines` of a text file ('' if it does not exist), for error messages.

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "log.txt"
    >>> _ = p.write_text("a\\nb\\nc\\n")
    >>> tail(p, n_lines=2)
    'b\\nc'
    """
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip("\n").splitlines()[-n_lines:])


def run_bounded(args: Sequence[str], *, timeout_s: float, what: str, ok_codes: Sequence[int] = (0,)) -> str:
    """Run `args` to completion within `timeout_s` (else stop its group) and return its output.

    >>> import sys
    >>> run_bounded([sys.executable, "-c", "print(6 * 7)"], timeout_s=30, what="python")
    '42\\n'
    """
    log = Path(tempfile.mkdtemp(prefix=f"{what}-")) / "output.log"
    proc = spawn(args, log_path=log)
    try:
        code = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        stop_process_group(proc, timeout_s=5.0)
        raise CourseUtilsError(
            f"{what} did not finish within {timeout_s:.0f}s and was stopped. Use a shorter duration_s. "
            f"Its output:\n{tail(log)}"
        ) from None
    if code not in ok_codes:
        raise CourseUtilsError(f"{what} failed with exit code {code}. Fix what its output says:\n{tail(log)}")
    return log.read_text(errors="replace")
