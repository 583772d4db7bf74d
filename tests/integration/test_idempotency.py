"""Idempotency keys: a change sent again with the same Idempotency-Key is applied once and answered
with the first answer; the Python client sends a key with every change it makes logged in, and
waits for a blocking run with GET /api/v1/jobs/{id}/wait. (Servers dying mid-request:
test_scale_out.py.)"""

import threading
import time
import uuid

import pytest

import datasite as sy
from dataset_helpers import create_dataset, make_actors, new_blob
from helpers import (PASSWORD, ROOT_EMAIL, ROOT_PASSWORD, Api, assert_error, client_for,
                     needs_sandbox, unique, unique_email)

CODE = "/api/v1/code"


@pytest.fixture(scope="module")
def world(module_server):
    return Api(module_server.port), make_actors(module_server.port)


def new_code_body():
    """A code submission (a change of the request pool; password routes ignore keys)."""
    name = unique("idem").replace("-", "_")
    return {"name": name, "source": "def {}():\n    return 1\n".format(name)}


def count_code(api, token):
    return api.get(CODE + "?page_size=1000", token=token).json["total"]


def test_a_change_sent_twice_with_one_key_is_applied_once_and_answered_alike(world):
    api, actors = world
    scientist = actors["scientist"].token
    before = count_code(api, scientist)
    key = uuid.uuid4().hex
    body = new_code_body()
    first = api.post(CODE, body, token=scientist, headers={"Idempotency-Key": key})
    assert first.status == 201, first
    assert "idempotent-replayed" not in first.headers
    again = api.post(CODE, body, token=scientist, headers={"Idempotency-Key": key})
    assert again.status == 201, again
    assert again.json == first.json
    assert again.headers.get("idempotent-replayed") == "true"
    assert count_code(api, scientist) == before + 1
    # Without a key the same body is a second request, refused as such.
    assert_error(api.post(CODE, body, token=scientist), 409, "ALREADY_EXISTS")


def test_an_error_answer_is_kept_too_when_the_change_was_made(world):
    api, actors = world
    scientist = actors["scientist"].token
    key = uuid.uuid4().hex
    body = dict(new_code_body(), inputs={"data": {"asset_id": "no-such-asset"}})
    first = api.post(CODE, body, token=scientist, headers={"Idempotency-Key": key})
    assert first.status == 404, first
    # Nothing was changed: nothing is kept, and the request is run again (with the same answer).
    again = api.post(CODE, body, token=scientist, headers={"Idempotency-Key": key})
    assert again.status == 404 and "idempotent-replayed" not in again.headers, again


def test_a_key_used_again_for_another_request_is_refused(world):
    api, actors = world
    scientist = actors["scientist"].token
    key = uuid.uuid4().hex
    assert api.post(CODE, new_code_body(), token=scientist,
                    headers={"Idempotency-Key": key}).status == 201
    before = count_code(api, scientist)
    assert_error(api.post(CODE, new_code_body(), token=scientist,
                          headers={"Idempotency-Key": key}),
                 422, "IDEMPOTENCY_KEY_REUSED")
    assert count_code(api, scientist) == before


@pytest.mark.parametrize("key", ["", "x" * 129, "a key", "k\u00e9y", "a/b"])
def test_a_malformed_key_is_a_bad_request_and_changes_nothing(world, key):
    api, actors = world
    scientist = actors["scientist"].token
    before = count_code(api, scientist)
    resp = api.post(CODE, new_code_body(), token=scientist, headers={"Idempotency-Key": key})
    if key == "":
        assert resp.status == 201, resp  # an empty header is no key
        return
    assert_error(resp, 400, "INVALID_ARGUMENT")
    assert count_code(api, scientist) == before


def test_keys_are_kept_per_user(world):
    api, actors = world
    key = uuid.uuid4().hex
    body = new_code_body()
    first = api.post(CODE, body, token=actors["scientist"].token, headers={"Idempotency-Key": key})
    assert first.status == 201, first
    # Another user's request under the same key is theirs: run, never answered with the first.
    other = api.post(CODE, body, token=actors["owner"].token, headers={"Idempotency-Key": key})
    assert other.status == 201, other
    assert "idempotent-replayed" not in other.headers
    assert other.json["id"] != first.json["id"]


