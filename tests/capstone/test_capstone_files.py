"""The capstone folders' files: Dockerfile, .dockerignore, pins, deploy.md and manifests (no Docker needed).

Building and running the image is tested elsewhere (the Docker tests); these checks are the static half of
the contract and run everywhere in milliseconds.
"""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import distribution
from pathlib import Path

import pytest
import yaml
from capstone_support import SOLUTION_DIR, SOLUTION_SRC, STARTER_DIR
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from settings import ServiceSettings

from course_utils.config import PROJECT_ROOT
from course_utils.dockerfile import read_dockerfile

BOTH = pytest.mark.parametrize("folder", [SOLUTION_DIR, STARTER_DIR], ids=["solution", "starter"])
SERVING_PACKAGES = {
    "fastapi",
    "uvicorn",
    "pydantic",
    "pydantic-settings",
    "prometheus-client",
    "onnxruntime",
    "tokenizers",
    "numpy",
}


def pins(path: Path) -> dict[str, str]:
    """{canonical name: version} of a requirements file; fails on anything but `name==version` lines."""
    result = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([A-Za-z0-9.+!-]+)", line)
        assert match, f"{path}: {line!r} is not an exact pin (name==version)"
        result[canonicalize_name(match[1])] = match[2]
    return result


def dockerfile_instructions(folder: Path) -> list[str]:
    text = (folder / "Dockerfile").read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


@BOTH
def test_the_contract_files_exist(folder: Path) -> None:
    for name in ("src/app.py", "Dockerfile", ".dockerignore", "requirements.txt", "deploy.md"):
        assert (folder / name).is_file(), f"{folder.name}/{name} is missing"


@BOTH
def test_dockerfile_takes_the_base_image_as_a_build_arg_and_runs_uvicorn(folder: Path) -> None:
    lines = dockerfile_instructions(folder)
    assert lines[0] == "ARG BASE_IMAGE=python:3.11-slim"
    # One stage in the starter; the reference names its first stage (`AS build`) and starts the final one
    # from the same base (test_solution_dockerfile_is_multi_stage_with_a_runtime_only_final_stage).
    assert re.fullmatch(r"FROM \$\{BASE_IMAGE\}( AS \w+)?", lines[1]), lines[1]
    assert "EXPOSE 8000" in lines
    # Port and host either on the exec-form command line or, in the reference, through UVICORN_* variables.
    assert lines[-1] in (
        'CMD ["uvicorn", "app:app", "--app-dir", "src", "--host", "0.0.0.0", "--port", "8000"]',
        'CMD ["uvicorn", "app:app", "--app-dir", "src"]',
    )
    if lines[-1].endswith('"src"]'):
        assert any("UVICORN_PORT=8000" in line for line in lines) and any(
            "UVICORN_HOST=0.0.0.0" in line for line in lines
        )
    assert "RUN python3 -m venv /opt/venv" in lines  # the CI base image has python3, not python
    assert not any(re.search(r"\bpython\b(?!3)", line) for line in lines if line.startswith("RUN"))


def test_solution_dockerfile_is_production_ready() -> None:
    lines = dockerfile_instructions(SOLUTION_DIR)
    text = "\n".join(lines)
    assert "PYTHONUNBUFFERED=1" in text and "MODEL_DIR=/app/model" in text
    copies = [line for line in lines if line.startswith("COPY")]
    assert copies[0].endswith("requirements.txt /app/requirements.txt"), "dependencies before code"
    assert any(" model/ /app/model/" in line for line in copies)
    assert [line for line in lines if line.startswith("USER")] == ["USER app"]
    (healthcheck,) = [line for line in lines if line.startswith("HEALTHCHECK")]
    assert "python3" in healthcheck and "urllib" in healthcheck and "/health" in healthcheck
    assert "curl" not in text and "torch" not in text


def test_solution_dockerfile_is_multi_stage_with_a_runtime_only_final_stage() -> None:
    """A build stage installs into /opt/venv; the final stage copies the venv and never runs pip.

    Both stages start FROM ${BASE_IMAGE}: the venv's python3 links to the base's interpreter, so the final
    stage must have the same one at the same path.
    """
    dockerfile = read_dockerfile(SOLUTION_DIR / "Dockerfile")
    build, final = dockerfile.stages
    assert build.name and final.parent is None, "the final stage starts FROM the base, not FROM the build"
    assert build.image == final.image, "both stages start FROM ${BASE_IMAGE}"
    build_runs = " ".join(inst.value for inst in build.all("RUN"))
    assert "pip install --no-cache-dir -r" in build_runs, "dependencies are installed in the build stage"
    assert "pip uninstall --yes pip setuptools" in build_runs, "the venv ships without its installer"
    final_runs = " ".join(inst.value for inst in final.all("RUN"))
    assert "pip" not in final_runs and "apt-get" not in final_runs, f"the final stage installs: {final_runs}"
    copies = [(inst.flags.get("from"), inst.arguments) for inst in final.all("COPY")]
    assert (build.name, "/opt/venv /opt/venv") in copies, f"the final stage copies the venv: {copies}"
    context_copies = " ".join(value for stage, value in copies if stage is None)
    assert "requirements.txt" not in context_copies, "the final stage needs the venv, not the pins"


