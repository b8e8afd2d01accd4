"""Notebook 07: export_model, check_requirements, and the capstone folder the graded capstone cell grades."""

from tests.notebook_variants import CapstoneVariant, right, wrong

#: A cell a student adds to be graded on the reference solution instead of their own capstone.
REDIRECT = """
from course_utils.config import PROJECT_ROOT
CAPSTONE_DIR = PROJECT_ROOT / "solutions" / "capstone"
"""

VARIANTS = {
    "ex1-export-model": [
        right(
            "os.path and realpath, rmtree only when the folder exists, Path only for the library calls",
            """
def export_model(model_dir, capstone_dir):
    import os
    source = os.path.realpath(model_dir)
    target = os.path.join(os.path.realpath(capstone_dir), "model")
    if os.path.realpath(target) == source:
        raise ValueError("capstone_dir/model is the model folder itself")
    card = load_model_card(Path(source))
    if os.path.isdir(target):
        shutil.rmtree(target)
    os.makedirs(target)
    for name in list(card["files"]) + ["model_card.json"]:
        shutil.copy2(os.path.join(source, name), target)
    return verify_model_dir(Path(target))
""",
        ),
        wrong(
            "compares the paths without resolving them: cap/model/../model is not recognised",
            """
def export_model(model_dir, capstone_dir):
    source, target = Path(model_dir), Path(capstone_dir) / "model"
    if target == source:
        raise ValueError("that is the model folder itself")
    card = load_model_card(source)
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for name in [*card["files"], "model_card.json"]:
        shutil.copy2(source / name, target / name)
    return verify_model_dir(target)
""",
        ),
        right(
            "Path.samefile, the card copied first, a sorted loop",
            '''
def export_model(model_dir, capstone_dir):
    """Copy and verify the export."""
    model_dir, target = Path(model_dir), Path(capstone_dir) / "model"
    if target.exists() and target.samefile(model_dir):
        raise ValueError(f"{target} is {model_dir}: export into another folder")
    card = load_model_card(model_dir)
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    shutil.copy2(model_dir / "model_card.json", target / "model_card.json")
    for name in sorted(card["files"]):
        shutil.copy2(model_dir / name, target / name)
    return verify_model_dir(target)
''',
        ),
        wrong(
            "copytree of the whole folder: files the card does not list ship too",
            """
def export_model(model_dir, capstone_dir):
    source, target = Path(model_dir).resolve(), Path(capstone_dir).resolve() / "model"
    if target == source:
        raise ValueError("that is the model folder itself")
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
    return verify_model_dir(target)
""",
        ),
        wrong(
            "returns the card without verifying the copy: a tampered file is exported silently",
            """
def export_model(model_dir, capstone_dir):
    source, target = Path(model_dir).resolve(), Path(capstone_dir).resolve() / "model"
    if target == source:
        raise ValueError("that is the model folder itself")
    card = load_model_card(source)
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for name in [*card["files"], "model_card.json"]:
        shutil.copy2(source / name, target / name)
    return card
""",
        ),
    ],
    "ex2-requirements": [
        wrong(
            "does not drop trailing comments: 'Prometheus_Client==1.0  # metrics' is reported as unpinned",
            """
def check_requirements(capstone_dir):
    path = Path(capstone_dir) / "requirements.txt"
    if not path.is_file():
        return False, "create requirements.txt"
    lines = [line.strip() for line in path.read_text().splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    names = {requirement_name(line) for line in lines}
    problems = [f"pin {line}" for line in lines if parse_pin(line) is None]
    problems += [f"add {pkg}" for pkg in RUNTIME_PACKAGES if normalise(pkg) not in names]
    return not problems, "; ".join(problems)
""",
        ),
        right(
            "regex comment stripping, upper-case wording, missing packages listed with their versions",
            """
def check_requirements(capstone_dir):
    req = Path(capstone_dir, "requirements.txt")
    if not req.exists():
        return (False, "No requirements.txt: write one NAME==VERSION line per package.")
    unpinned, listed = [], set()
    for raw in req.read_text().splitlines():
        line = re.sub(r"\\s+#.*$", "", raw).strip()
        if not line or line.startswith("#"):
            continue
        listed.add(requirement_name(line))
        if parse_pin(line) is None:
            unpinned.append(line)
    missing = [p for p in RUNTIME_PACKAGES if normalise(p) not in listed]
    parts = []
    if unpinned:
        parts.append("NOT PINNED: " + ", ".join(unpinned))
    if missing:
        parts.append("MISSING: " + ", ".join(f"{p} ({importlib.metadata.version(p)})" for p in missing))
    return (not parts, " | ".join(parts))
""",
        ),
        wrong(
            "counts any line with '=' as pinned: 'requests>=2.0' passes",
            """
def check_requirements(capstone_dir):
    path = Path(capstone_dir) / "requirements.txt"
    if not path.is_file():
        return False, "create requirements.txt"
    lines = [line.split(" #")[0].strip() for line in path.read_text().splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    names = {requirement_name(line) for line in lines}
    problems = [f"pin {line}" for line in lines if "=" not in line]
    problems += [f"add {pkg}" for pkg in RUNTIME_PACKAGES if normalise(pkg) not in names]
    return not problems, "; ".join(problems)
""",
        ),
        right(
            "names packages in their underscore spelling and only the package of an unpinned line",
            """
def check_requirements(capstone_dir):
    path = Path(capstone_dir) / "requirements.txt"
    if not path.is_file():
        return False, f"{path} is missing: add a requirements.txt"
    lines = [l.partition(" #")[0].strip() for l in path.read_text().splitlines()]
    lines = [l for l in lines if l and not l.startswith("#")]
    loose = sorted({requirement_name(l).replace("-", "_") for l in lines if parse_pin(l) is None})
    names = {requirement_name(l) for l in lines}
    missing = sorted(p.replace("-", "_") for p in RUNTIME_PACKAGES if normalise(p) not in names)
    parts = [f"Pin {', '.join(loose)} with ==." if loose else ""]
    parts.append(f"Add {', '.join(missing)}." if missing else "")
    fix = " ".join(part for part in parts if part)
    return fix == "", fix
""",
        ),
        wrong(
            "compares raw names without PEP 503 normalisation: Prometheus_Client is reported missing",
            """
def check_requirements(capstone_dir):
    path = Path(capstone_dir) / "requirements.txt"
    if not path.is_file():
        return False, "create requirements.txt"
    lines = [line.split(" #")[0].strip() for line in path.read_text().splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    names = {re.split(r"[=<>!~\\[; ]", line)[0] for line in lines}
    problems = [f"pin {line}" for line in lines if parse_pin(line) is None]
    problems += [f"add {pkg}" for pkg in RUNTIME_PACKAGES if pkg not in names]
    return not problems, "; ".join(problems)
""",
        ),
    ],
    "capstone": [
        CapstoneVariant(True, "a one-module service: sync handlers, print() JSON logs, lifespan", "mini_app"),
        CapstoneVariant(False, "the starter capstone, nothing done", "starter"),
        CapstoneVariant(
            True,
            "metrics from a mounted make_asgi_app(): GET /metrics redirects to /metrics/",
            "mounted_metrics_app",
        ),
        CapstoneVariant(False, "no capstone folder handed in", "none"),
        CapstoneVariant(
            False,
            "the starter, and a cell pointing CAPSTONE_DIR at the reference solution",
            "starter",
            extra_cell=REDIRECT,
        ),
        CapstoneVariant(False, "the reference capstone handed in as the student's own: refused", "reference"),
    ],
}
