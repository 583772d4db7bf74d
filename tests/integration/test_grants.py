"""Grants: code a data owner approved for repeated use, within rate limits (issue 17, part 2).

A data owner approves a request with ``repeat=sy.RateLimit(...)``; the approval makes a grant. The
code (matched by its hash and input bindings) then runs again without another review, by its
requester and the data scientists the grant names, up to so many runs per user per minute, hour
or day, whatever the output policy says, until the grant expires or is revoked (a denial revokes
it too). A run past a limit is 429 with Retry-After (``sy.RateLimitedError``), and no job is made.

The first tests need no server: ``sy.RateLimit``, the approval's body, and a 429 on a run that the
client raises at once instead of sending the run again. The rest share one server (the module's of
test_code_flow); each test approves functions of its own names. One test waits for a minute's
window to pass (about 60 s) and one for a grant to expire (about 9 s).
"""

import datetime
import http.server
import json
import re
import threading
import time
import uuid
import warnings

import pytest

import datasite as sy
from code_helpers import PRIVATE, WAIT_SECONDS, asset_of, upload_people, wait_for_status
from dataset_helpers import Actor
from datasite.code import UserCode, source_hash
from datasite.grants import approval_body
from helpers import PASSWORD, assert_error, client_for, needs_sandbox, unique_email

# The module's server, its actors and their table (fixtures shared with test_code_flow).
from test_code_flow import actors, asset, owner, people, scientist  # noqa: F401

TOTAL = int(PRIVATE["age"].sum())
ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


def parse_time(text):
    """A server time ("2026-12-04T19:00:00Z", maybe with fractions) as an aware datetime."""
    assert isinstance(text, str) and ISO_TIME.match(text), text
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def approve_for_repeats(scientist, owner, func, **approve_kwargs):
    """The scientist asks for ``func``; the owner approves it with ``approve_kwargs`` (repeat=...).
    Returns (the scientist's request, the owner's Request, its Grant, the SyftSuccess)."""
    request = scientist.code.request_code_execution(func, reason="for a grant test")
    review = owner.requests.get(request.id)
    approved = review.approve(**approve_kwargs)
    assert isinstance(approved, sy.SyftSuccess), approved
    assert review.status is sy.RequestStatus.APPROVED
    assert isinstance(review.grant, sy.Grant), "the approval made no grant: {!r}".format(review)
    return request.refresh(), review, review.grant, approved


def grant_path(grant_id, action=""):
    return "/api/v1/grants/" + grant_id + ("/" + action if action else "")


# No server: the client's own pieces -------------------------------------------------------------


def test_rate_limit_takes_whole_positive_numbers_and_at_least_one_window():
    limit = sy.RateLimit(per_minute=2, per_day=50)
    assert (limit.per_minute, limit.per_hour, limit.per_day) == (2, None, 50)
    assert limit.to_wire() == {"per_minute": 2, "per_day": 50}
    assert limit == sy.RateLimit(per_day=50, per_minute=2) != sy.RateLimit(per_minute=2)
    assert repr(limit) == "RateLimit(per_minute=2, per_day=50)"
    assert limit.describe() == "2 runs per minute, 50 per day"
    assert sy.RateLimit(per_hour=1).describe() == "1 run per hour"
    with pytest.raises(ValueError, match="at least one"):
        sy.RateLimit()
    for bad in (0, -1, 1.5, "2", True, [2], 1000001):
        with pytest.raises(ValueError, match="per_hour"):
            sy.RateLimit(per_hour=bad)
    assert sy.RateLimit(per_minute=1000000).per_minute == 1000000


def test_the_approval_sends_only_what_was_given():
    assert approval_body() == {}
    assert approval_body(sy.RateLimit(per_minute=2)) == {"repeat": {"per_minute": 2}}
    assert approval_body(
        sy.RateLimit(per_hour=10), expires_in_days=0.5, users=["b@example.org", "1234"]
    ) == {
        "repeat": {"per_hour": 10},
        "expires_in_days": 0.5,
        "users": ["b@example.org", "1234"],
    }
    assert approval_body({"per_day": 3}, users="b@example.org") == {
        "repeat": {"per_day": 3},
        "users": ["b@example.org"],
    }
    # Refused before anything is sent: what the form alone makes wrong.
    for kwargs in (
        dict(expires_in_days=30),
        dict(users=["b@example.org"]),
        dict(repeat=sy.RateLimit(per_hour=1), expires_in_days=0),
        dict(repeat=sy.RateLimit(per_hour=1), expires_in_days=3651),
        dict(repeat=sy.RateLimit(per_hour=1), expires_in_days="30"),
        dict(repeat={"per_week": 3}),
        dict(repeat={}),
    ):
        with pytest.raises(ValueError):
            approval_body(**kwargs)
    with pytest.raises(TypeError, match="RateLimit"):
        approval_body(repeat=3)
    with pytest.raises(ValueError, match="approve_nested"):
        sy.Request({"id": "r1"}, None).approve(approve_nested=True, repeat=sy.RateLimit(per_day=1))


