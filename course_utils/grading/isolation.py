"""Filesystem isolation: each submission runs as an unprivileged uid of its own, on read-only copies.

Why: a submission is arbitrary code. Run as the grader's own user (root in CI) it could write by absolute
path, into the other students' submissions next to it, or into MODEL_DIR, the model the next submissions
are graded against. Run as a uid that owns nothing but a fresh HOME, the kernel refuses all of that.

How (`workspace()`), only when the grader is root (only root may switch users):

- **A uid per job.** The slots are uids `first_uid .. first_uid + slots - 1`; a job claims one with an
  exclusive `flock` on `<tmp>/course-grader/slots/<uid>.lock`. Threads of `grade_all` and separate grader
  processes that share the temporary folder therefore never share a uid, and the kernel drops the lock
  of a grader that dies, so a crash never leaks a slot. Distinct uids cannot signal or write each other.
  No account is needed; a uid that has one is refused (its processes would be killed, its files swept).
- **Read-only inputs.** `<tmp>/course-grader/run-*/` (owned by the grader, 0755) holds `submission/`, a
  copy of the submission (the app's working folder and `--app-dir`), `model/` (MODEL_DIR), `no-model/`
  (empty, for the readiness check) and `home/` (HOME and TMPDIR, owned by the uid, 0700). Files are
  hardlinked when sharing the inode is safe (owned by the grader, world-readable, not group/world-writable,
  no setuid bit: the uid can read but not change it), else copied (0644/0755, model files 0444); model
  folders are 0555. Nothing of the originals is ever opened for writing, so a crash cannot change them.
- **Clean-up.** Leaving the workspace kills every process of the uid, removes what the uid left at the top
  of the shared temporary folders (/tmp, /var/tmp, /dev/shm), deletes the run folder and releases the slot.
  Claiming a slot does the same first, for what a killed grader left behind.

Otherwise (the grader is not root, the OS has no uids to switch to (Windows), or the uid cannot run the
grader's Python, e.g. a pyenv under a 0700 `/root`) the submission runs as the grader's own user, as
before, and `Workspace.note` says why for the report. `isolation=True` makes that an error instead;
`isolation=False` skips isolation. The POSIX-only modules (`fcntl`, `pwd`, `grp`) are imported only on
the isolated path, so this module imports on every OS.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from course_utils.errors import CourseUtilsError
from course_utils.grading.sandbox import SandboxUser, kill_processes_of

__all__ = [
    "DEFAULT_FIRST_UID",
    "DEFAULT_SLOTS",
    "IsolationError",
    "Workspace",
    "isolation_problem",
    "workspace",
]

DEFAULT_FIRST_UID = 61000  # below systemd's dynamic users (61184-65519) and nobody (65534)
DEFAULT_SLOTS = 32
_SHARED_TMP = ("/tmp", "/var/tmp", "/dev/shm")
_IGNORE = shutil.ignore_patterns(".git", "__pycache__", ".*_cache", ".venv")
_PROBE = "import fastapi, uvicorn"
_PROBE_ENV = {
    "PATH": "/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "HOME": "/nonexistent",
    "PYTHONDONTWRITEBYTECODE": "1",
}
_probed: dict[str, str] = {}  # python -> why the sandbox uids cannot run it ('' if they can)
_probe_lock = threading.Lock()


class IsolationError(CourseUtilsError):
    """Isolation was required or misconfigured and cannot be set up; nothing is the student's fault."""


@dataclass(frozen=True, slots=True)
class Workspace:
    """Where one grading run's app runs (working folder, MODEL_DIR, HOME) and as whom."""

    cwd: Path
    model_dir: Path
    empty_model_dir: Path
    home: Path
    user: SandboxUser | None = None
    note: str = ""  # why the run is not isolated, for the report ('' when it is)

    @property
    def app_dir(self) -> Path:
        """The `--app-dir` of uvicorn: the submission's `src`."""
        return self.cwd / "src"


@contextlib.contextmanager
def workspace(
    root: Path,
    model_dir: Path,
    *,
    python: str = sys.executable,
    isolation: bool | None = None,
    first_uid: int = DEFAULT_FIRST_UID,
    slots: int = DEFAULT_SLOTS,
) -> Iterator[Workspace]:
    """The workspace of one grading run of the submission `root`; see the module docstring.

    `isolation`: None isolates when possible (else a note), True requires it (else `IsolationError`),
    False never isolates.
    """
    with _sandbox_user(python, isolation, first_uid, slots) as (user, why):
        if user is not None:
            with _isolated(root, model_dir, user) as space:
                yield space
            return
    note = (
        f"Filesystem isolation was not available: {why}. The submission ran as the grader's own user, so it "
        "could write wherever that user may. No points depend on this."
    )
    with _as_grader(root, model_dir, note) as space:
        yield space


def isolation_problem(
    *, python: str = sys.executable, first_uid: int = DEFAULT_FIRST_UID, slots: int = DEFAULT_SLOTS
) -> str:
    """'' when `grade` would run submissions as a sandbox uid on this machine, else why not (with a fix)."""
    with _sandbox_user(python, None, first_uid, slots) as (_user, why):
        return why


