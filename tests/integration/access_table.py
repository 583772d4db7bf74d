"""Who may call which route: the one table that test_access_crawler.py checks against the server.

The crawler reads GET /api/v1/openapi.json and calls every row of TABLE as every caller of
CALLERS, on objects that belong to someone else. A route the server serves without a row here
fails the crawl ("add it to the table"), and so does a row for a route no longer served.

Callers (CALLERS): ``anon`` (no token), ``revoked`` (the token of a session that logged out: it
gets what anon gets), ``guest`` (a guest session), ``scientist`` and ``scientist2`` (two data
scientists), ``owner`` and ``owner2`` (two data owners), ``admin`` (the root admin). Blobs and
datasets of the rows belong to ``owner``, and users are made for the call, so ``owner2`` and
``admin`` show what a caller gets on someone else's object, and ``scientist`` what a data
scientist gets on another user.

Expected: an exact HTTP status per caller. 200 or 201 is "allowed". A refusal is 401
(UNAUTHENTICATED: no token), 403 (PERMISSION_DENIED: the role, or a rule of docs/API.md), 404
(NOT_FOUND: where docs/API.md answers "not yours" as "no such object", e.g. someone else's blob)
or 409 (FAILED_PRECONDITION: a caller who may call the route, on an object whose state refuses it,
e.g. a kill of a job that already ended); the crawler also checks the error code that goes with
the status. A refusal must change nothing: the crawler compares every table of the database and
every file of the data dir before and after the call, and the row's ``probe`` (the object read
back through the API).

HOW TO ADD A ROUTE
  1. Add a Row to TABLE: ``Row("POST", "/api/v1/jobs/{id}/cancel", "own_job", rule(...))``.
     The path is the pattern exactly as the OpenAPI document lists it, {placeholders} included.
  2. The expectation: ``rule(min_role, ok=200, **per_caller)``: callers at or above min_role get
     ``ok``, anon (and revoked) 401 and callers below min_role 403; keyword arguments override
     single callers: ``rule("data_owner", ok=201, owner2=404, admin=404)``. min_role is
     "anyone", "guest", "data_scientist", "data_owner" or "admin". Or write the dict of all
     callers.
  3. The target: the name of a function registered in TARGETS with ``@target`` (the name without
     its ``target_`` prefix) that gives the call what it needs: path parameters ({id}, {name}...),
     a query, a JSON or raw body, another token, a probe (see Call). It gets the World (the server,
     the actors, helpers that make users, blobs and datasets), the caller's key, and ``fresh``:
     True when the call is expected to succeed, so a mutating route needs an object of its own
     (one caller's DELETE must not take the next caller's object); when False it may reuse a
     shared object (``world.once``). Objects must be real and belong to the right user, so that a
     403 or 404 is a real permission refusal and not a bad id. Copy ``target_owner_dataset``.
  4. A route may have several rows with different targets (e.g. one's own id, someone else's).
     A row's ``xfail`` maps a caller to the reason of a known server bug (strict xfail).
  5. A table that the server changes in the background, with no request (e.g. a job's heartbeat),
     would make a refusal look like a change: name it in BACKGROUND_TABLES, with the reason, and
     the crawler leaves it out of its before/after comparison. Jobs need none: their targets read
     jobs that ended (a blocking run answers once the worker wrote the end) and end the jobs they
     leave running before the next call (World.settle_jobs), so refusals on job routes are still
     checked against the jobs table.
"""

import dataclasses
import time
import uuid

from helpers import PASSWORD, ROOT_PASSWORD, unique_email

CALLERS = ("anon", "revoked", "guest", "scientist", "scientist2", "owner", "owner2", "admin")
ROLE_OF = {
    "anon": None,
    "revoked": None,
    "guest": "guest",
    "scientist": "data_scientist",
    "scientist2": "data_scientist",
    "owner": "data_owner",
    "owner2": "data_owner",
    "admin": "admin",
}
_RANK = {"anyone": 0, None: 0, "guest": 1, "data_scientist": 2, "data_owner": 3, "admin": 4}
# The error code that goes with a refusal's status (docs/API.md, "Errors").
# 409 is FAILED_PRECONDITION here (never ALREADY_EXISTS): an allowed caller on an object whose state
# refuses the call, e.g. a kill of a job that already ended.
REFUSAL_CODES = {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                 409: "FAILED_PRECONDITION"}
# Database tables the server writes without a request (see HOW TO ADD A ROUTE, 5): name -> why.
BACKGROUND_TABLES = {
    "mail_outbox": "the mail sender records its attempts (the crawl's SMTP server is down) and "
                   "sends what falls due, without a request",
}
# Columns the server writes by itself, without a request: left out of the comparison.
BACKGROUND_COLUMNS = {
    ("jobs", "lease_expires_at"): "a running job's lease, renewed by its worker's heartbeat every "
                                  "second",
}
NO_BODY = object()
DEFAULT_TOKEN = object()
CSV = b"age,score\n31,1.5\n45,2.25\n29,3.0\n"
# The statuses of a job that ended (docs/API.md, "Job").
_FINAL_JOB_STATUSES = {"completed", "errored", "timed_out", "killed", "interrupted"}


def rule(min_role, ok=200, **per_caller):
    """Callers at or above ``min_role`` get ``ok``; anon and revoked 401 (unless min_role is
    "anyone"), callers below 403; ``per_caller`` overrides single callers (e.g. ``owner2=404``);
    revoked gets what anon gets unless told otherwise."""
    assert min_role in _RANK, min_role
    unknown = set(per_caller) - set(CALLERS)
    assert not unknown, "unknown callers {}".format(sorted(unknown))
    expect = {}
    for caller in CALLERS:
        if _RANK[ROLE_OF[caller]] >= _RANK[min_role]:
            expect[caller] = ok
        else:
            expect[caller] = 401 if ROLE_OF[caller] is None else 403
    expect.update(per_caller)
    if "anon" in per_caller and "revoked" not in per_caller:
        expect["revoked"] = per_caller["anon"]
    return expect


@dataclasses.dataclass(frozen=True)
class Row:
    method: str
    path: str  # the OpenAPI pattern, e.g. /api/v1/users/{id}
    target: str  # a key of TARGETS
    expect: dict  # caller -> status
    note: str = ""  # why the expectation is what it is, when docs/API.md is not plain
    xfail: dict = dataclasses.field(default_factory=dict)  # caller -> known server bug

    @property
    def route(self):
        return (self.method, self.path)

    @property
    def id(self):
        return "{} {} [{}]".format(self.method, self.path, self.target)


@dataclasses.dataclass
class Call:
    """What one call needs beyond method and caller (see HOW TO ADD A ROUTE)."""

    params: dict = dataclasses.field(default_factory=dict)  # fills the path's {placeholders}
    query: str = ""  # without "?"
    body: object = NO_BODY  # JSON body
    raw: bytes = None  # raw body (uploads), sent as application/octet-stream
    token: object = DEFAULT_TOKEN  # another token than the caller's (None: no token)
    probe: object = None  # () -> value that a refusal must leave unchanged


# The world the targets build on -------------------------------------------------------------------


class Actor:
    def __init__(self, key, token, user=None, password=None):
        self.key = key
        self.token = token
        self.user = user  # None for anon and guest
        self.password = password

    @property
    def id(self):
        return self.user["id"] if self.user else None


