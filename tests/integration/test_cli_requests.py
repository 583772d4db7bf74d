"""``datasite requests list|show|approve|deny`` and ``datasite jobs list|show|logs|kill|release``
against a server launched with the CLI.

One server per module; the Python client plays the data scientist who submits code, the command
line the data owner who reviews it (and the scientist who reads their jobs).
"""

import datetime
import json
import uuid

import pytest

import datasite as sy
from code_helpers import asset_of, upload_people, wait_for_status
from helpers import needs_sandbox, PASSWORD, client_for

pytestmark = needs_sandbox
from test_cli_datasets import Site


class Person:
    """A user of the site: email, a client logged in once, and ``cli`` to run commands as them."""

    def __init__(self, site, role):
        self.site = site
        self.user = site.api.create_user(site.admin_token, role=role)
        self.email = self.user["email"]
        self.token = site.api.login(self.email, PASSWORD)
        self.client = client_for(site.port, self.token)

    def cli(self, group, command, *args):
        """``datasite GROUP COMMAND --server NAME --token TOKEN ARGS``."""
        return self.site.run(
            group, command, "--server", self.site.name, "--token", self.token, *args
        )


@pytest.fixture(scope="module")
def site(binary, tmp_path_factory):
    site = Site(binary, tmp_path_factory.mktemp("xdg"))
    yield site
    site.land()


@pytest.fixture(scope="module")
def owner(site):
    return Person(site, "data_owner")


@pytest.fixture(scope="module")
def scientist(site):
    return Person(site, "data_scientist")


@pytest.fixture(scope="module")
def scientist2(site):
    return Person(site, "data_scientist")


@pytest.fixture(scope="module")
def dataset(owner):
    return upload_people(owner.client)


@pytest.fixture
def asset(scientist, dataset):
    return asset_of(scientist.client, dataset)


class CliCountedPolicy(sy.CustomOutputPolicy):
    def __init__(self, n_calls=1):
        self.n_calls = n_calls

    def apply_to_output(self, context, outputs, update_policy=True):
        return outputs


def test_show_prints_the_source_of_custom_policies(owner, scientist, asset):
    @sy.syft_function(
        input_policy=sy.ExactMatch(data=asset), output_policy=CliCountedPolicy(n_calls=1000000)
    )
    def cli_with_policy(data):
        return len(data)

    request = scientist.client.code.request_code_execution(cli_with_policy)
    shown = owner.cli("requests", "show", request.id)
    assert shown.returncode == 0, shown
    # The arguments the scientist made it with, beside its source's defaults (n_calls=1).
    assert 'custom: CliCountedPolicy, made with {"n_calls":1000000}' in shown.stdout
    assert "Custom policies (run with the code in the sandbox):" in shown.stdout
    assert "  class CliCountedPolicy(sy.CustomOutputPolicy):" in shown.stdout


def test_list_and_show_a_pending_request(owner, scientist, dataset, asset):
    @sy.syft_function_single_use(data=asset, bins=4)
    def cli_histogram(data, bins):
        return [int(bins), len(data)]

    request = scientist.client.code.request_code_execution(cli_histogram, reason="age bands")

    listed = owner.cli("requests", "list")
    assert listed.returncode == 0, listed
    line = next(line for line in listed.stdout.splitlines() if request.id in line)
    assert "pending" in line and "cli_histogram v1" in line and scientist.email in line
    assert "age bands" in line
    assert listed.stdout.splitlines()[0].split()[:2] == ["ID", "STATUS"]

    approved = owner.cli("requests", "list", "--status", "approved")
    assert approved.returncode == 0, approved
    assert request.id not in approved.stdout

    as_json = owner.cli("requests", "list", "--status", "pending", "--json")
    assert as_json.returncode == 0, as_json
    assert request.id in [r["id"] for r in json.loads(as_json.stdout)["items"]]

    shown = owner.cli("requests", "show", request.id)
    assert shown.returncode == 0, shown
    for text in (
        "pending",
        "age bands",
        scientist.email,
        "cli_histogram v1",
        "single_execution, limit 1, used 0",
        "data: asset {}/people ({})".format(dataset, asset.id),
        "bins: constant 4",
        "  def cli_histogram(data, bins):",
        "      return [int(bins), len(data)]",
    ):
        assert text in shown.stdout, (text, shown)
    shown_json = owner.cli("requests", "show", request.id, "--json")
    assert json.loads(shown_json.stdout)["code"]["source"] == cli_histogram.code


