"""``from syft.service.action.action_object import ActionObject``."""

from ..._action import ActionObject

AnyActionObject = ActionObject

__all__ = ["ActionObject", "AnyActionObject"]