def _can_switch_users() -> bool:
    """Only root on a POSIX system may start processes as another uid."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _why_cannot_switch() -> str:
    if not hasattr(os, "geteuid"):
        return (
            "this OS has no Unix user ids to switch to (Windows), so the grader cannot start the submission "
            "as another user (grade on Linux, e.g. in CI or a container, to isolate)"
        )
    return (
        f"the grader runs as uid {os.geteuid()}, not as root, so it cannot start the submission as "
        "another user (grade as root, e.g. in CI or a container, to isolate)"
    )


@contextlib.contextmanager
def _sandbox_user(
    python: str, isolation: bool | None, first_uid: int, slots: int
) -> Iterator[tuple[SandboxUser | None, str]]:
    """A claimed uid that can run `python`, held for the block; or (None, why isolation is off)."""
    if isolation is False:
        yield None, "it was turned off for this run (isolation=False, --no-isolation)"
        return
    if not _can_switch_users():
        why = _why_cannot_switch()
    else:
        with _claimed(first_uid, slots) as user:
            why = _why_user_cannot_run(python, user)
            if not why:
                yield user, ""
                return
    if isolation:
        raise IsolationError(f"Filesystem isolation is required (isolation=True) but not available: {why}.")
    yield None, why


@contextlib.contextmanager
def _claimed(first_uid: int, slots: int, *, wait_s: float = 120.0) -> Iterator[SandboxUser]:
    """The first free uid of the range, locked for the block; swept of leftovers before and after."""
    folder = _grader_folder() / "slots"
    folder.mkdir(mode=0o700, exist_ok=True)  # 0700: a sandbox uid must not be able to take a lock
    deadline = time.monotonic() + wait_s
    while True:
        for uid in range(first_uid, first_uid + slots):
            fd = _try_lock(folder / f"{uid}.lock")
            if fd is None:
                continue
            try:
                user = _unused_user(uid)
                _sweep(user.uid)  # what a killed grader left behind
                try:
                    yield user
                finally:
                    _sweep(user.uid)
            finally:
                os.close(fd)  # releases the lock
            return
        if time.monotonic() >= deadline:
            raise IsolationError(
                f"All {slots} sandbox uids ({first_uid}-{first_uid + slots - 1}) stayed in use by other "
                f"grading jobs for {wait_s:.0f}s. Grade with fewer --jobs, or pass a larger sandbox_slots."
            )
        time.sleep(0.2)  # wait for another job to release a slot


def _try_lock(path: Path) -> int | None:
    """An fd holding an exclusive flock on `path`, or None if another job holds it (fd not inherited)."""
    import fcntl  # POSIX only; reached only when the grader can switch users

    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _unused_user(uid: int) -> SandboxUser:
    """uid (and gid = uid) if no account or group has it: the sweep would kill and delete a real user's."""
    import grp  # POSIX only, as `_try_lock`
    import pwd

    fix = "pass another first uid (GradeOptions(sandbox_uid=...), --sandbox-uid)"
    try:
        account = pwd.getpwuid(uid).pw_name
    except KeyError:
        pass
    else:
        raise IsolationError(
            f"Sandbox uid {uid} belongs to the account {account!r}. The grader kills every process of a "
            f"sandbox uid and deletes its files, so the range must be unused: {fix}."
        )
    try:
        group = grp.getgrgid(uid).gr_name
    except KeyError:
        return SandboxUser(uid, uid)
    raise IsolationError(f"Sandbox gid {uid} is the group {group!r}, whose files it could reach: {fix}.")


def _grader_folder() -> Path:
    """`<tmp>/course-grader`: owned by the grader, 0755 (sandbox uids may enter, not write)."""
    folder = Path(tempfile.gettempdir()) / "course-grader"
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o755)
    info = folder.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise IsolationError(
            f"{folder} is not a folder owned by the grader and writable only by it ("
            f"{stat.filemode(info.st_mode)}, uid {info.st_uid}): remove it (rm -rf {folder}) and grade again."
        )
    os.chmod(folder, 0o755)  # a narrow umask may have made it 0700
    return folder


def _why_user_cannot_run(python: str, user: SandboxUser) -> str:
    """'' if `user` can enter the grader's folder and run `python` with the app's packages, else why."""
    blocked = _blocked(_grader_folder())
    if blocked:
        return f"the sandbox uids cannot reach the grader's temporary folder: {blocked}"
    with _probe_lock:  # one probe per Python per grader process; concurrent jobs wait for it
        if python not in _probed:
            _probed[python] = _probe(python, user)
        return _probed[python]


def _probe(python: str, user: SandboxUser) -> str:
    """Run `python -c 'import fastapi, uvicorn'` as `user`: the one test that settles it."""
    try:
        done = subprocess.run(
            [python, "-c", _PROBE],
            cwd="/",
            env=_PROBE_ENV,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
            check=False,
            **user.popen_kwargs(),
        )
    except (OSError, subprocess.SubprocessError) as exc:
        failure = f"{type(exc).__name__}: {exc}"
    else:
        if done.returncode == 0:
            return ""
        lines = (done.stdout + done.stderr).decode(errors="replace").strip().splitlines()
        failure = lines[-1] if lines else f"exit code {done.returncode}"
    reason = _blocked(Path(python).absolute().parent) or _blocked(Path(os.path.realpath(python)).parent)
    where = f": {reason}" if reason else ""
    return f"the sandbox uid {user.uid} cannot run the grader's Python {python} ({failure}){where}"


