"""Hostile code through the whole server: each function of tests/sandbox_hostile/ is submitted by a
data scientist, approved (as a data owner might be fooled into doing) and run on private data.
Each must end contained — with a clear job error, or having found nothing — while the server keeps
serving, and no secret of the server (its environment, its database, another dataset's private
bytes) may appear in anything the scientist gets back.

The sandbox's own unit test (src/sandbox/sandbox_test.cc) checks each function's exact outcome
under per-function limits; here the server's limits apply, so a CPU burner may end by the wall
clock or by the CPU limit: either is a clear job error."""

import json
import math
import os
import pathlib
import re
import threading
import time

import pytest

from dataset_helpers import create_dataset, make_actors, marker, new_blob
from helpers import needs_sandbox, PASSWORD, DetachedServer, unique

pytestmark = needs_sandbox

HOSTILE_DIR = pathlib.Path(__file__).resolve().parents[1] / "sandbox_hostile"
ENV_SECRET = marker()
DB_SECRET = marker()
OTHER_SECRET = marker()


def hostile_files():
    return sorted(HOSTILE_DIR.glob("*.py"))


def expectation(source):
    first = source.splitlines()[0]
    m = re.match(r"#\s*expect:\s*([a-z_-]+)", first)
    assert m, "no '# expect:' line"
    limits = {}
    for line in source.splitlines()[:5]:
        lm = re.match(r"#\s*limits:\s*(.*)", line)
        if lm:
            for part in lm.group(1).split():
                k, v = part.split("=")
                limits[k] = int(v)
    return m.group(1), limits


@pytest.fixture(scope="module")
def hostile_server(binary, tmp_path_factory):
    os.environ["DATASITE_HOSTILE_SECRET"] = ENV_SECRET  # the server inherits it
    data_dir = tmp_path_factory.mktemp("hostile") / "data"
    server = DetachedServer(binary, data_dir, "--workers", "2", "--job-timeout", "20",
                            "--job-memory-bytes", str(768 << 20), "--job-cpu-seconds", "20",
                            "--max-result-bytes", str(1 << 20))
    try:
        api = server.start()
        actors = make_actors(server.port)
        owner = actors["owner"].token
        # Secrets: a user whose name only the database holds; another dataset's private bytes.
        api.create_user(actors["admin"].token, name=DB_SECRET)
        other = new_blob(api, owner, "csv", ("secret\n" + OTHER_SECRET + "\n").encode())
        assert create_dataset(api, owner, unique("other"), [{"name": "s", "data": other["id"]}]).status == 201
        data = new_blob(api, owner, "csv", b"a,b\n1,x\n2,y\n3,z\n")
        mock = new_blob(api, owner, "csv", b"a,b\n7,q\n")
        resp = create_dataset(api, owner, unique("target"),
                              [{"name": "t", "data": data["id"], "mock": mock["id"]}])
        assert resp.status == 201, resp
        yield server, api, actors, resp.json["assets"][0]["id"], data_dir
    finally:
        server.stop()
        os.environ.pop("DATASITE_HOSTILE_SECRET", None)


def assert_no_secret(text, what):
    for secret in (ENV_SECRET, DB_SECRET, OTHER_SECRET):
        assert secret not in text, "{} leaked a secret".format(what)


