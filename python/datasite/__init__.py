"""Python client of the datasite server, with PySyft 0.9's names: ``import datasite as sy``.

Example::

    import datasite as sy
    server = sy.orchestra.launch(name="my_special_server", reset=True, port="auto")
    client = sy.login(url="localhost", port=server.port,
                      email="info@example.org", password="changethis")
    client.users.create(name="Jane", email="jane@example.org", password="Secret-123",
                        password_verify="Secret-123", role=sy.ServiceRole.DATA_SCIENTIST)
    server.land()

Standard library only (pandas and numpy are used when present).

Code on private data::

    asset = client.datasets["census"].assets["table"]

    @sy.syft_function_single_use(data=asset)
    def mean_age(data):
        return float(data["age"].mean())

    mean_age()                       # runs here, on the mock
    request = client.code.request_code_execution(mean_age, reason="for the report")
    # ... once a data owner approved it:
    client.code.mean_age(data=asset).get()

    # A data owner may instead approve it for repeated use, within limits per user:
    owner.requests.get(request.id).approve(repeat=sy.RateLimit(per_hour=10), expires_in_days=30)
    # ... whose results must then pass the datasets' output checks (a held one names the rule):
    owner.datasets["census"].set_output_checks(sy.OutputChecks(min_cell_count=10, round_to=5))

Custom API endpoints (a data owner's functions, called on the server)::

    @sy.api_endpoint(path="warehouse.query", settings={"key": "kept on the server"})
    def query(context, sql: str):
        return [{"rows": 3}]

    client.api.services.api.add(endpoint=query)
    client.api.services.warehouse.query(sql="SELECT 1")

Worker pools (the Python environments code runs in; see ``datasite.worker_pools``)::

    image = client.worker_images.submit(worker_config=sy.PythonWorkerConfig(
        name="ml", python="/usr/bin/python3", imports=["sklearn"])).value
    client.worker_pools.launch(pool_name="ml", image_uid=image.id, num_workers=2)

    @sy.syft_function_single_use(data=asset, worker_pool_name="ml")
    def fit(data): ...
"""

__version__ = "0.1.0"

import sys as _sys

from . import orchestra
from ._action import ActionObject
from ._api import IncompatibleServerError, UID
from ._pysyft import DataSubject, raises, requires
from .api_endpoints import Endpoint, TwinAPIEndpoint, api_endpoint, api_endpoint_method
from .client import DatasiteClient, login, login_as_guest, register
from .code import (
    CodeHistory,
    SubmitUserCode,
    UserCode,
    UserCodeList,
    syft_function,
    syft_function_single_use,
)
from .datasets import Asset, AssetList, Contributor, Dataset, DatasetCollection, DatasetList
from .dp import DPPolicy, DPResult
from .enums import ContributorRole as roles  # PySyft's sy.roles.UPLOADER, ...
from .enums import (
    ContributorRole,
    DeploymentType,
    JobStatus,
    RequestStatus,
    ServerSideType,
    ServerType,
    ServiceRole,
    UserCodeStatus,
)
from .errors import (
    AlreadyExistsError,
    AuthenticationError,
    DatasiteError,
    DatasiteWarning,
    FailedPreconditionError,
    IntegrityError,
    InternalServerError,
    InvalidArgumentError,
    JobFailedError,
    JobTimeoutError,
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
from .grants import Grant, GrantList, RateLimit
from .jobs import Job, JobList, JobLogs, ResultPointer
from .orchestra import ServerHandle
from .output_checks import OutputChecks
from .policies import (
    CustomInputPolicy,
    CustomOutputPolicy,
    EmpyInputPolicy,
    EmptyInputPolicy,
    ExactMatch,
    InputPolicy,
    OutputPolicy,
    OutputPolicyExecuteCount,
    OutputPolicyExecuteOnce,
    SingleExecutionExactOutput,
)
from .projects import Project, ProjectList
from .requests import Request, RequestList
from .settings import Settings
from .syncing import ServerDiff, compare_clients, sync
from .users import Account, User, UserCollection, UserList
from .worker_pools import (
    DockerWorkerConfig,
    PrebuiltWorkerConfig,
    PythonWorkerConfig,
    WorkerConfig,
    WorkerImage,
    WorkerImageList,
    WorkerPool,
    WorkerPoolList,
)

SyftWarning = DatasiteWarning
SyftException = DatasiteError

# A server result is a pointer with PySyft's ActionObject methods: isinstance(r, sy.ActionObject).
ActionObject.register(ResultPointer)

# PySyft's ``syft.client.api``: ``datasite.client`` is a module, so the submodule is registered.
from . import _client_api  # noqa: E402
from . import client as _client_module  # noqa: E402

_sys.modules[__name__ + ".client.api"] = _client_api
_client_module.api = _client_api
from . import service, types  # noqa: E402,F401

__all__ = [
    "__version__",
    "orchestra",
    "login",
    "login_as_guest",
    "register",
    "DatasiteClient",
    "ServerHandle",
    "ServiceRole",
    "ContributorRole",
    "roles",
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
    "syft_function",
    "syft_function_single_use",
    "api_endpoint",
    "api_endpoint_method",
    "Endpoint",
    "TwinAPIEndpoint",
    "SubmitUserCode",
    "UserCode",
    "UserCodeList",
    "CodeHistory",
    "InputPolicy",
    "ExactMatch",
    "EmpyInputPolicy",
    "EmptyInputPolicy",
    "OutputPolicy",
    "OutputPolicyExecuteCount",
    "OutputPolicyExecuteOnce",
    "SingleExecutionExactOutput",
    "Project",
    "ProjectList",
    "Request",
    "RequestList",
    "RequestStatus",
    "RateLimit",
    "Grant",
    "GrantList",
    "OutputChecks",
    "DPPolicy",
    "DPResult",
    "UserCodeStatus",
    "Job",
    "JobList",
    "JobLogs",
    "JobStatus",
    "ResultPointer",
    "JobFailedError",
    "JobTimeoutError",
    "ActionObject",
    "UID",
    "DataSubject",
    "requires",
    "raises",
    "CustomInputPolicy",
    "CustomOutputPolicy",
    "IncompatibleServerError",
    "compare_clients",
    "sync",
    "ServerDiff",
    "WorkerConfig",
    "PythonWorkerConfig",
    "DockerWorkerConfig",
    "PrebuiltWorkerConfig",
    "WorkerImage",
    "WorkerImageList",
    "WorkerPool",
    "WorkerPoolList",
]