class World:
    """The server under test, one actor per caller, and helpers that make objects for targets."""

    def __init__(self, api, root_token, root_user):
        self.api = api
        self.actors = {
            "anon": Actor("anon", None),
            "admin": Actor("admin", root_token, root_user, ROOT_PASSWORD),
        }
        self.shared = {}  # objects that refused calls may share, by name
        self.live_jobs = []  # ids of jobs a target left running (see settle_jobs)
        for key in ("scientist", "scientist2", "owner", "owner2"):
            user = self.new_user(ROLE_OF[key], name=key.title())
            self.actors[key] = Actor(key, api.login(user["email"], PASSWORD), user, PASSWORD)
        self.actors["guest"] = Actor("guest", api.guest())
        self.actors["revoked"] = Actor("revoked", self.revoked_token())

    def revoked_token(self):
        """The token of a data scientist's session that was logged out."""
        user = self.new_user("data_scientist", name="Revoked")
        token = self.api.login(user["email"], PASSWORD)
        resp = self.api.post("/api/v1/auth/logout", {}, token=token)
        assert resp.status == 200, resp
        return token

    @property
    def admin(self):
        return self.actors["admin"].token

    def token(self, caller):
        return self.actors[caller].token

    def new_user(self, role, name=None):
        """A user made by the root admin; its JSON."""
        return self.api.create_user(self.admin, role=role, email=unique_email(role), name=name)

    def fresh_actor(self, caller):
        """A new logged-in party of the caller's role (for calls that change the caller itself)."""
        role = ROLE_OF[caller]
        if role is None:
            return self.actors[caller]
        if role == "guest":
            return Actor(caller, self.api.guest())
        user = self.new_user(role)
        return Actor(caller, self.api.login(user["email"], PASSWORD), user, PASSWORD)

    def fresh_token(self, caller):
        """Another session of the caller (same user), for calls that end the session."""
        actor = self.actors[caller]
        if ROLE_OF[caller] is None:
            return actor.token
        if actor.user is None:
            return self.api.guest()
        return self.api.login(actor.user["email"], actor.password)

    def once(self, name, make):
        """A shared object, made on first use."""
        if name not in self.shared:
            self.shared[name] = make()
        return self.shared[name]

    def new_blob(self, caller="owner", raw=CSV):
        resp = self.api(
            "POST", "/api/v1/blobs?format=csv", raw=raw, token=self.token(caller),
            headers={"Content-Type": "application/octet-stream"},
        )
        assert resp.status == 201, "blob upload as {} failed: {!r}".format(caller, resp)
        return resp.json

    def new_dataset(self, caller="owner"):
        data = self.new_blob(caller)
        mock = self.new_blob(caller, CSV.replace(b"31", b"40"))
        body = {
            "name": "crawl-" + uuid.uuid4().hex[:10],
            "summary": "crawled",
            "assets": [{"name": "table", "data": data["id"], "mock": mock["id"]}],
        }
        resp = self.api.post("/api/v1/datasets", body, token=self.token(caller))
        assert resp.status == 201, "dataset creation as {} failed: {!r}".format(caller, resp)
        return resp.json

    # Code, requests and jobs (docs/API.md, "Code, requests and jobs") -----------------------------

    def code_asset(self):
        """The id of the asset (of a dataset of ``owner``'s) that crawled code is bound to."""
        return self.once("code_asset", lambda: self.new_dataset("owner")["assets"][0]["id"])

    def new_code(self, caller="scientist", body="return len(data)", policy=None):
        """Code of the caller's, bound to an asset of ``owner``'s (a new function each time)."""
        name = "crawl_" + uuid.uuid4().hex[:10]
        source = "def {}(data):\n    {}\n".format(name, body)
        req = {"name": name, "source": source,
               "inputs": {"data": {"asset_id": self.code_asset()}},
               "output_policy": policy or {"kind": "single_execution"}}
        resp = self.api.post("/api/v1/code", req, token=self.token(caller))
        assert resp.status == 201, "code submission as {} failed: {!r}".format(caller, resp)
        return resp.json

    def new_request(self, code, caller="scientist"):
        resp = self.api.post("/api/v1/requests", {"code_id": code["id"], "reason": "crawled"},
                             token=self.token(caller))
        assert resp.status == 201, "request as {} failed: {!r}".format(caller, resp)
        return resp.json

    def approve(self, request):
        resp = self.api.post("/api/v1/requests/{}/approve".format(request["id"]), {},
                             token=self.token("owner"))
        assert resp.status == 200, "approval failed: {!r}".format(resp)
        return resp.json

    def approve_code(self, code):
        """``code`` with an approved request: (code, request)."""
        return code, self.approve(self.new_request(code))

    def run(self, code, caller="scientist", **body):
        """A run of the code; blocking runs answer once the job ended (the worker wrote it)."""
        resp = self.api.post("/api/v1/code/{}/run".format(code["id"]), body,
                             token=self.token(caller))
        assert resp.status in (200, 201), "run as {} failed: {!r}".format(caller, resp)
        return resp.json

    def job(self, job_id):
        resp = self.api.get("/api/v1/jobs/" + job_id, token=self.admin)
        assert resp.status == 200, resp
        return resp.json

    def wait_job(self, job_id, until, seconds=120):
        """Polls the job (as the root admin) until its status is in ``until``."""
        deadline = time.monotonic() + seconds
        job = self.job(job_id)
        while job["status"] not in until:
            assert time.monotonic() < deadline, "job still {} after {} s: {}".format(
                job["status"], seconds, job)
            time.sleep(0.05)
            job = self.job(job_id)
        return job

    def settle_jobs(self):
        """Kills the jobs a target left running and waits until they ended, so that no worker
        writes the jobs table during a later call's before/after comparison."""
        live, self.live_jobs = self.live_jobs, []
        for job_id in live:
            self.api.post("/api/v1/jobs/{}/kill".format(job_id), {}, token=self.admin)
            self.wait_job(job_id, _FINAL_JOB_STATUSES)

    def running_job(self, caller="scientist"):
        """A mock job of the caller's that sleeps (bound by policy to owner's asset), started
        without blocking and seen ``running`` (the worker wrote it and will write nothing more
        until it ends: no heartbeat). Kept in ``live_jobs`` until ``settle_jobs``."""
        code = self.new_code(caller, body="import time; time.sleep(30); return 1")
        job = self.run(code, caller, mock=True, blocking=False)
        self.live_jobs.append(job["id"])
        job = self.wait_job(job["id"], {"running"} | _FINAL_JOB_STATUSES)
        assert job["status"] == "running", "the sleeping job ended at once: {}".format(job)
        return job

    def reader(self, path, token=None):
        """A probe: the status and bytes of GET path (as the root admin unless told)."""
        api, token = self.api, token or self.admin

        def probe():
            resp = api.get(path, token=token)
            return resp.status, resp.raw

        return probe


# Targets ------------------------------------------------------------------------------------------

TARGETS = {}


def target(fn):
    """Registers fn(world, caller, fresh) -> Call under its name without the ``target_`` prefix."""
    TARGETS[fn.__name__[len("target_"):]] = fn
    return fn


@target
def target_none(world, caller, fresh):
    return Call()


@target
def target_empty_json(world, caller, fresh):
    return Call(body={})


@target
def target_login_body(world, caller, fresh):
    """Valid credentials (another user's): login is open to everyone, token or not."""
    user = world.actors["scientist2"].user
    return Call(body={"email": user["email"], "password": PASSWORD})


@target
def target_own_session(world, caller, fresh):
    """A second session of the caller, so that logging out does not end the crawler's session."""
    return Call(token=world.fresh_token(caller), body={})


def _new_user_body(role=None):
    email = unique_email("crawl")
    body = {"name": "Crawled", "email": email, "password": PASSWORD, "password_verify": PASSWORD}
    if role:
        body["role"] = role
    return email, body


def _user_count(world, email):
    def probe():
        resp = world.api.get("/api/v1/users?search=" + email, token=world.admin)
        return resp.status, resp.json["total"] if resp.json else None

    return probe


@target
def target_registration(world, caller, fresh):
    email, body = _new_user_body()
    return Call(body=body, probe=_user_count(world, email))


@target
def target_new_scientist(world, caller, fresh):
    email, body = _new_user_body("data_scientist")
    return Call(body=body, probe=_user_count(world, email))


@target
def target_new_owner(world, caller, fresh):
    email, body = _new_user_body("data_owner")
    return Call(body=body, probe=_user_count(world, email))


@target
def target_profile_change(world, caller, fresh):
    return Call(body={"institution": "crawled-" + uuid.uuid4().hex[:8]},
                probe=world.reader("/api/v1/account", world.token(caller)))


@target
def target_password_change(world, caller, fresh):
    """The caller's own password, with the caller's session (which the change keeps: it revokes
    the user's other sessions only); when the change is expected, the actor's password follows."""
    actor = world.actors[caller]
    new = "N3w-{}-{}".format(uuid.uuid4().hex[:6], PASSWORD)
    body = {"old_password": actor.password or PASSWORD, "new_password": new}
    if fresh:
        actor.password = new
    return Call(body=body)