def test_approve_by_a_scientist_is_refused_and_by_an_owner_works_once(owner, scientist, asset):
    @sy.syft_function_single_use(data=asset)
    def cli_count(data):
        return len(data)

    request = scientist.client.code.request_code_execution(cli_count, reason="count")

    refused = scientist.cli("requests", "approve", request.id)
    assert refused.returncode == 1, refused
    assert refused.stderr.startswith("error: "), refused
    assert request.refresh().status is sy.RequestStatus.PENDING

    approved = owner.cli("requests", "approve", request.id)
    assert approved.returncode == 0, approved
    assert "Approved request " + request.id in approved.stdout
    assert request.refresh().status is sy.RequestStatus.APPROVED
    assert scientist.client.code.cli_count(data=asset).get() == 5

    again = owner.cli("requests", "approve", request.id)
    assert again.returncode == 1, again
    assert again.stderr.startswith("error: "), again


def test_deny_needs_a_reason_which_the_scientist_reads(owner, scientist, asset):
    @sy.syft_function_single_use(data=asset)
    def cli_names(data):
        return list(data["name"])

    request = scientist.client.code.request_code_execution(cli_names, reason="names")

    no_reason = owner.cli("requests", "deny", request.id)
    assert no_reason.returncode == 2, no_reason
    assert "--reason" in no_reason.stderr

    denied = owner.cli("requests", "deny", request.id, "--reason", "names identify people")
    assert denied.returncode == 0, denied
    assert "Denied request " + request.id in denied.stdout
    request.refresh()
    assert request.status is sy.RequestStatus.DENIED
    assert request.deny_reason == "names identify people"

    refused = scientist.cli("requests", "deny", request.id, "--reason", "x")
    assert refused.returncode == 1 and refused.stderr.startswith("error: "), refused


def test_a_scientist_sees_only_their_own_requests(owner, scientist, scientist2, asset):
    @sy.syft_function_single_use(data=asset)
    def cli_mine(data):
        return int(data["age"].max())

    request = scientist.client.code.request_code_execution(cli_mine, reason="mine")
    mine = scientist.cli("requests", "list")
    assert mine.returncode == 0 and request.id in mine.stdout, mine
    theirs = scientist2.cli("requests", "list")
    assert theirs.returncode == 0 and request.id not in theirs.stdout, theirs
    shown = scientist2.cli("requests", "show", request.id)
    assert shown.returncode == 1 and shown.stderr.startswith("error: "), shown


