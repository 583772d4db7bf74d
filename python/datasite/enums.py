"""Enumerations mirroring PySyft 0.9: roles, server types, deployment types."""

import enum
import functools


class ContributorRole(enum.Enum):
    """What a contributor did for a dataset (PySyft's ``sy.roles``); kept as its text."""

    SOURCE_CONTRIBUTOR = "Source Contributor"
    UPLOADER = "Uploader"
    EDITOR = "Editor"

    def __str__(self):
        return self.value


@functools.total_ordering
class ServiceRole(enum.Enum):
    """A user's role. Ordered: ``GUEST < DATA_SCIENTIST < DATA_OWNER < ADMIN``.

    The values are PySyft's; ``server_value`` is the string the HTTP API uses
    (``"data_scientist"``). ``ServiceRole("admin")`` also accepts that string.
    """

    GUEST = 1
    DATA_SCIENTIST = 2
    DATA_OWNER = 32
    ADMIN = 128

    @property
    def server_value(self):
        return self.name.lower()

    @classmethod
    def from_server(cls, value):
        """The role for a server string such as ``"data_owner"``; ValueError for an unknown one."""
        return cls(value)

    @classmethod
    def _missing_(cls, value):
        if isinstance(value, str):
            member = cls.__members__.get(value.strip().upper())
            if member is not None:
                return member
        return None

    def __lt__(self, other):
        if isinstance(other, ServiceRole):
            return self.value < other.value
        return NotImplemented


class DeploymentType(enum.Enum):
    PYTHON = "python"
    REMOTE = "remote"


class ServerType(str, enum.Enum):
    DATASITE = "datasite"
    GATEWAY = "gateway"
    ENCLAVE = "enclave"

    def __str__(self):
        return self.value


class ServerSideType(str, enum.Enum):
    HIGH_SIDE = "high"
    LOW_SIDE = "low"

    def __str__(self):
        return self.value


def role_to_server(role):
    """The server string for a ServiceRole or a role string; ValueError for anything else."""
    if isinstance(role, ServiceRole):
        return role.server_value
    if isinstance(role, str):
        return ServiceRole(role).server_value
    raise ValueError(
        "role must be a sy.ServiceRole or one of guest, data_scientist, data_owner, admin; "
        "got {!r}".format(role)
    )


def role_from_server(value):
    """A ServiceRole for a server string, or the string itself when it is unknown here."""
    try:
        return ServiceRole(value)
    except ValueError:
        return value


class _ServerEnum(str, enum.Enum):
    """An enumeration whose values are the HTTP API's strings; also accepts member names."""

    def __str__(self):
        return self.value

    @classmethod
    def _missing_(cls, value):
        if isinstance(value, str):
            member = cls.__members__.get(value.strip().upper())
            if member is not None:
                return member
        return None


class RequestStatus(_ServerEnum):
    """A code request's status. PySyft 0.9 calls a denied request ``REJECTED``; ``DENIED`` is the
    same member.
    """

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "denied"
    DENIED = "denied"


class UserCodeStatus(_ServerEnum):
    """The review status of submitted code (PySyft's ``UserCodeStatus``)."""

    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"


class JobStatus(_ServerEnum):
    """A job's status. PySyft 0.9's names ``CREATED`` and ``PROCESSING`` are the same members as
    ``QUEUED`` and ``RUNNING``.
    """

    QUEUED = "queued"
    CREATED = "queued"
    RUNNING = "running"
    PROCESSING = "running"
    COMPLETED = "completed"
    ERRORED = "errored"
    TIMED_OUT = "timed_out"
    KILLED = "killed"
    INTERRUPTED = "interrupted"

    @property
    def finished(self):
        """True once the job has ended, however it ended."""
        return self not in (JobStatus.QUEUED, JobStatus.RUNNING)


def status_from_server(enum_cls, value):
    """A member of ``enum_cls`` for a server string, or the string itself when it is unknown here
    (a newer server), so reading an object never fails on a new status.
    """
    if value is None:
        return None
    try:
        return enum_cls(value)
    except ValueError:
        return value
