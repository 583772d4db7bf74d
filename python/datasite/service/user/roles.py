"""``from syft.service.user.roles import Roles``: a contributor's role (``sy.roles``)."""

from ...enums import ContributorRole as Roles

__all__ = ["Roles"]