def _blocked(folder: Path) -> str:
    """'' if other users can walk into `folder` (it and every folder above it are o+x), else which is not."""
    for step in (*reversed(folder.parents), folder):
        mode = step.stat().st_mode
        if not mode & stat.S_IXOTH:
            return (
                f"{step} is {stat.filemode(mode)}, other users cannot enter it (fix: chmod o+x {step}, or "
                "keep what the submission needs outside it)"
            )
    return ""


@contextlib.contextmanager
def _as_grader(root: Path, model_dir: Path, note: str) -> Iterator[Workspace]:
    """Without isolation: the submission's own folder and model, a throwaway HOME (the grader's user)."""
    with tempfile.TemporaryDirectory(prefix="grader-home-") as home:
        empty = Path(home) / "no-model"
        empty.mkdir()
        yield Workspace(cwd=root, model_dir=model_dir, empty_model_dir=empty, home=Path(home), note=note)


@contextlib.contextmanager
def _isolated(root: Path, model_dir: Path, user: SandboxUser) -> Iterator[Workspace]:
    """A run folder with read-only copies of the submission and model and a HOME owned by `user`.

    Removed, with every process of `user`, by the sweep when `_claimed` releases the uid (`run-<uid>-*`),
    so this function needs no clean-up of its own.
    """
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", root.name)[:40]
    run = Path(tempfile.mkdtemp(prefix=f"run-{user.uid}-{slug}-", dir=_grader_folder()))
    os.chmod(run, 0o755)
    submission, model, empty, home = run / "submission", run / "model", run / "no-model", run / "home"
    _copy_readable(root, submission, read_only=False, ignore=_IGNORE)
    _copy_readable(model_dir, model, read_only=True)  # symlinks resolved: a view of its own
    empty.mkdir(mode=0o555)
    home.mkdir(mode=0o700)
    os.chown(home, user.uid, user.gid)
    yield Workspace(cwd=submission, model_dir=model, empty_model_dir=empty, home=home, user=user)


def _copy_readable(
    src: Path,
    dst: Path,
    *,
    read_only: bool,
    ignore: Callable[[str, list[str]], set[str]] | None = None,
) -> None:
    """Copy `src` to `dst` so that a sandbox uid can read it but not change it (see the module docstring).

    A submission's symlinks stay symlinks (as in its Docker build context); a read-only view (the model)
    follows them, so it does not depend on where they point.
    """
    shutil.copytree(
        src,
        dst,
        symlinks=not read_only,
        ignore=ignore,
        copy_function=functools.partial(_link_or_copy, read_only=read_only),
        ignore_dangling_symlinks=True,
    )
    for folder, _subfolders, _files in os.walk(dst, topdown=False):  # never follows symlinks
        os.chmod(folder, 0o555 if read_only else 0o755)


def _link_or_copy(src: str, dst: str, *, read_only: bool) -> str:
    """Hardlink `src` (a symlink's target) if sharing the inode gives the uid no write access, else copy."""
    info = os.stat(src)
    if not stat.S_ISREG(info.st_mode):
        return dst  # fifos, sockets, devices: nothing an app needs (and reading a fifo would block)
    if _shareable(info):
        try:
            os.link(src, dst, follow_symlinks=True)
        except OSError:
            pass  # another filesystem, or links refused: copy instead
        else:
            return dst
    shutil.copyfile(src, dst)
    executable = bool(info.st_mode & 0o111)
    os.chmod(dst, 0o444 if read_only else 0o755 if executable else 0o644)
    return dst


def _shareable(info: os.stat_result) -> bool:
    """Owned by the grader, world-readable, not group/world-writable, not setuid/setgid."""
    return (
        info.st_uid == os.geteuid()
        and bool(info.st_mode & stat.S_IROTH)
        and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH | stat.S_ISUID | stat.S_ISGID)
    )


def _sweep(uid: int) -> None:
    """Kill every process of `uid`; remove its files atop the shared temp folders and its run folders.

    Before a run: what a killed grader left. After it: this run's folder. The caller holds the uid's lock,
    so no live job uses them; the processes die first, so none still writes while they are deleted.
    """
    kill_processes_of(uid)
    for folder in dict.fromkeys((tempfile.gettempdir(), *_SHARED_TMP)):
        _remove_entries_of(uid, folder)
    for run in _grader_folder().glob(f"run-{uid}-*"):
        shutil.rmtree(run, ignore_errors=True)


def _remove_entries_of(uid: int, folder: str) -> None:
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        with contextlib.suppress(OSError):
            if entry.stat(follow_symlinks=False).st_uid != uid:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)  # does not follow symlinks inside
            else:
                os.unlink(entry.path)