def test_jobs_list_show_and_logs(owner, scientist, asset):
    @sy.syft_function(
        input_policy=sy.ExactMatch(data=asset), output_policy=sy.OutputPolicyExecuteCount(limit=3)
    )
    def cli_logged(data):
        import sys

        print("stdout-marker", len(data))
        print("stderr-marker", file=sys.stderr)
        return len(data)

    request = scientist.client.code.request_code_execution(cli_logged, reason="logs")
    assert owner.client.requests.get(request.id).approve()
    job = scientist.client.code.cli_logged(data=asset).job

    listed = scientist.cli("jobs", "list")
    assert listed.returncode == 0, listed
    line = next(line for line in listed.stdout.splitlines() if job.id in line)
    assert "completed" in line and "private" in line and "cli_logged" in line
    by_code = scientist.cli("jobs", "list", "--code-id", request.code.id, "--json")
    assert [j["id"] for j in json.loads(by_code.stdout)["items"]] == [job.id]
    other_code = scientist.cli("jobs", "list", "--code-id", unique_uuid())
    assert other_code.returncode == 0 and job.id not in other_code.stdout, other_code
    by_status = scientist.cli("jobs", "list", "--status", "errored")
    assert by_status.returncode == 0 and job.id not in by_status.stdout, by_status
    bad_status = scientist.cli("jobs", "list", "--status", "sleeping")
    assert bad_status.returncode == 2, bad_status

    shown = scientist.cli("jobs", "show", job.id)
    assert shown.returncode == 0, shown
    assert "completed" in shown.stdout and "json" in shown.stdout

    logs = scientist.cli("jobs", "logs", job.id)
    assert logs.returncode == 0, logs
    assert "stdout-marker 5" in logs.stdout
    assert "stderr-marker" not in logs.stdout + logs.stderr  # stderr is for owners
    owner_logs = owner.cli("jobs", "logs", job.id)
    assert owner_logs.returncode == 0, owner_logs
    assert "stdout-marker 5" in owner_logs.stdout
    assert "stderr-marker" in owner_logs.stderr

    release = scientist.cli("jobs", "release", job.id)
    assert release.returncode == 1 and release.stderr.startswith("error: "), release

    # Regression (issue 12): releasing a job that was never held claimed a release.
    never_held = owner.cli("jobs", "release", job.id)
    assert never_held.returncode == 1, never_held
    assert "nothing to release" in never_held.stderr, never_held
    assert "Released" not in never_held.stdout, never_held


def test_kill_a_running_job(scientist, scientist2, asset):
    @sy.syft_function_single_use(data=asset)
    def cli_sleepy(data):
        import time

        time.sleep(120)
        return len(data)

    scientist.client.code.submit(cli_sleepy)
    job = scientist.client.code.cli_sleepy.mock(data=asset, blocking=False)
    wait_for_status(job, (sy.JobStatus.RUNNING,))

    refused = scientist2.cli("jobs", "kill", job.id)
    assert refused.returncode == 1 and refused.stderr.startswith("error: "), refused
    killed = scientist.cli("jobs", "kill", job.id)
    assert killed.returncode == 0, killed
    assert "Killed job " + job.id in killed.stdout
    wait_for_status(job, (sy.JobStatus.KILLED,))
    again = scientist.cli("jobs", "kill", job.id)
    assert again.returncode == 1 and again.stderr.startswith("error: "), again


def test_show_reveals_hidden_characters(owner, scientist, asset):
    """Control characters from a scientist reach the reviewer's terminal as visible escapes, never
    raw; a source with a bidi override is refused outright (issue 11: what the reviewer reads must
    be what runs).
    """
    api = scientist.site.api
    body = {
        "name": "cli_sneaky",
        "source": "def cli_sneaky(data):\n    x = 1  # \u202e hidden\r\n    return len(data)\n",
        "inputs": {"data": {"asset_id": asset.id}},
        "output_policy": {"kind": "single_execution"},
    }
    refused = api.post("/api/v1/code", body, token=scientist.token)
    assert refused.status == 400 and "U+202E" in refused.json["error"]["message"], refused
    body["source"] = "def cli_sneaky(data):\n    x = 1  # plain\n    return len(data)\n"
    code = api.post("/api/v1/code", body, token=scientist.token)
    assert code.status == 201, code
    request = api.post(
        "/api/v1/requests",
        {"code_id": code.json["id"], "reason": "clear\x1b[2Jscreen"},
        token=scientist.token,
    )
    assert request.status == 201, request
    for args in (("requests", "show", request.json["id"]), ("requests", "list")):
        shown = owner.cli(*args)
        assert shown.returncode == 0, shown
        assert "\x1b" not in shown.stdout, shown
        assert "\\x1b[2J" in shown.stdout, shown


