"""``from syft.service.worker.worker_image import SyftWorkerImage``."""

from ...worker_pools import WorkerImage

SyftWorkerImage = WorkerImage

__all__ = ["SyftWorkerImage", "WorkerImage"]
