"""Filesystem isolation: a sandbox uid per job, read-only model and submission, RLIMIT_NPROC, the fallback.

Tests marked by `require_isolation()` need a root grader whose Python the sandbox uids can run (CI, the
course machine); elsewhere they skip (in CI they fail). The fallback tests run everywhere.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import os
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from submissions import MINI_APP, patched, require_isolation, write_fake_model, write_submission

from course_utils import ports
from course_utils.grading import GradeOptions, Limits, grade, grade_all
from course_utils.grading import isolation as isolation_module
from course_utils.grading.isolation import IsolationError, isolation_problem, workspace
from course_utils.grading.sandbox import SandboxedApp

_IMPORTS = "from pydantic import BaseModel, field_validator\n"
_PRIVATE_UIDS = 61100  # a range of this module's own, away from the default 61000-61031 of real runs

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="only root can switch users")


def _at_import(code: str) -> str:
    return patched(MINI_APP, _IMPORTS, _IMPORTS + code + "\n")


def _fingerprint(folder: Path) -> dict[str, tuple[str, int]]:
    """sha256 and mode of every file below `folder`, by relative path (the listing included)."""
    return {
        str(path.relative_to(folder)): (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mode)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _live_processes_of(uid: int) -> list[int]:
    found = []
    for proc in psutil.process_iter(["uids", "status"]):
        with contextlib.suppress(psutil.Error, AttributeError):
            if proc.info["uids"].real == uid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(proc.pid)
    return found


def _bomb_report(app: SandboxedApp, *, timeout_s: float) -> dict[str, int | None]:
    """The JSON line the fork bomb prints once the kernel refuses a fork (or its loop ends)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for line in app.output().splitlines():
            if line.startswith('{"made"'):
                return dict(json.loads(line))
        time.sleep(0.1)  # poll the captured output
    raise AssertionError(f"the fork bomb never reported: {app.output()[-2000:]}")


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A world-writable folder (like /tmp) where sandboxed submissions can leave evidence for the test."""
    folder = Path(tempfile.mkdtemp(prefix="isolation-evidence-"))
    folder.chmod(0o1777)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_options_refuse_a_uid_range_that_could_hit_real_accounts() -> None:
    with pytest.raises(ValueError, match="at least 1000"):
        GradeOptions(sandbox_uid=0)
    with pytest.raises(ValueError, match="slot"):
        GradeOptions(sandbox_slots=0)


def test_a_uid_with_an_account_is_refused() -> None:
    with pytest.raises(IsolationError, match="account 'root'"):
        isolation_module._unused_user(0)


def test_without_root_the_report_says_isolation_was_not_available(
    tmp_path: Path, fast_options: GradeOptions, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(isolation_module, "_can_switch_users", lambda: False)
    report = grade(write_submission(tmp_path / "alice"), options=fast_options)
    assert report.score == 100, report.to_markdown()
    (note,) = [n for n in report.notes if "isolation" in n]
    assert "not available" in note and "not as root" in note
    assert "No points depend on this" in note


def test_required_isolation_that_is_not_available_is_a_grader_error(
    tmp_path: Path, fast_options: GradeOptions, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(isolation_module, "_can_switch_users", lambda: False)
    options = dataclasses.replace(fast_options, isolation=True)
    report = grade(write_submission(tmp_path / "alice"), options=options)
    assert report.grader_error is not None and "required" in report.grader_error
    assert report.result("app_starts").status == "not_run"


@root_only
def test_a_python_the_sandbox_uid_cannot_reach_is_explained(tmp_path: Path) -> None:
    hidden = tmp_path / "hidden"
    hidden.mkdir(mode=0o700)
    (hidden / "python").symlink_to(sys.executable)
    why = isolation_problem(python=str(hidden / "python"), first_uid=_PRIVATE_UIDS, slots=2)
    assert "cannot run the grader's Python" in why, why
    assert "is drwx------, other users cannot enter it (fix: chmod o+x" in why, why


@root_only
def test_concurrent_claims_get_distinct_uids_and_a_full_range_waits() -> None:
    first, second = isolation_module._claimed(_PRIVATE_UIDS, 2), isolation_module._claimed(_PRIVATE_UIDS, 2)
    with first as one, second as two:
        assert {one.uid, two.uid} == {_PRIVATE_UIDS, _PRIVATE_UIDS + 1}
        third = isolation_module._claimed(_PRIVATE_UIDS, 2, wait_s=0.3)
        with pytest.raises(IsolationError, match="stayed in use"), third:
            pass
    with isolation_module._claimed(_PRIVATE_UIDS, 2) as again:  # released slots are reused
        assert again.uid in (_PRIVATE_UIDS, _PRIVATE_UIDS + 1)


@root_only
def test_claiming_a_uid_removes_what_a_killed_grader_left(tmp_path: Path) -> None:
    stale = isolation_module._grader_folder() / f"run-{_PRIVATE_UIDS}-alice-killed"
    (stale / "home").mkdir(parents=True)
    left = Path(tempfile.gettempdir()) / f"left-by-{_PRIVATE_UIDS}-{os.getpid()}"
    left.write_text("x")
    os.chown(left, _PRIVATE_UIDS, _PRIVATE_UIDS)
    with isolation_module._claimed(_PRIVATE_UIDS, 1):
        assert not stale.exists() and not left.exists()


def test_more_jobs_than_sandbox_uids_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sandbox uids"):
        grade_all(tmp_path, jobs=3, options=GradeOptions(sandbox_slots=2))


@pytest.mark.slow
def test_parallel_submissions_run_as_distinct_uids(
    tmp_path: Path, fast_options: GradeOptions, shared_folder: Path
) -> None:
    require_isolation()
    for name in ("alice", "bob"):
        evidence = shared_folder / f"{name}.json"
        write_submission(
            tmp_path / "class" / name,
            app_source=_at_import(
                "import json, os, time\n"
                "_start = time.time()\n"
                "time.sleep(2.0)\n"
                f"open({str(evidence)!r}, 'w').write(json.dumps("
                "{'uid': os.getuid(), 'gid': os.getgid(), 'groups': os.getgroups(), "
                "'start': _start, 'end': time.time()}))"
            ),
        )
    reports = grade_all(tmp_path / "class", jobs=2, options=fast_options)
    assert [r.score for r in reports] == [100, 100], [r.to_markdown() for r in reports]
    seen = [json.loads((shared_folder / f"{name}.json").read_text()) for name in ("alice", "bob")]
    first = fast_options.sandbox_uid
    uids = {s["uid"] for s in seen}
    assert len(uids) == 2, seen
    assert all(first <= uid < first + fast_options.sandbox_slots for uid in uids), seen
    assert all(s["gid"] == s["uid"] and s["groups"] == [] for s in seen), seen
    assert max(s["start"] for s in seen) < min(s["end"] for s in seen), f"not graded in parallel: {seen}"


@pytest.mark.slow
def test_a_submission_cannot_change_the_model_or_itself(tmp_path: Path, fast_options: GradeOptions) -> None:
    require_isolation()
    model = write_fake_model(tmp_path / "model")
    (model / "weights.bin").write_bytes(os.urandom(4096))
    (model / "weights.bin").chmod(0o600)  # unreadable to others: staged as a copy, not a hardlink
    (model / "tokenizer").mkdir()
    (model / "tokenizer" / "vocab.txt").write_text("a\nb\n")
    (model / "card.json").symlink_to("model_card.json")  # staged as the file it points to
    submission = write_submission(
        tmp_path / "class" / "mallory",
        app_source=_at_import(
            "import os\n"
            "def _attack(folder):\n"
            "    for dirpath, _dirs, files in os.walk(folder):\n"
            "        for name in files:\n"
            "            path = os.path.join(dirpath, name)\n"
            "            for act in (lambda: open(path, 'a').write('x'),\n"
            "                        lambda: open(path, 'r+').truncate(0),\n"
            "                        lambda: os.chmod(path, 0o666),\n"
            "                        lambda: os.rename(path, path + '.x'),\n"
            "                        lambda: os.remove(path),\n"
            "                        lambda: os.utime(path, (0, 0))):\n"
            "                try:\n"
            "                    act()\n"
            "                except OSError:\n"
            "                    pass\n"
            "        try:\n"
            "            open(os.path.join(dirpath, 'planted.txt'), 'w').write('x')\n"
            "        except OSError:\n"
            "            pass\n"
            "_attack(os.environ['MODEL_DIR'])\n"
            "_attack(os.getcwd())"
        ),
    )
    before_model, before_submission = _fingerprint(model), _fingerprint(submission)
    model_mtimes = {p: p.stat().st_mtime_ns for p in model.rglob("*")}
    options = dataclasses.replace(fast_options, model_dir=model)
    report = grade(submission, options=options)
    assert report.score == 100, report.to_markdown()  # the app still read its model
    assert _fingerprint(model) == before_model
    assert {p: p.stat().st_mtime_ns for p in model.rglob("*")} == model_mtimes
    assert _fingerprint(submission) == before_submission


@pytest.mark.slow
def test_a_fork_bomb_is_contained_by_rlimit_nproc(tmp_path: Path, fake_model: Path) -> None:
    require_isolation()
    limits = Limits(processes=64)
    bomb = tmp_path / "bomb"
    (bomb / "src").mkdir(parents=True)
    (bomb / "src" / "app.py").write_text(
        "import json, os, time\n"
        "made, refused = 0, None\n"
        f"for _ in range({2 * limits.processes}):  # bounded even if the limit were missing\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except OSError as exc:\n"
        "        refused = exc.errno\n"
        "        break\n"
        "    if pid == 0:\n"
        "        time.sleep(600)\n"
        "        os._exit(0)\n"
        "    made += 1\n"
        "print(json.dumps({'made': made, 'refused': refused}), flush=True)\n"
        "time.sleep(600)  # hold the budget: the grader's sweep must end it all\n"
    )
    with workspace(bomb, fake_model, first_uid=_PRIVATE_UIDS, slots=2, isolation=True) as space:
        assert space.user is not None
        env = {"PATH": "/usr/bin:/bin", "HOME": str(space.home), "MODEL_DIR": str(space.model_dir)}
        app = SandboxedApp(
            space.app_dir, port=ports.free_port(), env=env, cwd=space.cwd, limits=limits, user=space.user
        )
        with app:
            outcome = _bomb_report(app, timeout_s=30)
            alive = _live_processes_of(space.user.uid)
        assert outcome["refused"] == errno.EAGAIN, outcome
        assert outcome["made"] < limits.processes, outcome
        assert outcome["made"] + 1 == len(alive) <= limits.processes  # the bomb and its children
        time.sleep(0.2)  # let the kernel finish reaping
        assert _live_processes_of(space.user.uid) == []


@root_only
def test_staged_files_are_read_only_for_the_sandbox_uid(
    tmp_path: Path, fake_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every staged file is the grader's and not group/world-writable; only HOME belongs to the uid.

    Nothing runs as the uid here, so whether it could run the grader's Python does not matter.
    """
    monkeypatch.setattr(isolation_module, "_why_user_cannot_run", lambda python, user: "")
    submission = write_submission(tmp_path / "alice")
    (submission / "run.sh").write_text("#!/bin/sh\n")
    (submission / "run.sh").chmod(0o777)  # world-writable: must be copied, not shared
    try:
        with workspace(submission, fake_model, first_uid=_PRIVATE_UIDS, slots=2, isolation=True) as space:
            assert space.user is not None
            for path in [*space.cwd.rglob("*"), *space.model_dir.rglob("*"), space.cwd, space.model_dir]:
                info = path.lstat()
                assert info.st_uid == os.geteuid(), path
                assert not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH), (path, stat.filemode(info.st_mode))
            assert not (space.cwd / "run.sh").samefile(submission / "run.sh")
            assert space.home.stat().st_uid == space.user.uid
            run_folder = space.cwd.parent
        assert not run_folder.exists()
    except IsolationError as exc:  # e.g. the grader's temporary folder is not reachable by others
        pytest.skip(str(exc))
