"""course_utils: the library behind the Deployment and ML Lifecycle course.

The names below are the everyday toolkit of the notebooks. Model code (`course_utils.model`, `.training`,
`.export`) imports torch, so it is imported from its own module when needed rather than here.
"""

from __future__ import annotations

from course_utils.bench import LoadResult, run_closed_loop, run_open_loop, sweep_concurrency
from course_utils.config import Settings, get_settings
from course_utils.docker_tools import build_image, docker_status, run_container
from course_utils.dockerfile_lint import lint_dockerfile
from course_utils.drift import DriftReport, ks, psi
from course_utils.errors import (
    ContainerStartError,
    CourseUtilsError,
    DataError,
    DockerBuildError,
    DockerUnavailableError,
    ImageNotFoundError,
    ModelIntegrityError,
    ModelNotBuiltError,
    ServerStartError,
    ServerStopError,
    ToolNotInstalledError,
)
from course_utils.latency import time_stages
from course_utils.server import BackgroundServer, ServerProcess

__version__ = "0.1.0"

__all__ = [
    "BackgroundServer",
    "ContainerStartError",
    "CourseUtilsError",
    "DataError",
    "DockerBuildError",
    "DockerUnavailableError",
    "DriftReport",
    "ImageNotFoundError",
    "LoadResult",
    "ModelIntegrityError",
    "ModelNotBuiltError",
    "ServerProcess",
    "ServerStartError",
    "ServerStopError",
    "Settings",
    "ToolNotInstalledError",
    "__version__",
    "build_image",
    "docker_status",
    "get_settings",
    "ks",
    "lint_dockerfile",
    "psi",
    "run_closed_loop",
    "run_container",
    "run_open_loop",
    "sweep_concurrency",
    "time_stages",
]
