"""What a capstone app still lacks, said before it is served (`course-utils serve`, `make serve`).

Why: a student's `make serve` on day one would otherwise start the starter and answer 404 to every
`POST /predict`, or die with a traceback from an unfinished module. The preflight imports the app in a
bounded child process (so an import that hangs or loads the model twice cannot hurt the server that follows),
lists its routes, and compares them with the contract's endpoints (`course_utils.contract.STATUS_CODES`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from course_utils.contract import STATUS_CODES
from course_utils.errors import CourseUtilsError
from course_utils.process import run

__all__ = ["AppImportError", "Preflight", "preflight"]

_ROUTES_MARK = "PREFLIGHT-ROUTES:"
# Run in the child: import `app` from the app folder as uvicorn would, print its (method, path) pairs.
_LIST_ROUTES = f"""
import json, sys
sys.path.insert(0, sys.argv[1])
import app as module
pairs = sorted({{(m, r.path) for r in module.app.routes for m in (getattr(r, "methods", None) or ())}})
print({_ROUTES_MARK!r} + json.dumps(pairs))
"""


class AppImportError(CourseUtilsError):
    """The app cannot be imported (a `NotImplementedError` left in, a syntax error, no `app` object)."""


@dataclass(frozen=True, slots=True)
class Preflight:
    """The contract's endpoints the app has and lacks, as `METHOD /path` strings."""

    present: tuple[str, ...]
    missing: tuple[str, ...]

    def summary(self) -> str:
        if not self.missing:
            return f"All {len(self.present)} endpoints of the contract are there."
        return (
            f"Not there yet: {', '.join(self.missing)} (answers 404 or 405). Serving what there is; "
            "capstone/README.md says what each endpoint must answer."
        )


def preflight(app_dir: Path, *, env: Mapping[str, str], timeout_s: float = 120.0) -> Preflight:
    """Import `app_dir/app.py` in a child process (environment `env`, the server's own) and list which
    contract endpoints it serves.

    Raises `AppImportError` with the end of the traceback when the import fails.
    """
    if not (app_dir / "app.py").is_file():
        raise AppImportError(
            f"No app.py in {str(app_dir)!r}: the service is started as `uvicorn app:app --app-dir "
            f"{app_dir}`. Pass the folder that holds app.py (--app-dir)."
        )
    args = [sys.executable, "-c", _LIST_ROUTES, str(app_dir)]
    try:
        output = run(args, timeout_s=timeout_s, cwd=app_dir, env=env, label=f"import app from {app_dir}")
    except CourseUtilsError as exc:
        raise AppImportError(_import_failure(app_dir, str(exc))) from exc
    line = next((ln for ln in output.splitlines() if ln.startswith(_ROUTES_MARK)), None)
    if line is None:
        raise AppImportError(f"Importing {app_dir / 'app.py'} printed no route list:\n{output[-2000:]}")
    served = {f"{method} {path}" for method, path in json.loads(line[len(_ROUTES_MARK) :])}
    wanted = [f"{endpoint.method} {endpoint.path}" for endpoint in STATUS_CODES]
    return Preflight(
        tuple(name for name in wanted if name in served), tuple(name for name in wanted if name not in served)
    )


def _import_failure(app_dir: Path, detail: str) -> str:
    if "NotImplementedError" in detail:
        why = "a `raise NotImplementedError` is still in your code: write that part (search for it)"
    elif "has no attribute 'app'" in detail:
        why = "app.py defines no `app`: keep `app = FastAPI(...)` at module level"
    else:
        why = "fix the error at the end of the traceback"
    return f"{app_dir / 'app.py'} cannot be imported, so it cannot be served: {why}.\n{detail}"
