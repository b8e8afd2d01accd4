"""The pieces of tests/test_class_workflow.py: students as Unix users, their work, what it must score.

A class is simulated the way it really happens on a shared server: the instructor (root, in CI) runs
nbgrader in a private course root, and each student is a separate Unix user with their own home folder
and nbgrader config, who reaches the course only through the exchange folder. nbgrader names a
submission by the uid that ran `nbgrader submit`, and `collect` checks the files' owner, so three users
are the only honest way to test the exchange.
"""

from __future__ import annotations

import copy
import csv
import os
import pwd
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from nbformat.notebooknode import NotebookNode

from tools import build_notebooks

ASSIGNMENT = build_notebooks.ASSIGNMENT
NBGRADER = str(build_notebooks.BIN / "nbgrader")
#: Marks the accounts this module creates, so a run can tell its own leftovers from a real user's account.
ACCOUNT_COMMENT = "nbgrader class workflow test (tests/test_class_workflow.py)"
SOLUTION_MARKER_RE = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n?", re.MULTILINE)
#: The graded cell whose score is the capstone grader's fraction of 100, times the cell's points.
CAPSTONE_CELL = "capstone-grade"


def exercise(grade_id: str) -> str:
    """`ex2` of `ex2-psi-tests`, `capstone` of `capstone-grade`: the graded part a cell belongs to."""
    return grade_id.split("-")[0]


def graded_points(nb: NotebookNode) -> dict[str, float]:
    """{grade_id: points} of the notebook's autograded (tests) cells, from their nbgrader metadata."""
    return {
        cell.metadata["nbgrader"]["grade_id"]: float(cell.metadata["nbgrader"]["points"])
        for cell in nb.cells
        if cell.metadata.get("nbgrader", {}).get("grade")
    }


def answer(source_cell: str) -> str:
    """What a student who solved the exercise has in the cell: the solution without nbgrader's markers."""
    return SOLUTION_MARKER_RE.sub("", source_cell)


def fill_in(release: NotebookNode, source: NotebookNode, solved: frozenset[str] | None) -> NotebookNode:
    """The release notebook with the answer cells of the `solved` exercises (None: all) filled in.

    A student works in the release: the answer cells are replaced by the solution from the source
    notebook (same grade_id), everything else (instructions, locked cells, the stubs of unsolved
    exercises) stays as released.
    """
    solutions = {
        cell.metadata["nbgrader"]["grade_id"]: cell.source
        for cell in source.cells
        if cell.metadata.get("nbgrader", {}).get("solution")
    }
    work = copy.deepcopy(release)
    for cell in work.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in solutions and (solved is None or exercise(grade_id) in solved):
            cell.source = answer(solutions[grade_id])
    return work


@dataclass(frozen=True)
class Student:
    """One student of the simulated class: what they solve and which capstone they hand in."""

    name: str
    first_name: str
    last_name: str
    #: Exercise keys (`ex1`, ...) whose answer cells they fill in; None for every exercise; empty for none.
    solves: frozenset[str] | None
    #: "wheat" (a correct capstone written unlike the reference), "starter" or "none".
    capstone: str

    @property
    def email(self) -> str:
        return f"{self.name}@example.org"


def expected_cell_scores(
    sources: dict[str, NotebookNode], student: Student, capstone_fraction: float
) -> dict[str, dict[str, float]]:
    """{notebook: {grade_id: score}} the student must get.

    A solved exercise earns every point of its graded cells, an unsolved one none (the release's stubs
    raise NotImplementedError; tests/test_notebooks.py proves the untouched release earns nothing, and
    tests/test_notebook_variants.py that no exercise's score depends on another's answer). The capstone
    cell earns the grader's fraction of 100 times its points, rounded as `nbgrader_score` rounds.
    """
    out: dict[str, dict[str, float]] = {}
    for name, nb in sources.items():
        out[name] = {}
        for grade_id, points in graded_points(nb).items():
            if grade_id == CAPSTONE_CELL:
                out[name][grade_id] = round(min(points, capstone_fraction * points), 2)
            elif student.solves is None or exercise(grade_id) in student.solves:
                out[name][grade_id] = points
            else:
                out[name][grade_id] = 0.0
    return out


