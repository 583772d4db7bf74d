"""Python client of the datasite server, with PySyft 0.9's names: ``import datasite as sy``.

Example::

    import datasite as sy
    server = sy.orchestra.launch(name="my_special_server", reset=True, port="auto")
    client = sy.login(url="localhost", port=server.port,
                      email="info@example.org", password="changethis")
    client.users.create(name="Jane", email="jane@example.org", password="Secret-123",
                        password_verify="Secret-123", role=sy.ServiceRole.DATA_SCIENTIST)
    server.land()

Standard library only.
"""

__version__ = "0.1.0"

from . import orchestra
from .client import DatasiteClient, login, login_as_guest, register
from .datasets import Asset, AssetList, Contributor, Dataset, DatasetCollection, DatasetList
from .enums import DeploymentType, ServerSideType, ServerType, ServiceRole
from .errors import (
    AlreadyExistsError,
    AuthenticationError,
    DatasiteError,
    DatasiteWarning,
    FailedPreconditionError,
    IntegrityError,
    InternalServerError,
    InvalidArgumentError,
    MethodNotAllowedError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitedError,
    ServerConnectionError,
    SyftError,
    SyftSuccess,
    UnavailableError,
)
from .orchestra import ServerHandle
from .settings import Settings
from .users import Account, User, UserCollection, UserList

SyftWarning = DatasiteWarning
SyftException = DatasiteError

__all__ = [
    "__version__",
    "orchestra",
    "login",
    "login_as_guest",
    "register",
    "DatasiteClient",
    "ServerHandle",
    "ServiceRole",
    "DeploymentType",
    "ServerType",
    "ServerSideType",
    "SyftSuccess",
    "SyftError",
    "SyftWarning",
    "SyftException",
    "DatasiteWarning",
    "DatasiteError",
    "InvalidArgumentError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "MethodNotAllowedError",
    "AlreadyExistsError",
    "FailedPreconditionError",
    "PayloadTooLargeError",
    "RateLimitedError",
    "InternalServerError",
    "UnavailableError",
    "ServerConnectionError",
    "IntegrityError",
    "Dataset",
    "Asset",
    "Contributor",
    "AssetList",
    "DatasetList",
    "DatasetCollection",
    "Settings",
    "User",
    "Account",
    "UserCollection",
    "UserList",
]
