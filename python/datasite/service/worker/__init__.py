"""``syft.service.worker``."""

from . import worker_image, worker_pool  # noqa: F401  (sy.service.worker.worker_pool, as PySyft)
