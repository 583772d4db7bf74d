"""``from syft.service.job.job_stash import Job, JobStatus``."""

from ...enums import JobStatus
from ...jobs import Job, JobList

__all__ = ["Job", "JobList", "JobStatus"]