def test_solution_dockerignore_keeps_the_context_small() -> None:
    ignored = set((SOLUTION_DIR / ".dockerignore").read_text().split())
    assert {".git", "data", "notebooks", "__pycache__", "tests", ".venv"} <= ignored


@BOTH
def test_requirements_are_exact_pins_of_the_course_versions_without_torch(folder: Path) -> None:
    course = pins(PROJECT_ROOT / "requirements.txt")
    served = pins(folder / "requirements.txt")
    assert "torch" not in served and "transformers" not in served
    different = {
        name: (version, course.get(name)) for name, version in served.items() if course.get(name) != version
    }
    assert not different, f"pins differ from ../requirements.txt (capstone, course): {different}"


def test_solution_requirements_pin_the_serving_packages_and_all_their_dependencies() -> None:
    served = pins(SOLUTION_DIR / "requirements.txt")
    assert set(served) >= SERVING_PACKAGES
    missing = set()
    for name in served:
        for requirement in distribution(name).requires or []:
            parsed = Requirement(requirement)
            applies = parsed.marker is None or parsed.marker.evaluate({"extra": ""})
            if applies and canonicalize_name(parsed.name) not in served:
                missing.add(f"{parsed.name} (needed by {name})")
    assert not missing, f"unpinned dependencies: {sorted(missing)}"


def test_deploy_md_documents_every_setting_and_section() -> None:
    text = (SOLUTION_DIR / "deploy.md").read_text()
    for section in ("## Build", "## Run", "## Configure", "## Health checks", "## Monitoring", "## Scale"):
        assert section in text
    for field in ServiceSettings.model_fields:
        assert f"`{field.upper()}`" in text, f"deploy.md does not document {field.upper()}"
    for words in ("make docker", "docker compose", "preStop", "Ray Serve", "KServe"):
        assert words in text


def test_compose_runs_the_service_with_prometheus_scraping_it() -> None:
    compose = yaml.safe_load((SOLUTION_DIR / "deploy" / "docker-compose.yml").read_text())
    assert {"sentiment", "prometheus"} <= set(compose["services"])
    scrape = yaml.safe_load((SOLUTION_DIR / "deploy" / "prometheus.yml").read_text())["scrape_configs"][0]
    assert scrape["metrics_path"] == "/metrics"
    assert scrape["static_configs"][0]["targets"] == ["sentiment:8000"]


def test_kubernetes_probes_and_prestop_drain() -> None:
    deployment = yaml.safe_load((SOLUTION_DIR / "deploy" / "k8s" / "deployment.yaml").read_text())
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert "preStop" in container["lifecycle"]
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > 5


def test_solution_source_has_no_pickle_and_small_modules() -> None:
    for module in SOLUTION_SRC.glob("*.py"):
        source = module.read_text()
        assert not re.search(r"\b(pickle|joblib|torch\.load)\b", source), f"{module.name} may unpickle"
        assert len(source.splitlines()) < 400, f"{module.name} is over 400 lines: split it"


@pytest.mark.parametrize(
    "name", ["src/app.py", "Dockerfile", ".dockerignore", "requirements.txt", "deploy.md"]
)
def test_the_starter_marks_what_students_do(name: str) -> None:
    assert "TODO(student)" in (STARTER_DIR / name).read_text()


def test_the_starter_lint_settings_are_standalone_and_equal_the_projects() -> None:
    """Students lint their copy of capstone/ on its own, so its ruff.toml cannot extend ours: it copies it."""
    starter = tomllib.loads((STARTER_DIR / "ruff.toml").read_text())
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["ruff"]
    assert "extend" not in starter and "cache-dir" not in starter, "no paths outside the capstone folder"
    assert starter["line-length"] == project["line-length"]
    assert starter["target-version"] == project["target-version"]
    # The project's per-file ignores are for its notebook sources (solutions/src), which a capstone has not.
    project_lint = {key: value for key, value in project["lint"].items() if key != "per-file-ignores"}
    assert starter["lint"] == project_lint
