"""``from syft.service.code.user_code import UserCode, SubmitUserCode, UserCodeStatus``."""

from ...code import SubmitUserCode, UserCode, UserCodeList
from ...enums import UserCodeStatus

__all__ = ["SubmitUserCode", "UserCode", "UserCodeList", "UserCodeStatus"]
