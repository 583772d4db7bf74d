"""Live logs: a job's stdout can be read while the job runs, by whoever may see its result.

The owner always; the data scientist for mock runs, and for private runs only where the result
would be visible to them (not while it is held for output review). Each job here prints a line and
then sleeps far longer than the test waits: seeing the line while the job is still running proves
it streamed; the test then kills the job.
"""

import sys
import time
import types

import pytest

import datasite as sy
import datasite.jobs as jobs_module
from code_helpers import PRIVATE, WAIT_SECONDS, asset_of, make_code_actors, upload_people
from helpers import needs_sandbox, Api, assert_error

pytestmark = needs_sandbox

@pytest.fixture(scope="module")
def actors(module_server):
    return make_code_actors(module_server.port)


@pytest.fixture(scope="module")
def asset(actors):
    return asset_of(actors["scientist"].client, upload_people(actors["owner"].client))


@pytest.fixture(scope="module")
def api(module_server):
    return Api(module_server.port)


def submit(actors, asset, func, approve=False):
    """Submits ``func`` on ``asset`` and asks for its approval, granted when ``approve``; returns
    the scientist's code.
    """
    scientist, owner = actors["scientist"].client, actors["owner"].client
    syft_func = sy.syft_function(
        input_policy=sy.ExactMatch(data=asset), output_policy=sy.OutputPolicyExecuteCount(limit=9)
    )(func)
    request = scientist.code.request_code_execution(syft_func, reason="live logs")
    if approve:
        assert owner.requests.get(request.id).approve()
    return scientist.code.get(request.refresh().code.id)


def until(read, predicate, what, seconds=WAIT_SECONDS):
    """Calls ``read`` until ``predicate`` holds for its answer; returns it."""
    deadline = time.monotonic() + seconds
    while True:
        value = read()
        if predicate(value):
            return value
        assert time.monotonic() < deadline, "no {} after {} s: {!r}".format(what, seconds, value)
        time.sleep(0.05)


def assert_running(job):
    assert job.refresh().status is sy.JobStatus.RUNNING, job


def test_owner_reads_the_first_line_before_the_job_ends(actors, asset):
    def live_owner_reads(data):
        import time

        print("first line")
        time.sleep(30)
        print("second line")
        return len(data)

    code = submit(actors, asset, live_owner_reads, approve=True)
    job = code(data=asset, blocking=False)
    owner_job = actors["owner"].client.jobs.get(job.id)
    logs = until(owner_job.logs, lambda l: l.stdout, "stdout")
    assert logs.stdout == "first line\n"
    assert logs.ended is False and logs.next_since == len("first line\n")
    assert_running(job)
    assert "second line" not in owner_job.logs().stdout
    owner_job.kill()
    assert owner_job.refresh().status is sy.JobStatus.KILLED
    assert owner_job.logs().stdout == "first line\n"


def test_scientist_follows_a_mock_run(actors, asset):
    def live_mock_run(data):
        import time

        print("first line")
        time.sleep(30)
        print("second line")
        return len(data)

    code = submit(actors, asset, live_mock_run)
    job = code.mock(data=asset, blocking=False)
    assert job.kind == "mock"
    logs = until(job.logs, lambda l: l.stdout, "stdout")
    # A mock run's stderr is its user's too (test_code_review.py); it is written when the run ends.
    assert logs.stdout == "first line\n" and not logs.stderr
    assert_running(job)
    # Following with ?since=: nothing new until the job prints again.
    later = job.logs(since=logs.next_since)
    assert later.stdout == "" and later.next_since == logs.next_since
    job.kill()


def test_scientist_follows_a_private_run_whose_result_they_may_see(actors, asset):
    def live_private_run(data):
        import time

        print("first line")
        time.sleep(30)
        return len(data)

    code = submit(actors, asset, live_private_run, approve=True)
    job = code(data=asset, blocking=False)
    assert job.kind == "private"
    logs = until(job.logs, lambda l: l.stdout, "stdout")
    assert logs.stdout == "first line\n"
    assert_running(job)
    job.kill()


def test_a_held_private_run_shows_its_stdout_to_the_owner_only(actors, asset, api):
    def live_held_run(data):
        import time

        print("first line", data["age"].sum())
        time.sleep(30)
        return len(data)

    admin = actors["admin"].client
    assert admin.settings.set_output_review(True)
    try:
        code = submit(actors, asset, live_held_run, approve=True)
        job = code(data=asset, blocking=False)
        owner_job = actors["owner"].client.jobs.get(job.id)
        line = "first line {}\n".format(PRIVATE["age"].sum())
        assert until(owner_job.logs, lambda l: l.stdout, "stdout for the owner").stdout == line
        assert_running(job)
        # Refused to the scientist while it runs, through the client and the raw route alike,
        # from any offset.
        assert job.logs().stdout is None
        assert job.logs(since=3).stdout is None
        for query in ("", "?since=0", "?since=5"):
            resp = api.get(
                "/api/v1/jobs/{}/logs{}".format(job.id, query), token=actors["scientist"].token
            )
            assert resp.status == 200 and resp.json["stdout"] is None, resp
            assert "first line" not in resp.text
        owner_job.kill()
        assert job.refresh().status is sy.JobStatus.KILLED
        assert job.logs().stdout is None  # held with the run's outcome
        owner_job.release()
        assert job.logs().stdout == line
    finally:
        assert admin.settings.set_output_review(False)