@pytest.mark.parametrize("path", hostile_files(), ids=lambda p: p.stem)
def test_hostile_function_is_contained(hostile_server, path):
    server, api, actors, asset_id, data_dir = hostile_server
    scientist, owner = actors["scientist"].token, actors["owner"].token
    source = path.read_text()
    expect, limits = expectation(source)
    name = "f"
    # The function is always `f`; give each submission a unique body so the hash differs.
    source = source + "\n# {}\n".format(unique("run"))
    inputs = {"data": {"asset_id": asset_id}}
    if "secret_path" in source:
        inputs["secret_path"] = {"value": str(data_dir / "datasite.db")}
    code = api.post("/api/v1/code", {"name": name, "source": source, "inputs": inputs}, token=scientist)
    assert code.status == 201, code
    req = api.post("/api/v1/requests", {"code_id": code.json["id"], "reason": path.stem}, token=scientist)
    assert api.post("/api/v1/requests/%s/approve" % req.json["id"], {}, token=owner).status == 200

    stop = threading.Event()
    failures = []

    def probe():  # the server keeps serving while the job runs
        while not stop.is_set():
            for route in ("/healthz", "/api/v1/settings"):
                resp = api.get(route, token=scientist)
                if resp.status != 200:
                    failures.append((route, resp.status))
            time.sleep(0.1)

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        body = {"blocking": False}  # some run 20 s, longer than the test client's HTTP timeout
        if "wall_ms" in limits:
            body["timeout_seconds"] = max(1, min(20, math.ceil(limits["wall_ms"] / 1000)))
        started = api.post("/api/v1/code/%s/run" % code.json["id"], body, token=scientist)
        assert started.status == 201, started
        deadline = time.time() + 90
        while True:
            job = api.get("/api/v1/jobs/" + started.json["id"], token=scientist).json
            if job["status"] not in ("queued", "running") or time.time() > deadline:
                break
            time.sleep(0.1)
    finally:
        stop.set()
        prober.join()
    assert not failures, "the server stopped answering: {}".format(failures[:3])

    if expect == "ok-contained":
        assert job["status"] == "completed", job
        assert job["result"]["format"] == "json"
        assert job["result"]["inline"]["escaped"] is False, json.dumps(job["result"]["inline"])[:1500]
    elif expect == "ok-bytes":
        assert (job["status"], job["result"]["format"]) == ("completed", "bytes"), job
    elif expect == "ok":
        assert job["status"] == "completed", job
    else:
        assert expect in ("error", "resource_limit", "timeout"), expect
        assert job["status"] in ("errored", "timed_out"), job
        assert job["error"], job
        if expect == "timeout":
            assert job["status"] == "timed_out", job

    # Nothing the scientist can read carries a secret.
    for suffix in ("", "/logs", "/result"):
        resp = api.get("/api/v1/jobs/" + job["id"] + suffix, token=scientist)
        assert_no_secret(resp.text, path.stem + suffix)
    # And the sandbox still runs ordinary code afterwards.
    fn = unique("ok").replace("-", "_")
    ok = api.post("/api/v1/code", {"name": fn, "source": "def {}(data):\n    return int(data['a'].sum())\n".format(fn),
                                   "inputs": {"data": {"asset_id": asset_id}}}, token=owner)
    after = api.post("/api/v1/code/%s/run" % ok.json["id"], {}, token=owner).json
    assert (after["status"], after["result"]["inline"]) == ("completed", 6), after


def test_the_server_survived_the_suite(hostile_server):
    server, api, actors, _, data_dir = hostile_server
    assert server.alive()
    import sqlite3
    db = sqlite3.connect(str(data_dir / "datasite.db"))
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()


# What the reviewer reads is not what runs (issue 11): names Python folds, invisible characters ----

HONEST = "def mean_age(data):\n    return int(data['a'].sum())\n"
# 𝗆𝖾𝖺𝗇_𝖺𝗀𝖾 in mathematical sans-serif letters: Python reads it as mean_age, so this definition
# replaced the honest one above while a reviewer saw two different names.
SHADOW = "\n\ndef \U0001d5c6\U0001d5be\U0001d5ba\U0001d5c7_\U0001d5ba\U0001d5c0\U0001d5be(data):\n    return data.to_dict()\n"


def submit(api, token, asset_id, name, source):
    return api.post("/api/v1/code", {"name": name, "source": source,
                                     "inputs": {"data": {"asset_id": asset_id}}}, token=token)


def test_a_function_shadowed_by_a_name_python_folds_is_refused(hostile_server):
    _, api, actors, asset_id, _ = hostile_server
    resp = submit(api, actors["scientist"].token, asset_id, "mean_age",
                  HONEST + SHADOW + "# " + unique("v") + "\n")
    assert resp.status == 400, resp
    message = resp.error["message"]
    assert "line 5, column 5" in message, message
    assert "U+1D5C6 MATHEMATICAL SANS-SERIF SMALL M" in message, message
    assert "reads as 'mean_age'" in message, message


def test_a_name_python_folds_is_refused_even_when_it_is_no_duplicate(hostile_server):
    _, api, actors, asset_id, _ = hostile_server
    source = "def f(data):\n    \uff54otal = 1\n    return total\n# " + unique("v") + "\n"
    resp = submit(api, actors["scientist"].token, asset_id, "f", source)
    assert resp.status == 400 and "U+FF54" in resp.error["message"], resp


@pytest.mark.parametrize("hidden", ["\u3164", "\u115f", "\u1160", "\uffa0", "\u200b", "\u202e",
                                    "\u2066", "\ufeff", "\ufe0f"])
@pytest.mark.parametrize("where", ["name", "string", "comment"])
def test_invisible_characters_are_refused_anywhere(hostile_server, hidden, where):
    _, api, actors, asset_id, _ = hostile_server
    body = {
        "name": "    x{} = 1\n    return x\n".format(hidden),
        "string": "    return '{}'\n".format(hidden),
        "comment": "    return 1  # {}\n".format(hidden),
    }[where]
    source = "def f(data):\n" + body + "# " + unique("v") + "\n"
    resp = submit(api, actors["scientist"].token, asset_id, "f", source)
    assert resp.status == 400, resp
    message = resp.error["message"]
    assert "line 2, column" in message and "U+{:04X}".format(ord(hidden)) in message, message
    assert "invisible" in message, message


