"""``from syft.types.uid import UID``."""

from .._api import UID

__all__ = ["UID"]