def _user_call(world, user, body=NO_BODY):
    path = "/api/v1/users/" + user["id"]
    return Call(params={"id": user["id"]}, body=body, probe=world.reader(path))


@target
def target_scientist2(world, caller, fresh):
    """The second data scientist: another user for everyone but scientist2 itself."""
    return _user_call(world, world.actors["scientist2"].user)


def _victim(world, role, fresh):
    if fresh:
        return world.new_user(role)
    return world.once("victim_" + role, lambda: world.new_user(role))


@target
def target_other_scientist_profile(world, caller, fresh):
    """Someone else's profile (a data scientist no caller is)."""
    return _user_call(world, _victim(world, "data_scientist", fresh), {"name": "Renamed"})


@target
def target_other_scientist_role(world, caller, fresh):
    return _user_call(world, _victim(world, "data_scientist", fresh), {"role": "guest"})


@target
def target_other_owner_role(world, caller, fresh):
    return _user_call(world, _victim(world, "data_owner", fresh), {"role": "data_scientist"})


@target
def target_other_scientist_password(world, caller, fresh):
    victim = _victim(world, "data_scientist", fresh)
    return _user_call(world, victim, {"password": "N3w-" + PASSWORD})


@target
def target_own_profile(world, caller, fresh):
    """The caller's own user (anon and guest have none: scientist2's id stands in)."""
    user = world.actors[caller].user or world.actors["scientist2"].user
    return _user_call(world, user, {"website": "https://crawled.example.org"})


@target
def target_root_role(world, caller, fresh):
    root = world.actors["admin"].user
    return _user_call(world, root, {"role": "data_scientist"})


@target
def target_other_scientist(world, caller, fresh):
    return _user_call(world, _victim(world, "data_scientist", fresh))


@target
def target_other_owner(world, caller, fresh):
    return _user_call(world, _victim(world, "data_owner", fresh))


@target
def target_other_admin(world, caller, fresh):
    return _user_call(world, _victim(world, "admin", fresh))


@target
def target_root(world, caller, fresh):
    return _user_call(world, world.actors["admin"].user)


@target
def target_self(world, caller, fresh):
    """The caller's own user (anon and guest have none: scientist2's id stands in); a new user of
    the caller's role when the call is expected to succeed (so that no actor is deleted)."""
    actor = world.fresh_actor(caller) if fresh else world.actors[caller]
    user = actor.user or world.actors["scientist2"].user
    call = _user_call(world, user)
    call.token = actor.token
    return call


@target
def target_settings_change(world, caller, fresh):
    return Call(body={"description": "crawled " + uuid.uuid4().hex[:8]},
                probe=world.reader("/api/v1/settings"))


# Notifications, mail settings and password reset.

@target
def target_owner_notification(world, caller, fresh):
    """The owner's own first notification (the welcome of its new account): someone else's for
    every other caller."""
    resp = world.api.get("/api/v1/notifications", token=world.token("owner"))
    assert resp.status == 200 and resp.json["items"], resp
    note = resp.json["items"][0]
    path = "/api/v1/notifications/" + note["id"]
    return Call(params={"id": note["id"]}, body={},
                probe=world.reader(path, token=world.token("owner")))


@target
def target_mail_settings(world, caller, fresh):
    """SMTP on a loopback port where nothing listens (the crawl sends no mail)."""
    return Call(body={"email_server": "127.0.0.1", "email_port": 9, "email_security": "none",
                      "email_password": "crawl-secret", "email_sender": "crawl@example.org"},
                probe=world.reader("/api/v1/settings/notifications"))


@target
def target_mail_test(world, caller, fresh):
    """A test mail, with mail set up first (so that the admin's call is allowed)."""
    world.once("mail_settings", lambda: world.api.put(
        "/api/v1/settings/notifications",
        {"email_server": "127.0.0.1", "email_port": 9, "email_security": "none",
         "email_sender": "crawl@example.org"}, token=world.admin))
    return Call(body={"to": unique_email("test")})


@target
def target_forgot_password(world, caller, fresh):
    return Call(body={"email": unique_email("nobody")})


@target
def target_reset_password(world, caller, fresh):
    """A valid token of a new user's, issued by the admin: anyone holding it may use it."""
    user = world.new_user("data_scientist")
    resp = world.api.post("/api/v1/users/" + user["id"] + "/password_reset", token=world.admin)
    assert resp.status == 201, resp
    return Call(body={"token": resp.json["token"], "new_password": "Crawl3d-" + PASSWORD})


@target
def target_reset_victim(world, caller, fresh):
    """A password reset token for another user (a data scientist no caller is)."""
    return _user_call(world, _victim(world, "data_scientist", fresh))


@target
def target_new_data_subject(world, caller, fresh):
    """A data subject of a name of its own (a registered name would be refused as a duplicate)."""
    return Call(body={"name": "crawled " + uuid.uuid4().hex[:8], "members": [{"name": "member"}]},
                probe=world.reader("/api/v1/data_subjects"))


@target
def target_csv_upload(world, caller, fresh):
    return Call(query="format=csv", raw=CSV)


def _owner_blob(world, fresh):
    if fresh:
        return world.new_blob("owner")
    return world.once("owner_blob", lambda: world.new_blob("owner"))


def _blob_call(world, blob, body=NO_BODY):
    return Call(params={"id": blob["id"]}, body=body,
                probe=world.reader("/api/v1/blobs/" + blob["id"], world.token("owner")))


@target
def target_owner_blob(world, caller, fresh):
    """A blob ``owner`` uploaded and no dataset uses."""
    return _blob_call(world, _owner_blob(world, fresh))


@target
def target_owner_blob_mock(world, caller, fresh):
    return _blob_call(world, _owner_blob(world, False), {"seed": 7})


@target
def target_new_dataset_own_blobs(world, caller, fresh):
    """A dataset made of blobs the caller uploaded (callers who cannot upload use owner's)."""
    uploader = caller if fresh and caller in ("owner", "owner2", "admin") else "owner"
    blob = world.new_blob(uploader) if fresh else _owner_blob(world, False)
    name = "crawl-" + uuid.uuid4().hex[:10]
    return Call(body={"name": name, "assets": [{"name": "t", "data": blob["id"]}]},
                probe=world.reader("/api/v1/datasets/" + name))


@target
def target_new_dataset_owners_blob(world, caller, fresh):
    """A dataset made of a blob of ``owner``'s: nobody else may publish it."""
    blob = _owner_blob(world, fresh)
    name = "crawl-" + uuid.uuid4().hex[:10]
    return Call(body={"name": name, "assets": [{"name": "t", "data": blob["id"]}]},
                probe=world.reader("/api/v1/datasets/" + name))


def _owner_dataset(world, fresh):
    if fresh:
        return world.new_dataset("owner")
    return world.once("owner_dataset", lambda: world.new_dataset("owner"))


def _dataset_call(world, dataset, body=NO_BODY):
    return Call(params={"id": dataset["id"], "name": dataset["assets"][0]["name"]}, body=body,
                probe=world.reader("/api/v1/datasets/" + dataset["id"]))


@target
def target_owner_dataset(world, caller, fresh):
    """A dataset ``owner`` uploaded (read-only calls share one)."""
    return _dataset_call(world, _owner_dataset(world, False))


@target
def target_owner_dataset_change(world, caller, fresh):
    return _dataset_call(world, _owner_dataset(world, fresh),
                         {"summary": "crawled " + uuid.uuid4().hex[:8]})


@target
def target_owner_dataset_regenerate_mock(world, caller, fresh):
    return _dataset_call(world, _owner_dataset(world, fresh), {"rows": 3})


@target
def target_owner_dataset_fresh(world, caller, fresh):
    return _dataset_call(world, _owner_dataset(world, fresh))


def _output_checks_call(world, dataset, body=NO_BODY):
    path = "/api/v1/datasets/{}/output_checks".format(dataset["id"])
    return Call(params={"id": dataset["id"]}, body=body, probe=world.reader(path))


