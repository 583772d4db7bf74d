"""``from syft.service.request.request import Request, RequestStatus``."""

from ...enums import RequestStatus
from ...requests import Request, RequestList

__all__ = ["Request", "RequestList", "RequestStatus"]