@dataclass
class Phases:
    """Wall time of each phase of the workflow, in the order they ran."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

    def table(self) -> str:
        rows = [f"  {name:<56} {s:7.1f} s" for name, s in self.seconds.items()]
        return "\n".join([*rows, f"  {'total':<56} {sum(self.seconds.values()):7.1f} s"])


class CommandFailed(AssertionError):
    """A command of the workflow exited non-zero or timed out; the message holds its output."""


def run(
    args: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    timeout_s: float,
    user: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `args` (as `user`, with only that user's groups, if given); raise CommandFailed on failure."""
    who = f" as {user}" if user else ""
    try:
        result = subprocess.run(
            args,
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            user=user,
            group=user,
            extra_groups=[] if user else None,
        )
    except subprocess.TimeoutExpired as exc:
        raise CommandFailed(f"{' '.join(args[:3])}{who} did not finish within {timeout_s:.0f} s") from exc
    except PermissionError as exc:
        raise CommandFailed(
            f"{args[0]}{who} could not be started ({exc}): every folder down to the venv and its Python must "
            "be o+x for other users (for a Python under /root: chmod o+x /root, as .ci/run does)"
        ) from exc
    if result.returncode != 0:
        raise CommandFailed(
            f"{' '.join(args)}{who} (in {cwd}) exited {result.returncode}:\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result


@contextmanager
def unix_user(name: str, home: Path) -> Iterator[pwd.struct_passwd]:
    """A Unix account `name` with its own group and home folder `home`; removed (with its home) on exit.

    An account left by an interrupted run (recognised by its comment) is removed first; any other account
    of that name is somebody's, so the run stops instead of touching it.
    """
    if _exists(name):
        existing = pwd.getpwnam(name)
        if existing.pw_gecos != ACCOUNT_COMMENT:
            raise CommandFailed(
                f"A Unix user {name!r} already exists and was not created by this test "
                f"(comment {existing.pw_gecos!r}): remove it or rename the test's students."
            )
        subprocess.run(["/usr/sbin/userdel", "--remove", name], capture_output=True, check=False, timeout=30)
    args = ["/usr/sbin/useradd", "--create-home", "--home-dir", str(home), "--shell", "/bin/sh"]
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    run([*args, "--user-group", "--comment", ACCOUNT_COMMENT, name], cwd=Path("/"), env=env, timeout_s=30)
    try:
        yield pwd.getpwnam(name)
    finally:
        removed = subprocess.run(
            ["/usr/sbin/userdel", "--remove", name], capture_output=True, text=True, check=False, timeout=30
        )
        if _exists(name):
            raise CommandFailed(f"userdel --remove {name} left the account in place: {removed.stderr}")


def _exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def course_id(config_file: Path) -> str:
    """The `CourseDirectory.course_id` an nbgrader_config.py sets (students need it in their own config)."""
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader(config_file.name, path=str(config_file.parent)).load_config()
    return str(config.CourseDirectory.course_id)


def student_env(account: pwd.struct_passwd) -> dict[str, str]:
    """A clean login-like environment for a student: their HOME and name, the venv first on PATH."""
    path = os.pathsep.join([str(build_notebooks.BIN), "/usr/local/bin", "/usr/bin", "/bin"])
    return {
        "HOME": account.pw_dir,
        "USER": account.pw_name,
        "LOGNAME": account.pw_name,
        "PATH": path,
        "LANG": "C.UTF-8",
    }


def chown_tree(root: Path, account: pwd.struct_passwd) -> None:
    """Give `root` and everything below it to `account`, as if the student had written the files."""
    os.chown(root, account.pw_uid, account.pw_gid)
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            os.chown(Path(folder, name), account.pw_uid, account.pw_gid, follow_symlinks=False)


def read_csv(path: Path, *, key: str) -> dict[str, dict[str, str]]:
    """{row[key]: row} of a CSV with a header: `nbgrader export`'s (student_id) or grade-all's (student)."""
    with path.open(newline="", encoding="utf-8") as fh:
        return {row[key]: row for row in csv.DictReader(fh)}