@target
def target_owner_dataset_output_checks(world, caller, fresh):
    """The output checks of a dataset ``owner`` uploaded (reads share one)."""
    return _output_checks_call(world, _owner_dataset(world, False))


@target
def target_owner_dataset_output_checks_change(world, caller, fresh):
    """New output checks for a dataset ``owner`` uploaded (one of its own when expected to work)."""
    return _output_checks_call(world, _owner_dataset(world, fresh),
                               {"min_cell_count": 10, "small_cells": "hold", "round_to": 5})


# Code, requests and jobs: all of ``scientist``'s, bound to an asset of ``owner``'s. Every target
# first ends the jobs an earlier target left running (World.settle_jobs), and the jobs it reads
# have ended (blocking runs answer once the worker wrote the end), so no worker writes the jobs
# table during a refusal's before/after comparison: BACKGROUND_TABLES stays empty.


def _code_call(world, code, body=NO_BODY):
    world.settle_jobs()
    return Call(params={"id": code["id"]}, body=body,
                probe=world.reader("/api/v1/code/" + code["id"]))


def _shared_code(world):
    """Code of scientist's without a request."""
    return world.once("scientist_code", world.new_code)


def _pending_code(world, fresh):
    """Code of scientist's and its pending request: (code, request)."""
    def make():
        code = world.new_code()
        return code, world.new_request(code)

    return make() if fresh else world.once("scientist_pending_code", make)


def _approved_code(world, fresh):
    """Code of scientist's and its approved request: (code, request)."""
    def make():
        code = world.new_code()
        return code, world.approve(world.new_request(code))

    return make() if fresh else world.once("scientist_approved_code", make)


@target
def target_new_code(world, caller, fresh):
    """A new function (its own name and source), bound to an asset of owner's."""
    world.settle_jobs()
    name = "crawl_" + uuid.uuid4().hex[:10]
    body = {"name": name, "source": "def {}(data):\n    return len(data)\n".format(name),
            "inputs": {"data": {"asset_id": world.code_asset()}},
            "output_policy": {"kind": "single_execution"}}
    return Call(body=body, probe=world.reader("/api/v1/code?name=" + name))


@target
def target_listing(world, caller, fresh):
    """A listing (no parameters) once code, requests and jobs exist."""
    world.settle_jobs()
    _shared_job(world)
    _pending_code(world, False)
    return Call()


@target
def target_scientist_code(world, caller, fresh):
    """Code of scientist's (no request)."""
    return _code_call(world, _shared_code(world))


@target
def target_scientist_code_mock_run(world, caller, fresh):
    """A mock run of scientist's code: it uses up nothing, so every caller shares the code."""
    return _code_call(world, _shared_code(world), {"mock": True})


@target
def target_pending_code_private_run(world, caller, fresh):
    """A run on private data of scientist's code whose request is pending."""
    return _code_call(world, _pending_code(world, False)[0], {"mock": False})


@target
def target_unrequested_code_private_run(world, caller, fresh):
    """A run on private data of scientist's code that has no request yet."""
    return _code_call(world, _shared_code(world), {"mock": False})


@target
def target_approved_code_private_run(world, caller, fresh):
    """A run on private data of scientist's approved code (single_execution: a successful run by
    the author gets code of its own, or the policy would be used up)."""
    return _code_call(world, _approved_code(world, fresh)[0], {"mock": False})


@target
def target_code_request(world, caller, fresh):
    """A request for scientist's code that has none yet (new code when the call is expected)."""
    world.settle_jobs()
    code = world.new_code() if fresh else _shared_code(world)
    return Call(body={"code_id": code["id"], "reason": "crawled"},
                probe=world.reader("/api/v1/code/" + code["id"]))


def _request_call(world, request, body=NO_BODY):
    world.settle_jobs()
    return Call(params={"id": request["id"]}, body=body,
                probe=world.reader("/api/v1/requests/" + request["id"]))


@target
def target_scientist_request(world, caller, fresh):
    """Scientist's pending request."""
    return _request_call(world, _pending_code(world, False)[1])


@target
def target_scientist_request_approval(world, caller, fresh):
    return _request_call(world, _pending_code(world, fresh)[1], {})


@target
def target_scientist_request_denial(world, caller, fresh):
    return _request_call(world, _pending_code(world, fresh)[1], {"reason": "crawled"})


def _released_request(world):
    """Scientist's approved request whose code ran on private data (its result released, since
    output review is off): it can't be approved again nor denied any more."""
    def make():
        code, request = _approved_code(world, True)
        job = world.run(code, "scientist", mock=False)
        assert job["status"] == "completed", job
        return request

    return world.once("scientist_released_request", make)


@target
def target_released_run_request_approval(world, caller, fresh):
    """Scientist's request that was already approved: it can't be approved again."""
    return _request_call(world, _released_request(world), {})


@target
def target_released_run_request_denial(world, caller, fresh):
    return _request_call(world, _released_request(world), {"reason": "crawled"})


@target
def target_changed_request_denial(world, caller, fresh):
    """An approved request with no result released: it may be denied (a request each)."""
    return _request_call(world, _approved_code(world, fresh)[1], {"reason": "crawled"})


@target
def target_request_deposit(world, caller, fresh):
    """A deposit on scientist's pending request (a request each: a deposit adds a job)."""
    return _request_call(world, _pending_code(world, fresh)[1], {"format": "json", "data": "42"})


@target
def target_scientist_failed_private_job(world, caller, fresh):
    """A failed private job of scientist's, whose error an owner may release once (one each)."""
    world.settle_jobs()

    def make():
        code, _ = world.approve_code(world.new_code(body="raise ValueError('secret')"))
        job = world.run(code, "scientist", mock=False)
        assert job["status"] == "errored", job
        return job

    job = make() if fresh else world.once("scientist_failed_private_job", make)
    return _job_call(world, job, {})


def _job_call(world, job, body=NO_BODY):
    return Call(params={"id": job["id"]}, body=body,
                probe=world.reader("/api/v1/jobs/" + job["id"]))


def _shared_job(world):
    """A completed mock job of scientist's (a blocking run: it ended when the run answered)."""
    def make():
        job = world.run(_shared_code(world), "scientist", mock=True)
        assert job["status"] == "completed", job
        return job

    return world.once("scientist_mock_job", make)


def _private_job(world):
    """A completed private job of scientist's (approved code, run by scientist)."""
    def make():
        job = world.run(_approved_code(world, True)[0], "scientist", mock=False)
        assert job["status"] == "completed" and job["kind"] == "private", job
        return job

    return world.once("scientist_private_job", make)


@target
def target_scientist_job(world, caller, fresh):
    """Scientist's completed mock job."""
    world.settle_jobs()
    return _job_call(world, _shared_job(world))


def _review_job(world):
    """A completed review job: owner's run on private data of scientist's (unrequested) code."""
    def make():
        job = world.run(_shared_code(world), "owner", mock=False)
        assert job["status"] == "completed" and job["kind"] == "review", job
        return job

    return world.once("owner_review_job", make)


@target
def target_review_job(world, caller, fresh):
    """Owner's review run of scientist's code: data owners and admins only see it, the code's
    author included."""
    world.settle_jobs()
    return _job_call(world, _review_job(world))


@target
def target_scientist_job_kill(world, caller, fresh):
    """Scientist's completed mock job: nobody may kill it any more."""
    world.settle_jobs()
    return _job_call(world, _shared_job(world), {})


@target
def target_scientist_private_job_release(world, caller, fresh):
    """Scientist's completed private job (output review is off: nothing is held, so a release
    that passes the access check is refused with 409, and every caller shares it)."""
    world.settle_jobs()
    return _job_call(world, _private_job(world), {})


@target
def target_scientist_running_job(world, caller, fresh):
    """A running (sleeping) mock job of scientist's, one per call: a refused call leaves it
    running, and the next job target kills it (World.settle_jobs) before its own call."""
    world.settle_jobs()
    return _job_call(world, world.running_job("scientist"), {})


# Grants (code approved for repeated use): scientist's code, approved with ``repeat`` by owner. Data
# owners and admins see and revoke every grant; a data scientist sees those that name them
# (scientist2 is named on none: 404), and revokes none (the role: 403).


