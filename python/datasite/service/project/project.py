"""``from syft.service.project.project import Project, ProjectRequest, ...``."""

from ...projects import (
    Project,
    ProjectEvent,
    ProjectList,
    ProjectMessage,
    ProjectRequest,
    ProjectRequestResponse,
    ProjectSubmit,
)

__all__ = [
    "Project",
    "ProjectEvent",
    "ProjectList",
    "ProjectMessage",
    "ProjectRequest",
    "ProjectRequestResponse",
    "ProjectSubmit",
]