def test_a_failed_private_run_shows_the_scientist_only_its_kind_until_released(
    owner, scientist, asset
):
    """Regression: the command line showed a private run's exception text to its scientist."""

    @sy.syft_function_single_use(data=asset)
    def cli_leak(data):
        raise type("CliLeak" + str(int(data["age"].sum())), (Exception,), {})("x")

    request = scientist.client.code.request_code_execution(cli_leak, reason="fails")
    assert owner.cli("requests", "approve", request.id).returncode == 0
    with pytest.raises(sy.JobFailedError) as failed:
        scientist.client.code.cli_leak(data=asset)
    job_id = failed.value.job.id
    secret = "CliLeak217"
    for args in (("show", job_id), ("show", job_id, "--json"), ("list",), ("logs", job_id)):
        shown = scientist.cli("jobs", *args)
        assert shown.returncode == 0, shown
        assert secret not in shown.stdout + shown.stderr, (args, shown)
    assert "code_error" in scientist.cli("jobs", "show", job_id).stdout
    assert secret in owner.cli("jobs", "show", job_id).stdout

    refused = scientist.cli("jobs", "release-error", job_id)
    assert refused.returncode == 1 and refused.stderr.startswith("error: "), refused
    released = owner.cli("jobs", "release-error", job_id)
    assert released.returncode == 0, released
    assert "Released the error of job " + job_id in released.stdout
    assert secret in scientist.cli("jobs", "show", job_id).stdout
    assert secret in scientist.cli("jobs", "logs", job_id).stderr


def test_a_changed_decision_shows_in_the_request(owner, scientist, asset):
    @sy.syft_function_single_use(data=asset)
    def cli_changed(data):
        return len(data)

    request = scientist.client.code.request_code_execution(cli_changed, reason="count")
    assert owner.cli("requests", "deny", request.id, "--reason", "first no").returncode == 0
    assert owner.cli("requests", "approve", request.id).returncode == 0
    shown = owner.cli("requests", "show", request.id)
    assert "Decisions:" in shown.stdout and "first no" in shown.stdout
    assert "approved by" in shown.stdout


def test_approve_for_repeated_use_then_list_show_and_revoke_the_grant(
    owner, scientist, scientist2, asset
):
    @sy.syft_function_single_use(data=asset)
    def cli_repeated(data):
        return len(data)

    request = scientist.client.code.request_code_execution(cli_repeated, reason="often")
    approved = owner.cli(
        "requests", "approve", request.id, "--repeat-per-hour", "3",
        "--grant-user", scientist2.email,
    )
    assert approved.returncode == 0, approved
    assert request.refresh().status is sy.RequestStatus.APPROVED
    grants = [g for g in owner.client.grants if g.request_id == request.id]
    assert len(grants) == 1, grants
    grant = grants[0]
    assert grant.id in approved.stdout, approved
    assert (grant.per_minute, grant.per_hour, grant.per_day) == (None, 3, None)
    assert {u["email"] for u in grant.users} == {scientist.email, scientist2.email}
    lifetime = (
        datetime.datetime.fromisoformat(grant.expires_at.replace("Z", "+00:00"))
        - datetime.datetime.fromisoformat(grant.created_at.replace("Z", "+00:00"))
    )
    assert abs(lifetime.total_seconds() - 30 * 86400) < 120  # the default
    for _ in range(3):
        assert scientist.client.code.cli_repeated(data=asset).get() == 5
    with pytest.raises(sy.RateLimitedError, match="per hour"):
        scientist.client.code.cli_repeated(data=asset)

    listed = owner.cli("grants", "list")
    assert listed.returncode == 0, listed
    line = next(line for line in listed.stdout.splitlines() if grant.id in line)
    assert "active" in line and "cli_repeated" in line, line
    active = owner.cli("grants", "list", "--status", "active", "--json")
    assert active.returncode == 0, active
    assert grant.id in [g["id"] for g in json.loads(active.stdout)["items"]]
    shown = owner.cli("grants", "show", grant.id)
    assert shown.returncode == 0, shown
    for text in ("cli_repeated", "active", scientist2.email, request.id):
        assert text in shown.stdout, (text, shown)
    theirs = scientist.cli("grants", "show", grant.id, "--json")
    assert theirs.returncode == 0, theirs
    assert json.loads(theirs.stdout)["runs_left"] == {"minute": None, "hour": 0, "day": None}
    assert json.loads(theirs.stdout)["next_run_at"]
    assert grant.id in scientist2.cli("grants", "list").stdout

    refused = scientist.cli("grants", "revoke", grant.id)
    assert refused.returncode == 1 and refused.stderr.startswith("error: "), refused
    assert owner.client.grants.get(grant.id).status == "active"
    revoked = owner.cli("grants", "revoke", grant.id)
    assert revoked.returncode == 0, revoked
    assert grant.id in revoked.stdout, revoked
    assert owner.client.grants.get(grant.id).status == "revoked"
    again = owner.cli("grants", "revoke", grant.id)
    assert again.returncode == 1 and again.stderr.startswith("error: "), again
    assert grant.id in owner.cli("grants", "list", "--status", "revoked").stdout
    assert grant.id not in owner.cli("grants", "list", "--status", "active").stdout
    with pytest.raises(sy.PermissionDeniedError, match="revoked"):
        scientist.client.code.cli_repeated(data=asset)