def _granted_code(world, fresh):
    """Code of scientist's whose request owner approved for repeated use: the grant's JSON."""
    def make():
        world.settle_jobs()
        request = world.new_request(world.new_code())
        resp = world.api.post("/api/v1/requests/{}/approve".format(request["id"]),
                              {"repeat": {"per_hour": 100}}, token=world.token("owner"))
        assert resp.status == 200 and resp.json.get("grant"), (
            "approval with repeat failed: {!r}".format(resp))
        return resp.json["grant"]

    return make() if fresh else world.once("scientist_grant", make)


def _grant_call(world, grant, body=NO_BODY):
    return Call(params={"id": grant["id"]}, body=body,
                probe=world.reader("/api/v1/grants/" + grant["id"]))


@target
def target_grants_listing(world, caller, fresh):
    """The grants listing once a grant exists."""
    _granted_code(world, False)
    return Call()


@target
def target_scientist_grant(world, caller, fresh):
    """A grant of scientist's code (read-only calls share one)."""
    return _grant_call(world, _granted_code(world, False))


@target
def target_scientist_grant_revoke(world, caller, fresh):
    """A revocation of a grant of scientist's code (a grant each when it is expected to work)."""
    return _grant_call(world, _granted_code(world, fresh), {})


@target
def target_revoked_grant(world, caller, fresh):
    """A grant that owner already revoked: revoking it again is refused (FAILED_PRECONDITION)."""
    def make():
        grant = _granted_code(world, True)
        resp = world.api.post("/api/v1/grants/{}/revoke".format(grant["id"]), {},
                              token=world.token("owner"))
        assert resp.status == 200, "revocation failed: {!r}".format(resp)
        return resp.json

    return _grant_call(world, world.once("revoked_grant", make), {})


# Projects (docs/API.md, "Projects"): scientist's. Its members (scientist) and data owners and
# admins see it; scientist2 gets 404; only members add requests and messages (owners: 403).


def _scientist_project(world):
    def make():
        body = {"name": "crawl-" + uuid.uuid4().hex[:10], "description": "crawled"}
        resp = world.api.post("/api/v1/projects", body, token=world.token("scientist"))
        assert resp.status == 201, "project creation failed: {!r}".format(resp)
        return resp.json

    return world.once("scientist_project", make)


def _project_call(world, body=NO_BODY):
    project = _scientist_project(world)
    return Call(params={"id": project["id"]}, body=body,
                probe=world.reader("/api/v1/projects/{}/events".format(project["id"])))


@target
def target_new_project(world, caller, fresh):
    """A new project (a new name each call), with the caller as its member."""
    return Call(body={"name": "crawl-" + uuid.uuid4().hex[:10], "description": "crawled"})


@target
def target_scientist_project(world, caller, fresh):
    return _project_call(world)


@target
def target_scientist_project_name(world, caller, fresh):
    project = _scientist_project(world)
    return Call(params={"name": project["name"]},
                probe=world.reader("/api/v1/projects/{}".format(project["id"])))


@target
def target_project_code_request(world, caller, fresh):
    """A request in scientist's project for new code of scientist's."""
    world.settle_jobs()
    code = world.new_code() if fresh else _shared_code(world)
    return _project_call(world, {"code_id": code["id"], "reason": "crawled"})


@target
def target_project_message(world, caller, fresh):
    return _project_call(world, {"message": "crawled"})


# Sync (docs/API.md, "Sync"): admins only. Peers the crawl plays hold their own keys (sync_helpers).

def _sync_peer(world):
    from sync_helpers import Peer

    peer = Peer()
    peer.register(world.api, world.admin)
    return peer


def _sync_import(world, ignored_batch=False):
    """A pending import of a bundle from a fresh peer (carrying one scientist when asked)."""
    from sync_helpers import load, scientist_object, server_key

    peer = _sync_peer(world)
    objects = [scientist_object()] if ignored_batch else []
    resp = load(world.api, world.admin, peer.bundle(server_key(world.api, world.admin), objects))
    assert resp.status == 201, resp
    return peer, resp.json


def _sync_peers_probe(world):
    return world.reader("/api/v1/sync/peers")


@target
def target_new_sync_peer(world, caller, fresh):
    from sync_helpers import Peer

    peer = Peer()
    return Call(body={"name": peer.name, "verify_key": peer.verify_key},
                probe=_sync_peers_probe(world))


@target
def target_sync_peer(world, caller, fresh):
    peer = _sync_peer(world) if fresh else world.once("sync_peer", lambda: _sync_peer(world))
    return Call(params={"name": peer.name}, probe=_sync_peers_probe(world))


@target
def target_sync_peer_rotate(world, caller, fresh):
    from sync_helpers import Peer

    peer = _sync_peer(world) if fresh else world.once("sync_peer", lambda: _sync_peer(world))
    return Call(params={"name": peer.name}, body={"verify_key": Peer().verify_key},
                probe=_sync_peers_probe(world))


@target
def target_sync_export(world, caller, fresh):
    peer = world.once("sync_peer_export", lambda: _sync_peer(world))
    return Call(query="peer=" + peer.name, probe=_sync_peers_probe(world))


@target
def target_sync_bundle(world, caller, fresh):
    from sync_helpers import server_key

    peer = _sync_peer(world)
    return Call(raw=peer.bundle(server_key(world.api, world.admin)),
                probe=_sync_peers_probe(world))


@target
def target_sync_import(world, caller, fresh):
    _, diff = _sync_import(world) if fresh else world.once("sync_import",
                                                           lambda: _sync_import(world))
    return Call(params={"id": diff["import_id"]}, body={}, probe=_sync_peers_probe(world))


@target
def target_sync_import_batch(world, caller, fresh):
    _, diff = world.once("sync_import_batch", lambda: _sync_import(world, ignored_batch=True))
    kind, oid = diff["batches"][0]["id"].split(":", 1)
    return Call(params={"id": diff["import_id"], "kind": kind, "batch_id": oid},
                probe=_sync_peers_probe(world))


@target
def target_sync_ignored_batch(world, caller, fresh):
    def make():
        peer, diff = _sync_import(world, ignored_batch=True)
        batch = diff["batches"][0]["id"]
        resp = world.api.post("/api/v1/sync/imports/{}/apply".format(diff["import_id"]),
                              {"ignore": [batch]}, token=world.admin)
        assert resp.status == 200, resp
        return peer.name, batch

    name, batch = make() if fresh else world.once("sync_ignored", make)
    kind, oid = batch.split(":", 1)
    return Call(params={"peer": name, "kind": kind, "id": oid},
                probe=world.reader("/api/v1/sync/ignored"))


# Worker pools (docs/API.md, "Worker pools"): images on the system Python, pools of one slot. --------
# Targets named pool_* start sandboxes (test_access_crawler marks them as needing one).


def _new_pool_image(world):
    resp = world.api.post("/api/v1/worker_images",
                          {"name": "img-" + uuid.uuid4().hex[:10],
                           "worker_config": {"python": "/usr/bin/python3"}},
                          token=world.token("owner"))
    assert resp.status == 201, "image submit failed: {!r}".format(resp)
    return resp.json["id"]


def _pool_image(world, fresh):
    return _new_pool_image(world) if fresh else world.once("pool_image",
                                                            lambda: _new_pool_image(world))


def _new_pool(world):
    name = "pool-" + uuid.uuid4().hex[:10]
    resp = world.api.post("/api/v1/worker_pools",
                          {"name": name, "image_id": _pool_image(world, False)},
                          token=world.token("owner"))
    assert resp.status == 201, "pool launch failed: {!r}".format(resp)
    return name


@target
def target_pool_image_new(world, caller, fresh):
    """A new image of the system Python (checked in a sandbox)."""
    return Call(body={"name": "img-" + uuid.uuid4().hex[:10],
                      "worker_config": {"python": "/usr/bin/python3"}},
                probe=world.reader("/api/v1/worker_images"))


@target
def target_pool_image_fresh(world, caller, fresh):
    """An image of owner's that no pool runs (its own when the call is to succeed)."""
    image = _pool_image(world, fresh)
    return Call(params={"id": image}, probe=world.reader("/api/v1/worker_images/" + image))


