"""``from syft.service.user.user import ServiceRole, User, UserView``."""

from ...enums import ServiceRole
from ...users import Account, User, UserList

UserView = User
UserViewPage = UserList

__all__ = ["Account", "ServiceRole", "User", "UserList", "UserView", "UserViewPage"]