def test_password_routes_ignore_the_key(world):
    """They hash a password after a write (a shared login limit's): holding the store meanwhile
    would stall every other request, so they are not covered (docs/API.md)."""
    api, actors = world
    admin = actors["admin"].token
    key = uuid.uuid4().hex
    body = {"email": unique_email("idem"), "password": PASSWORD, "name": "Idem"}
    assert api.post("/api/v1/users", body, token=admin, headers={"Idempotency-Key": key}).status == 201
    assert_error(api.post("/api/v1/users", body, token=admin, headers={"Idempotency-Key": key}),
                 409, "ALREADY_EXISTS")


def test_reads_and_callers_without_a_login_ignore_the_key(world):
    api, actors = world
    key = uuid.uuid4().hex
    for _ in range(2):
        resp = api.get("/api/v1/metadata", headers={"Idempotency-Key": key})
        assert resp.status == 200 and "idempotent-replayed" not in resp.headers, resp
    # A login is not a logged-in change: two logins are two sessions.
    body = {"email": actors["owner"].user["email"], "password": PASSWORD}
    tokens = {api.post("/api/v1/auth/login", body, headers={"Idempotency-Key": key}).json["token"]
              for _ in range(2)}
    assert len(tokens) == 2


def test_the_client_sends_a_key_with_each_change(world, monkeypatch):
    api, actors = world
    client = client_for(api.port, actors["admin"].token)
    sent = []
    real = client._transport._opener.open

    def spy(req, *args, **kwargs):
        sent.append((req.get_method(), req.get_header("Idempotency-key")))
        return real(req, *args, **kwargs)

    monkeypatch.setattr(client._transport._opener, "open", spy)
    client.users.create(email=unique_email("spy"), name="Spy", password=PASSWORD,
                        password_verify=PASSWORD)
    client.users.get_all()
    changes = [key for method, key in sent if method == "POST"]
    reads = [key for method, key in sent if method == "GET"]
    assert changes and all(changes), sent
    assert len(set(changes)) == len(changes)
    assert reads and not any(reads), sent


def table_dataset(api, owner_token):
    """A dataset with one asset, "table" (private ages 1, 2; mock 3, 4): its name and asset id."""
    data = new_blob(api, owner_token, "csv", b"age\n1\n2\n")
    mock = new_blob(api, owner_token, "csv", b"age\n3\n4\n")
    name = unique("people")
    resp = create_dataset(api, owner_token, name,
                          [{"name": "table", "data": data["id"], "mock": mock["id"]}])
    assert resp.status == 201, resp
    return name, resp.json["assets"][0]["id"]


@needs_sandbox
def test_a_blocking_run_is_started_once_and_waited_for(world):
    api, actors = world
    name, _ = table_dataset(api, actors["owner"].token)
    scientist = actors["scientist"]
    ds = client_for(api.port, scientist.token)
    asset = ds.datasets[name].assets["table"]
    fname = unique("idem_total").replace("-", "_")
    source = "def {}(data):\n    return int(data['age'].sum())\n".format(fname)
    code = api.post("/api/v1/code", {"name": fname, "source": source,
                                     "inputs": {"data": {"asset_id": asset.id}}},
                    token=scientist.token)
    assert code.status == 201, code
    before = api.get("/api/v1/jobs?page_size=1000", token=scientist.token).json["total"]
    pointer = getattr(ds.code, fname).mock(data=asset)
    assert pointer.get() == 7
    after = api.get("/api/v1/jobs?page_size=1000", token=scientist.token).json
    assert after["total"] == before + 1
    job_id = pointer.job.id
    # The wait route answers an ended job at once, and only to who may see it.
    waited = api.get("/api/v1/jobs/{}/wait?timeout=5".format(job_id), token=scientist.token)
    assert waited.status == 200 and waited.json["status"] == "completed", waited
    assert_error(api.get("/api/v1/jobs/{}/wait".format(job_id), token=actors["guest"].token),
                 403, "PERMISSION_DENIED")
    assert_error(api.get("/api/v1/jobs/{}/wait?timeout=x".format(job_id), token=scientist.token),
                 400, "INVALID_ARGUMENT")