@target
def target_default_image(world, caller, fresh):
    return Call(params={"id": "default"})


@target
def target_default_pool(world, caller, fresh):
    return Call(params={"name": "default"})


@target
def target_pool_new(world, caller, fresh):
    """A pool to launch on the shared image."""
    return Call(body={"name": "pool-" + uuid.uuid4().hex[:10],
                      "image_id": _pool_image(world, False)},
                probe=world.reader("/api/v1/worker_pools"))


@target
def target_pool_fresh(world, caller, fresh):
    """A pool of one slot (its own when the call is to succeed)."""
    name = _new_pool(world) if fresh else world.once("pool", lambda: _new_pool(world))
    return Call(params={"name": name}, body={"num_workers": 2},
                probe=world.reader("/api/v1/worker_pools/" + name))


@target
def target_pool_delete(world, caller, fresh):
    name = _new_pool(world) if fresh else world.once("pool", lambda: _new_pool(world))
    return Call(params={"name": name}, probe=world.reader("/api/v1/worker_pools/" + name))


# Differential privacy (docs/API.md, "Differential privacy"): a policy on an asset of owner's. -----

_DP_POLICY = {"columns": {"age": {"type": "int", "lower": 0, "upper": 100},
                          "score": {"type": "float", "lower": 0, "upper": 10}},
              "budget": {"per_scientist": {"epsilon": 100, "delta": 1e-6},
                         "total": {"epsilon": 100, "delta": 1e-6}}}


def _new_dp_asset(world):
    asset_id = world.new_dataset("owner")["assets"][0]["id"]
    resp = world.api.put("/api/v1/assets/{}/dp_policy".format(asset_id), _DP_POLICY,
                         token=world.token("owner"))
    assert resp.status == 200, "DP policy set failed: {!r}".format(resp)
    return asset_id


def _dp_asset(world, fresh):
    return _new_dp_asset(world) if fresh else world.once("dp_asset", lambda: _new_dp_asset(world))


def _dp_call(world, asset_id, body=NO_BODY):
    return Call(params={"id": asset_id}, body=body,
                probe=world.reader("/api/v1/assets/{}/dp_policy".format(asset_id)))


@target
def target_dp_policy_new(world, caller, fresh):
    """An asset of owner's without a policy, and one to set."""
    asset_id = world.new_dataset("owner")["assets"][0]["id"] if fresh else world.once(
        "dp_bare_asset", lambda: world.new_dataset("owner")["assets"][0]["id"])
    return _dp_call(world, asset_id, _DP_POLICY)


@target
def target_dp_asset(world, caller, fresh):
    """An asset of owner's with a DP policy (reads share one)."""
    return _dp_call(world, _dp_asset(world, False))


@target
def target_dp_asset_fresh(world, caller, fresh):
    return _dp_call(world, _dp_asset(world, fresh))


@target
def target_dp_query(world, caller, fresh):
    return _dp_call(world, _dp_asset(world, False), {"query": "mean", "column": "age",
                                                     "epsilon": 0.01})


@target
def target_dp_budget_reset(world, caller, fresh):
    return _dp_call(world, _dp_asset(world, fresh), {"user_id": "*", "reset": True})


# Custom API endpoints (endpoint-api.md): owner's, each with a mock and a private function. -------

_ENDPOINT_SIDE = {"source": "def {name}(context, n=1):\n    return n\n", "settings": {},
                  "helpers": {}, "signature": "(n=1)", "params": ["n"]}


def _endpoint_side(name):
    return dict(_ENDPOINT_SIDE, name=name, source=_ENDPOINT_SIDE["source"].format(name=name))


def _endpoint_body(path=None):
    return {"path": path or "crawl.e_" + uuid.uuid4().hex[:10], "description": "crawled",
            "mock": _endpoint_side("mock_side"), "private": _endpoint_side("private_side")}


def _new_endpoint(world):
    resp = world.api.post("/api/v1/api_endpoints", _endpoint_body(), token=world.token("owner"))
    assert resp.status == 201, "endpoint creation failed: {!r}".format(resp)
    return resp.json


def _endpoint(world, fresh):
    return _new_endpoint(world) if fresh else world.once("endpoint", lambda: _new_endpoint(world))


def _endpoint_call(world, endpoint, body=NO_BODY):
    # Read as the owner: the whole endpoint, state included.
    return Call(params={"path": endpoint["path"]}, body=body,
                probe=world.reader("/api/v1/api_endpoints/" + endpoint["path"],
                                   token=world.token("owner")))


@target
def target_new_endpoint(world, caller, fresh):
    return Call(body=_endpoint_body(), probe=world.reader("/api/v1/api_endpoints"))


@target
def target_endpoint(world, caller, fresh):
    """An endpoint ``owner`` added (reads share one)."""
    return _endpoint_call(world, _endpoint(world, False))


@target
def target_endpoint_change(world, caller, fresh):
    return _endpoint_call(world, _endpoint(world, fresh),
                          {"description": "crawled " + uuid.uuid4().hex[:8]})


@target
def target_endpoint_fresh(world, caller, fresh):
    return _endpoint_call(world, _endpoint(world, fresh))


@target
def target_endpoint_mock_run(world, caller, fresh):
    """A call of the mock side (it runs in the sandbox)."""
    return _endpoint_call(world, _endpoint(world, False), {"side": "mock", "kwargs": {"n": 2}})


@target
def target_endpoint_private_run(world, caller, fresh):
    """A call of the private side: data owners only."""
    return _endpoint_call(world, _endpoint(world, False), {"side": "private", "kwargs": {}})


# The table ----------------------------------------------------------------------------------------

