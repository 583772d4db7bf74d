"""The access-rule crawler: every route the server serves, called as every caller, against the one
table of who may do what (access_table.py; how to add a route is at its top).

One server of its own (hermetic; login limit raised, since the crawl logs in a few dozen times).
A route served but missing from the table fails, and so does a row for a route no longer served.
Each call is checked for its exact status (and the error code of a refusal), and every refusal for
having changed nothing: all tables of the database, the files of the data dir, and the row's probe.
"""

import re
import sqlite3
import urllib.parse

import pytest

from access_table import (
    BACKGROUND_COLUMNS,
    BACKGROUND_TABLES,
    CALLERS,
    DEFAULT_TOKEN,
    NO_BODY,
    REFUSAL_CODES,
    TABLE,
    TARGETS,
    World,
)
from helpers import ROOT_EMAIL, ROOT_PASSWORD, DetachedServer, needs_sandbox

OPENAPI = "/api/v1/openapi.json"
METHODS = ("get", "put", "post", "patch", "delete", "head", "options")
# Files of the data dir that change without any request changing state.
_VOLATILE = ("server.log", "server.json", "server.lock", "datasite.db", "datasite.db-wal",
             "datasite.db-shm", "datasite.db-journal")


@pytest.fixture(scope="module")
def crawled(binary, tmp_path_factory):
    server = DetachedServer(binary, tmp_path_factory.mktemp("crawl") / "data",
                            "--login-attempts-per-minute", "1000000",
                            "--guest-sessions-per-minute", "1000000")
    try:
        api = server.start()
        root = api.login(ROOT_EMAIL, ROOT_PASSWORD)
        world = World(api, root, api.get("/api/v1/account", token=root).json)
        yield server, world
    finally:
        server.stop()


def served_routes(api):
    resp = api.get(OPENAPI)
    assert resp.status == 200, "no OpenAPI document at {}: {!r}".format(OPENAPI, resp)
    routes = set()
    for path, operations in resp.json["paths"].items():
        for method in operations:
            if method in METHODS:
                routes.add((method.upper(), path))
    return routes


def state_of(data_dir):
    """Every row of every table (but BACKGROUND_TABLES and BACKGROUND_COLUMNS), and every file
    (with its size) of the data dir."""
    db = sqlite3.connect("file:{}?mode=ro".format(data_dir / "datasite.db"), uri=True, timeout=10)
    try:
        tables = [
            r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if r[0] not in BACKGROUND_TABLES
        ]
        state = {}
        for t in tables:
            columns = [c[1] for c in db.execute('PRAGMA table_info("{}")'.format(t))
                       if (t, c[1]) not in BACKGROUND_COLUMNS]
            select = 'SELECT {} FROM "{}"'.format(", ".join('"%s"' % c for c in columns), t)
            state[t] = sorted(map(repr, db.execute(select)))
    finally:
        db.close()
    state["<files>"] = sorted(
        (str(p.relative_to(data_dir)), p.stat().st_size)
        for p in data_dir.rglob("*")
        if p.is_file() and p.name not in _VOLATILE
    )
    return state


def changes(before, after):
    """The names of the tables (and "<files>") that differ, with what was added and removed."""
    out = []
    for key in sorted(set(before) | set(after)):
        old, new = set(before.get(key, [])), set(after.get(key, []))
        if old != new:
            out.append("{}: +{} -{}".format(key, sorted(new - old)[:3], sorted(old - new)[:3]))
    return out


def fill(path, params, row):
    def value(match):
        name = match.group(1)
        assert name in params, "target '{}' gives no {{{}}} for {}".format(row.target, name, row.id)
        return urllib.parse.quote(str(params[name]), safe="")

    return re.sub(r"\{(\w+)\}", value, path)


# The table and the server agree -------------------------------------------------------------------


def test_table_is_well_formed():
    for row in TABLE:
        assert row.target in TARGETS, "{}: no target '{}' in TARGETS".format(row.id, row.target)
        assert set(row.expect) == set(CALLERS), "{}: expect must name every caller".format(row.id)
        for caller, status in row.expect.items():
            assert status in (200, 201) or status in REFUSAL_CODES, (row.id, caller, status)
        assert set(row.xfail) <= set(CALLERS), row.id
    ids = [row.id for row in TABLE]
    assert len(ids) == len(set(ids)), "duplicate rows: {}".format(
        sorted({i for i in ids if ids.count(i) > 1}))


def test_every_served_route_is_in_the_table(crawled):
    _, world = crawled
    served = served_routes(world.api)
    declared = {row.route for row in TABLE}
    missing = sorted(served - declared)
    assert not missing, (
        "routes the server serves that access_table.TABLE does not declare (add them to the table, "
        "see the top of access_table.py): " + ", ".join("{} {}".format(*r) for r in missing))


def test_every_table_row_is_a_served_route(crawled):
    _, world = crawled
    stale = sorted({row.route for row in TABLE} - served_routes(world.api))
    assert not stale, (
        "access_table.TABLE declares routes the server does not serve (remove or fix the rows): "
        + ", ".join("{} {}".format(*r) for r in stale))


# Every route as every caller ----------------------------------------------------------------------


def _runs_code(row):
    """Rows whose target runs a job: they need the sandbox (see helpers.needs_sandbox)."""
    return ("run" in row.target or "job" in row.target or row.target == "listing" or
            row.target.startswith("pool_"))


def _cases():
    for row in TABLE:
        for caller in CALLERS:
            marks = [needs_sandbox] if _runs_code(row) else []
            if caller in row.xfail:
                marks.append(pytest.mark.xfail(strict=True, reason=row.xfail[caller]))
            yield pytest.param(row, caller, id="{} as {}".format(row.id, caller), marks=marks)


@pytest.mark.parametrize("row,caller", list(_cases()))
def test_access(crawled, row, caller):
    server, world = crawled
    expected = row.expect[caller]
    allowed = expected in (200, 201)
    call = TARGETS[row.target](world, caller, allowed)
    token = world.token(caller) if call.token is DEFAULT_TOKEN else call.token
    path = fill(row.path, call.params, row)
    if call.query:
        path += "?" + call.query

    # The probe first: reading the object back may itself be recorded (the audit log records a
    # read of a private run's result), and that read is not the refused call's doing.
    probed = call.probe() if call.probe and not allowed else None
    before = None if allowed else state_of(server.data_dir)
    if call.raw is not None:
        resp = world.api(row.method, path, raw=call.raw, token=token,
                         headers={"Content-Type": "application/octet-stream"})
    elif call.body is not NO_BODY:
        resp = world.api(row.method, path, body=call.body, token=token)
    else:
        resp = world.api(row.method, path, token=token)

    what = "{} {} as {} ({})".format(row.method, path, caller, row.note or row.target)
    assert resp.status == expected, "{}: expected {}, got {!r}".format(what, expected, resp)
    if allowed:
        return
    error = resp.error or {}
    assert error.get("code") == REFUSAL_CODES[expected] and error.get("message"), (
        "{}: a {} refusal needs the error body with code {} and a message, got {!r}".format(
            what, expected, REFUSAL_CODES[expected], resp))
    diff = changes(before, state_of(server.data_dir))
    assert not diff, "{}: refused, yet it changed {}".format(what, diff)
    if call.probe:
        assert call.probe() == probed, "{}: refused, yet the object changed".format(what)