def test_approve_for_repeated_use_takes_every_window_and_an_expiry(owner, scientist, asset):
    @sy.syft_function_single_use(data=asset)
    def cli_windows(data):
        return len(data)

    request = scientist.client.code.request_code_execution(cli_windows, reason="windows")
    # The grant's options without a window are refused, and so is a window of 0.
    for args in (("--expires-in-days", "1"), ("--grant-user", scientist.email),
                 ("--repeat-per-minute", "0")):
        refused = owner.cli("requests", "approve", request.id, *args)
        assert refused.returncode != 0, (args, refused)
        assert request.refresh().status is sy.RequestStatus.PENDING, args
    approved = owner.cli(
        "requests", "approve", request.id, "--repeat-per-minute", "2", "--repeat-per-hour", "5",
        "--repeat-per-day", "7", "--expires-in-days", "0.5",
    )
    assert approved.returncode == 0, approved
    grant = next(g for g in owner.client.grants if g.request_id == request.id)
    assert (grant.per_minute, grant.per_hour, grant.per_day) == (2, 5, 7)
    lifetime = (
        datetime.datetime.fromisoformat(grant.expires_at.replace("Z", "+00:00"))
        - datetime.datetime.fromisoformat(grant.created_at.replace("Z", "+00:00"))
    )
    assert abs(lifetime.total_seconds() - 43200) < 60
    shown = owner.cli("grants", "show", grant.id, "--json")
    assert json.loads(shown.stdout)["id"] == grant.id
    assert scientist.cli("grants", "show", unique_uuid()).returncode == 1
    for command in ("list", "show", "revoke"):
        assert command in site_help(owner.site, "grants")


def site_help(site, group):
    result = site.run(group, "--help")
    assert result.returncode == 0, result
    return result.stdout


def test_the_commands_need_an_account(site):
    for args in (("requests", "list"), ("jobs", "list"), ("jobs", "logs", unique_uuid())):
        result = site.run(*args, "--server", site.name)
        assert result.returncode == 2, result
        assert "needs an account" in result.stderr, result


def test_help_lists_the_commands(site):
    result = site.run("requests", "--help")
    assert result.returncode == 0, result
    for command in ("list", "show", "approve", "deny"):
        assert command in result.stdout
    result = site.run("jobs", "--help")
    for command in ("list", "show", "logs", "kill", "release", "release-error"):
        assert command in result.stdout


def unique_uuid():
    return str(uuid.uuid4())
