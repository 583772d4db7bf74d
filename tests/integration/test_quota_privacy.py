"""``GET /api/v1/account/quota`` tells a data scientist only the sizes of outputs they may read.

Regression (security, medium): the quota route summed what ALL of a scientist's jobs keep, those
whose output they may not read included: a run refused by a custom output policy, a held run
awaiting output review, a failed private run's stderr, a completed private run's stderr. The size
of an output is the code's to choose, so ``print("x" * int(data["age"].sum()))`` under a refusing
policy moved ``logs_bytes`` by exactly the private sum. The limit counts them no more either (see
test_quota_hidden_sizes.py).
"""

import pytest

import datasite as sy
from code_helpers import PRIVATE, asset_of, make_code_actors, upload_people
from helpers import PASSWORD, DetachedServer, client_for, needs_sandbox

# The module's server, its actors and their table (fixtures shared with test_code_flow).
from test_code_flow import actors, people  # noqa: F401

pytestmark = needs_sandbox

SUM = int(PRIVATE["age"].sum())


class RefusesEverything(sy.CustomOutputPolicy):
    """Lets the function run, then releases nothing."""

    def apply_to_output(self, context, outputs, update_policy=True):
        return None


def fresh_scientist(api, actors, people):
    """A data scientist with no job yet, and the people asset as they read it."""
    user = api.create_user(actors["admin"].token)
    client = client_for(api.port, api.login(user["email"], PASSWORD))
    return client, asset_of(client, people)


def approved(scientist, owner, func):
    request = scientist.code.request_code_execution(func, reason="quota privacy tests")
    assert owner.requests.get(request.id).approve()
    return request.refresh()


def used(client):
    quota = client.account.quota
    assert quota.used_bytes == quota.results_bytes + quota.logs_bytes + quota.code_bytes
    return quota.results_bytes, quota.logs_bytes


def test_a_refused_runs_stdout_size_is_not_told(api, actors, people):
    scientist, asset = fresh_scientist(api, actors, people)
    owner = actors["owner"].client

    @sy.syft_function(input_policy=sy.ExactMatch(data=asset), output_policy=RefusesEverything())
    def prints_the_sum(data):
        print("x" * int(data["age"].sum()))
        return 1

    approved(scientist, owner, prints_the_sum)
    with pytest.raises(sy.JobFailedError) as failed:
        scientist.code.prints_the_sum(data=asset)
    job = failed.value.job
    assert job.failure == "output_policy_refused"
    assert len(owner.jobs.get(job.id).logs().stdout) == SUM + 1  # kept, for data owners
    assert used(scientist) == (0, 0)


def test_a_completed_private_runs_stderr_size_is_not_told(api, actors, people):
    scientist, asset = fresh_scientist(api, actors, people)
    owner = actors["owner"].client

    @sy.syft_function_single_use(data=asset)
    def writes_the_sum_to_stderr(data):
        import sys

        sys.stderr.write("x" * int(data["age"].sum()))
        print("ok")
        return 1

    approved(scientist, owner, writes_the_sum_to_stderr)
    job = scientist.code.writes_the_sum_to_stderr(data=asset, blocking=False).wait(progress=False)
    assert job.status == "completed" and job.get() == 1
    assert len(owner.jobs.get(job.id).logs().stderr) == SUM
    assert used(scientist) == (len("1"), len("ok\n"))


def test_a_failed_private_runs_stderr_size_is_told_once_released(api, actors, people):
    scientist, asset = fresh_scientist(api, actors, people)
    owner = actors["owner"].client

    @sy.syft_function_single_use(data=asset)
    def raises_the_sum(data):
        print("before")
        raise ValueError("x" * int(data["age"].sum()))

    approved(scientist, owner, raises_the_sum)
    with pytest.raises(sy.JobFailedError) as failed:
        scientist.code.raises_the_sum(data=asset)
    job = failed.value.job
    stderr = owner.jobs.get(job.id).logs().stderr
    assert "x" * SUM in stderr
    assert used(scientist) == (0, len("before\n"))
    # Released, its error and stderr are the scientist's to read: then they are told.
    owner.jobs.get(job.id).release_error()
    assert used(scientist) == (0, len("before\n") + len(stderr.encode()))


def test_a_held_runs_sizes_are_told_once_released(launcher):
    server = launcher.launch()
    actors = make_code_actors(server.port)
    scientist, owner = actors["scientist"].client, actors["owner"].client
    asset = asset_of(scientist, upload_people(owner))
    assert actors["admin"].client.settings.set_output_review(True)

    @sy.syft_function_single_use(data=asset)
    def held_sum(data):
        print("y" * int(data["age"].sum()))
        return "x" * int(data["age"].sum())

    approved(scientist, owner, held_sum)
    pointer = scientist.code.held_sum(data=asset)
    assert pointer.job.held
    assert used(scientist) == (0, 0)
    owner.jobs.get(pointer.job.id).release()
    assert used(scientist) == (SUM + 2, SUM + 1)  # a JSON string, and a printed line


def test_a_quota_is_not_filled_by_unreadable_bytes(binary, tmp_path):
    hidden = 4 * SUM + 1
    server = DetachedServer(binary, tmp_path / "data", "--user-quota-bytes", 1 << 20)
    try:
        api = server.start()
        actors = make_code_actors(server.port)
        scientist, owner = actors["scientist"].client, actors["owner"].client
        asset = asset_of(scientist, upload_people(owner))

        @sy.syft_function(
            input_policy=sy.ExactMatch(data=asset), output_policy=RefusesEverything()
        )
        def prints_four_sums(data):
            print("x" * (4 * int(data["age"].sum())))
            return 1

        request = approved(scientist, owner, prints_four_sums)
        with pytest.raises(sy.JobFailedError):
            scientist.code.prints_four_sums(data=asset)
        assert used(scientist) == (0, 0)
        email = actors["scientist"].user["email"]
        server.land()

        # The same data with a quota the unreadable logs would fill by themselves: they are not
        # charged to the scientist (their size is the data's), so runs are admitted as before.
        server.flags = ["--user-quota-bytes", str(hidden - 1)]
        api = server.start()
        token = api.login(email, PASSWORD)
        for mock in (False, True):
            resp = api.post(
                "/api/v1/code/{}/run".format(request.code.id), {"mock": mock}, token=token
            )
            assert resp.status == 201, resp
        assert used(client_for(server.port, token))[0] == len("1")  # the mock run's result
    finally:
        server.stop()
