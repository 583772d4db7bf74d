"""``syft.service.project``."""

from . import project  # noqa: F401  (sy.service.project.project.Project, as PySyft)