def test_a_grant_reads_and_shows_the_servers_json():
    data = {
        "id": "g-1",
        "request_id": "r-1",
        "code_id": "c-1",
        "code_name": "mean_age",
        "code_hash": "ab" * 32,
        "created_by": "owner@example.org",
        "created_at": "2026-12-04T19:00:00Z",
        "expires_at": "2027-01-03T19:00:00Z",
        "per_minute": 2,
        "per_hour": 10,
        "per_day": None,
        "status": "active",
        "revoked_at": None,
        "runs_left": {"minute": 0, "hour": 8, "day": None},
        "next_run_at": "2026-12-04T19:00:41Z",
    }
    grant = sy.Grant(data, None)
    assert (grant.id, grant.code_name, grant.per_minute, grant.per_day) == (
        "g-1",
        "mean_age",
        2,
        None,
    )
    assert grant.runs_left == {"minute": 0, "hour": 8, "day": None}
    assert grant.users is None and grant.runs is None  # a scientist's view
    assert grant.limits == sy.RateLimit(per_minute=2, per_hour=10)
    assert grant.is_active and grant.to_dict() == data
    for shown in (repr(grant), grant._repr_html_(), grant._repr_markdown_().replace("\\", "")):
        assert "mean_age" in shown and "2027-01-03T19:00:00Z" in shown
        assert "2 runs per minute, 10 per hour" in shown
        assert "2026-12-04T19:00:41Z" in shown  # the next run
    listed = sy.GrantList([grant])
    assert listed["g-1"] is grant and "mean_age" in repr(listed) and "g-1" in listed._repr_html_()
    hostile = sy.Grant(dict(data, code_name="<script>x</script>"), None)
    assert "<script>" not in hostile._repr_html_()


class _LimitedHandler(http.server.BaseHTTPRequestHandler):
    """Answers every request 429 + Retry-After: 17, as a run past a grant's limit."""

    seen = []

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        type(self).seen.append((self.command, self.path))
        body = (
            b'{"error": {"code": "RESOURCE_EXHAUSTED", "message": "f may run 2 runs per minute '
            b'under grant g-1; the next run is allowed at 2026-12-04T19:00:41Z"}}'
        )
        self.send_response(429)
        self.send_header("Retry-After", "17")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST

    def log_message(self, *args):
        pass