def test_the_hangul_filler_attack_is_refused(hostile_server):
    # U+3164 is a letter to Python: an "empty" name that holds a value the reviewer can't see.
    _, api, actors, asset_id, _ = hostile_server
    source = ("def f(data):\n    \u3164 = data.to_dict()\n    total = 0 + \u3164\n    return total\n"
              "# " + unique("v") + "\n")
    resp = submit(api, actors["scientist"].token, asset_id, "f", source)
    assert resp.status == 400, resp
    assert "line 2, column 5: U+3164 HANGUL FILLER" in resp.error["message"], resp


def test_a_function_defined_twice_is_refused(hostile_server):
    _, api, actors, asset_id, _ = hostile_server
    source = HONEST + "\n" + HONEST.replace("sum()", "count()") + "# " + unique("v") + "\n"
    resp = submit(api, actors["scientist"].token, asset_id, "mean_age", source)
    assert resp.status == 400 and "2 times" in resp.error["message"], resp


def test_folding_characters_in_comments_and_strings_still_run(hostile_server):
    _, api, actors, asset_id, _ = hostile_server
    source = ("def f(data):\n    # \uff08\u5358\u4f4d\uff09 total in \u00b5g\n"
              "    return '\u00b5g \uff58 ' + str(int(data['a'].sum()))\n# " + unique("v") + "\n")
    code = submit(api, actors["scientist"].token, asset_id, "f", source)
    assert code.status == 201, code
    run = api.post("/api/v1/code/%s/run" % code.json["id"], {"mock": True},
                   token=actors["scientist"].token)
    assert run.json["status"] == "completed", run
    assert run.json["result"]["inline"] == "\u00b5g \uff58 7", run


# Found by an attack on the first version of these checks: sources a reviewer reads as the honest
# mean_age, where something else runs. Each must be refused at submission or fail to run; none may
# return what the hidden part computes.
REBOUND = {
    # A backslash before CR LF: the check ended the string at the line break, Python does not, so
    # the look-alike name after it was read as string text and never checked.
    "crlf_string": "def mean_age(data):\r\n    return 1\r\nx = \"abc\\\r\n\"; "
                   "\U0001d5c6ean_age = lambda data: 'EVIL'\r\n",
    # A second definition over two lines, which a line-by-line count of "def NAME(" misses.
    "split_def": HONEST + "\ndef mean_age \\\n        (data):\n    return 'EVIL'\n",
    "reassigned": HONEST + "\nmean_age = lambda data: 'EVIL'\n",
    "class": HONEST + "\nclass mean_age:\n    def __new__(cls, data):\n        return 'EVIL'\n",
    "globals": HONEST + "\nglobals()['mean_age'] = lambda data: 'EVIL'\n",
    # Found by a third attack: the reviewed def's code object swapped for another's, with the
    # reviewed line and name copied onto it (the check compared those values, not the object).
    "code_swap": HONEST + "\n\ndef _impl(data):\n    return 'EVIL'\n\n\n"
                 "mean_age.__code__ = _impl.__code__.replace(co_firstlineno=1, co_name='mean_age')\n",
}


@pytest.mark.parametrize("trick", sorted(REBOUND))
def test_a_rebound_function_never_runs_in_place_of_the_reviewed_one(hostile_server, trick):
    _, api, actors, asset_id, _ = hostile_server
    token = actors["scientist"].token
    code = submit(api, token, asset_id, "mean_age", REBOUND[trick] + "# " + unique("v") + "\n")
    if code.status == 400:
        return  # refused at submission: it never runs
    assert code.status == 201, code
    run = api.post("/api/v1/code/%s/run" % code.json["id"], {"mock": True}, token=token).json
    assert "EVIL" not in json.dumps(run), run
    assert run["status"] == "errored" and "rebinds 'mean_age'" in run["error"], run


@pytest.mark.parametrize("source, refused_for", [
    # A Cyrillic с (U+0441) makes a second "_clean" that a reader takes for a redefinition.
    ("def _\u0441lean(df):\n    return df\n\n\ndef _clean(df):\n    return df.dropna()\n\n\n"
     "def mean_age(data):\n    return _\u0441lean(data)\n", "U+0441"),
    # Code pushed far right on a line a display may cut off.
    ("import os" + " " * 400 + "; evil = 1\n" + HONEST, "characters long"),
], ids=["mixed_scripts", "long_line"])
def test_names_in_two_scripts_and_overlong_lines_are_refused(hostile_server, source, refused_for):
    _, api, actors, asset_id, _ = hostile_server
    resp = submit(api, actors["scientist"].token, asset_id, "mean_age",
                  source + "# " + unique("v") + "\n")
    assert resp.status == 400 and refused_for in resp.error["message"], resp