@needs_sandbox
def test_the_wait_route_answers_a_running_job_at_its_timeout(world):
    api, actors = world
    _, asset_id = table_dataset(api, actors["owner"].token)
    scientist = actors["scientist"]
    fname = unique("idem_sleep").replace("-", "_")
    source = "import time\ndef {}(data):\n    time.sleep(30)\n".format(fname)
    code = api.post("/api/v1/code", {"name": fname, "source": source,
                                     "inputs": {"data": {"asset_id": asset_id}}},
                    token=scientist.token).json
    job = api.post("/api/v1/code/{}/run".format(code["id"]), {"mock": True, "blocking": False},
                   token=scientist.token).json
    waited = api.get("/api/v1/jobs/{}/wait?timeout=1".format(job["id"]), token=scientist.token)
    assert waited.status == 200 and waited.json["status"] in ("queued", "running"), waited
    killed = api.post("/api/v1/jobs/{}/kill".format(job["id"]), {}, token=scientist.token)
    assert killed.status == 200, killed
    ended = api.get("/api/v1/jobs/{}/wait?timeout=20".format(job["id"]), token=scientist.token)
    assert ended.json["status"] == "killed", ended


def test_answers_with_a_secret_are_never_kept(world):
    """A session token or a reset token is stored only as its hash: an idempotent answer must not
    keep it in the clear. A retry learns that the change was applied, not the secret."""
    api, actors = world
    admin = actors["admin"].token
    user = api.create_user(admin, email=unique_email("reset"))
    key = uuid.uuid4().hex
    path = "/api/v1/users/{}/password_reset".format(user["id"])
    first = api.post(path, {}, token=admin, headers={"Idempotency-Key": key})
    assert first.status == 201 and first.json["token"], first
    again = api.post(path, {}, token=admin, headers={"Idempotency-Key": key})
    assert_error(again, 409, "ANSWER_NOT_KEPT")
    assert first.json["token"] not in again.text
    # A login sent with a session and a key: a new session, never replayed.
    key = uuid.uuid4().hex
    body = {"email": user["email"], "password": PASSWORD}
    login = api.post("/api/v1/auth/login", body, token=admin, headers={"Idempotency-Key": key})
    assert login.status == 200, login
    again = api.post("/api/v1/auth/login", body, token=admin, headers={"Idempotency-Key": key})
    assert login.json["token"] not in again.text


