"""Start the service with WORKERS uvicorn processes: `python src/serve.py [uvicorn options]`.

Why a launcher rather than `uvicorn app:app --workers 2`? Each worker is a process with its own memory, so
each would count only the requests it served, and /metrics, answered by whichever worker takes the scrape,
would jump between their counts. prometheus_client's multiprocess mode shares them through files in
PROMETHEUS_MULTIPROC_DIR, which must be set before any worker imports prometheus_client and must start empty
(the files of an earlier run would add their counts to this one). Only a process that runs once per start,
before the workers, can do both: this one. It then runs uvicorn's own command line in this process (so in a
container it stays PID 1 and receives SIGTERM itself, and every uvicorn option and UVICORN_* variable works
as usual), and removes the folder when uvicorn returns.

With WORKERS=1 (the default) it is `uvicorn app:app --app-dir src`: one process, no metrics files.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from uvicorn.main import main as uvicorn_cli

from settings import ServiceSettings

__all__ = ["main", "uvicorn_args"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
SRC_DIR = Path(__file__).resolve().parent


def uvicorn_args(workers: int, extra: Sequence[str] = ()) -> list[str]:
    """uvicorn's command line for the service; `extra` (e.g. `--host H --port P`) comes last and wins."""
    return ["app:app", "--app-dir", str(SRC_DIR), "--workers", str(workers), *extra]


def main(argv: Sequence[str] | None = None) -> None:
    """Prepare the metrics folder when WORKERS > 1, run uvicorn, remove the folder; exits as uvicorn does."""
    settings = ServiceSettings()
    extra = list(sys.argv[1:] if argv is None else argv)
    if settings.prometheus_multiproc_dir is not None:
        raise SystemExit(
            f"{MULTIPROC_ENV}={str(settings.prometheus_multiproc_dir)!r} is set: serve.py makes a fresh "
            "folder for every start: files left by an earlier run would add their counts to this one. "
            f"Unset {MULTIPROC_ENV} (set TMPDIR to choose where the folder goes)."
        )
    if settings.workers == 1:
        uvicorn_cli.main(args=uvicorn_args(1, extra), prog_name="uvicorn")
        return
    folder = tempfile.mkdtemp(prefix="sentiment-metrics-")
    os.environ[MULTIPROC_ENV] = folder  # the workers inherit it, before they import prometheus_client
    print(f"serve.py: {settings.workers} workers, metrics in {folder}", file=sys.stderr, flush=True)
    try:
        uvicorn_cli.main(args=uvicorn_args(settings.workers, extra), prog_name="uvicorn")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
