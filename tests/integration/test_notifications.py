"""Notifications in-app and by mail through a real SMTP server on loopback (aiosmtpd), the mail
outbox when that server is down, and password reset by token."""

import email
import json
import email.policy
import pathlib
import socket
import sqlite3
import threading
import time

import pytest

from helpers import (PASSWORD, ROOT_EMAIL, ROOT_PASSWORD, Api, DetachedServer, assert_error,
                     client_for, needs_sandbox, unique, unique_email)
from dataset_helpers import create_dataset, marker, new_blob

aiosmtpd = pytest.importorskip("aiosmtpd.controller")

CANARY = marker()  # put where private values go; must never reach a mail or an answer
SMTP_PASSWORD = "smtp-" + marker()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    """The aiosmtpd handler: keeps every message it accepts as (recipients, parsed message)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), msg))
        return "250 OK"

    def to(self, address):
        with self.lock:
            return [m for rcpt, m in self.messages if address in rcpt]

    def wait_for(self, address, count=1, seconds=15):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if len(self.to(address)) >= count:
                return self.to(address)
            time.sleep(0.1)
        return self.to(address)


def body_of(msg):
    parts = [p.get_content() for p in msg.walk() if p.get_content_maintype() == "text"]
    return str(msg["Subject"]) + "\n" + "\n".join(parts)


class Smtp:
    def __init__(self):
        self.port = free_port()
        self.inbox = Inbox()
        self.controller = None

    def start(self):
        self.controller = aiosmtpd.Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self):
        if self.controller:
            self.controller.stop()
            self.controller = None


@pytest.fixture(scope="module")
def smtp():
    s = Smtp()
    s.start()
    yield s
    s.stop()


def start_server(binary, tmp_path_factory, *flags, batch_ms=400):
    proc = DetachedServer(binary, tmp_path_factory.mktemp("notify"), "--mail-batch-ms",
                          str(batch_ms), "--mail-retry-max-ms", "800", *flags)
    api = proc.start()
    return proc, api


def make_world(binary, tmp_path_factory, smtp, batch_ms=400):
    """A server sending to `smtp`, with two owners and a scientist (a generator: the server stops
    when it is closed)."""
    proc, api = start_server(binary, tmp_path_factory, batch_ms=batch_ms)
    try:
        admin = api.login(ROOT_EMAIL, ROOT_PASSWORD)
        resp = api.put("/api/v1/settings/notifications", {
            "email_server": "127.0.0.1", "email_port": smtp.port, "email_security": "none",
            "email_username": "", "email_password": SMTP_PASSWORD,
            "email_sender": "datasite@example.org", "base_url": "https://ds.example.org/"},
            token=admin)
        assert resp.status == 200, resp
        owners = [api.create_user(admin, role="data_owner", name="Owner " + str(i))
                  for i in range(2)]
        scientist = api.create_user(admin, role="data_scientist", name="Sam")
        tokens = {"admin": admin, "scientist": api.login(scientist["email"], PASSWORD)}
        for i, o in enumerate(owners):
            tokens["owner%d" % i] = api.login(o["email"], PASSWORD)
        yield {"api": api, "proc": proc, "owners": owners, "scientist": scientist,
               "tokens": tokens, "smtp": smtp}
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def world(binary, tmp_path_factory, smtp):
    yield from make_world(binary, tmp_path_factory, smtp)


@pytest.fixture(scope="module")
def wide_batch_world(binary, tmp_path_factory, smtp):
    # Five requests take well under a second here, but over the 400 ms window of `world` on a loaded
    # machine (a run saw an owner's mail split in three). This server batches over 10 s, ten times
    # what they take unloaded (a 4 s window was still within reach of a loaded CI machine).
    worlds = make_world(binary, tmp_path_factory, smtp, batch_ms=10000)
    world = next(worlds)
    try:
        # An owner's welcome mail is batched too: once it is out, the next window opens with the
        # first request's mail, not during the set-up.
        for owner in world["owners"]:
            assert world["smtp"].inbox.wait_for(owner["email"], seconds=40), "no welcome mail"
        yield world
    finally:
        worlds.close()


def submit_and_request(w, name=None):
    api, token = w["api"], w["tokens"]["scientist"]
    name = name or unique("f").replace("-", "_")
    resp = api.post("/api/v1/code", {"name": name, "inputs": {"x": {"value": 1}},
                                     "source": "def {}(x):\n    return x\n".format(name)},
                    token=token)
    assert resp.status == 201, resp
    resp = api.post("/api/v1/requests", {"code_id": resp.json["id"], "reason": CANARY},
                    token=token)
    assert resp.status == 201, resp
    return resp.json


def all_mail_text(inbox):
    with inbox.lock:
        return "\n".join(body_of(m) for _, m in inbox.messages)


# --- mail settings --------------------------------------------------------------------------

def test_smtp_password_is_never_returned(world):
    api, admin = world["api"], world["tokens"]["admin"]
    for path in ("/api/v1/settings/notifications", "/api/v1/settings",
                 "/api/v1/settings/notifications/outbox", "/api/v1/metadata"):
        resp = api.get(path, token=admin)
        assert resp.status == 200, resp
        assert SMTP_PASSWORD not in resp.raw.decode(), path
    got = api.get("/api/v1/settings/notifications", token=admin).json
    assert got["email_password_set"] is True and got["enabled"] is True
    assert got["email_server"] == "127.0.0.1"


def test_mail_settings_are_for_admins_only(world):
    api = world["api"]
    for who in ("owner0", "scientist"):
        token = world["tokens"][who]
        assert_error(api.get("/api/v1/settings/notifications", token=token), 403,
                     "PERMISSION_DENIED")
        assert_error(api.put("/api/v1/settings/notifications",
                             {"email_server": "127.0.0.1", "email_sender": "x@example.org"},
                             token=token), 403, "PERMISSION_DENIED")


def test_plain_smtp_only_to_loopback(world):
    resp = world["api"].put("/api/v1/settings/notifications", {
        "email_server": "smtp.example.org", "email_security": "none",
        "email_sender": "datasite@example.org"}, token=world["tokens"]["admin"])
    assert_error(resp, 400, "INVALID_ARGUMENT")


def test_test_email_arrives(world):
    inbox = world["smtp"].inbox
    address = unique_email("test")
    resp = world["api"].post("/api/v1/settings/notifications/test", {"to": address},
                             token=world["tokens"]["admin"])
    assert resp.status == 200, resp
    assert len(inbox.wait_for(address)) == 1


# --- events ---------------------------------------------------------------------------------

def test_new_account_mails_the_new_user_once(world):
    inbox = world["smtp"].inbox
    user = world["api"].create_user(world["tokens"]["admin"], name="Newcomer")
    mails = inbox.wait_for(user["email"])
    time.sleep(1.5)
    mails = inbox.to(user["email"])
    assert len(mails) == 1
    assert "Newcomer" in body_of(mails[0])
    assert PASSWORD not in body_of(mails[0])


def test_new_requests_reach_every_owner_in_one_mail(wide_batch_world):
    world = wide_batch_world
    inbox = world["smtp"].inbox
    before = {o["email"]: len(inbox.to(o["email"])) for o in world["owners"]}
    started = time.monotonic()
    requests = [submit_and_request(world) for _ in range(5)]
    assert time.monotonic() - started < 10.0, "the requests took longer than the batch window"
    for owner in world["owners"]:
        inbox.wait_for(owner["email"], before[owner["email"]] + 1, seconds=40)
    time.sleep(1.0)
    for owner in world["owners"]:
        mails = inbox.to(owner["email"])
        assert len(mails) == before[owner["email"]] + 1, "one digest per owner"
        text = body_of(mails[-1])
        for r in requests:
            assert "https://ds.example.org/api/v1/requests/" + r["id"] in text
    assert inbox.to(world["scientist"]["email"]) == [] or all(
        "request" not in str(m["Subject"]).lower() or "New request" not in str(m["Subject"])
        for m in inbox.to(world["scientist"]["email"]))
    assert CANARY not in all_mail_text(inbox)


def test_in_app_notifications_read_unread_and_resolve(world):
    request = submit_and_request(world)
    owner = client_for(world["api"].port, world["tokens"]["owner0"])
    notes = [n for n in owner.notifications if n.linked_obj and n.linked_obj.id == request["id"]]
    assert len(notes) == 1
    note = notes[0]
    assert note.status == "unread"
    note.mark_read()
    assert owner.notifications.get(note.id).status == "read"
    note.mark_unread()
    assert owner.notifications.get(note.id).status == "unread"
    assert note.linked_obj.resolve.id == request["id"]
    assert note.link.id == request["id"]
    # Oldest first.
    created = [n.created_at for n in owner.notifications]
    assert created == sorted(created)
    # Nobody else marks it or reads it.
    resp = world["api"].post("/api/v1/notifications/" + note.id + "/read",
                             token=world["tokens"]["owner1"])
    assert_error(resp, 404, "NOT_FOUND")
    resp = world["api"].get("/api/v1/notifications/" + note.id, token=world["tokens"]["scientist"])
    assert_error(resp, 404, "NOT_FOUND")


def test_decision_mails_the_requester_without_the_reason(world):
    inbox = world["smtp"].inbox
    sam = world["scientist"]["email"]
    before = len(inbox.to(sam))
    request = submit_and_request(world)
    resp = world["api"].post("/api/v1/requests/" + request["id"] + "/deny",
                             {"reason": "no: " + CANARY}, token=world["tokens"]["owner0"])
    assert resp.status == 200, resp
    mails = inbox.wait_for(sam, before + 1)
    time.sleep(1.0)
    mails = inbox.to(sam)
    assert len(mails) == before + 1
    assert "denied" in body_of(mails[-1])
    assert CANARY not in all_mail_text(inbox)


def test_opted_out_user_gets_no_mail_but_in_app(world):
    api, inbox = world["api"], world["smtp"].inbox
    owner1 = world["tokens"]["owner1"]
    assert api.post("/api/v1/account/notifications/deactivate", token=owner1).status == 200
    assert api.get("/api/v1/account/notifications", token=owner1).json == {"email": False}
    address = world["owners"][1]["email"]
    time.sleep(1.0)
    before = len(inbox.to(address))
    request = submit_and_request(world)
    time.sleep(2.0)
    assert len(inbox.to(address)) == before
    items = api.get("/api/v1/notifications", token=owner1).json["items"]
    assert any(n["linked_obj"] and n["linked_obj"]["id"] == request["id"] for n in items)
    assert api.post("/api/v1/account/notifications/activate", token=owner1).status == 200


def test_guests_have_no_notifications(world):
    api = world["api"]
    guest = api.guest()
    assert api.get("/api/v1/notifications", token=guest).status in (401, 403)
    assert api.get("/api/v1/notifications").status == 401


# --- the SMTP server down -------------------------------------------------------------------

def test_mail_waits_while_smtp_is_down_then_arrives_once(world):
    smtp, api = world["smtp"], world["api"]
    smtp.stop()
    try:
        started = time.time()
        user = api.create_user(world["tokens"]["admin"], name="Patient")
        assert time.time() - started < 5, "a down SMTP server must not slow a request"
        # The first attempt comes within the batch window; poll for it (a loaded machine is slow).
        deadline = time.monotonic() + 30
        while True:
            outbox = api.get("/api/v1/settings/notifications/outbox",
                             token=world["tokens"]["admin"]).json["items"]
            mine = [m for m in outbox if m["recipient"] == user["email"]]
            if (mine and mine[0]["attempts"] >= 1) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert len(mine) == 1 and not mine[0]["sent"] and mine[0]["attempts"] >= 1
        assert SMTP_PASSWORD not in mine[0]["last_error"]
    finally:
        smtp.start()
    assert len(smtp.inbox.wait_for(user["email"])) == 1
    time.sleep(2.0)
    assert len(smtp.inbox.to(user["email"])) == 1


# --- password reset -------------------------------------------------------------------------

def token_in(msg):
    for line in body_of(msg).splitlines():
        if line.startswith("Token: "):
            return line[len("Token: "):].strip()
    raise AssertionError("no token in the mail")


def assert_database_forgets(data_dir, secret, seconds=10):
    """Waits until no row of the server's SQLite database holds ``secret`` (the outbox marks a mail
    sent just after the SMTP server took it)."""
    db = sqlite3.connect("file:{}?mode=ro".format(pathlib.Path(data_dir) / "datasite.db"),
                         uri=True, timeout=10)
    try:
        deadline = time.time() + seconds
        while True:
            dump = "\n".join(db.iterdump())
            if secret not in dump or time.time() > deadline:
                break
            time.sleep(0.1)
        assert secret not in dump, "the database keeps the secret"
    finally:
        db.close()
    # Nor do the files (the WAL keeps the pages written before until it is emptied).
    files = sorted(pathlib.Path(data_dir).glob("datasite.db*"))
    while True:
        holding = [f.name for f in files if f.exists() and secret.encode() in f.read_bytes()]
        if not holding or time.time() > deadline:
            break
        time.sleep(0.1)
    assert not holding, "these files keep the secret: {}".format(holding)


def test_password_reset_flow(world):
    api, inbox = world["api"], world["smtp"].inbox
    user = api.create_user(world["tokens"]["admin"], name="Forgetful")
    session = api.login(user["email"], PASSWORD)
    unknown = api.post("/api/v1/auth/forgot_password", {"email": unique_email("nobody")})
    known = api.post("/api/v1/auth/forgot_password", {"email": user["email"]})
    assert unknown.status == known.status == 200
    assert unknown.json == known.json
    mails = [m for m in inbox.wait_for(user["email"], 2) if "Reset" in str(m["Subject"])]
    assert len(mails) == 1
    token = token_in(mails[0])
    # Once sent, the outbox keeps no copy of the token (a copy of the database would be a key to
    # the account until the token expires).
    assert_database_forgets(world["proc"].data_dir, token)
    # The token is not stored as itself, and admins never see it.
    pending = api.get("/api/v1/password_resets", token=world["tokens"]["admin"])
    assert pending.status == 200 and token not in pending.raw.decode()
    assert any(p["email"] == user["email"] for p in pending.json["items"])
    # A wrong token, and a weak password, are refused (the latter leaves the token valid).
    assert_error(api.post("/api/v1/auth/reset_password",
                          {"token": token[:-2] + "xx", "new_password": "An0ther-Passw0rd!"}),
                 400, "INVALID_ARGUMENT")
    assert_error(api.post("/api/v1/auth/reset_password",
                          {"token": token, "new_password": "short"}), 400, "INVALID_ARGUMENT")
    resp = api.post("/api/v1/auth/reset_password",
                    {"token": token, "new_password": "An0ther-Passw0rd!"})
    assert resp.status == 200, resp
    # Every session of the user ended; the new password works, the old one doesn't.
    assert api.get("/api/v1/account", token=session).status == 401
    api.login(user["email"], "An0ther-Passw0rd!")
    assert api.post("/api/v1/auth/login",
                    {"email": user["email"], "password": PASSWORD}).status == 401
    # Used once.
    assert_error(api.post("/api/v1/auth/reset_password",
                          {"token": token, "new_password": "Th1rd-Passw0rd!!"}),
                 400, "INVALID_ARGUMENT")


def test_forgot_password_is_rate_limited_per_address(world):
    api = world["api"]
    address = unique_email("limited")
    answers = [api.post("/api/v1/auth/forgot_password", {"email": address}).status
               for _ in range(4)]
    assert answers[:3] == [200, 200, 200]
    assert answers[3] == 429


def test_admin_requests_a_reset_token(world):
    api = world["api"]
    user = api.create_user(world["tokens"]["admin"], name="Locked out")
    resp = api.post("/api/v1/users/" + user["id"] + "/password_reset",
                    token=world["tokens"]["admin"])
    assert resp.status == 201, resp
    token = resp.json["token"]
    for who in ("owner0", "scientist"):
        refused = api.post("/api/v1/users/" + user["id"] + "/password_reset",
                           token=world["tokens"][who])
        assert_error(refused, 403, "PERMISSION_DENIED")
    guest = client_for(api.port, api.guest())
    guest.reset_password(token=token, new_password="Adm1n-Issued-Pass")
    api.login(user["email"], "Adm1n-Issued-Pass")


def test_expired_token_is_refused(binary, tmp_path_factory):
    proc, api = start_server(binary, tmp_path_factory, "--password-reset-ttl-seconds", "1")
    try:
        admin = api.login(ROOT_EMAIL, ROOT_PASSWORD)
        user = api.create_user(admin, name="Slow")
        token = api.post("/api/v1/users/" + user["id"] + "/password_reset", token=admin).json["token"]
        time.sleep(2.2)
        assert_error(api.post("/api/v1/auth/reset_password",
                              {"token": token, "new_password": "An0ther-Passw0rd!"}),
                     400, "INVALID_ARGUMENT")
    finally:
        proc.stop()


def test_without_mail_a_users_own_request_shows_to_admins_as_pending(binary, tmp_path_factory):
    # The default token lifetime: with the 1 s of the test above, a slow (sanitizer) build saw the
    # request expire before the admin's listing.
    proc, api = start_server(binary, tmp_path_factory)
    try:
        admin = api.login(ROOT_EMAIL, ROOT_PASSWORD)
        user = api.create_user(admin, name="Forgetful")
        assert api.post("/api/v1/auth/forgot_password", {"email": user["email"]}).status == 200
        pending = api.get("/api/v1/password_resets", token=admin).json["items"]
        assert [p["email"] for p in pending] == [user["email"]]
        notes = api.get("/api/v1/notifications", token=admin).json["items"]
        assert any(n["kind"] == "user.password_reset_pending" for n in notes)
    finally:
        proc.stop()


def admin_token_for(w, user):
    resp = w["api"].post("/api/v1/users/" + user["id"] + "/password_reset",
                         token=w["tokens"]["admin"])
    assert resp.status == 201, resp
    return resp.json["token"]


def reset(api, token, password):
    return api.post("/api/v1/auth/reset_password", {"token": token, "new_password": password})


def test_reset_tokens_die_with_any_password_or_email_change(world):
    api, admin = world["api"], world["tokens"]["admin"]
    user = api.create_user(admin, name="Victim")
    # The user changes their own password: a token taken earlier from their mailbox is dead.
    stolen = admin_token_for(world, user)
    session = api.login(user["email"], PASSWORD)
    resp = api.post("/api/v1/account/password",
                    {"old_password": PASSWORD, "new_password": "Own-New-Passw0rd!"}, token=session)
    assert resp.status == 200, resp
    assert_error(reset(api, stolen, "Attacker-Passw0rd!"), 400, "INVALID_ARGUMENT")
    api.login(user["email"], "Own-New-Passw0rd!")
    # A successful reset ends every other token of the user.
    first, second = admin_token_for(world, user), admin_token_for(world, user)
    assert reset(api, first, "Reset-New-Passw0rd!").status == 200
    assert_error(reset(api, second, "Attacker-Passw0rd!"), 400, "INVALID_ARGUMENT")
    # An admin sets the password.
    stolen = admin_token_for(world, user)
    resp = api.patch("/api/v1/users/" + user["id"], {"password": "Admin-Set-Passw0rd!"},
                     token=admin)
    assert resp.status == 200, resp
    assert_error(reset(api, stolen, "Attacker-Passw0rd!"), 400, "INVALID_ARGUMENT")
    # The address changes: a token mailed to the old mailbox is dead.
    stolen = admin_token_for(world, user)
    resp = api.patch("/api/v1/users/" + user["id"], {"email": unique_email("moved")}, token=admin)
    assert resp.status == 200, resp
    assert_error(reset(api, stolen, "Attacker-Passw0rd!"), 400, "INVALID_ARGUMENT")
    pending = api.get("/api/v1/password_resets", token=admin).json["items"]
    assert resp.json["email"] not in [p["email"] for p in pending]
    # Other fields leave a pending token alone.
    kept = admin_token_for(world, user)
    assert api.patch("/api/v1/users/" + user["id"], {"name": "Renamed"}, token=admin).status == 200
    assert reset(api, kept, "Kept-Token-Passw0rd!").status == 200


def audit_log(api, admin):
    resp = api.get("/api/v1/audit?limit=1000", token=admin)
    assert resp.status == 200, resp
    log = [json.loads(line) for line in resp.raw.decode().splitlines() if line]
    while len(log) % 1000 == 0 and log:
        more = api.get("/api/v1/audit?limit=1000&after_seq=%d" % log[-1]["seq"], token=admin)
        lines = [json.loads(line) for line in more.raw.decode().splitlines() if line]
        if not lines:
            break
        log += lines
    return log


def test_anonymous_reset_steps_are_audited_with_their_address(world):
    api, admin = world["api"], world["tokens"]["admin"]
    user = api.create_user(admin, name="Audited")
    target = "user:" + user["id"]
    assert api.post("/api/v1/auth/forgot_password", {"email": user["email"]}).status == 200
    nobody = unique_email("nobody")
    assert api.post("/api/v1/auth/forgot_password", {"email": nobody}).status == 200
    token = admin_token_for(world, user)
    assert_error(reset(api, "not-a-token", "Any-Passw0rd-123"), 400, "INVALID_ARGUMENT")
    assert reset(api, token, "Audited-Passw0rd!").status == 200
    assert_error(reset(api, token, "Again-Passw0rd-1"), 400, "INVALID_ARGUMENT")
    log = audit_log(api, admin)
    requests = [e for e in log if e["action"] == "user.password_reset_request"
                and e["target"] == target]
    assert len(requests) == 2 and requests[0]["actor"] == "anonymous"
    assert requests[0]["detail"].startswith("from ") and len(requests[0]["detail"]) > 5
    assert requests[1]["actor"].startswith("user:") and requests[1]["actor"] != target
    done = [e for e in log if e["action"] == "user.password_reset" and e["target"] == target]
    assert len(done) == 1 and done[0]["actor"] == "anonymous"
    assert done[0]["detail"].startswith("from ")
    refused = [e for e in log if e["action"] == "user.password_reset_failed"]
    assert len(refused) >= 2
    assert all(e["actor"] == "anonymous" and e["detail"].startswith("from ") for e in refused)
    # An address with no account is recorded too (its write transaction evens out the timing).
    unknown = [e for e in log if e["action"] == "user.password_reset_request"
               and e["target"] == "email:" + nobody]
    assert len(unknown) == 1 and unknown[0]["actor"] == "anonymous"
    assert unknown[0]["detail"].startswith("from ")
    # The token itself never reaches the log.
    assert token not in json.dumps(log)


# --- runs on private data -------------------------------------------------------------------


def private_run_world(api, smtp, name, data_csv, mock_csv):
    """Mail to ``smtp`` on, a data owner, a data scientist called ``name`` and a dataset whose
    private CSV is ``data_csv`` with CANARY in place of ``{0}``: (admin, owner, the scientist's
    user, their token, the asset's id)."""
    admin = api.login(ROOT_EMAIL, ROOT_PASSWORD)
    assert api.put("/api/v1/settings/notifications", {
        "email_server": "127.0.0.1", "email_port": smtp.port, "email_security": "none",
        "email_sender": "datasite@example.org"}, token=admin).status == 200
    owner = api.login(api.create_user(admin, role="data_owner")["email"], PASSWORD)
    sam = api.create_user(admin, role="data_scientist", name=name)
    scientist = api.login(sam["email"], PASSWORD)
    data = new_blob(api, owner, "csv", data_csv.format(CANARY).encode())
    mock = new_blob(api, owner, "csv", mock_csv.encode())
    resp = create_dataset(api, owner, unique("people"),
                          [{"name": "table", "data": data["id"], "mock": mock["id"]}])
    assert resp.status == 201, resp
    return admin, owner, sam, scientist, resp.json["assets"][0]["id"]

@needs_sandbox
def test_run_results_and_failures_mail_the_requester_without_private_values(
        binary, tmp_path_factory, smtp):
    proc, api = start_server(binary, tmp_path_factory, "--workers", "1")
    try:
        admin, owner, sam, scientist, asset = private_run_world(
            api, smtp, "Runner", "age,name\n30,{0}\n40,{0}\n", "age,name\n1,x\n2,y\n")
        outcomes = {}
        for kind, body in (("ok", "return str(data['name'][0])"),
                           ("fail", "raise ValueError(str(data['name'][0]))")):
            name = unique("f").replace("-", "_")
            code = api.post("/api/v1/code", {
                "name": name, "inputs": {"data": {"asset_id": asset}},
                "source": "def {}(data):\n    {}\n".format(name, body)}, token=scientist).json
            req = api.post("/api/v1/requests", {"code_id": code["id"], "reason": "r"},
                           token=scientist).json
            assert api.post("/api/v1/requests/" + req["id"] + "/approve", {},
                            token=owner).status == 200
            outcomes[kind] = api.post("/api/v1/code/" + code["id"] + "/run", {},
                                      token=scientist).json
        assert outcomes["ok"]["status"] == "completed", outcomes["ok"]
        assert outcomes["fail"]["status"] == "errored", outcomes["fail"]
        deadline = time.monotonic() + 30
        while True:
            text = "\n".join(body_of(m) for m in smtp.inbox.to(sam["email"]))
            if ("is ready" in text and "failed" in text) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert "is ready" in text and "failed" in text
        assert CANARY not in all_mail_text(smtp.inbox)
    finally:
        proc.stop()


@needs_sandbox
def test_held_runs_tell_nothing_at_their_end_and_their_release_tells(
        binary, tmp_path_factory, smtp):
    proc, api = start_server(binary, tmp_path_factory, "--workers", "1")
    try:
        admin, owner, sam, scientist, asset = private_run_world(
            api, smtp, "Held", "age,name\n30,{0}\n", "age,name\n1,x\n")
        assert api.patch("/api/v1/settings", {"output_review": True}, token=admin).status == 200
        jobs = {}
        for kind, body in (("ok", "return 1"),
                           ("fail", "raise ValueError(str(data['name'][0]))")):
            name = unique("held_" + kind).replace("-", "_")
            code = api.post("/api/v1/code", {
                "name": name, "inputs": {"data": {"asset_id": asset}},
                "source": "def {}(data):\n    {}\n".format(name, body)}, token=scientist).json
            req = api.post("/api/v1/requests", {"code_id": code["id"], "reason": "r"},
                           token=scientist).json
            assert api.post("/api/v1/requests/" + req["id"] + "/approve", {},
                            token=owner).status == 200
            jobs[kind] = api.post("/api/v1/code/" + code["id"] + "/run", {},
                                  token=scientist).json
        assert jobs["ok"]["status"] == "completed" and jobs["ok"]["result"]["held"], jobs["ok"]
        assert jobs["fail"]["status"] == "errored" and jobs["fail"]["failure"] is None, jobs["fail"]
        time.sleep(2.5)

        def job_notes():
            items = api.get("/api/v1/notifications", token=scientist).json["items"]
            return [n for n in items if n["kind"].startswith("job.")]

        def mail_text():
            return "\n".join(body_of(m) for m in smtp.inbox.to(sam["email"]))

        # Held: neither whether a result is ready nor how a run failed reaches the requester.
        assert job_notes() == []
        assert "is ready" not in mail_text() and "failed" not in mail_text()
        for kind in ("ok", "fail"):
            resp = api.post("/api/v1/jobs/" + jobs[kind]["id"] + "/release", {}, token=owner)
            assert resp.status == 200, resp
        failure = api.get("/api/v1/jobs/" + jobs["fail"]["id"], token=scientist).json["failure"]
        assert failure
        notes = job_notes()
        assert sorted(n["kind"] for n in notes) == ["job.failed", "job.released"]
        deadline = time.time() + 15
        while time.time() < deadline and "failed (" not in mail_text():
            time.sleep(0.1)
        assert "released the result" in mail_text()
        assert "failed (" + failure + ")" in mail_text()
        assert CANARY not in all_mail_text(smtp.inbox)
    finally:
        proc.stop()
