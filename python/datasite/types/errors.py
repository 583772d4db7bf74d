"""``from syft.types.errors import SyftException``."""

from .._pysyft import raises
from ..errors import DatasiteError

SyftException = DatasiteError

__all__ = ["SyftException", "raises"]
