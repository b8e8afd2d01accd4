"""One exception tree for course_utils.

Library code raises these; `course_utils.cli` catches `CourseUtilsError` and exits 1 with its message.
Every message says what happened, why, and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "ContainerStartError",
    "CourseUtilsError",
    "DataError",
    "DockerBuildError",
    "DockerUnavailableError",
    "DockerfileSyntaxError",
    "ImageNotFoundError",
    "ModelIntegrityError",
    "ModelNotBuiltError",
    "ServerStartError",
    "ServerStopError",
    "ToolNotInstalledError",
]


class CourseUtilsError(Exception):
    """Base class of every error raised on purpose by course_utils."""


class DataError(CourseUtilsError):
    """A bundled dataset is missing, malformed or does not match its documented sha256."""


class ModelIntegrityError(CourseUtilsError):
    """A model file's sha256 differs from the expected one: refuse to load it."""


class ModelNotBuiltError(CourseUtilsError):
    """The exported model folder does not exist yet (run `make model`)."""


class ServerStartError(CourseUtilsError):
    """A background server did not become ready (port taken, startup failed, thread died, timeout)."""


class DockerUnavailableError(CourseUtilsError):
    """No Docker daemon answers; the message says why and how to start one."""


class DockerBuildError(CourseUtilsError):
    """`docker build` failed; the message names the failing step and its output."""


class ServerStopError(CourseUtilsError):
    """A background server did not stop within its timeout, even after a forced exit."""


class ContainerStartError(ServerStartError):
    """A container exited, became unhealthy or did not answer in time; the message holds its logs."""


class ToolNotInstalledError(CourseUtilsError):
    """An external program the course runs as a subprocess (wrk, locust) is not installed."""


class ImageNotFoundError(CourseUtilsError):
    """A Docker image is not in the local daemon (build it first; no registry is reachable here)."""


class DockerfileSyntaxError(CourseUtilsError, ValueError):
    """A Dockerfile that `docker build` would refuse to parse; the message names the line and the fix."""
