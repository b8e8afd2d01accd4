"""Every module the notebooks and the self-grader use imports, and falls back, on macOS and Windows.

No macOS or Windows machine runs here, so each platform is simulated in a subprocess: the third-party and
standard-library modules are imported first (they hold their own, tested platform branches), then
`sys.platform` is patched and, for Windows, what it lacks is made unavailable (`resource`, `fcntl`, `pwd`,
`grp` as missing modules; `os.killpg`, `os.getpgid`, `os.geteuid`, ... and SIGKILL/SIGSTOP/SIGCONT deleted;
for macOS psutil's `memory_maps`, which psutil has only on Linux and Windows), and only then the course's
modules are imported. The modules are derived from the notebook sources' imports, plus the grader's
package and the CLI that runs it (`course-utils grade`). The fallbacks themselves run for real on Linux
below, each forced the same way.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

from benchmarks import serving
from course_utils import ports
from course_utils.grading import isolation, sandbox
from course_utils.process import HAS_PROCESS_GROUPS

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_SOURCES = sorted((ROOT / "solutions" / "src").glob("[0-9][0-9]_*.py"))
#: What Windows lacks that the course's code could reach (imported or called).
WINDOWS_MISSING_MODULES = ("resource", "fcntl", "pwd", "grp", "termios")
WINDOWS_MISSING_OS = ("killpg", "getpgid", "getpgrp", "setsid", "geteuid", "getuid", "getegid", "getgid")
WINDOWS_MISSING_SIGNALS = ("SIGKILL", "SIGSTOP", "SIGCONT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGALRM")


def _imported_modules(path: Path, *, module_level_only: bool = False, attributes: bool = False) -> set[str]:
    """Dotted names of the modules `path` imports (`from a.b import c` counts `a.b` and `a.b.c`).

    `module_level_only`: only what runs at import, not the lazy imports inside functions. `attributes`:
    `from a.b import c` counts `a.b:c` instead of `a.b.c` (c may be a module or any name).
    """
    found: set[str] = set()
    todo: list[ast.AST] = [ast.parse(path.read_text(), filename=str(path))]
    while todo:
        node = todo.pop()
        if module_level_only and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}{':' if attributes else '.'}{alias.name}" for alias in node.names)
        todo.extend(ast.iter_child_nodes(node))
    return found


def course_modules() -> list[str]:
    """The course_utils modules the notebooks import, every module of the grader, and the CLI."""
    names = {name for source in NOTEBOOK_SOURCES for name in _imported_modules(source)}
    names = {name for name in names if name.startswith("course_utils.")}
    path = {name: ROOT / name.replace(".", "/") for name in names}  # a module file or a package folder
    names = {n for n in names if path[n].with_suffix(".py").is_file() or (path[n] / "__init__.py").is_file()}
    grading = ROOT / "course_utils" / "grading"
    names.update(f"course_utils.grading.{path.stem}" for path in grading.glob("*.py"))
    names.update({"course_utils.grading", "course_utils.cli"})
    return sorted(names - {"course_utils.grading.__init__"})


def dependencies(modules: list[str]) -> list[str]:
    """Third-party and standard-library names the course modules import at module level, as `module:name`.

    The names are fetched too (`from transformers import BertModel` loads BertModel's module lazily), so
    nothing of theirs is first imported under the simulated platform.
    """
    files = [ROOT / (m.replace(".", "/") + ".py") for m in modules]
    files = [f if f.is_file() else f.with_suffix("") / "__init__.py" for f in files]
    files += [*(ROOT / "course_utils").glob("*.py"), ROOT / "benchmarks" / "serving.py"]
    ours = ("course_utils", "benchmarks", "__future__", *WINDOWS_MISSING_MODULES)
    names = {name for f in files for name in _imported_modules(f, module_level_only=True, attributes=True)}
    return sorted(name for name in names if name.split(".")[0].split(":")[0] not in ours)


# Runs in a fresh interpreter: argv[1] is a JSON of {platform, modules, dependencies, checks}.
SIMULATE = textwrap.dedent(
    """
    import importlib, json, os, signal, sys
    spec = json.loads(sys.argv[1])
    for name in spec["dependencies"]:  # their own platform branches run on the real platform
        module, _, attribute = name.partition(":")
        loaded = importlib.import_module(module)
        if attribute and not hasattr(loaded, attribute):  # a submodule, not an attribute
            importlib.import_module(f"{module}.{attribute}")
    import psutil
    sys.platform = spec["platform"]
    if spec["platform"] == "win32":
        # psutil's POSIX backend stands in for its Windows one, which needs no POSIX signals: keep its own
        intact = type(signal)("signal")
        intact.__dict__.update(vars(signal))
        psutil.signal = intact
        for name in spec["missing_modules"]:
            sys.modules[name] = None  # `import name` raises ImportError, as on Windows
        for name in spec["missing_os"]:
            if hasattr(os, name):
                delattr(os, name)
        for name in spec["missing_signals"]:
            if hasattr(signal, name):
                delattr(signal, name)
    if spec["platform"] == "darwin":
        del psutil.Process.memory_maps  # psutil lists memory maps on Linux and Windows only
    assert not any(m == "course_utils" or m.startswith("course_utils.") for m in sys.modules)
    failed = {}
    for name in spec["modules"]:
        try:
            importlib.import_module(name)
        except Exception as exc:
            failed[name] = f"{type(exc).__name__}: {exc}"
    found = {}
    if not failed:
        exec(spec["checks"], found)
    print(json.dumps({"failed": failed, "found": found.get("found", {})}))
    """
)

# Evaluated after the imports, under the simulated platform: what each fallback decided.
CHECKS = textwrap.dedent(
    """
    import os, sys
    from benchmarks import serving
    from course_utils import memory, process
    from course_utils.docker_tools import detect_network
    from course_utils.grading import isolation, sandbox
    found = {
        "process groups": process.HAS_PROCESS_GROUPS,
        "tree by default": process.ProcessGroup(os.getpid()).by_tree,
        "rlimits": sandbox.RLIMITS_AVAILABLE,
        "preexec": sandbox.Limits().preexec() is not None,
        "isolation problem": isolation.isolation_problem(),
        "memory maps": memory.MAPS_AVAILABLE,
        "children cpu counted": serving.CHILDREN_CPU_COUNTED,
        "network": detect_network(platform=sys.platform, base_url="http+docker://localhost", info={}).mode,
    }
    """
)


def simulate(
    platform: str, *, checks: str = CHECKS, extra_modules: tuple[str, ...] = ("benchmarks.serving",)
) -> dict[str, object]:
    """Import the course modules under the simulated `platform`, then run `checks`; its `found` dict."""
    modules = [*course_modules(), *extra_modules]
    spec = {
        "platform": platform,
        "modules": modules,
        "dependencies": dependencies(modules),
        "missing_modules": WINDOWS_MISSING_MODULES,
        "missing_os": WINDOWS_MISSING_OS,
        "missing_signals": WINDOWS_MISSING_SIGNALS,
        "checks": checks,
    }
    done = subprocess.run(
        [sys.executable, "-c", SIMULATE, json.dumps(spec)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_the_module_list_is_derived_from_the_notebooks() -> None:
    modules = course_modules()
    assert len(NOTEBOOK_SOURCES) >= 7
    for expected in ("course_utils.docker_tools", "course_utils.server", "course_utils.data"):
        assert expected in modules, f"{expected} is imported by a notebook"
    assert {"course_utils.grading.sandbox", "course_utils.grading.isolation", "course_utils.cli"} <= set(
        modules
    )
    assert "course_utils.grading.__init__" not in modules
    deps = dependencies(modules)
    assert {"psutil", "docker", "subprocess", "transformers:BertModel"} <= set(deps)
    assert not any(name.startswith(("resource", "fcntl", "course_utils")) for name in deps)


def test_everything_imports_as_on_windows() -> None:
    result = simulate("win32")
    assert result["failed"] == {}
    found = result["found"]
    assert isinstance(found, dict)
    why = found.pop("isolation problem")
    assert "no Unix user ids to switch to (Windows)" in why
    assert found == {
        "process groups": False,
        "tree by default": True,
        "rlimits": False,
        "preexec": False,
        "memory maps": True,
        "children cpu counted": False,
        "network": "bridge",
    }


def test_everything_imports_as_on_macos() -> None:
    result = simulate("darwin")
    assert result["failed"] == {}
    found = result["found"]
    assert isinstance(found, dict)
    assert found["process groups"] is True and found["tree by default"] is False, "macOS has process groups"
    assert found["rlimits"] is True and found["memory maps"] is False
    assert found["children cpu counted"] is False and found["network"] == "bridge"


GRADE = textwrap.dedent(
    """
    from pathlib import Path
    from course_utils.grading import GradeOptions, grade
    options = GradeOptions(model_dir=Path(MODEL), docker=False, startup_timeout_s=30.0, ready_timeout_s=30.0,
                           request_timeout_s=5.0, http_budget_s=60.0, p95_requests=20, probes_file=None)
    report = grade(Path(SUBMISSION), options=options)
    found = {"score": report.score, "notes": report.notes, "error": report.grader_error,
             "feedback": report.to_markdown()}
    """
)


def test_the_self_grader_grades_as_on_windows(tmp_path: Path) -> None:
    """`course-utils grade` end to end, simulating Windows: no uids, no rlimits, no process groups."""
    spec = importlib.util.spec_from_file_location(
        "submissions", ROOT / "tests" / "grading" / "submissions.py"
    )
    assert spec is not None and spec.loader is not None
    submissions = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(submissions)
    model = submissions.write_fake_model(tmp_path / "model")
    submission = submissions.write_submission(tmp_path / "alice")
    checks = f"MODEL, SUBMISSION = {str(model)!r}, {str(submission)!r}\n{GRADE}"
    found = simulate("win32", checks=checks)["found"]
    assert isinstance(found, dict)
    assert found["error"] is None and found["score"] == 100, found["feedback"]
    assert any("no Unix user ids to switch to (Windows)" in note for note in found["notes"])
    assert any(note.startswith("Resource limits") for note in found["notes"]), found["notes"]


def test_the_simulation_catches_an_unguarded_call(tmp_path: Path) -> None:
    """The harness itself: an unguarded `import resource` fails under the Windows simulation."""
    (tmp_path / "unguarded_mod.py").write_text("import resource\n")
    spec = {
        "platform": "win32",
        "modules": ["unguarded_mod"],
        "dependencies": [],
        "missing_modules": WINDOWS_MISSING_MODULES,
        "missing_os": WINDOWS_MISSING_OS,
        "missing_signals": WINDOWS_MISSING_SIGNALS,
        "checks": "",
    }
    done = subprocess.run(
        [sys.executable, "-c", SIMULATE, json.dumps(spec)],
        cwd=tmp_path,  # `python -c` imports from its working folder
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    (failure,) = json.loads(done.stdout)["failed"].values()
    assert failure.startswith("ModuleNotFoundError") and "resource" in failure


# --- the fallbacks, forced on Linux ---


def test_linux_uses_the_real_thing() -> None:
    assert HAS_PROCESS_GROUPS and sandbox.RLIMITS_AVAILABLE and serving.CHILDREN_CPU_COUNTED
    assert sandbox.Limits().preexec() is not None


def test_sandbox_without_rlimits_runs_unbounded_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text(
        "from fastapi import FastAPI\napp = FastAPI()\n@app.get('/health')\ndef health():\n    return {}\n"
    )
    limits = sandbox.Limits(open_files=77)
    for rlimits in (True, False):
        monkeypatch.setattr(sandbox, "RLIMITS_AVAILABLE", rlimits)
        app = sandbox.SandboxedApp(
            tmp_path / "src", port=ports.free_port(), env=dict(os.environ), cwd=tmp_path, limits=limits
        )
        with app:
            assert app.wait_until_answering(30).ok, app.output()
            assert app._process is not None
            soft_files, _hard = psutil.Process(app._process.pid).rlimit(psutil.RLIMIT_NOFILE)
        if rlimits:
            assert app.note == "" and soft_files == 77
        else:
            assert soft_files != 77, "no limit was applied"
            assert app.note == sandbox.LIMITS_NOTE and "not applied" in app.note and "Windows" in app.note


def test_isolation_says_why_without_user_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr("os.geteuid")
    assert not isolation._can_switch_users()
    assert "no Unix user ids" in isolation.isolation_problem()


def test_benchmark_notes_the_missing_client_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    assert serving._client_cpu_s() > 0
    monkeypatch.setattr(serving, "CHILDREN_CPU_COUNTED", False)
    plan = serving.QUICK
    machine = serving.describe_machine(plan)
    assert machine["notes"] == [serving.CLIENT_CPU_NOTE]
    text = serving.markdown_report([], [], [], machine, plan)
    assert text.rstrip().endswith(f"Note: {serving.CLIENT_CPU_NOTE}.")
