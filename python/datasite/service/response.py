"""``from syft.service.response import SyftError, SyftSuccess, SyftWarning``."""

from ..errors import DatasiteWarning, SyftError, SyftSuccess

SyftWarning = DatasiteWarning

__all__ = ["SyftError", "SyftSuccess", "SyftWarning"]
