"""Build the course notebooks: nbgrader sources in solutions/ and the student release in notebooks/.

    python tools/build_notebooks.py            # write solutions/*.ipynb, then generate notebooks/*.ipynb
    python tools/build_notebooks.py --check    # exit 1 if any committed notebook is out of date

The notebook texts live in tools/nbsrc/ (one module per notebook). The release is produced by a real
`nbgrader generate_assignment` in a temporary course root (nbgrader_config.py copied there), so what
students get is exactly what nbgrader makes of the sources: solution regions stubbed, hidden tests removed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

from nbsrc import NOTEBOOKS  # noqa: E402  (needs the path above)
from nbsrc._cells import notebook, points  # noqa: E402

ASSIGNMENT = "deployment"
SOLUTIONS = ROOT / "solutions"
RELEASE = ROOT / "notebooks"
#: The virtualenv's bin folder: nbgrader runs `alembic` from PATH, so it must come first there.
BIN = Path(sys.executable).parent


def venv_env(**extra: str) -> dict[str, str]:
    """os.environ with the virtualenv's bin folder first on PATH, plus `extra`."""
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **extra}


def source_notebooks() -> dict[str, str]:
    """{file name: notebook JSON} of every nbgrader source notebook."""
    out = {}
    for module in NOTEBOOKS:
        nb = notebook(module.NAME[:3].rstrip("_"), module.cells())
        out[f"{module.NAME}.ipynb"] = nbformat.writes(nb) + "\n"
    return out


def generate_release(sources: Path, course_root: Path) -> Path:
    """Run `nbgrader generate_assignment` on `sources/*.ipynb` in `course_root`; return the release folder."""
    course_root.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "nbgrader_config.py", course_root / "nbgrader_config.py")
    source_dir = course_root / "solutions" / ASSIGNMENT
    source_dir.mkdir(parents=True, exist_ok=True)
    for path in sorted(sources.glob("*.ipynb")):
        shutil.copy(path, source_dir / path.name)
    result = subprocess.run(
        [str(BIN / "nbgrader"), "generate_assignment", ASSIGNMENT, "--force"],
        cwd=course_root,
        env=venv_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"nbgrader generate_assignment failed:\n{result.stdout}\n{result.stderr}")
    return course_root / "notebooks" / ASSIGNMENT


def release_notebooks(sources: dict[str, str]) -> dict[str, str]:
    """{file name: notebook JSON} of the release nbgrader makes of `sources`."""
    with tempfile.TemporaryDirectory(prefix="nb-release-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for name, text in sources.items():
            (src / name).write_text(text, encoding="utf-8")
        release = generate_release(src, Path(tmp) / "course")
        return {p.name: p.read_text(encoding="utf-8") for p in sorted(release.glob("*.ipynb"))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if anything is stale")
    args = parser.parse_args(argv)
    sources = source_notebooks()
    releases = release_notebooks(sources)
    wanted = {SOLUTIONS / n: t for n, t in sources.items()} | {RELEASE / n: t for n, t in releases.items()}
    stale = [p for p, t in wanted.items() if not p.exists() or p.read_text(encoding="utf-8") != t]
    if args.check:
        for path in stale:
            print(f"out of date: {path.relative_to(ROOT)}")
        if stale:
            print("run `python tools/build_notebooks.py` and commit the result")
        return 1 if stale else 0
    RELEASE.mkdir(exist_ok=True)
    for path in stale:
        path.write_text(wanted[path], encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    for module in NOTEBOOKS:
        nb = nbformat.reads(sources[f"{module.NAME}.ipynb"], as_version=4)
        print(f"{module.NAME}: {len(nb.cells)} cells, {points(nb)} points")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
