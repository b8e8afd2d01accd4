"""Process (the one subprocess runner), OutputCapture, ProcessGroup and run, against real processes."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from course_utils import ports
from course_utils import process as process_module
from course_utils.errors import CourseUtilsError, ServerStartError
from course_utils.process import OutputCapture, Process, ProcessGroup, run

# A tiny HTTP server (standard library only, so it starts fast): GET /health answers STATUS after
# STARTUP_S seconds of "loading"; with IGNORE_TERM it ignores SIGTERM, and with CHILD it forks a sleeper
# that stays in its process group.
SERVER = textwrap.dedent(
    """
    import http.server, os, signal, subprocess, sys, time
    port, status = int(sys.argv[1]), int(os.environ.get("STATUS", "200"))
    if os.environ.get("IGNORE_TERM"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if os.environ.get("CHILD"):
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    print("loading the model", flush=True)
    time.sleep(float(os.environ.get("STARTUP_S", "0")))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
    """
)


@pytest.fixture
def server_script(tmp_path: Path) -> Path:
    path = tmp_path / "server.py"
    path.write_text(SERVER)
    return path


def _server(script: Path, port: int, **env: str) -> Process:
    return Process([sys.executable, str(script), str(port)], env={**os.environ, **env}, stop_timeout_s=2.0)


def _group_is_gone(pgid: int) -> bool:
    """No live (non-zombie) process is left in the group."""
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                return False
        except (ProcessLookupError, psutil.Error):
            continue
    return True


def test_start_ready_stop_leaves_no_process_behind(server_script: Path) -> None:
    port = ports.free_port()
    with _server(server_script, port, CHILD="1", STARTUP_S="0.3") as proc:
        response = proc.wait_ready(f"http://127.0.0.1:{port}/health", timeout_s=20)
        assert response.status_code == 200 and response.text == "ok"
        pgid = proc.pid
        assert os.getpgid(proc.pid) == pgid != os.getpgid(0), "the child leads a group of its own"
        assert len(proc.group.processes()) == 2, "the server and its forked child"
    assert proc.returncode == -signal.SIGTERM
    assert _group_is_gone(pgid), "a process of the group outlived stop()"
    assert ports.port_is_free("127.0.0.1", port)
    assert "loading the model" in proc.output(), "the output is kept after the stop"


def test_early_exit_fails_fast_with_the_output(tmp_path: Path) -> None:
    script = tmp_path / "broken.py"
    script.write_text("print('reading config.yaml')\nraise SystemExit('config.yaml: no such file')\n")
    proc = Process([sys.executable, str(script)], label="broken app").start()
    started = time.monotonic()
    with pytest.raises(ServerStartError) as info:
        proc.wait_ready(f"http://127.0.0.1:{ports.free_port()}/health", timeout_s=30)
    assert time.monotonic() - started < 10, "an exit must end the wait at once, not at the timeout"
    message = str(info.value)
    assert "`broken app` exited with code 1 before answering 200" in message
    assert "reading config.yaml" in message and "config.yaml: no such file" in message


def test_wrong_status_times_out_with_the_last_answer(server_script: Path) -> None:
    port = ports.free_port()
    proc = _server(server_script, port, STATUS="503").start()
    with pytest.raises(ServerStartError, match=r"did not answer 200 .* within 1\.0s \(last: HTTP 503\)"):
        proc.wait_ready(f"http://127.0.0.1:{port}/health", timeout_s=1.0)
    assert not proc.running, "a failed wait stops the process"
    assert _group_is_gone(proc.pid)


def test_probe_ready_reports_instead_of_raising(server_script: Path) -> None:
    port = ports.free_port()
    with _server(server_script, port, STATUS="503") as proc:
        found = proc.probe_ready(f"http://127.0.0.1:{port}/health", status=None, timeout_s=20)
        assert found.ready and found.exit_code is None
        assert found.response is not None and found.response.status_code == 503, "any status counts"
        assert found.last == "HTTP 503"


def test_sigterm_ignored_is_killed_within_the_bound(server_script: Path) -> None:
    port = ports.free_port()
    proc = _server(server_script, port, IGNORE_TERM="1", CHILD="1").start()
    proc.wait_ready(f"http://127.0.0.1:{port}/health", timeout_s=20)
    started = time.monotonic()
    code = proc.stop(timeout_s=1.0)
    assert time.monotonic() - started < 2.5, "TERM, 1 s, then KILL"
    assert code == -signal.SIGKILL
    assert _group_is_gone(proc.pid), "the forked child is killed with its group"
    assert proc.stop() == code, "stop() is idempotent"


def test_a_paused_group_still_stops_on_sigterm(server_script: Path) -> None:
    port = ports.free_port()
    proc = _server(server_script, port).start()
    proc.wait_ready(f"http://127.0.0.1:{port}/health", timeout_s=20)
    proc.group.pause()
    assert proc.stop(timeout_s=5.0) == -signal.SIGTERM, "SIGCONT follows SIGTERM, so no SIGKILL is needed"


def test_process_group_measures_and_pauses(tmp_path: Path) -> None:
    busy = [sys.executable, "-c", "while True: pass"]
    with Process(busy, stop_timeout_s=2.0) as proc:
        group = proc.group
        time.sleep(0.3)  # let it burn some CPU
        assert group.cpu_s() > 0.05
        group.pause()
        time.sleep(0.1)  # the SIGSTOP takes effect
        paused_at = group.cpu_s()
        time.sleep(0.3)
        assert group.cpu_s() - paused_at < 0.05, "a paused group uses no CPU"
        assert psutil.Process(proc.pid).status() == psutil.STATUS_STOPPED
        group.resume()
        assert repr(group) == f"ProcessGroup(pgid={proc.pid})"
    assert ProcessGroup(proc.pid).processes() == []


def test_output_capture_keeps_head_and_tail_of_a_flood() -> None:
    flood = [sys.executable, "-c", "import sys; sys.stdout.write('A' * 100 + 'x' * 10_000_000 + 'Z' * 100)"]
    capture = OutputCapture(head_bytes=100, tail_bytes=100)
    with Process(flood, output=capture) as proc:
        assert proc.wait(timeout_s=30) == 0
        proc.close_output(timeout_s=10)
    text = proc.output()
    assert capture.total_bytes == 10_000_200
    assert text.startswith("A" * 100) and text.endswith("Z" * 100)
    assert "bytes of output not kept ...]" in text
    assert len(text) < 200_000, "the tail keeps whole reads (64 kB), not the whole flood"
    with pytest.raises(RuntimeError, match="one capture per process"):
        capture.attach(io.BytesIO(b""))


def test_log_file_cwd_and_env(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "out.log"
    code = "import os; print(os.getcwd(), os.environ['GREETING'])"
    with Process([sys.executable, "-c", code], cwd=tmp_path, env={"GREETING": "hi"}, output=log) as proc:
        assert proc.wait(timeout_s=30) == 0
    assert log.read_text() == f"{tmp_path} hi\n" == proc.output()


def test_run_returns_the_output_or_says_what_failed() -> None:
    assert run([sys.executable, "-c", "print(6 * 7)"], timeout_s=30) == "42\n"
    with pytest.raises(CourseUtilsError, match=r"(?s)`crash` failed with exit code 3.*going down"):
        run([sys.executable, "-c", "print('going down'); exit(3)"], timeout_s=30, label="crash")
    started = time.monotonic()
    with pytest.raises(CourseUtilsError, match=r"`sleeper` did not finish within 1s and was stopped"):
        run([sys.executable, "-c", "import time; time.sleep(60)"], timeout_s=1, label="sleeper")
    assert time.monotonic() - started < 10


def test_misuse_fails_with_the_fix() -> None:
    with pytest.raises(ValueError, match="args is empty"):
        Process([])
    proc = Process([sys.executable, "-V"])
    with pytest.raises(RuntimeError, match="call start"):
        proc.wait(timeout_s=1)
    assert proc.stop() is None, "stopping what never started does nothing"
    assert "not started" in repr(proc)


def test_probe_does_not_use_proxies(server_script: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # a proxy that refuses: must not be asked
    port = ports.free_port()
    with _server(server_script, port) as proc:
        assert proc.wait_ready(f"http://127.0.0.1:{port}/health", timeout_s=20).status_code == 200


# --- without process groups (Windows): the leader's process tree through psutil, forced here on Linux ---


@pytest.fixture
def no_process_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ProcessGroup made from now on uses the tree fallback, as on Windows."""
    monkeypatch.setattr(process_module, "HAS_PROCESS_GROUPS", False)


def _gone(pids: set[int], timeout_s: float = 5.0) -> bool:
    """True once none of `pids` is a live process (a SIGKILLed process takes a moment to die)."""
    deadline = time.monotonic() + timeout_s
    while True:
        alive = []
        for pid in pids:
            with contextlib.suppress(psutil.NoSuchProcess):
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
        if not alive or time.monotonic() > deadline:
            return not alive
        time.sleep(0.05)


@pytest.mark.usefixtures("no_process_groups")
def test_tree_fallback_stops_the_leader_and_its_child(server_script: Path) -> None:
    port = ports.free_port()
    with _server(server_script, port, CHILD="1") as proc:
        proc.wait_ready(f"http://127.0.0.1:{port}/health", timeout_s=20)
        assert proc.group.by_tree and "by_tree=True" in repr(proc.group)
        pids = {p.pid for p in proc.group.processes()}
        assert len(pids) == 2 and proc.pid in pids, "the server and its forked child"
    assert proc.returncode == -signal.SIGTERM, "terminate() asked the leader to exit"
    assert _gone(pids), "the child was terminated with its leader"


@pytest.mark.usefixtures("no_process_groups")
def test_tree_fallback_kills_what_ignores_terminate(server_script: Path) -> None:
    port = ports.free_port()
    proc = _server(server_script, port, IGNORE_TERM="1", CHILD="1").start()
    proc.wait_ready(f"http://127.0.0.1:{port}/health", timeout_s=20)
    pids = {p.pid for p in proc.group.processes()}
    assert proc.stop(timeout_s=1.0) == -signal.SIGKILL
    assert _gone(pids)


@pytest.mark.usefixtures("no_process_groups")
def test_tree_fallback_remembers_an_orphan(server_script: Path) -> None:
    port = ports.free_port()
    proc = _server(server_script, port, CHILD="1").start()
    proc.wait_ready(f"http://127.0.0.1:{port}/health", timeout_s=20)
    (child,) = [p for p in proc.group.processes() if p.pid != proc.pid]
    os.kill(proc.pid, signal.SIGKILL)  # the leader dies alone: its child is re-parented, out of its tree
    proc.wait(timeout_s=10)
    assert child.is_running() and child.pid not in {c.pid for c in psutil.Process().children(recursive=True)}
    assert [p.pid for p in proc.group.processes()] == [child.pid], "the group still knows its orphan"
    proc.stop(timeout_s=2.0)
    assert _gone({child.pid})


def test_tree_fallback_measures_pauses_and_resumes() -> None:
    busy = [sys.executable, "-c", "while True: pass"]
    with Process(busy, stop_timeout_s=2.0) as proc:
        group = ProcessGroup(proc.pid, by_tree=True)
        time.sleep(0.3)
        assert group.cpu_s() > 0.05
        group.pause()
        time.sleep(0.1)
        paused_at = group.cpu_s()
        time.sleep(0.3)
        assert group.cpu_s() - paused_at < 0.05, "a suspended tree uses no CPU"
        assert psutil.Process(proc.pid).status() == psutil.STATUS_STOPPED
        group.resume()
        time.sleep(0.1)
        assert psutil.Process(proc.pid).status() != psutil.STATUS_STOPPED
        group.kill()
        assert proc.wait(timeout_s=10) == -signal.SIGKILL
    assert group.processes() == []
