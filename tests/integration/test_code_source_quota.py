"""Regression: code submissions filled the disk past the quota and the storage limit.

A data scientist submitted 60 versions of one function with 1 MiB of source each on a server with
``--max-storage-bytes 20000000 --user-quota-bytes 2000000``: all were accepted, the data dir grew by
64 MiB and their quota still showed ``used_bytes`` 0. Now the bytes a version keeps (source, inputs,
custom policies) count toward the author's quota (``code_bytes``, in ``used_bytes``) and the server's
storage limit, and a data scientist's versions are capped (``--max-code-per-user``): a submission
past either is refused with 413 PAYLOAD_TOO_LARGE naming the limit, as a run past the job quota is.
"""

import pytest

from conftest import POSTGRES_ADMIN_URL, postgres_database
from dataset_helpers import make_actors
from helpers import assert_error, DetachedServer, PASSWORD

QUOTA = 200_000
STORAGE = 500_000
VERSIONS = 12
PAD = 50_000  # bytes of comment in each version: four fill the quota


def source(i, pad=PAD):
    return "def f():\n    return {}\n{}".format(i, ("#" + "x" * 98 + "\n") * (pad // 100))


def submit(api, token, src, name="f"):
    return api.post("/api/v1/code", {"name": name, "source": src}, token=token)


def quota(api, token):
    resp = api.get("/api/v1/account/quota", token=token)
    assert resp.status == 200, resp
    return resp.json


def new_scientist(api, actors):
    user = api.create_user(actors["admin"].token, role="data_scientist")
    return api.login(user["email"], PASSWORD)


@pytest.fixture
def launch(binary, tmp_path):
    """Starts a server with the quota and storage limit above and `flags` (on PostgreSQL when the
    run's engine is)."""
    servers = []

    def start(*flags):
        name = "data{}".format(len(servers))
        if POSTGRES_ADMIN_URL:
            flags += ("--database", postgres_database(tmp_path, name, fresh=True))
        srv = DetachedServer(binary, tmp_path / name,
                             "--user-quota-bytes", QUOTA, "--max-storage-bytes", STORAGE, *flags)
        servers.append(srv)
        api = srv.start()
        return srv, api, make_actors(srv.port)

    try:
        yield start
    finally:
        for srv in servers:
            srv.stop()


def test_code_versions_count_toward_the_quota_and_are_refused_past_it(launch):
    _, api, actors = launch()
    scientist = actors["scientist"].token
    fresh = quota(api, scientist)
    assert (fresh.get("code_bytes"), fresh["used_bytes"], fresh.get("code_versions")) == (0, 0, 0)
    assert fresh["max_code_versions"] == 10_000  # the default

    kept = 0
    for i in range(10):
        resp = submit(api, scientist, source(i))
        if resp.status != 201:
            break
        kept += len(source(i).encode()) + len("{}")  # the source and its (empty) inputs
    assert i == 3 and kept <= QUOTA  # three versions of 50 kB fit, the fourth passes 200 kB
    assert_error(resp, 413, "PAYLOAD_TOO_LARGE")
    assert "--user-quota-bytes" in resp.error["message"], resp
    assert str(QUOTA) in resp.error["message"], resp

    use = quota(api, scientist)
    assert use["code_bytes"] == kept
    assert use["used_bytes"] == use["results_bytes"] + use["logs_bytes"] + kept
    assert use["code_versions"] == i
    # Nothing of the refused version was stored: the next version of f is still i + 1.
    listed = api.get("/api/v1/code?name=f", token=scientist)
    assert listed.status == 200, listed
    assert [c["version"] for c in listed.json["items"]] == list(range(1, i + 1))

    # A small version still fits in what is left.
    small = submit(api, scientist, "def f():\n    return 'small'\n")
    assert small.status == 201, small

    # Another data scientist has a quota of their own.
    other = new_scientist(api, actors)
    assert submit(api, other, source(0)).status == 201


def test_versions_past_the_cap_are_refused(launch):
    _, api, actors = launch("--max-code-per-user", VERSIONS)
    scientist = actors["scientist"].token
    assert quota(api, scientist)["max_code_versions"] == VERSIONS
    for i in range(VERSIONS):
        resp = submit(api, scientist, "def g():\n    return {}\n".format(i), name="g")
        assert resp.status == 201, resp
    past = submit(api, scientist, "def g():\n    return 'past'\n", name="g")
    assert_error(past, 413, "PAYLOAD_TOO_LARGE")
    assert "--max-code-per-user" in past.error["message"], past
    assert quota(api, scientist)["code_versions"] == VERSIONS
    # Data owners are limited by the storage limit alone.
    owner = actors["owner"].token
    for i in range(VERSIONS + 1):
        resp = submit(api, owner, "def h():\n    return {}\n".format(i), name="h")
        assert resp.status == 201, resp


def test_code_counts_toward_the_storage_limit_across_restarts(launch):
    srv, api, actors = launch()
    # Scientists each within their quota fill the server's storage limit together.
    refused = None
    for _ in range(STORAGE // QUOTA + 2):
        token = new_scientist(api, actors)
        for i in range(QUOTA // PAD):
            resp = submit(api, token, source(i, PAD - 1_000))
            if resp.status != 201:
                refused = resp
                break
        if refused:
            break
    assert refused is not None, "the storage limit never refused a version"
    assert_error(refused, 413, "PAYLOAD_TOO_LARGE")
    assert "storage limit of {} bytes".format(STORAGE) in refused.error["message"], refused

    # Counted again at start-up: a restarted server refuses it too.
    srv.land()
    api = srv.start()
    token = new_scientist(api, make_actors(srv.port))
    again = submit(api, token, source(0, PAD - 1_000))
    assert_error(again, 413, "PAYLOAD_TOO_LARGE")
    assert "storage limit" in again.error["message"], again
    assert submit(api, token, "def f():\n    return 1\n").status == 201
