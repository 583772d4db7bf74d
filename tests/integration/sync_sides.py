"""Helpers of the sync tests through the Python client (issue 14): a low and a high server, a high
server in a network namespace of its own driven through scripts run inside it, and carrying bundle
files between them. Bundles forged with a test's own key are sync_helpers.py's.
"""

import json
import os
import pathlib
import subprocess
import tempfile
import uuid

import pytest

import datasite as sy
from helpers import (
    PASSWORD,
    REPO_ROOT,
    ROOT_EMAIL,
    ROOT_PASSWORD,
    Api,
    DetachedServer,
    unique_email,
)

FLAGS = ("--login-attempts-per-minute", "1000", "--signup")
DRIVER = pathlib.Path(__file__).resolve().parent / "sync_driver.py"
PYTHON = "/usr/bin/python3"

# A driven snippet (NetnsServer.drive): the owner uploads a dataset of one asset, "people".
HIGH_UPLOAD = """
import pandas as pd
ds = sy.Dataset(name=args['name'], summary='people and their ages')
ds.add_asset(sy.Asset(name='people', data=pd.DataFrame(args['private']),
                      mock=pd.DataFrame(args['mock'])))
high.upload_dataset(ds)
"""


def start_side(binary, data_dir, side, *extra):
    """A detached server of ``side`` ("low" or "high"); always ``stop()`` it."""
    server = DetachedServer(binary, data_dir, "--side", side, *FLAGS, *extra)
    server.start()
    return server


def admin_of(server):
    return sy.login(url="localhost", port=server.port, email=ROOT_EMAIL, password=ROOT_PASSWORD)


def skip_without_sync(port):
    """Skips the test when the server has no sync routes yet (built before issue 14)."""
    api = Api(port)
    token = api.login(ROOT_EMAIL, ROOT_PASSWORD)
    if api.get("/api/v1/sync/identity", token=token).status == 404:
        pytest.skip("this server has no sync routes (GET /api/v1/sync/identity is 404)")


def exchange_keys(low, high, low_name="low", high_name="high"):
    """The out-of-band key exchange: each admin registers the other side's key."""
    low_id, high_id = low.sync.identity, high.sync.identity
    assert low.sync.add_peer(name=high_name, verify_key=high_id["verify_key"])
    assert high.sync.add_peer(name=low_name, verify_key=low_id["verify_key"])
    return low_id, high_id


def carry(source, peer, destination, directory, label="bundle"):
    """Exports from ``source`` for ``peer`` into a new file under ``directory`` and loads it into
    ``destination``; returns ``(widget, path)``."""
    path = pathlib.Path(directory) / "{}-{}.dsync".format(label, uuid.uuid4().hex[:8])
    assert source.sync.export(path, peer=peer)
    return destination.sync.load(path), path


def batch_index(widget, batch_id):
    for i in range(len(widget)):
        if widget[i].obj_diff_batch.id == batch_id:
            return i
    raise AssertionError("no batch {} in {!r}".format(batch_id, widget))


def register_scientist(port, name="Sam Scientist"):
    """Self-registration on the low side; returns ``(client, email)``."""
    email = unique_email("ds")
    assert sy.register(url="localhost", port=port, name=name, email=email, password=PASSWORD,
                       institution="Uni")
    return sy.login(url="localhost", port=port, email=email, password=PASSWORD), email


def state_of(admin):
    """What a refused bundle must leave unchanged on a server: peers (with their sequence
    numbers), users, requests, datasets and ignored batches."""
    return {
        "peers": sorted(json.dumps(p, sort_keys=True) for p in admin.sync.peers),
        "users": sorted(u.email for u in admin.users),
        "requests": sorted((r.id, str(r.status)) for r in admin.requests),
        "datasets": sorted(d.name for d in admin.datasets),
        "ignored": admin.sync.ignored,
    }


# A high side with no network: its own namespace ---------------------------------------------


def _ip(*args, check=True):
    return subprocess.run(["ip", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=30, check=check)


class Netns:
    """A network namespace with only ``lo`` up; ``remove()`` deletes it."""

    def __init__(self):
        if os.geteuid() != 0:
            pytest.skip("the air-gap test needs root for `ip netns` (uid {})".format(os.geteuid()))
        self.name = "dsync-" + uuid.uuid4().hex[:8]
        try:
            _ip("netns", "add", self.name)
        except (OSError, subprocess.SubprocessError) as err:
            detail = getattr(err, "stderr", b"") or b""
            pytest.skip("`ip netns add` failed here: {} {}".format(
                err, detail.decode(errors="replace")))
        _ip("netns", "exec", self.name, "ip", "link", "set", "lo", "up")

    def prefix(self):
        return ["ip", "netns", "exec", self.name]

    def routes(self):
        out = _ip("netns", "exec", self.name, "ip", "-4", "route", "show").stdout.decode()
        return [line for line in out.splitlines() if line.strip()]

    def remove(self):
        _ip("netns", "delete", self.name, check=False)


def root_namespace_addresses():
    """Every IPv4 address of this machine's own (root) namespace."""
    out = _ip("-4", "-o", "addr", "show").stdout.decode()
    return [line.split()[3].split("/")[0] for line in out.splitlines() if " inet " in line]


class NetnsServer(DetachedServer):
    """A ``DetachedServer`` launched (and landed) inside a network namespace."""

    def __init__(self, netns, binary, data_dir, *flags, **kwargs):
        super().__init__(binary, data_dir, *flags, **kwargs)
        self.netns = netns

    def _run(self, *args):
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            code = subprocess.call(self.netns.prefix() + [self.binary] + list(args), stdout=out,
                                   stderr=err, stdin=subprocess.DEVNULL, timeout=self.timeout)
            out.seek(0)
            err.seek(0)
            return code, out.read().decode(errors="replace"), err.read().decode(errors="replace")

    def drive(self, snippet, **args):
        """Runs ``snippet`` inside the namespace with ``high`` (the root admin's client of this
        server), ``sy`` and ``args`` bound; returns what it put in ``result`` (JSON).

        Raises ``DrivenError`` (with the client's error class name and message) when it raised.
        """
        request = json.dumps({"port": self.port, "snippet": snippet, "args": args,
                              "python": str(REPO_ROOT / "python")})
        proc = subprocess.run(self.netns.prefix() + [PYTHON, str(DRIVER)], input=request.encode(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
        lines = proc.stdout.decode(errors="replace").strip().splitlines()
        if proc.returncode != 0 or not lines:
            raise AssertionError("driver failed ({}): {}\n{}".format(
                proc.returncode, proc.stdout.decode(errors="replace"),
                proc.stderr.decode(errors="replace")))
        answer = json.loads(lines[-1])
        if not answer["ok"]:
            raise DrivenError(answer["error"], answer["message"])
        return answer["result"]


class DrivenError(Exception):
    def __init__(self, kind, message):
        super().__init__("{}: {}".format(kind, message))
        self.kind = kind
        self.message = message


def can_connect(prefix, host, port, timeout=2.0):
    """Whether a TCP connection to host:port succeeds from the namespace of ``prefix``."""
    code = ("import socket,sys\n"
            "try:\n"
            "    socket.create_connection((sys.argv[1], int(sys.argv[2])),\n"
            "                             timeout=float(sys.argv[3]))\n"
            "except OSError:\n"
            "    sys.exit(1)\n")
    proc = subprocess.run(prefix + [PYTHON, "-c", code, host, str(port), str(timeout)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
    return proc.returncode == 0