TABLE = [
    # Health and metadata: anyone.
    Row("GET", "/healthz", "none", rule("anyone")),
    Row("GET", "/readyz", "none", rule("anyone")),
    Row("GET", "/api/v1/metadata", "none", rule("anyone")),
    Row("GET", "/api/v1/openapi.json", "none", rule("anyone")),
    # Sessions.
    Row("POST", "/api/v1/auth/login", "login_body", rule("anyone")),
    Row("POST", "/api/v1/auth/guest", "empty_json", rule("anyone")),
    Row("POST", "/api/v1/auth/logout", "own_session", rule("guest")),
    Row("POST", "/api/v1/auth/register", "registration",
        rule("data_owner", ok=201, anon=403),
        note="sign-up is off (the default): only a data owner's or admin's token registers"),
    # The caller's own account.
    Row("GET", "/api/v1/account", "none", rule("guest")),
    Row("PATCH", "/api/v1/account", "profile_change", rule("data_scientist")),
    Row("POST", "/api/v1/account/password", "password_change", rule("data_scientist")),
    Row("GET", "/api/v1/account/quota", "none", rule("data_scientist")),
    # Users.
    Row("GET", "/api/v1/users", "none", rule("data_owner")),
    Row("POST", "/api/v1/users", "new_scientist", rule("data_owner", ok=201)),
    Row("POST", "/api/v1/users", "new_owner", rule("admin", ok=201),
        note="a data owner creates only guests and data scientists"),
    Row("GET", "/api/v1/users/{id}", "scientist2", rule("data_owner", scientist2=200),
        note="a data scientist sees only themselves"),
    Row("PATCH", "/api/v1/users/{id}", "other_scientist_profile", rule("admin"),
        note="only admins edit another user's profile"),
    Row("PATCH", "/api/v1/users/{id}", "other_scientist_role", rule("data_owner")),
    Row("PATCH", "/api/v1/users/{id}", "other_owner_role", rule("admin"),
        note="a data owner changes roles only of users below data_owner"),
    Row("PATCH", "/api/v1/users/{id}", "other_scientist_password", rule("admin"),
        note="another user's password: admins only"),
    Row("PATCH", "/api/v1/users/{id}", "own_profile", rule("data_scientist"),
        note="anyone edits their own profile (guests have none)"),
    Row("PATCH", "/api/v1/users/{id}", "root_role", rule("admin", admin=403),
        note="nobody changes the root admin's role"),
    Row("DELETE", "/api/v1/users/{id}", "other_scientist", rule("data_owner")),
    Row("DELETE", "/api/v1/users/{id}", "other_owner", rule("admin"),
        note="data owners delete only guests and data scientists"),
    Row("DELETE", "/api/v1/users/{id}", "other_admin", rule("admin")),
    Row("DELETE", "/api/v1/users/{id}", "root", rule("admin", admin=403),
        note="nobody deletes the root admin"),
    Row("DELETE", "/api/v1/users/{id}", "self", rule("admin", admin=403),
        note="nobody deletes themselves"),
    # Settings.
    Row("GET", "/api/v1/settings", "none", rule("guest")),
    Row("PATCH", "/api/v1/settings", "settings_change", rule("admin")),
    Row("GET", "/api/v1/audit", "none", rule("data_owner"),
        note="the audit log: data owners and admins only"),
    Row("GET", "/api/v1/audit/verify", "none", rule("data_owner")),
    # Sync: admins only (docs/API.md, "Sync").
    Row("GET", "/api/v1/sync/identity", "none", rule("admin")),
    Row("GET", "/api/v1/sync/peers", "none", rule("admin")),
    Row("POST", "/api/v1/sync/peers", "new_sync_peer", rule("admin", ok=201)),
    Row("PUT", "/api/v1/sync/peers/{name}", "sync_peer_rotate", rule("admin")),
    Row("DELETE", "/api/v1/sync/peers/{name}", "sync_peer", rule("admin")),
    Row("GET", "/api/v1/sync/export", "sync_export", rule("admin")),
    Row("POST", "/api/v1/sync/imports", "sync_bundle", rule("admin", ok=201)),
    Row("GET", "/api/v1/sync/imports/{id}", "sync_import", rule("admin")),
    Row("GET", "/api/v1/sync/imports/{id}/batches/{kind}/{batch_id}", "sync_import_batch",
        rule("admin")),
    Row("POST", "/api/v1/sync/imports/{id}/apply", "sync_import", rule("admin")),
    Row("GET", "/api/v1/sync/ignored", "none", rule("admin")),
    Row("DELETE", "/api/v1/sync/ignored/{peer}/{kind}/{id}", "sync_ignored_batch",
        rule("admin")),
    Row("GET", "/api/v1/settings/welcome", "none", rule("guest")),
    # Notifications: each user reads and marks only their own; mail settings are for admins.
    Row("GET", "/api/v1/notifications", "none", rule("data_scientist")),
    Row("GET", "/api/v1/notifications/{id}", "owner_notification",
        rule("data_scientist", ok=404, owner=200), note="someone else's notification is not found"),
    Row("POST", "/api/v1/notifications/{id}/read", "owner_notification",
        rule("data_scientist", ok=404, owner=200), note="someone else's notification is not found"),
    Row("POST", "/api/v1/notifications/{id}/unread", "owner_notification",
        rule("data_scientist", ok=404, owner=200), note="someone else's notification is not found"),
    Row("GET", "/api/v1/account/notifications", "none", rule("data_scientist")),
    Row("POST", "/api/v1/account/notifications/activate", "none", rule("data_scientist")),
    Row("POST", "/api/v1/account/notifications/deactivate", "none", rule("data_scientist")),
    Row("GET", "/api/v1/settings/notifications", "none", rule("admin")),
    Row("PUT", "/api/v1/settings/notifications", "mail_settings", rule("admin")),
    Row("DELETE", "/api/v1/settings/notifications", "none", rule("admin")),
    Row("POST", "/api/v1/settings/notifications/test", "mail_test", rule("admin")),
    Row("GET", "/api/v1/settings/notifications/outbox", "none", rule("admin")),
    # Password reset: open to anyone (the token is the credential); admins issue tokens.
    Row("POST", "/api/v1/auth/forgot_password", "forgot_password", rule("anyone")),
    Row("POST", "/api/v1/auth/reset_password", "reset_password", rule("anyone")),
    Row("POST", "/api/v1/users/{id}/password_reset", "reset_victim", rule("admin", ok=201)),
    Row("GET", "/api/v1/password_resets", "none", rule("admin")),
    # Blobs: their uploader's alone, admins included; someone else's blob is "not found".
    Row("POST", "/api/v1/blobs", "csv_upload", rule("data_owner", ok=201)),
    Row("GET", "/api/v1/blobs/{id}", "owner_blob", rule("data_owner", owner2=404, admin=404),
        note="someone else's blob is not found (docs/API.md: visible to nobody else, admins too)"),
    Row("DELETE", "/api/v1/blobs/{id}", "owner_blob", rule("data_owner", owner2=404, admin=404),
        note="someone else's blob is not found (docs/API.md: visible to nobody else, admins too)"),
    Row("POST", "/api/v1/blobs/{id}/mock", "owner_blob_mock",
        rule("data_owner", ok=201, owner2=404, admin=404),
        note="someone else's blob is not found (docs/API.md: visible to nobody else, admins too)"),
    # Datasets: every data owner and admin manages every dataset (docs/API.md: data_owner+).
    Row("POST", "/api/v1/datasets", "new_dataset_own_blobs", rule("data_owner", ok=201)),
    Row("POST", "/api/v1/datasets", "new_dataset_owners_blob",
        rule("data_owner", ok=201, owner2=404, admin=404),
        note="a dataset may only use the caller's own blobs; another's is not found"),
    Row("GET", "/api/v1/datasets", "none", rule("guest")),
    Row("POST", "/api/v1/data_subjects", "new_data_subject", rule("data_owner", ok=201)),
    Row("GET", "/api/v1/data_subjects", "none", rule("data_scientist")),
    Row("GET", "/api/v1/datasets/{id}", "owner_dataset", rule("guest")),
    Row("PATCH", "/api/v1/datasets/{id}", "owner_dataset_change", rule("data_owner")),
    Row("DELETE", "/api/v1/datasets/{id}", "owner_dataset_fresh", rule("data_owner")),
    Row("GET", "/api/v1/datasets/{id}/assets/{name}/mock", "owner_dataset", rule("guest")),
    Row("GET", "/api/v1/datasets/{id}/assets/{name}/data", "owner_dataset", rule("data_owner")),
    Row("POST", "/api/v1/datasets/{id}/assets/{name}/mock", "owner_dataset_regenerate_mock",
        rule("data_owner")),
    Row("GET", "/api/v1/datasets/{id}/output_checks", "owner_dataset_output_checks",
        rule("data_scientist"), note="what runs under a grant must pass: data scientists read"),
    Row("PUT", "/api/v1/datasets/{id}/output_checks", "owner_dataset_output_checks_change",
        rule("data_owner"), note="data owners and admins set a dataset's output checks"),
    # Code, requests and jobs (docs/API.md, "Code, requests and jobs"): all of scientist's, bound
    # to an asset of owner's. A data scientist sees only their own (scientist2: NOT_FOUND); data
    # owners and admins see everyone's.
    Row("POST", "/api/v1/code", "new_code", rule("data_scientist", ok=201)),
    Row("GET", "/api/v1/code", "listing", rule("data_scientist")),
    Row("GET", "/api/v1/code/{id}", "scientist_code", rule("data_scientist", scientist2=404),
        note="a data scientist sees only their own code"),
    Row("POST", "/api/v1/code/{id}/run", "scientist_code_mock_run",
        rule("data_scientist", ok=201, scientist2=404),
        note="mock runs: the author, data owners and admins, without approval"),
    Row("POST", "/api/v1/code/{id}/run", "pending_code_private_run",
        rule("data_scientist", ok=201, scientist=403, scientist2=404),
        note="private run: the author needs an approved request (it is pending); owners: review"),
    Row("POST", "/api/v1/code/{id}/run", "unrequested_code_private_run",
        rule("data_scientist", ok=201, scientist=403, scientist2=404),
        note="private run: the author needs an approved request (none yet); owners: a review run"),
    Row("POST", "/api/v1/code/{id}/run", "approved_code_private_run",
        rule("data_scientist", ok=201, scientist2=404),
        note="approved: the author's private run; owners and admins get a review run"),
    Row("POST", "/api/v1/requests", "code_request",
        rule("data_scientist", ok=201, scientist2=404, owner=403, owner2=403, admin=403),
        note="only the code's author requests; scientist2 does not see the code"),
    Row("GET", "/api/v1/requests", "listing", rule("data_scientist")),
    Row("GET", "/api/v1/requests/{id}", "scientist_request", rule("data_scientist", scientist2=404),
        note="a data scientist sees only their own requests"),
    Row("POST", "/api/v1/requests/{id}/approve", "scientist_request_approval", rule("data_owner")),
    Row("POST", "/api/v1/requests/{id}/deny", "scientist_request_denial", rule("data_owner")),
    Row("POST", "/api/v1/requests/{id}/approve", "released_run_request_approval",
        rule("data_owner", ok=409),
        note="a request already approved: FAILED_PRECONDITION"),
    Row("POST", "/api/v1/requests/{id}/deny", "released_run_request_denial",
        rule("data_owner", ok=409),
        note="an approved request whose result was released: FAILED_PRECONDITION"),
    Row("POST", "/api/v1/requests/{id}/deny", "changed_request_denial", rule("data_owner"),
        note="an approved request with no result released may be denied"),
    Row("POST", "/api/v1/requests/{id}/deposit", "request_deposit",
        rule("data_owner", ok=201)),
    Row("GET", "/api/v1/jobs", "listing", rule("data_scientist")),
    Row("GET", "/api/v1/jobs/{id}", "scientist_job", rule("data_scientist", scientist2=404),
        note="a data scientist sees only their own private and mock jobs"),
    Row("GET", "/api/v1/jobs/{id}/logs", "scientist_job", rule("data_scientist", scientist2=404)),
    Row("GET", "/api/v1/jobs/{id}/result", "scientist_job", rule("data_scientist", scientist2=404)),
    Row("GET", "/api/v1/jobs/{id}/wait", "scientist_job", rule("data_scientist", scientist2=404),
        note="answers at once for a job that has ended"),
    Row("GET", "/api/v1/jobs/{id}", "review_job", rule("data_scientist", scientist=404,
                                                       scientist2=404),
        note="review jobs: data owners and admins only (not even the code's author)"),
    Row("GET", "/api/v1/jobs/{id}/logs", "review_job",
        rule("data_scientist", scientist=404, scientist2=404)),
    Row("GET", "/api/v1/jobs/{id}/result", "review_job",
        rule("data_scientist", scientist=404, scientist2=404)),
    Row("GET", "/api/v1/jobs/{id}/wait", "review_job",
        rule("data_scientist", scientist=404, scientist2=404)),
    Row("POST", "/api/v1/jobs/{id}/kill", "scientist_job_kill",
        rule("data_scientist", ok=409, scientist2=404),
        note="the job's user or a data owner; a job that already ended: FAILED_PRECONDITION"),
    Row("POST", "/api/v1/jobs/{id}/release", "scientist_private_job_release",
        rule("data_owner", ok=409)),
    Row("POST", "/api/v1/jobs/{id}/release_error", "scientist_failed_private_job",
        rule("data_owner")),
    Row("GET", "/api/v1/grants", "grants_listing", rule("data_scientist"),
        note="data owners and admins: every grant; a data scientist: those that name them"),
    Row("GET", "/api/v1/grants/{id}", "scientist_grant", rule("data_scientist", scientist2=404),
        note="a grant that does not name a data scientist is not found"),
    Row("POST", "/api/v1/grants/{id}/revoke", "scientist_grant_revoke", rule("data_owner"),
        note="data owners and admins; a data scientist may not, even one the grant names"),
    Row("POST", "/api/v1/grants/{id}/revoke", "revoked_grant", rule("data_owner", ok=409),
        note="a grant revoked already: FAILED_PRECONDITION"),
    Row("POST", "/api/v1/projects", "new_project", rule("data_scientist", ok=201)),
    Row("GET", "/api/v1/projects", "listing", rule("data_scientist")),
    Row("GET", "/api/v1/projects/{id}", "scientist_project",
        rule("data_scientist", scientist2=404),
        note="members, data owners and admins see a project; to others it does not exist"),
    Row("GET", "/api/v1/projects/by_name/{name}", "scientist_project_name",
        rule("data_scientist", scientist2=404)),
    Row("GET", "/api/v1/projects/{id}/events", "scientist_project",
        rule("data_scientist", scientist2=404)),
    Row("POST", "/api/v1/projects/{id}/requests", "project_code_request",
        rule("data_scientist", ok=201, scientist2=404, owner=403, owner2=403, admin=403),
        note="members only: data owners see the project but are not its members"),
    Row("POST", "/api/v1/projects/{id}/messages", "project_message",
        rule("data_scientist", ok=201, scientist2=404, owner=403, owner2=403, admin=403)),
    # Custom API endpoints (endpoint-api.md): data owners and admins manage them, data scientists
    # and up list, read and call them (guests: none); a data scientist's view shows no settings,
    # state nor private side, and the private side is called by data owners only.
    Row("POST", "/api/v1/api_endpoints", "new_endpoint", rule("data_owner", ok=201)),
    Row("GET", "/api/v1/api_endpoints", "none", rule("data_scientist")),
    Row("GET", "/api/v1/api_endpoints/{path}", "endpoint", rule("data_scientist")),
    Row("PATCH", "/api/v1/api_endpoints/{path}", "endpoint_change", rule("data_owner")),
    Row("DELETE", "/api/v1/api_endpoints/{path}", "endpoint_fresh", rule("data_owner")),
    Row("POST", "/api/v1/api_endpoints/{path}/call", "endpoint_mock_run", rule("data_scientist"),
        note="the mock side: data scientists and up (guests: none)"),
    Row("POST", "/api/v1/api_endpoints/{path}/call", "endpoint_private_run", rule("data_owner"),
        note="the private side: data owners and admins only"),
    # Differential privacy: data owners set, remove and change budgets; data scientists and up read
    # policies and their budgets, ask queries and their cost (guests: none). All data owners manage
    # every asset, as for datasets.
    Row("POST", "/api/v1/worker_images", "pool_image_new", rule("data_owner", ok=201)),
    Row("GET", "/api/v1/worker_images", "none", rule("data_scientist"),
        note="scientists see each environment's package list, to reproduce on the mock"),
    Row("GET", "/api/v1/worker_images/{id}", "default_image", rule("data_scientist")),
    Row("POST", "/api/v1/worker_images/{id}/build", "pool_image_fresh", rule("data_owner")),
    Row("DELETE", "/api/v1/worker_images/{id}", "pool_image_fresh", rule("data_owner")),
    Row("POST", "/api/v1/worker_pools", "pool_new", rule("data_owner", ok=201)),
    Row("GET", "/api/v1/worker_pools", "none", rule("data_scientist")),
    Row("GET", "/api/v1/worker_pools/{name}", "default_pool", rule("data_scientist")),
    Row("POST", "/api/v1/worker_pools/{name}/scale", "pool_fresh", rule("data_owner")),
    Row("DELETE", "/api/v1/worker_pools/{name}", "pool_delete", rule("data_owner")),
    Row("PUT", "/api/v1/assets/{id}/dp_policy", "dp_policy_new", rule("data_owner")),
    Row("GET", "/api/v1/assets/{id}/dp_policy", "dp_asset", rule("data_scientist")),
    Row("DELETE", "/api/v1/assets/{id}/dp_policy", "dp_asset_fresh", rule("data_owner")),
    Row("POST", "/api/v1/assets/{id}/dp/query", "dp_query", rule("data_scientist"),
        note="charged to data scientists; a data owner's is recorded, not charged"),
    Row("POST", "/api/v1/assets/{id}/dp/cost", "dp_query", rule("data_scientist")),
    Row("POST", "/api/v1/assets/{id}/dp/budget", "dp_budget_reset", rule("data_owner")),
    Row("GET", "/api/v1/dp/budget", "none", rule("data_scientist")),
    # Last: its refused calls leave a sleeping job that the next job target kills.
    Row("POST", "/api/v1/jobs/{id}/kill", "scientist_running_job",
        rule("data_scientist", scientist2=404),
        note="the job's user or a data owner (and admins)"),
]
