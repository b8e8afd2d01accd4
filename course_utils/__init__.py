"""course_utils: the library behind the Deployment and ML Lifecycle course."""

from __future__ import annotations

from course_utils.errors import (
    CourseUtilsError,
    DataError,
    DockerBuildError,
    DockerUnavailableError,
    ModelIntegrityError,
    ModelNotBuiltError,
    ServerStartError,
)

__version__ = "0.1.0"

__all__ = [
    "CourseUtilsError",
    "DataError",
    "DockerBuildError",
    "DockerUnavailableError",
    "ModelIntegrityError",
    "ModelNotBuiltError",
    "ServerStartError",
    "__version__",
]
