"""``from syft.service.worker.worker_pool import WorkerPool, SyftWorker, ContainerSpawnStatus``."""

from ...worker_pools import ContainerSpawnStatus, SyftWorker, WorkerPool

__all__ = ["ContainerSpawnStatus", "SyftWorker", "WorkerPool"]