def test_others_cannot_read_a_running_jobs_logs(actors, asset, api):
    def live_others(data):
        import time

        print("first line")
        time.sleep(30)
        return len(data)

    code = submit(actors, asset, live_others, approve=True)
    job = code(data=asset, blocking=False)
    until(job.logs, lambda l: l.stdout, "stdout")
    path = "/api/v1/jobs/{}/logs".format(job.id)
    assert_error(api.get(path, token=actors["scientist2"].token), 404, "NOT_FOUND")
    assert_error(api.get(path + "?since=0", token=actors["scientist2"].token), 404, "NOT_FOUND")
    assert api.get(path).status == 401
    assert api.get(path, token=actors["guest"].token).status in (401, 403, 404)
    for bad in ("-1", "x", "1.5", "99999999999999999999"):
        assert_error(
            api.get(path + "?since=" + bad, token=actors["scientist"].token),
            400,
            "INVALID_ARGUMENT",
        )
    job.kill()


def test_the_scientist_cannot_read_an_owners_review_run_of_their_code(actors, asset, api):
    def live_review_run(data):
        import time

        print("first line")
        time.sleep(30)
        return len(data)

    code = submit(actors, asset, live_review_run)
    owner_jobs = actors["owner"].client.jobs
    review = actors["owner"].client.code.get(code.id)(data=asset, blocking=False)
    assert review.kind == "review"
    until(owner_jobs.get(review.id).logs, lambda l: l.stdout, "stdout for the owner")
    resp = api.get("/api/v1/jobs/{}/logs".format(review.id), token=actors["scientist"].token)
    assert_error(resp, 404, "NOT_FOUND")
    owner_jobs.get(review.id).kill()


def test_stdout_past_the_cap_is_cut_while_streaming_and_after(actors, asset):
    def live_past_the_cap(data):
        import sys
        import time

        for _ in range(24):
            sys.stdout.write("x" * 65536)
        sys.stdout.flush()
        time.sleep(30)
        return 1

    code = submit(actors, asset, live_past_the_cap, approve=True)
    job = code(data=asset, blocking=False)
    cap = 1 << 20
    logs = until(job.logs, lambda l: l.stdout and len(l.stdout) >= cap, "a full log")
    assert logs.stdout == "x" * cap
    assert_running(job)
    tail = job.logs(since=cap - 10)
    assert tail.stdout == "x" * 10 and tail.next_since == cap
    job.kill()
    assert job.refresh().logs().stdout == "x" * cap


def test_a_finished_job_keeps_what_it_streamed_and_the_rest(actors, asset):
    def live_finishes(data):
        import time

        print("first line")
        time.sleep(1)
        print("second line")
        return len(data)

    code = submit(actors, asset, live_finishes, approve=True)
    job = code(data=asset, blocking=False)
    assert job.wait(timeout=WAIT_SECONDS, progress=False).status is sy.JobStatus.COMPLETED
    assert job.get() == len(PRIVATE)
    logs = job.logs()
    assert logs.stdout == "first line\nsecond line\n" and logs.ended is True


def test_wait_shows_progress_with_the_tail_of_the_logs_in_a_notebook(actors, asset, monkeypatch):
    shown = []

    class Handle:
        def update(self, obj):
            shown.append(obj.data)

    def display(obj, display_id=False):
        assert display_id is True
        shown.append(obj.data)
        return Handle()

    class HTML:
        def __init__(self, data):
            self.data = data

    fake = types.ModuleType("IPython.display")
    fake.display, fake.HTML = display, HTML
    monkeypatch.setitem(sys.modules, "IPython.display", fake)
    monkeypatch.setattr(jobs_module, "_in_notebook", lambda: True)
    monkeypatch.setattr(jobs_module, "PROGRESS_AFTER_SECONDS", 0.0)
    monkeypatch.setattr(jobs_module, "LOG_POLL_SECONDS", 0.0)

    def live_progress(data):
        import time

        print("<b>first</b> line")
        time.sleep(2)
        return 1

    code = submit(actors, asset, live_progress, approve=True)
    job = code(data=asset, blocking=False)
    assert job.wait(timeout=WAIT_SECONDS).status is sy.JobStatus.COMPLETED
    assert shown, "no progress was shown"
    assert any("&lt;b&gt;first&lt;/b&gt; line" in h for h in shown), shown
    assert all("<b>first" not in h for h in shown)
    assert "completed" in shown[-1] and "ds-badge-ok" in shown[-1]


def test_wait_raises_on_timeout_and_the_job_goes_on(actors, asset):
    def live_times_out(data):
        import time

        time.sleep(30)
        return 1

    code = submit(actors, asset, live_times_out, approve=True)
    job = code(data=asset, blocking=False)
    with pytest.raises(sy.JobTimeoutError):
        job.wait(timeout=0.3, progress=False)
    assert job.refresh().status in (sy.JobStatus.QUEUED, sy.JobStatus.RUNNING)
    job.kill()


def test_stderr_streams_to_the_owner_only_while_the_job_runs(actors, asset, api):
    def live_stderr_run(data):
        import sys
        import time

        print("to stderr", file=sys.stderr, flush=True)
        time.sleep(30)
        return len(data)

    code = submit(actors, asset, live_stderr_run, approve=True)
    for job in (code(data=asset, blocking=False), code.mock(data=asset, blocking=False)):
        owner_job = actors["owner"].client.jobs.get(job.id)
        logs = until(owner_job.logs, lambda l: l.stderr, "stderr")
        assert logs.stderr == "to stderr\n" and logs.ended is False
        assert_running(job)
        # Its data scientist reads no stderr while it runs, a mock run's neither.
        assert not job.logs().stderr
        raw = api.get("/api/v1/jobs/{}/logs".format(job.id), token=actors["scientist"].token)
        assert raw.status == 200 and not raw.json.get("stderr"), raw.json
        owner_job.kill()
        assert owner_job.refresh().status is sy.JobStatus.KILLED
