"""Finding the ``datasite`` server binary."""

import os
import shutil

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
BUILD_CANDIDATES = tuple(
    os.path.normpath(os.path.join(_PACKAGE_DIR, rel))
    for rel in (
        "../../build/datasite",
        "../../build/release/datasite",
        "../../build/debug/datasite",
    )
)


def _is_executable(path):
    return os.path.isfile(path) and os.access(path, os.X_OK)


def find_binary():
    """The path of the ``datasite`` binary.

    Looked up in this order: the environment variable ``DATASITE_BINARY``, then ``datasite`` on
    ``PATH``, then the repository's build folders next to this package. FileNotFoundError names all
    three.
    """
    env = os.environ.get("DATASITE_BINARY")
    if env:
        if _is_executable(env):
            return os.path.abspath(env)
        raise FileNotFoundError(
            "DATASITE_BINARY is set to {!r}, which is not an executable file".format(env)
        )
    on_path = shutil.which("datasite")
    if on_path:
        return on_path
    for candidate in BUILD_CANDIDATES:
        if _is_executable(candidate):
            return candidate
    raise FileNotFoundError(
        "cannot find the datasite server binary: set DATASITE_BINARY to its path, or put "
        "`datasite` on PATH, or build it in the repository (one of: {})".format(
            ", ".join(BUILD_CANDIDATES)
        )
    )
