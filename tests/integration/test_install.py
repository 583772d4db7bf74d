"""The client installs into a virtualenv (Debian's setuptools, no network) and imports from any
directory: ``python3 -m venv --system-site-packages`` then ``pip install --no-build-isolation
-e python``.
"""

import os
import subprocess
import sys

from helpers import REPO_ROOT

CHECK = (
    "import datasite as sy, datasite.client.api, datasite.service.user.user as u; "
    "print(sy.__file__); print(sy.__version__); print(u.ServiceRole.ADMIN.name)"
)


def test_pip_install_editable_into_a_venv_without_network(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
        check=True, timeout=120, stdin=subprocess.DEVNULL,
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    pip = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--no-index", "--no-build-isolation", "-q", "-e",
         str(REPO_ROOT / "python")],
        capture_output=True, text=True, env=env, timeout=300, stdin=subprocess.DEVNULL,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = subprocess.run(
        [str(venv / "bin" / "python"), "-c", CHECK],
        capture_output=True, text=True, env=env, cwd=elsewhere, timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert run.returncode == 0, run.stderr
    path, version, role = run.stdout.split()
    assert path == str(REPO_ROOT / "python" / "datasite" / "__init__.py")
    assert version and role == "ADMIN"
    assert not list((REPO_ROOT / "python").glob("*.egg-info"))  # nothing written to the checkout
