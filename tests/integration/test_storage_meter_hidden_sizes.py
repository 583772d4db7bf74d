"""The server-wide storage limit (``--max-storage-bytes``) never counts a hidden output at its size.

Regression (security): the per-user quota charged hidden outputs 0, but the server-wide meter still
counted a held run's result and logs (and a private run's stderr) at their real size. Its free space
is read by anyone who can be refused for it: a data scientist's free mock runs are "kept" or "not
kept: it would pass the server's storage limit", so a binary search read a held result's size to
the byte. Now a part its requester may not read is metered at its ceiling (``--max-result-bytes``
for a result, the 1 MiB log limit for stdout and stderr), whatever its size, and at its size once
released. These tests read the free space exactly with a data owner's blob uploads (the same meter).

Also: a data scientist whose own kept mock output filled the storage to the byte is not locked out
by it.
"""

import pandas as pd
import pytest

import datasite as sy
from code_helpers import MOCK, asset_of, make_code_actors
from dataset_helpers import BLOBS, OCTETS
from helpers import PASSWORD, DetachedServer, assert_error, client_for, needs_sandbox, unique
from test_code_hostile_floods import run, submit, wait_ended
from test_quota_privacy import approved

pytestmark = needs_sandbox

STORAGE = 8_000_000
RESULT_CAP = 100_000
LOG_CAP = 1 << 20
HELD = RESULT_CAP + 2 * LOG_CAP  # what a run hidden whole from its requester counts
SUMS = {"small": 1_000, "big": 60_000}  # the private sums: results of "z" * sum (sum + 2 bytes)


@pytest.fixture(scope="module")
def meter_server(binary, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("storage-meter") / "data"
    server = DetachedServer(binary, data_dir, "--max-storage-bytes", STORAGE,
                            "--max-result-bytes", RESULT_CAP, "--user-quota-bytes", 10_000_000,
                            "--workers", "1")
    try:
        api = server.start()
        actors = make_code_actors(server.port)
        owner = actors["owner"].client
        datasets = {}
        for name, total in SUMS.items():
            # The same CSV length for both: only the private values differ.
            private = pd.DataFrame({"age": [total - 4, 1, 1, 1, 1], "name": list("abcde")})
            dataset = sy.Dataset(name=unique("ages-" + name), summary="ages")
            dataset.add_asset(sy.Asset(name="people", data=private, mock=MOCK))
            assert owner.upload_dataset(dataset)
            datasets[name] = dataset.name
        yield server, api, actors, datasets
    finally:
        server.stop()


def free_space(api, owner_token):
    """The server's free storage, to the byte: the largest blob it accepts (each one deleted)."""
    def fits(n):
        resp = api("POST", BLOBS + "?format=raw", raw=b"x" * n, token=owner_token, headers=OCTETS)
        if resp.status != 201:
            return False
        assert api.delete(BLOBS + "/" + resp.json["id"], token=owner_token).status == 200
        return True

    lo, hi = 0, STORAGE
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def fresh(api, actors):
    """A new data scientist: their token and client."""
    user = api.create_user(actors["admin"].token)
    token = api.login(user["email"], PASSWORD)
    return token, client_for(api.port, token)


def private_run(scientist, owner, dataset):
    """Approves and runs code returning "z" * (the private sum); its job's id."""
    asset = asset_of(scientist, dataset)

    @sy.syft_function_single_use(data=asset)
    def sum_sized(data):
        return "z" * int(data["age"].sum())

    approved(scientist, owner, sum_sized)
    return scientist.code.sum_sized(data=asset, blocking=False).id


def test_a_held_run_counts_the_same_whatever_its_size_until_released(meter_server):
    server, api, actors, datasets = meter_server
    owner, owner_token = actors["owner"].client, actors["owner"].token
    assert actors["admin"].client.settings.set_output_review(True)
    try:
        free = [free_space(api, owner_token)]
        jobs, scientists = {}, {}
        for name in ("small", "big"):
            token, scientist = fresh(api, actors)
            scientists[name] = scientist
            jobs[name] = private_run(scientist, owner, datasets[name])
            ended = wait_ended(api, token, jobs[name])
            assert ended["status"] == "completed" and ended["result"]["held"], ended
            free.append(free_space(api, owner_token))
    finally:
        assert actors["admin"].client.settings.set_output_review(False)
    # Each held run took its ceiling from the free space, not its size (its code, its bytes).
    code = [scientists[name].account.quota.code_bytes for name in ("small", "big")]
    assert [free[0] - free[1] - code[0], free[1] - free[2] - code[1]] == [HELD, HELD], free

    # Released, it counts its size (its stderr, still hidden, its ceiling).
    owner.jobs.get(jobs["big"]).release()
    assert free_space(api, owner_token) == free[2] + HELD - (SUMS["big"] + 2 + LOG_CAP)
    assert scientists["big"].jobs.get(jobs["big"]).result == "z" * SUMS["big"]


def test_a_private_runs_hidden_stderr_counts_its_ceiling(meter_server):
    server, api, actors, datasets = meter_server
    owner, owner_token = actors["owner"].client, actors["owner"].token
    drops = {}
    for name in ("small", "big"):
        token, scientist = fresh(api, actors)
        asset = asset_of(scientist, datasets[name])

        @sy.syft_function_single_use(data=asset)
        def complains(data):
            import sys
            sys.stderr.write("e" * int(data["age"].sum()))
            return 1

        approved(scientist, owner, complains)
        before = free_space(api, owner_token)
        job_id = scientist.code.complains(data=asset, blocking=False).id
        assert wait_ended(api, token, job_id)["status"] == "completed"
        drops[name] = before - free_space(api, owner_token)
    assert drops == {"small": 1 + LOG_CAP, "big": 1 + LOG_CAP}, drops


def test_a_scientist_who_filled_the_storage_with_a_mock_output_can_run_again(meter_server):
    server, api, actors, _ = meter_server
    owner_token = actors["owner"].token
    token, _ = fresh(api, actors)
    # A data owner's blob takes all but ROOM bytes; a mock run printing ROOM - 4 bytes and returning
    # None ("null", 4 bytes) takes the rest.
    # The code is submitted first: it counts toward the storage limit too.
    room = 1000
    filler = submit(api, token, unique("filler"), "print('y' * {}, end='')".format(room - 4))
    owners = submit(api, owner_token, unique("owner"), "return 1")
    again = submit(api, token, unique("again"), "return 2")
    blob = api("POST", BLOBS + "?format=raw", raw=b"x" * (free_space(api, owner_token) - room),
               token=owner_token, headers=OCTETS)
    assert blob.status == 201, blob
    resp = run(api, token, filler)
    assert resp.status == 201 and resp.json["status"] == "completed", resp
    assert free_space(api, owner_token) == 0
    full = run(api, owner_token, owners)
    assert_error(full, 413, "PAYLOAD_TOO_LARGE")
    assert "--max-storage-bytes" in full.error["message"], full.error
    # Its author's next run makes room by expiring that output.
    again = run(api, token, again)
    assert again.status == 201 and again.json["status"] == "completed", again
    assert wait_ended(api, token, resp.json["id"])["result"]["expired"]
    assert api.delete(BLOBS + "/" + blob.json["id"], token=owner_token).status == 200
