"""Warnings that point at the user's line, not at the client's internals."""

import os
import sys
import warnings

from .errors import DatasiteWarning

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def user_stacklevel():
    """The ``stacklevel`` for ``warnings.warn`` called right here that names the first frame
    outside this package (the notebook cell or script line that called the client).
    """
    level = 1
    frame = sys._getframe(1)
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if os.path.dirname(filename) != _PACKAGE_DIR:
            return level
        frame = frame.f_back
        level += 1
    return level


def warn(message, category=DatasiteWarning):
    """Issues ``message`` once, attributed to the user's line."""
    warnings.warn(category(message), stacklevel=user_stacklevel())
