"""PySyft's import paths (``syft.service...``), resolving to this client's objects."""

from . import project  # noqa: E402,F401  (sy.service.project.project, as PySyft)
from . import worker  # noqa: E402,F401  (sy.service.worker.worker_pool, as PySyft)