def test_keyed_mail_setup_and_settings_changes_at_once_never_deadlock(server):
    """Regression (a cold review): enabling mail wrote its settings, then, holding the store for its
    key, waited for the settings' update lock, which a settings change held while it waited for
    the store: the whole server stopped. Both now run their read-modify-write in the database."""
    api = Api(server.port)
    root = api.login(ROOT_EMAIL, ROOT_PASSWORD)
    failures = []

    def hammer(method, path, body):
        for i in range(40):
            kw = {"token": root, "headers": {"Idempotency-Key": uuid.uuid4().hex}}
            if body is not None:
                kw["body"] = dict(body, description="d%d" % i) if method == "PATCH" else body
            try:
                resp = api(method, path, **kw)
            except OSError as err:  # a timeout: the server stopped answering
                failures.append(repr(err))
                return
            if resp.status != 200:
                failures.append(resp)

    mail = {"email_server": "localhost", "email_sender": "site@example.org", "email_port": 2525,
            "email_security": "none"}
    threads = [threading.Thread(target=hammer, args=("PUT", "/api/v1/settings/notifications",
                                                     mail)),
               threading.Thread(target=hammer, args=("PATCH", "/api/v1/settings", {})),
               threading.Thread(target=hammer, args=("DELETE", "/api/v1/settings/notifications",
                                                     None))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "the server stopped answering (deadlock)"
    assert not failures, failures[:3]


def test_the_client_sends_no_key_where_the_server_would_ignore_it(world, monkeypatch):
    """A kill and a blocking run wait for a job: the server does not commit them with a key, so
    the client must not send them again as if it did."""
    api, actors = world
    client = client_for(api.port, actors["scientist"].token)
    sent = []
    real = client._transport._opener.open

    def spy(req, *args, **kwargs):
        sent.append((req.full_url.rsplit("/", 1)[-1], req.get_header("Idempotency-key")))
        return real(req, *args, **kwargs)

    monkeypatch.setattr(client._transport._opener, "open", spy)
    missing = str(uuid.uuid4())
    for route, body in (("job_kill", {}), ("code_run", {"blocking": True}), ("code_run", {}),
                        ("code_run", {"blocking": False})):
        with pytest.raises(sy.DatasiteError):
            client._transport.call(route, path_params={"id": missing}, body=body)
    assert [bool(key) for _, key in sent] == [False, False, False, True], sent


def test_a_key_reused_in_another_session_is_that_sessions_own(world):
    """Regression (a cold attack): keys were kept per user, so a logout sent again with the key of
    an earlier session's logout was answered "Logged out" from the record and did not happen."""
    api, actors = world
    email = actors["scientist"].user["email"]
    key = "logout-" + uuid.uuid4().hex
    first = api.login(email, PASSWORD)
    assert api.post("/api/v1/auth/logout", {}, token=first,
                    headers={"Idempotency-Key": key}).status == 200
    second = api.login(email, PASSWORD)
    again = api.post("/api/v1/auth/logout", {}, token=second, headers={"Idempotency-Key": key})
    assert again.status == 200 and "idempotent-replayed" not in again.headers, again
    assert api.get("/api/v1/account", token=second).status == 401


@needs_sandbox
def test_a_users_waits_do_not_hold_up_a_kill(world):
    """Regression (a cold attack): kills ran on the wait pool, which 32 waits of one user filled:
    a data owner's kill of that user's job took 28 s."""
    api, actors = world
    _, asset_id = table_dataset(api, actors["owner"].token)
    scientist = actors["scientist"].token
    fname = unique("idem_hog").replace("-", "_")
    code = api.post("/api/v1/code", {"name": fname,
                                     "source": "import time\ndef {}(data):\n    time.sleep(60)\n"
                                     .format(fname),
                                     "inputs": {"data": {"asset_id": asset_id}}},
                    token=scientist).json
    job = api.post("/api/v1/code/{}/run".format(code["id"]), {"mock": True, "blocking": False},
                   token=scientist).json
    waits = [threading.Thread(target=api.get, args=("/api/v1/jobs/{}/wait?timeout=14".format(
        job["id"]),), kwargs={"token": scientist}) for _ in range(40)]
    for t in waits:
        t.start()
    time.sleep(1)
    started = time.monotonic()
    killed = api.post("/api/v1/jobs/{}/kill".format(job["id"]), {},
                      token=actors["owner"].token)
    took = time.monotonic() - started
    for t in waits:
        t.join(timeout=30)
    assert killed.status == 200, killed
    assert took < 10, "the kill waited {:.1f} s behind the waits".format(took)


@needs_sandbox
def test_one_user_cannot_hold_every_wait(world):
    """Regression (a cold attack): the 32 threads that wait for jobs (GET .../wait and blocking
    runs) could all be held by one user's waits, so nobody else's wait was answered until those
    timed out. A user now holds at most 4 at once; more are refused at once with 429."""
    api, actors = world
    _, asset_id = table_dataset(api, actors["owner"].token)
    scientist, owner = actors["scientist"].token, actors["owner"].token

    def code_of(token, name, body):
        return api.post("/api/v1/code", {"name": name, "source": "import time\ndef {}(data):\n"
                                         "    {}\n".format(name, body),
                                         "inputs": {"data": {"asset_id": asset_id}}},
                        token=token).json

    slow = code_of(scientist, unique("idem_slow").replace("-", "_"), "time.sleep(60)")
    job = api.post("/api/v1/code/{}/run".format(slow["id"]), {"mock": True, "blocking": False},
                   token=scientist).json
    answers = []

    def wait():
        answers.append(api.get("/api/v1/jobs/{}/wait?timeout=8".format(job["id"]),
                               token=scientist))

    waits = [threading.Thread(target=wait) for _ in range(40)]
    for t in waits:
        t.start()
    try:
        time.sleep(1)
        # Another user's wait for a quick job is answered when that job ends.
        quick = code_of(owner, unique("idem_quick").replace("-", "_"), "return 1")
        started = time.monotonic()
        mine = api.post("/api/v1/code/{}/run".format(quick["id"]),
                        {"mock": True, "blocking": False}, token=owner).json
        done = api.get("/api/v1/jobs/{}/wait?timeout=30".format(mine["id"]), token=owner)
        took = time.monotonic() - started
        assert done.status == 200 and done.json["status"] == "completed", done
        assert took < 5, "another user's wait took {:.1f} s behind the waits".format(took)
        # So is a blocking run of the waiting user's, past their limit.
        assert_error(api.post("/api/v1/code/{}/run".format(slow["id"]), {"mock": True},
                              token=scientist), 429, "RESOURCE_EXHAUSTED")
    finally:
        for t in waits:
            t.join(timeout=30)
        api.post("/api/v1/jobs/{}/kill".format(job["id"]), {}, token=scientist)
    refused = [a for a in answers if a.status == 429]
    assert len(answers) == 40 and len(refused) == 36, [a.status for a in answers]
    assert refused[0].json["error"]["code"] == "RESOURCE_EXHAUSTED"
    assert refused[0].headers.get("retry-after") == "1"
