"""Helpers of the worker pool tests (issue 19): Python environments made offline, here.

- ``path_env``: a virtualenv with the system's site packages (Debian's pandas, numpy, sklearn) plus
  one module of its own that no other environment has;
- ``make_wheel``: a wheel of one tiny module, written by hand into a folder, for the server to
  install with ``pip --no-index --find-links``.
"""

import base64
import contextlib
import hashlib
import pathlib
import shutil
import subprocess
import sys
import tempfile
import uuid
import zipfile

SYSTEM_PYTHON = "/usr/bin/python3"


def module_name(prefix="poolmod"):
    return "{}_{}".format(prefix, uuid.uuid4().hex[:8])


@contextlib.contextmanager
def readable_dir():
    """A new folder every user may read (pytest's own are 0700 under /tmp/pytest-of-USER, which
    the sandbox's user can't enter), not under /tmp (the sandbox mounts its own there), removed
    afterwards."""
    path = pathlib.Path(tempfile.mkdtemp(prefix="datasite-pool-test-", dir="/var/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def site_packages(env):
    version = "python{}.{}".format(*sys.version_info[:2])
    out = subprocess.run(
        [str(pathlib.Path(env) / "bin" / "python"), "-c",
         "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout.strip()
    return pathlib.Path(out or pathlib.Path(env) / "lib" / version / "site-packages")


def path_env(root, module, value):
    """A virtualenv at ``root`` (``--system-site-packages --without-pip``) whose own module
    ``module`` has ``VALUE = value``; returns its root."""
    root = pathlib.Path(root)
    subprocess.run(
        [SYSTEM_PYTHON, "-m", "venv", "--system-site-packages", "--without-pip", str(root)],
        check=True, timeout=120,
    )
    (site_packages(root) / (module + ".py")).write_text("VALUE = {!r}\n".format(value))
    # The server (another user's sandbox, maybe) must read it all.
    for path in [root] + list(root.rglob("*")):
        if path.is_symlink():
            continue
        path.chmod(path.stat().st_mode | (0o055 if path.is_dir() else 0o044))
    return root


def _record_hash(data):
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def make_wheel(folder, name, version="1.0", value=42):
    """Writes ``{name}-{version}-py3-none-any.whl`` (one module ``name`` with ``VALUE = value``)
    into ``folder``; returns the wheel's path."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    dist_info = "{}-{}.dist-info".format(name, version)
    files = {
        name + ".py": "VALUE = {!r}\n".format(value).encode(),
        dist_info + "/METADATA": "Metadata-Version: 2.1\nName: {}\nVersion: {}\n".format(
            name, version).encode(),
        dist_info + "/WHEEL": b"Wheel-Version: 1.0\nGenerator: datasite-tests\n"
                              b"Root-Is-Purelib: true\nTag: py3-none-any\n",
        dist_info + "/top_level.txt": (name + "\n").encode(),
    }
    record = "".join("{},{},{}\n".format(path, _record_hash(data), len(data))
                     for path, data in files.items())
    record += dist_info + "/RECORD,,\n"
    files[dist_info + "/RECORD"] = record.encode()
    wheel = folder / "{}-{}-py3-none-any.whl".format(name, version)
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as z:
        for path, data in files.items():
            z.writestr(path, data)
    wheel.chmod(0o644)
    folder.chmod(0o755)
    return wheel
