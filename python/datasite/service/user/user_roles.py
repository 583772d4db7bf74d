"""``from syft.service.user.user_roles import ServiceRole``."""

from ...enums import ServiceRole

__all__ = ["ServiceRole"]