@pytest.fixture
def limited_server():
    _LimitedHandler.seen = []
    server = http.server.HTTPServer(("127.0.0.1", 0), _LimitedHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_run_answered_429_raises_at_once_and_is_not_sent_again(limited_server):
    url = "http://127.0.0.1:{}".format(limited_server.server_port)
    client = sy.DatasiteClient(
        url, "token", {"id": "u-1", "role": "data_scientist"}, {"api_version": "1.2"}
    )
    client._transport._answered = True  # as after a login: retries are allowed from now on
    code = UserCode(
        {"id": "c-1", "name": "f", "inputs": {}, "output_policy": {"kind": "single_execution"}},
        client,
    )
    for blocking in (True, False):
        started = time.monotonic()
        with pytest.raises(sy.RateLimitedError) as limited:
            code(blocking=blocking)
        assert time.monotonic() - started < 5  # no wait for the 17 s it names
        assert limited.value.retry_after == 17 and limited.value.status == 429
        assert "per minute" in str(limited.value)
    assert _LimitedHandler.seen == [("POST", "/api/v1/code/c-1/run")] * 2


class _OldApproveHandler(http.server.BaseHTTPRequestHandler):
    """A server from before grants: approves, ignoring ``repeat``; records the bodies sent."""

    bodies = []

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        type(self).bodies.append(json.loads(self.rfile.read(length) or b"null"))
        body = b'{"id": "r-1", "status": "approved", "requested_by": {"name": "Jo"}}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_an_approval_sends_its_body_and_says_when_no_grant_came_back():
    _OldApproveHandler.bodies = []
    server = http.server.HTTPServer(("127.0.0.1", 0), _OldApproveHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = "http://127.0.0.1:{}".format(server.server_port)
        client = sy.DatasiteClient(url, "token", {"id": "u-1", "role": "data_owner"}, {})
        request = sy.Request({"id": "r-1", "status": "pending"}, client)
        with warnings.catch_warnings():
            warnings.simplefilter("error", sy.DatasiteWarning)
            assert "approved" in str(request.approve())
        with pytest.warns(sy.DatasiteWarning, match="no grant"):
            request.approve(repeat=sy.RateLimit(per_minute=2), users=["b@example.org"])
        assert request.grant is None
    finally:
        server.shutdown()
        server.server_close()
    assert _OldApproveHandler.bodies == [
        {},
        {"repeat": {"per_minute": 2}, "users": ["b@example.org"]},
    ]


# On a server ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def more_scientists(module_server, actors):
    """Three more data scientists: ``third``, ``fourth`` and ``fifth``."""
    from helpers import Api

    api = Api(module_server.port)
    out = {}
    for key in ("third", "fourth", "fifth"):
        user = api.create_user(
            actors["admin"].token, role="data_scientist", email=unique_email(key), name=key
        )
        token = api.login(user["email"], PASSWORD)
        out[key] = Actor(key, token, client_for(module_server.port, token), user)
    return out


@pytest.fixture(scope="module")
def other_people(actors):
    """A second dataset of the same table: another asset to bind."""
    return upload_people(actors["owner"].client)


@needs_sandbox
def test_a_grant_lets_the_code_run_again_within_its_rate_limit(
    api, actors, scientist, owner, asset
):
    @sy.syft_function_single_use(data=asset)
    def minute_total(data):
        return int(data["age"].sum())

    request, review, grant, approved = approve_for_repeats(
        scientist, owner, minute_total, repeat=sy.RateLimit(per_minute=2)
    )
    assert grant.status == "active" and grant.revoked_at is None
    assert (grant.per_minute, grant.per_hour, grant.per_day) == (2, None, None)
    assert (grant.request_id, grant.code_id, grant.code_name) == (
        request.id,
        request.code.id,
        "minute_total",
    )
    assert grant.code_hash == request.code.code_hash == source_hash(minute_total.code)
    assert grant.created_by == actors["owner"].user["email"]
    lifetime = parse_time(grant.expires_at) - parse_time(grant.created_at)
    assert abs(lifetime.total_seconds() - 30 * 86400) < 120  # 30 days by default
    assert "2 runs per minute" in approved.message and grant.expires_at in approved.message
    assert grant.id in approved.message
    # The owner's view: who may run it (the requester), and the runs.
    assert [u["email"] for u in grant.users] == [actors["scientist"].user["email"]]
    assert grant.runs == 0

    # A mock run is no run under the grant.
    assert scientist.code.minute_total.mock(data=asset).job.grant_id is None
    first = scientist.code.minute_total(data=asset)
    second = scientist.code.minute_total(data=asset)
    assert first.get() == second.get() == TOTAL
    assert not first.reused and not second.reused and first.job.id != second.job.id
    assert first.job.grant_id == second.job.grant_id == grant.id

    with pytest.raises(sy.RateLimitedError) as limited:
        scientist.code.minute_total(data=asset)
    refused = limited.value
    assert (refused.status, refused.code) == (429, "RESOURCE_EXHAUSTED")
    assert refused.retry_after is not None and 1 <= refused.retry_after <= 60, refused
    assert "per minute" in str(refused) and ISO_TIME.search(str(refused)), str(refused)
    private = [j for j in scientist.jobs.get_all(code_id=request.code.id) if j.kind == "private"]
    assert len(private) == 2  # the refused run made no job

    # The scientist's view: none left this minute, and when the next is allowed.
    mine = [g for g in scientist.grants if g.id == grant.id]
    assert len(mine) == 1, [g.id for g in scientist.grants]
    mine = mine[0]
    assert mine.runs_left == {"minute": 0, "hour": None, "day": None}
    next_run = parse_time(mine.next_run_at)
    assert now() - datetime.timedelta(seconds=2) < next_run < now() + datetime.timedelta(seconds=61)
    assert mine.users is None and mine.runs is None
    assert owner.grants.get(grant.id).runs == 2

    # The one long wait of this file: until the window lets a run through again.
    time.sleep(min(refused.retry_after + 1, 61))
    again = scientist.code.minute_total(data=asset)
    assert again.get() == TOTAL and again.job.grant_id == grant.id


@needs_sandbox
def test_the_output_policy_does_not_stop_runs_under_a_grant(scientist, owner, asset):
    @sy.syft_function_single_use(data=asset)
    def hourly_count(data):
        return len(data)

    request, _, grant, _ = approve_for_repeats(
        scientist, owner, hourly_count, repeat=sy.RateLimit(per_hour=5)
    )
    jobs = set()
    with warnings.catch_warnings():
        warnings.simplefilter("error", sy.DatasiteWarning)  # no "used up": each run is new
        for _ in range(5):
            pointer = scientist.code.hourly_count(data=asset)
            assert pointer.get() == len(PRIVATE)
            assert not pointer.reused and pointer.job.grant_id == grant.id
            jobs.add(pointer.job.id)
    assert len(jobs) == 5
    with pytest.raises(sy.RateLimitedError, match="per hour") as limited:
        scientist.code.hourly_count(data=asset)
    assert 1 <= limited.value.retry_after <= 3600
    assert owner.grants.get(grant.id).runs == 5
    mine = scientist.grants.get(grant.id)
    assert mine.runs_left == {"minute": None, "hour": 0, "day": None}
    assert mine.next_run_at is not None
    assert request.refresh().status is sy.RequestStatus.APPROVED
    # Runs under the grant are not the output policy's: its single run is still unused.
    assert scientist.code.hourly_count.output_policy.used == 0


@needs_sandbox
def test_a_named_scientist_runs_the_same_code_without_a_request(actors, scientist, owner, asset):
    second = actors["scientist2"]

    @sy.syft_function(
        input_policy=sy.ExactMatch(data=asset, offset=1),
        output_policy=sy.OutputPolicyExecuteOnce(),
    )
    def shared_sum(data, offset):
        return int(data["age"].sum()) + offset

    request, _, grant, approved = approve_for_repeats(
        scientist, owner, shared_sum, repeat=sy.RateLimit(per_hour=4), users=[second.user["email"]]
    )
    assert second.user["email"] in approved.message
    assert {u["email"] for u in grant.users} == {
        actors["scientist"].user["email"],
        second.user["email"],
    }

    # The second scientist submits the same function (the same source, so the same hash) bound to
    # the same inputs, and runs it on private data without a request of their own.
    code = second.client.code.submit(shared_sum).value
    assert code.code_hash == grant.code_hash and code.request is None
    pointer = second.client.code.shared_sum(data=asset)
    assert pointer.get() == TOTAL + 1
    assert pointer.job.grant_id == grant.id and pointer.job.kind == "private"
    assert second.client.requests.get_all() == []
    assert scientist.code.shared_sum(data=asset).get() == TOTAL + 1

    # Each counts against their own windows.
    assert second.client.grants.get(grant.id).runs_left == {"minute": None, "hour": 3, "day": None}
    assert scientist.grants.get(grant.id).runs_left["hour"] == 3
    assert owner.grants.get(grant.id).runs == 2


@needs_sandbox
def test_the_same_code_is_refused_to_the_unnamed_and_on_other_inputs(
    api, more_scientists, other_people, scientist, owner, asset
):
    third, fourth, fifth = (more_scientists[k] for k in ("third", "fourth", "fifth"))

    @sy.syft_function(
        input_policy=sy.ExactMatch(data=asset, offset=1),
        output_policy=sy.OutputPolicyExecuteOnce(),
    )
    def bound_sum(data, offset):
        return int(data["age"].sum()) + offset

    # Named by id and by email.
    _, _, grant, _ = approve_for_repeats(
        scientist,
        owner,
        bound_sum,
        repeat=sy.RateLimit(per_hour=4),
        users=[fourth.user["id"], fifth.user["email"]],
    )
    assert {u["email"] for u in grant.users} >= {fourth.user["email"], fifth.user["email"]}

    # A named scientist's view: their own runs left (the requester's runs are not theirs), and
    # neither whom the grant names nor its runs in all.
    theirs = fourth.client.grants.get(grant.id)
    assert theirs.runs_left == {"minute": None, "hour": 4, "day": None}
    assert theirs.users is None and theirs.runs is None
    raw = api.get(grant_path(grant.id), token=fourth.token)
    assert raw.status == 200, raw
    assert raw.json.get("users") is None and raw.json.get("runs") is None, raw
    assert fifth.user["email"] not in raw.text and fifth.user["id"] not in raw.text

    # A scientist the grant does not name: the same code is refused, and no job is made.
    third.client.code.submit(bound_sum)
    with pytest.raises(sy.PermissionDeniedError):
        third.client.code.bound_sum(data=asset)
    assert third.client.jobs.get_all() == []
    with pytest.raises(sy.NotFoundError):
        third.client.grants.get(grant.id)
    assert len(third.client.grants) == 0

    # Named, but the same source bound to another asset: refused, saying the bindings differ.
    elsewhere = asset_of(fourth.client, other_people)

    # The same source (no comment on its lines: they are part of it), bound to another asset.
    @sy.syft_function(
        input_policy=sy.ExactMatch(data=elsewhere, offset=1),
        output_policy=sy.OutputPolicyExecuteOnce(),
    )
    def bound_sum(data, offset):
        return int(data["age"].sum()) + offset

    code = fourth.client.code.submit(bound_sum).value
    assert code.code_hash == grant.code_hash
    with pytest.raises(sy.PermissionDeniedError, match="(?i)bind"):
        fourth.client.code.bound_sum(data=elsewhere)
    assert fourth.client.jobs.get_all() == []

    # Named, the same asset but another constant: refused too.
    @sy.syft_function(
        input_policy=sy.ExactMatch(data=asset, offset=2),
        output_policy=sy.OutputPolicyExecuteOnce(),
    )
    def bound_sum(data, offset):
        return int(data["age"].sum()) + offset

    code = fifth.client.code.submit(bound_sum).value
    assert code.code_hash == grant.code_hash
    with pytest.raises(sy.PermissionDeniedError, match="(?i)bind"):
        fifth.client.code.bound_sum(data=asset)
    assert fifth.client.jobs.get_all() == []
    assert owner.grants.get(grant.id).runs == 0
    assert fourth.client.grants.get(grant.id).runs_left["hour"] == 4


@needs_sandbox
def test_a_revoked_grant_refuses_runs_even_of_approved_code(
    api, actors, scientist, owner, asset
):
    @sy.syft_function_single_use(data=asset)
    def revoked_max(data):
        return int(data["age"].max())

    request, _, grant, _ = approve_for_repeats(
        scientist, owner, revoked_max, repeat=sy.RateLimit(per_hour=10)
    )
    assert scientist.code.revoked_max(data=asset).get() == int(PRIVATE["age"].max())

    newest = owner.grants[0]
    assert newest.id == grant.id  # newest first
    # A data scientist may not revoke, even one the grant names; one it does not name sees none.
    with pytest.raises(sy.PermissionDeniedError):
        scientist.grants.get(grant.id).revoke()
    for who in ("scientist", "scientist2"):
        resp = api.post(grant_path(grant.id, "revoke"), {}, token=actors[who].token)
        assert_error(resp, 403, "PERMISSION_DENIED")
    with pytest.raises(sy.NotFoundError):
        actors["scientist2"].client.grants.get(grant.id)
    assert_error(api.get(grant_path(grant.id), token=actors["scientist2"].token), 404, "NOT_FOUND")
    assert scientist.grants.get(grant.id).status == "active"

    revoked = newest.revoke()
    assert isinstance(revoked, sy.SyftSuccess) and revoked.value is newest
    assert newest.status == "revoked" and newest.revoked_at is not None
    # The request stays approved, yet the run does not fall back to its output policy.
    with pytest.raises(sy.PermissionDeniedError, match="revoked"):
        scientist.code.revoked_max(data=asset)
    assert request.refresh().status is sy.RequestStatus.APPROVED
    assert len([j for j in scientist.jobs.get_all(code_id=request.code.id)]) == 1

    with pytest.raises(sy.FailedPreconditionError):
        owner.grants.get(grant.id).revoke()
    resp = api.post(grant_path(grant.id, "revoke"), {}, token=actors["owner"].token)
    assert_error(resp, 409, "FAILED_PRECONDITION")
    assert scientist.grants.get(grant.id).status == "revoked"
    assert grant.id in [g.id for g in owner.grants.revoked]
    assert grant.id not in [g.id for g in owner.grants.active]
    assert grant.refresh().revoked_at == newest.revoked_at


@needs_sandbox
def test_revoking_stops_the_grants_running_jobs(scientist, owner, asset):
    @sy.syft_function_single_use(data=asset)
    def slow_granted(data):
        import time

        time.sleep(30)
        return len(data)

    _, _, grant, _ = approve_for_repeats(
        scientist, owner, slow_granted, repeat=sy.RateLimit(per_hour=3)
    )
    job = scientist.code.slow_granted(data=asset, blocking=False)
    assert job.grant_id == grant.id
    wait_for_status(job, (sy.JobStatus.RUNNING,))
    started = time.monotonic()
    assert owner.grants.revoke(grant.id)
    wait_for_status(job, (sy.JobStatus.KILLED,), seconds=25)
    assert time.monotonic() - started < 25


@needs_sandbox
def test_a_denial_after_the_approval_revokes_its_grant(scientist, owner, asset):
    @sy.syft_function_single_use(data=asset)
    def denied_later(data):
        return len(data)

    request, review, grant, _ = approve_for_repeats(
        scientist, owner, denied_later, repeat=sy.RateLimit(per_minute=5)
    )
    # No run yet, so no result released: the approval may still be withdrawn.
    assert review.deny(reason="changed my mind")
    assert request.refresh().status is sy.RequestStatus.DENIED
    seen = owner.grants.get(grant.id)
    assert seen.status == "revoked" and seen.revoked_at is not None
    with pytest.raises(sy.PermissionDeniedError):
        scientist.code.denied_later(data=asset)
    assert scientist.jobs.get_all(code_id=request.code.id) == []


@needs_sandbox
def test_an_approved_request_gets_a_grant_by_approving_it_again(scientist, owner, asset):
    @sy.syft_function_single_use(data=asset)
    def approved_twice(data):
        return len(data)

    request = scientist.code.request_code_execution(approved_twice, reason="plain first")
    review = owner.requests.get(request.id)
    assert review.approve() and review.grant is None
    assert scientist.code.approved_twice(data=asset).get() == len(PRIVATE)  # released
    with pytest.raises(sy.FailedPreconditionError, match="already approved"):
        review.approve()
    approved = review.approve(repeat=sy.RateLimit(per_day=2), expires_in_days=7)
    grant = review.grant
    assert isinstance(grant, sy.Grant) and grant.per_day == 2
    assert "2 runs per day" in approved.message
    lifetime = parse_time(grant.expires_at) - parse_time(grant.created_at)
    assert abs(lifetime.total_seconds() - 7 * 86400) < 120
    # The single execution was used; the grant runs it again.
    pointer = scientist.code.approved_twice(data=asset)
    assert not pointer.reused and pointer.job.grant_id == grant.id
    assert "Grant" in repr(review) and grant.id in repr(review)


@needs_sandbox
def test_an_expired_grant_refuses_runs(scientist, owner, asset):
    @sy.syft_function_single_use(data=asset)
    def short_lived(data):
        return len(data)

    _, _, grant, _ = approve_for_repeats(
        scientist, owner, short_lived, repeat=sy.RateLimit(per_minute=10), expires_in_days=0.0001
    )
    expires_at = parse_time(grant.expires_at)
    lifetime = (expires_at - parse_time(grant.created_at)).total_seconds()
    assert 7.5 <= lifetime <= 9.7, lifetime  # 0.0001 days is 8.64 s
    assert scientist.code.short_lived(data=asset).get() == len(PRIVATE)

    wait = (expires_at - now()).total_seconds() + 1
    assert wait <= 11, wait
    time.sleep(max(wait, 0))
    with pytest.raises(sy.PermissionDeniedError, match="expired"):
        scientist.code.short_lived(data=asset)
    assert scientist.grants.get(grant.id).status == "expired"
    assert grant.refresh().status == "expired" and grant.revoked_at is None
    assert grant.id in [g.id for g in owner.grants.expired]
    assert grant.id not in [g.id for g in owner.grants.active]


def test_bad_approvals_are_refused_and_change_nothing(api, actors, scientist, owner, asset):
    @sy.syft_function_single_use(data=asset)
    def refused_bodies(data):
        return len(data)

    request = scientist.code.request_code_execution(refused_bodies, reason="bad bodies")
    path = "/api/v1/requests/{}/approve".format(request.id)
    token = actors["owner"].token
    grants_before = len(owner.grants)
    one = {"per_hour": 1}
    for body in (
        {"repeat": {}},
        {"repeat": "often"},
        {"repeat": {"per_minute": 0}},
        {"repeat": {"per_hour": -1}},
        {"repeat": {"per_day": 1.5}},
        {"repeat": {"per_minute": "2"}},
        {"repeat": {"per_minute": True}},
        {"repeat": {"per_minute": 1000001}},
        {"expires_in_days": 5},
        {"users": [actors["scientist2"].user["email"]]},
        {"repeat": one, "expires_in_days": 0},
        {"repeat": one, "expires_in_days": -1},
        {"repeat": one, "expires_in_days": 3651},
        {"repeat": one, "expires_in_days": "30"},
        {"repeat": one, "users": [unique_email("nobody")]},
        {"repeat": one, "users": [str(uuid.uuid4())]},
        {"repeat": one, "users": [actors["owner2"].user["email"]]},
        {"repeat": one, "users": [actors["owner2"].user["id"]]},
        {"repeat": one, "users": ["info@example.org"]},  # the root admin
    ):
        resp = api.post(path, body, token=token)
        assert_error(resp, 400, "INVALID_ARGUMENT")
    assert request.refresh().status is sy.RequestStatus.PENDING and request.history == []
    assert len(owner.grants) == grants_before

    # Through the client: who the users are, only the server knows.
    review = owner.requests.get(request.id)
    with pytest.raises(sy.InvalidArgumentError):
        review.approve(repeat=sy.RateLimit(per_hour=1), users=[unique_email("nobody")])
    with pytest.raises(sy.InvalidArgumentError):
        review.approve(repeat=sy.RateLimit(per_hour=1), users=[actors["owner2"].user["email"]])
    # The form, the client refuses before sending anything.
    with pytest.raises(ValueError, match="repeat"):
        review.approve(expires_in_days=1)
    with pytest.raises(ValueError, match="repeat"):
        review.approve(users=[actors["scientist2"].user["email"]])
    assert request.refresh().status is sy.RequestStatus.PENDING
    assert len(owner.grants) == grants_before

    # The same request approved well: the refusals were about their bodies alone.
    review.approve(repeat=sy.RateLimit(per_hour=1), users=[actors["scientist2"].user["email"]])
    assert review.grant.status == "active" and len(owner.grants) == grants_before + 1


class CountsItself(sy.CustomOutputPolicy):
    """A custom output policy: it counts its runs itself."""

    def apply_to_output(self, context, outputs, update_policy=True):
        return outputs


class AtMostTenRows(sy.CustomInputPolicy):
    def is_valid(self, context, usr_input_kwargs):
        return len(usr_input_kwargs["data"]) <= 10


def test_code_with_custom_policies_cannot_be_approved_for_repeated_use(
    scientist, owner, asset
):
    @sy.syft_function(input_policy=sy.ExactMatch(data=asset), output_policy=CountsItself())
    def custom_counted(data):
        return len(data)

    @sy.syft_function(input_policy=AtMostTenRows(data=asset))
    def custom_filtered(data):
        return len(data)

    grants_before = len(owner.grants)
    for func in (custom_counted, custom_filtered):
        request = scientist.code.request_code_execution(func, reason="custom policies")
        review = owner.requests.get(request.id)
        with pytest.raises(sy.InvalidArgumentError, match="(?i)custom"):
            review.approve(repeat=sy.RateLimit(per_hour=2))
        assert request.refresh().status is sy.RequestStatus.PENDING
        assert review.approve() and review.grant is None  # a plain approval still works
    assert len(owner.grants) == grants_before


@needs_sandbox
def test_concurrent_runs_get_exactly_the_limit(api, actors, scientist, owner, asset):
    @sy.syft_function_single_use(data=asset)
    def burst_count(data):
        return len(data)

    request, _, grant, _ = approve_for_repeats(
        scientist, owner, burst_count, repeat=sy.RateLimit(per_minute=3)
    )
    path = "/api/v1/code/{}/run".format(request.code.id)
    token = actors["scientist"].token
    start = threading.Barrier(8)
    answers, failures = [], []

    def run():
        try:
            start.wait(timeout=30)
            answers.append(api.post(path, {"mock": False, "blocking": False}, token=token))
        except Exception as err:  # reported below
            failures.append(err)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not failures and not any(t.is_alive() for t in threads), failures
    started = [r for r in answers if r.status in (200, 201)]
    limited = [r for r in answers if r.status == 429]
    assert (len(started), len(limited)) == (3, 5), answers
    for resp in limited:
        assert_error(resp, 429, "RESOURCE_EXHAUSTED")
        assert 1 <= int(resp.headers["retry-after"]) <= 60, resp.headers
    jobs = [j for j in scientist.jobs.get_all(code_id=request.code.id) if j.kind == "private"]
    assert sorted(j.id for j in jobs) == sorted(r.json["id"] for r in started)
    for job in jobs:
        assert job.grant_id == grant.id
        assert job.wait(timeout=WAIT_SECONDS).status is sy.JobStatus.COMPLETED
    assert owner.grants.get(grant.id).runs == 3


@needs_sandbox
def test_the_audit_log_records_grants_and_runs_under_them(actors, scientist, owner, asset):
    @sy.syft_function_single_use(data=asset)
    def audited_grant(data):
        return len(data)

    request, _, grant, _ = approve_for_repeats(
        scientist, owner, audited_grant, repeat=sy.RateLimit(per_day=3)
    )
    job = scientist.code.audited_grant(data=asset).job
    owner.grants.revoke(grant.id)
    admin = actors["admin"].client

    def about_grant():
        return [
            e
            for e in admin.audit.all()
            if grant.id in (e["target"] or "") + " " + (e["detail"] or "")
        ]

    log = about_grant()
    creates = [e for e in log if e["action"] == "grant.create"]
    assert len(creates) == 1, log
    assert creates[0]["target"] == "grant:" + grant.id
    assert "request:" + request.id in creates[0]["detail"]
    assert "code:" + request.code.id in creates[0]["detail"]
    assert creates[0]["actor"] == "user:" + actors["owner"].user["id"]
    revokes = [e for e in log if e["action"] == "grant.revoke"]
    assert len(revokes) == 1 and revokes[0]["target"] == "grant:" + grant.id, log
    runs = [e for e in log if e["action"] == "job.create"]
    assert len(runs) == 1, log
    assert "private run of code:{} under grant:{}".format(request.code.id, grant.id) in (
        runs[0]["detail"]
    )
    assert runs[0]["target"] == "job:" + job.id

    # A refused run is not recorded.
    with pytest.raises(sy.PermissionDeniedError):
        scientist.code.audited_grant(data=asset)
    assert about_grant() == log
    assert admin.audit.verify()["ok"] is True


def test_who_may_list_and_read_grants(api, actors, scientist, owner, asset):
    @sy.syft_function_single_use(data=asset)
    def listed_grant(data):
        return len(data)

    _, _, grant, _ = approve_for_repeats(
        scientist, owner, listed_grant, repeat=sy.RateLimit(per_hour=2)
    )
    everything = owner.grants.get_all()
    assert everything[0].id == grant.id
    created = [parse_time(g.created_at) for g in everything]
    assert created == sorted(created, reverse=True)  # newest first
    assert all(g.status == "active" for g in owner.grants.active)
    assert everything[grant.id].id == grant.id and owner.grants[grant.id].id == grant.id
    assert actors["admin"].client.grants.get(grant.id).users is not None
    assert "listed_grant" in repr(owner.grants) and "listed_grant" in owner.grants._repr_html_()

    # Pages, as the server pages them.
    resp = api.get("/api/v1/grants?page=1&page_size=1", token=actors["owner"].token)
    assert resp.status == 200, resp
    assert (resp.json["total"], resp.json["page"], resp.json["page_size"]) == (
        len(everything),
        1,
        1,
    )
    assert [g["id"] for g in resp.json["items"]] == [grant.id]
    resp = api.get("/api/v1/grants?page=2&page_size=1", token=actors["owner"].token)
    assert [g["id"] for g in resp.json["items"]] == [everything[1].id]

    # A scientist lists only the grants that name them; a guest none; no token, nothing.
    mine = {g.id for g in scientist.grants}
    assert grant.id in mine and mine <= {g.id for g in everything}
    assert grant.id not in {g.id for g in actors["scientist2"].client.grants}
    with pytest.raises(sy.PermissionDeniedError):
        actors["guest"].client.grants.get_all()
    assert_error(api.get("/api/v1/grants", token=actors["guest"].token), 403, "PERMISSION_DENIED")
    assert_error(api.get(grant_path(grant.id), token=actors["guest"].token), 403,
                 "PERMISSION_DENIED")
    assert_error(api.get("/api/v1/grants"), 401, "UNAUTHENTICATED")
    assert_error(api.get(grant_path(str(uuid.uuid4())), token=actors["owner"].token), 404,
                 "NOT_FOUND")


def test_the_grant_service_of_client_api(scientist, owner, asset):
    @sy.syft_function_single_use(data=asset)
    def serviced_grant(data):
        return len(data)

    _, _, grant, _ = approve_for_repeats(
        scientist, owner, serviced_grant, repeat=sy.RateLimit(per_hour=2)
    )
    services = owner.api.services
    listed = services.grant.get_all()
    assert isinstance(listed, sy.GrantList) and listed[0].id == grant.id
    assert services.grant.get_by_uid(uid=grant.id).code_name == "serviced_grant"
    revoked = services.grant.revoke(uid=sy.UID(grant.id))
    assert isinstance(revoked, sy.SyftSuccess) and revoked.value.status == "revoked"
    assert grant.id in [g.id for g in services.grant.get_all(status="revoked")]


def refusals_counted(metrics_port):
    """The sum of ``datasite_grant_refusals_total`` over all its labels (0 before any refusal)."""
    from test_metrics import scrape

    total = 0.0
    for line in scrape(metrics_port).splitlines():
        match = re.match(r"datasite_grant_refusals_total(\{.*\})? (\S+)$", line)
        if match:
            total += float(match.group(2))
    return total


@needs_sandbox
def test_refused_runs_are_counted_in_the_metrics(binary, tmp_path):
    from code_helpers import make_code_actors
    from helpers import DetachedServer
    from test_metrics import free_port

    metrics_port = free_port()
    server = DetachedServer(
        binary, tmp_path / "data", "--metrics-address", "127.0.0.1:{}".format(metrics_port)
    )
    try:
        server.start()
        actors = make_code_actors(server.port)
        scientist, owner = actors["scientist"].client, actors["owner"].client
        counted = asset_of(scientist, upload_people(owner))

        @sy.syft_function_single_use(data=counted)
        def metered(data):
            return len(data)

        _, _, grant, _ = approve_for_repeats(
            scientist, owner, metered, repeat=sy.RateLimit(per_minute=1)
        )
        before = refusals_counted(metrics_port)
        assert scientist.code.metered(data=counted).get() == len(PRIVATE)
        assert refusals_counted(metrics_port) == before  # a run let through is no refusal
        with pytest.raises(sy.RateLimitedError):
            scientist.code.metered(data=counted)
        assert refusals_counted(metrics_port) == before + 1
        owner.grants.revoke(grant.id)
        with pytest.raises(sy.PermissionDeniedError, match="revoked"):
            scientist.code.metered(data=counted)
        assert refusals_counted(metrics_port) == before + 2
    finally:
        server.stop()
