"""Output checks: a data owner's rules for the results of runs nobody reviews (issue 17, part 3).

A run admitted under a grant is not reviewed: before its requester reads anything of it, its
output must pass the rules of every dataset whose assets the code binds, the strictest of each.
Small counts are suppressed (or hold the run), counts rounded; row-level results, results too
large and runs that print are held, naming the rule (``job.held_reason``), never a value. A data
owner is notified of a held run and may release it. Ordinary approved runs, mock runs and the
owner's review runs are untouched.

The first tests need no server (``sy.OutputChecks``). The rest share one server (the module's of
test_code_flow); each test uploads datasets of its own (rules are per dataset) and approves
functions of its own names, for repeated use.
"""

import time
import types
import uuid

import pandas as pd
import pytest

import datasite as sy
from code_helpers import PRIVATE, WAIT_SECONDS, asset_of, upload_people
from helpers import assert_error, needs_sandbox, unique

# The module's server, its actors and their table (fixtures shared with test_code_flow).
from test_code_flow import actors, owner, scientist  # noqa: F401

# The private table's ages are 31, 42, 57, 64, 23: three of 40 or more, two under.
OLD, YOUNG = 3, 2
assert (int((PRIVATE["age"] >= 40).sum()), int((PRIVATE["age"] < 40).sum())) == (OLD, YOUNG)
MEAN_AGE = float(PRIVATE["age"].mean())
ALL_RULES = {"min_cell_count", "small_cells", "round_to", "no_row_level", "max_result_bytes"}


def checked_people(owner, scientist, checks):
    """A new dataset of the people table with ``checks`` set by ``owner``: (its name, the asset
    as ``scientist`` reads it)."""
    name = upload_people(owner)
    done = owner.datasets[name].set_output_checks(checks)
    assert isinstance(done, sy.SyftSuccess), done
    return name, asset_of(scientist, name)


def approve_for_repeats(scientist, owner, func):
    """The scientist asks for ``func``; the owner approves it for repeated use. Returns the
    scientist's request and the grant."""
    request = scientist.code.request_code_execution(func, reason="for an output check test")
    review = owner.requests.get(request.id)
    assert review.approve(repeat=sy.RateLimit(per_hour=50))
    assert isinstance(review.grant, sy.Grant), "the approval made no grant: {!r}".format(review)
    return request.refresh(), review.grant


def granted_run(scientist, owner, func, **inputs):
    """Approves ``func`` for repeated use and runs it as the scientist under the grant, on
    ``inputs``; returns the ended Job (checked to run under the grant)."""
    request, grant = approve_for_repeats(scientist, owner, func)
    pointer = getattr(scientist.code, func.func_name)(**inputs)
    job = pointer.job.wait(timeout=WAIT_SECONDS)
    assert job.grant_id == grant.id and job.kind == "private", job
    assert job.status is sy.JobStatus.COMPLETED, job
    return job


def assert_held(job, rule, api, token, never=()):
    """``job`` (as its requester reads it) is held by ``rule``: get() refuses naming the rule, the
    result route is 409, and neither the job nor its refusal shows any of ``never``."""
    assert job.held, job
    assert isinstance(job.held_reason, str) and job.held_reason.startswith(rule + ":"), (
        job.held_reason
    )
    with pytest.raises(sy.FailedPreconditionError) as held:
        job.get(timeout=WAIT_SECONDS)
    assert "held for a data owner's review: " + job.held_reason in str(held.value)
    result = api.get("/api/v1/jobs/{}/result".format(job.id), token=token)
    assert_error(result, 409, "FAILED_PRECONDITION")
    raw = api.get("/api/v1/jobs/" + job.id, token=token)
    assert raw.status == 200, raw
    assert raw.json["result"]["held"] is True and raw.json["result"]["inline"] is None, raw
    assert raw.json["result"]["held_reason"] == job.held_reason
    for secret in never:
        for text in (job.held_reason, str(held.value), raw.text, result.text):
            assert secret not in text, (secret, text)


def held_notifications(owner, job_id, seconds=10):
    """The owner's notifications of kind ``job.held`` about ``job_id`` (waits a little for one)."""
    deadline = time.monotonic() + seconds
    while True:
        found = [
            n
            for n in owner.notifications.get_all()
            if n.kind == "job.held" and n.linked_obj is not None and n.linked_obj.id == job_id
        ]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


# No server: the client's own pieces -------------------------------------------------------------


def test_output_checks_take_the_servers_ranges():
    checks = sy.OutputChecks(min_cell_count=10, round_to=5)
    assert (checks.min_cell_count, checks.small_cells, checks.round_to) == (10, "suppress", 5)
    assert (checks.no_row_level, checks.max_result_bytes) == (False, None)
    assert checks.to_wire() == {"min_cell_count": 10, "small_cells": "suppress", "round_to": 5}
    assert repr(checks) == "OutputChecks(min_cell_count=10, small_cells='suppress', round_to=5)"
    assert checks == sy.OutputChecks(round_to=5, min_cell_count=10) != sy.OutputChecks()
    assert "counts below 10 suppressed" in checks.describe()
    every = sy.OutputChecks(
        min_cell_count=2, small_cells="hold", round_to=1000000000, no_row_level=True,
        max_result_bytes=1,
    )
    assert every.to_wire() == {
        "min_cell_count": 2,
        "small_cells": "hold",
        "round_to": 1000000000,
        "no_row_level": True,
        "max_result_bytes": 1,
    }
    assert sy.OutputChecks().to_wire() == {} and sy.OutputChecks().empty and not every.empty
    assert sy.OutputChecks.of(None).empty
    assert sy.OutputChecks.of({"round_to": 5, "small_cells": None}) == sy.OutputChecks(round_to=5)
    for bad in (1, 0, -3, 1000000001, 2.5, "10", True):
        with pytest.raises(ValueError, match="min_cell_count"):
            sy.OutputChecks(min_cell_count=bad)
        with pytest.raises(ValueError, match="round_to"):
            sy.OutputChecks(round_to=bad)
    for bad in (0, -1, 1000000001, 1.0, "1"):
        with pytest.raises(ValueError, match="max_result_bytes"):
            sy.OutputChecks(max_result_bytes=bad)
    with pytest.raises(ValueError, match="min_cell_count"):
        sy.OutputChecks(small_cells="hold")  # only with min_cell_count
    with pytest.raises(ValueError, match="small_cells"):
        sy.OutputChecks(min_cell_count=5, small_cells="drop")
    for bad in (1, "yes", None):
        with pytest.raises(ValueError, match="no_row_level"):
            sy.OutputChecks(no_row_level=bad)
    with pytest.raises(ValueError, match="colour"):
        sy.OutputChecks.of({"colour": "red"})
    with pytest.raises(TypeError, match="OutputChecks"):
        sy.OutputChecks.of(10)
    local = sy.Dataset(name="not uploaded")
    with pytest.raises(TypeError, match="upload"):
        local.output_checks
    with pytest.raises(TypeError, match="upload"):
        local.set_output_checks(sy.OutputChecks(round_to=5))


def test_a_held_job_names_its_rule():
    data = {
        "id": "j-1",
        "code_name": "f",
        "kind": "private",
        "status": "completed",
        "result": {"format": None, "size": None, "held": True, "inline": None,
                   "held_reason": "min_cell_count: a count below 10"},
        "grant_id": "g-1",
    }
    class Transport:  # what refresh() reads: the same job
        def call(self, route, **kwargs):
            return data

    job = sy.Job(data, types.SimpleNamespace(_transport=Transport()))
    assert job.held and job.held_reason == "min_cell_count: a count below 10"
    with pytest.raises(sy.FailedPreconditionError, match="min_cell_count: a count below 10"):
        job.get()
    assert "min_cell_count" in repr(job)
    assert sy.Job(dict(data, result=None), None).held_reason is None


# The rules on a server --------------------------------------------------------------------------


def test_rules_are_set_read_replaced_and_removed(api, actors, scientist, owner):
    name = upload_people(owner)
    dataset = owner.datasets[name]
    assert dataset.output_checks is None
    path = "/api/v1/datasets/{}/output_checks".format(dataset.id)
    resp = api.get(path, token=actors["owner"].token)
    assert resp.status == 200, resp
    assert resp.json == {"dataset_id": dataset.id, "dataset": name, "rules": None}

    checks = sy.OutputChecks(min_cell_count=10, small_cells="hold", max_result_bytes=1000)
    done = dataset.set_output_checks(checks)
    assert isinstance(done, sy.SyftSuccess) and done.value == checks
    assert name in done.message
    assert dataset.output_checks == checks
    # A data scientist reads them too, by the dataset's id or its name.
    assert scientist.datasets[name].output_checks == checks
    by_name = api.get("/api/v1/datasets/{}/output_checks".format(name),
                      token=actors["scientist"].token)
    assert by_name.status == 200, by_name
    assert by_name.json == {
        "dataset_id": dataset.id,
        "dataset": name,
        "rules": {"min_cell_count": 10, "small_cells": "hold", "round_to": None,
                  "no_row_level": False, "max_result_bytes": 1000},
    }

    # A PUT replaces the rules: what it leaves out is gone.
    dataset.set_output_checks(sy.OutputChecks(round_to=5, no_row_level=True))
    assert dataset.output_checks == sy.OutputChecks(round_to=5, no_row_level=True)
    resp = api.put(path, {"min_cell_count": 3}, token=actors["owner"].token)
    assert resp.status == 200, resp
    assert resp.json["rules"]["min_cell_count"] == 3
    assert resp.json["rules"]["small_cells"] in ("suppress", None)
    assert resp.json["rules"]["round_to"] is None and resp.json["rules"]["no_row_level"] is False
    assert dataset.output_checks == sy.OutputChecks(min_cell_count=3)

    # {} removes them, and so does an empty OutputChecks.
    resp = api.put(path, {}, token=actors["owner"].token)
    assert resp.status == 200 and resp.json["rules"] is None, resp
    dataset.set_output_checks(sy.OutputChecks(round_to=5))
    removed = dataset.set_output_checks(sy.OutputChecks())
    assert removed.value is None and "removed" in removed.message
    assert dataset.output_checks is None

    # The client's service tree.
    services = owner.api.services.dataset
    assert services.set_output_checks(dataset=dataset, checks=sy.OutputChecks(round_to=10))
    assert services.get_output_checks(dataset=name) == sy.OutputChecks(round_to=10)


def test_bad_rules_are_refused_and_change_nothing(api, actors, owner):
    name = upload_people(owner)
    dataset = owner.datasets[name]
    kept = sy.OutputChecks(min_cell_count=5)
    dataset.set_output_checks(kept)
    path = "/api/v1/datasets/{}/output_checks".format(dataset.id)
    token = actors["owner"].token
    for body in (
        {"min_cell_count": 1},
        {"min_cell_count": 0},
        {"min_cell_count": -5},
        {"min_cell_count": 1000000001},
        {"min_cell_count": 2.5},
        {"min_cell_count": "10"},
        {"min_cell_count": True},
        {"round_to": 1},
        {"round_to": 1000000001},
        {"round_to": 0.5},
        {"max_result_bytes": 0},
        {"max_result_bytes": 1000000001},
        {"max_result_bytes": "1000"},
        {"small_cells": "hold"},  # only with min_cell_count
        {"min_cell_count": 5, "small_cells": "drop"},
        {"min_cell_count": 5, "small_cells": 1},
        {"no_row_level": "yes"},
        {"no_row_level": 1},
        {"colour": "red"},
        {"min_cell_count": 5, "k": 5},
        [],
        "rules",
    ):
        resp = api.put(path, body, token=token)
        assert_error(resp, 400, "INVALID_ARGUMENT")
    assert dataset.output_checks == kept
    # The bounds themselves are allowed.
    for body in ({"min_cell_count": 2}, {"min_cell_count": 1000000000},
                 {"round_to": 2}, {"max_result_bytes": 1}, {"max_result_bytes": 1000000000},
                 {"no_row_level": False}, {"min_cell_count": 4, "small_cells": "suppress"}):
        resp = api.put(path, body, token=token)
        assert resp.status == 200, (body, resp)


def test_who_may_read_and_set_rules(api, actors, scientist, owner):
    name = upload_people(owner)
    dataset = owner.datasets[name]
    dataset.set_output_checks(sy.OutputChecks(round_to=5))
    path = "/api/v1/datasets/{}/output_checks".format(dataset.id)
    # A data scientist reads them, and may not set them.
    assert scientist.datasets[name].output_checks == sy.OutputChecks(round_to=5)
    with pytest.raises(sy.PermissionDeniedError):
        scientist.datasets[name].set_output_checks(sy.OutputChecks())
    for who in ("scientist", "scientist2"):
        assert_error(api.put(path, {}, token=actors[who].token), 403, "PERMISSION_DENIED")
    assert_error(api.get(path, token=actors["guest"].token), 403, "PERMISSION_DENIED")
    assert_error(api.get(path), 401, "UNAUTHENTICATED")
    assert_error(api.put(path, {}), 401, "UNAUTHENTICATED")
    assert dataset.output_checks == sy.OutputChecks(round_to=5)
    # Another data owner and an admin set them (every data owner manages every dataset).
    assert actors["owner2"].client.datasets[name].set_output_checks(sy.OutputChecks(round_to=10))
    assert actors["admin"].client.datasets[name].set_output_checks(sy.OutputChecks(round_to=20))
    assert dataset.output_checks == sy.OutputChecks(round_to=20)
    # No such dataset.
    for ident in (str(uuid.uuid4()), "no-such-dataset-" + uuid.uuid4().hex[:8]):
        missing = "/api/v1/datasets/{}/output_checks".format(ident)
        assert_error(api.get(missing, token=actors["owner"].token), 404, "NOT_FOUND")
        assert_error(api.put(missing, {"round_to": 5}, token=actors["owner"].token), 404,
                     "NOT_FOUND")
    with pytest.raises(sy.NotFoundError):
        owner.api.services.dataset.get_output_checks(dataset=str(uuid.uuid4()))


def test_setting_rules_is_audited(api, actors, owner):
    name = upload_people(owner)
    dataset = owner.datasets[name]
    dataset.set_output_checks(sy.OutputChecks(min_cell_count=7))
    dataset.set_output_checks(sy.OutputChecks())
    # A refusal is not recorded.
    path = "/api/v1/datasets/{}/output_checks".format(dataset.id)
    assert_error(api.put(path, {"round_to": 1}, token=actors["owner"].token), 400,
                 "INVALID_ARGUMENT")
    assert_error(api.put(path, {"round_to": 5}, token=actors["scientist"].token), 403,
                 "PERMISSION_DENIED")
    admin = actors["admin"].client
    log = [
        e for e in admin.audit.all()
        if e["action"] == "dataset.output_checks" and e["target"] == "dataset:" + dataset.id
    ]
    assert len(log) == 2, log
    assert all(e["actor"] == "user:" + actors["owner"].user["id"] for e in log), log
    assert "min_cell_count" in (log[0]["detail"] or ""), log
    assert admin.audit.verify()["ok"] is True


# Runs under a grant -----------------------------------------------------------------------------


@needs_sandbox
def test_small_counts_in_a_json_result_are_suppressed(scientist, owner):
    _, asset = checked_people(owner, scientist, sy.OutputChecks(min_cell_count=3))

    @sy.syft_function_single_use(data=asset)
    def json_bands(data):
        return {
            "old": int((data["age"] >= 40).sum()),
            "young": int((data["age"] < 40).sum()),
            "centenarians": int((data["age"] >= 100).sum()),
            "mean": float(data["age"].mean()),
            "nested": [{"n": 1}, {"n": 30}],
            "flag": True,  # a boolean is no count
            "negative": -1,
            "text": "2",
        }

    job = granted_run(scientist, owner, json_bands, data=asset)
    assert not job.held and job.held_reason is None
    assert job.get() == {
        "old": OLD,  # not below 3
        "young": None,  # 2: suppressed
        "centenarians": 0,  # 0 is kept
        "mean": pytest.approx(MEAN_AGE),  # not a count
        "nested": [{"n": None}, {"n": 30}],
        "flag": True,
        "negative": None,  # a count written negative counts by its magnitude
        "text": "2",
    }


@needs_sandbox
def test_small_counts_in_a_pandas_result_come_back_missing(scientist, owner):
    _, asset = checked_people(owner, scientist, sy.OutputChecks(min_cell_count=3))

    @sy.syft_function_single_use(data=asset)
    def grouped_bands(data):
        bands = data["age"].ge(40).map({True: "old", False: "young"}).rename("band")
        return data.groupby(bands).size()

    @sy.syft_function_single_use(data=asset)
    def counted_bands(data):
        return data["age"].ge(40).map({True: "old", False: "young"}).value_counts()

    for func in (grouped_bands, counted_bands):
        job = granted_run(scientist, owner, func, data=asset)
        assert not job.held and job.result_format == "csv", job
        series = job.get()
        assert isinstance(series, pd.Series), type(series)
        assert series["old"] == OLD
        assert pd.isna(series["young"]), series  # 2: suppressed
        assert str(series.dtype) == "Int64", series.dtype  # nullable
        assert sorted(series.index) == ["old", "young"]  # labels are no counts

    @sy.syft_function_single_use(data=asset)
    def band_table(data):
        bands = data["age"].ge(40).map({True: "old", False: "young"}).rename("band")
        return data.groupby(bands).agg(n=("age", "size"), mean_age=("age", "mean"))

    job = granted_run(scientist, owner, band_table, data=asset)
    table = job.get()
    assert isinstance(table, pd.DataFrame) and not job.held, table
    assert table.loc["old", "n"] == OLD and pd.isna(table.loc["young", "n"]), table
    assert str(table["n"].dtype) == "Int64", table.dtypes
    # A float column is no count: kept as it was.
    assert table.loc["young", "mean_age"] == pytest.approx(27.0), table


@needs_sandbox
def test_a_small_count_holds_the_run_when_the_owner_asks(api, actors, scientist, owner):
    _, asset = checked_people(
        owner, scientist, sy.OutputChecks(min_cell_count=3, small_cells="hold")
    )

    @sy.syft_function_single_use(data=asset)
    def held_bands(data):
        return {"old": int((data["age"] >= 40).sum()), "young": int((data["age"] < 40).sum()),
                "first": str(data["name"][0])}

    job = granted_run(scientist, owner, held_bands, data=asset)
    assert_held(job, "min_cell_count", api, actors["scientist"].token, never=("ann",))

    # The owners are told which rule held it, and read the result.
    for who in ("owner", "owner2"):  # every data owner
        notes = held_notifications(actors[who].client, job.id)
        assert len(notes) == 1, [n.to_dict() for n in owner.notifications.get_all()][-5:]
        assert "held_bands" in notes[0].subject
        # It links the job, which names the rule (the in-app notification has no body).
        assert notes[0].link.held_reason == job.held_reason
    assert not [n for n in actors["scientist"].client.notifications.get_all()
                if n.kind == "job.held"]
    seen = owner.jobs.get(job.id)
    assert seen.held and seen.held_reason == job.held_reason
    assert seen.get(timeout=WAIT_SECONDS) == {"old": OLD, "young": YOUNG, "first": "ann"}

    # Released: the scientist gets the original result, unsuppressed.
    assert seen.release()
    job.refresh()
    assert not job.held
    assert job.get(timeout=WAIT_SECONDS) == {"old": OLD, "young": YOUNG, "first": "ann"}


@needs_sandbox
def test_a_named_scientists_run_under_the_grant_is_checked_too(actors, scientist, owner):
    _, asset = checked_people(owner, scientist, sy.OutputChecks(min_cell_count=3))
    second = actors["scientist2"]

    @sy.syft_function_single_use(data=asset)
    def shared_bands(data):
        return {"old": int((data["age"] >= 40).sum()), "young": int((data["age"] < 40).sum())}

    request = scientist.code.request_code_execution(shared_bands, reason="shared")
    review = owner.requests.get(request.id)
    assert review.approve(repeat=sy.RateLimit(per_hour=50), users=[second.user["email"]])
    second.client.code.submit(shared_bands)
    pointer = second.client.code.shared_bands(data=asset_of(second.client, asset.dataset_name))
    job = pointer.job.wait(timeout=WAIT_SECONDS)
    assert job.grant_id == review.grant.id and job.kind == "private", job
    assert job.get() == {"old": OLD, "young": None}


@needs_sandbox
def test_counts_are_rounded(scientist, owner):
    _, asset = checked_people(owner, scientist, sy.OutputChecks(round_to=5))

    @sy.syft_function_single_use(data=asset)
    def rounded_counts(data):
        return {"old": int((data["age"] >= 40).sum()), "young": int((data["age"] < 40).sum()),
                "all": len(data), "twelve": 12, "thirteen": 13, "zero": 0, "mean": 43.4}

    job = granted_run(scientist, owner, rounded_counts, data=asset)
    assert job.get() == {"old": 5, "young": 0, "all": 5, "twelve": 10, "thirteen": 15,
                         "zero": 0, "mean": 43.4}

    # Suppression first, then rounding.
    _, both = checked_people(owner, scientist, sy.OutputChecks(min_cell_count=3, round_to=5))

    @sy.syft_function_single_use(data=both)
    def suppressed_then_rounded(data):
        return {"old": int((data["age"] >= 40).sum()), "young": int((data["age"] < 40).sum()),
                "seven": 7}

    job = granted_run(scientist, owner, suppressed_then_rounded, data=both)
    assert job.get() == {"old": 5, "young": None, "seven": 5}

    @sy.syft_function_single_use(data=both)
    def rounded_sizes(data):
        return data.groupby(data["age"].ge(40).map({True: "old", False: "young"})).size()

    series = granted_run(scientist, owner, rounded_sizes, data=both).get()
    assert series["old"] == 5 and pd.isna(series["young"]), series


@needs_sandbox
def test_row_level_results_are_held_and_aggregates_pass(api, actors, scientist, owner):
    _, asset = checked_people(owner, scientist, sy.OutputChecks(no_row_level=True))
    token = actors["scientist"].token

    @sy.syft_function_single_use(data=asset)
    def whole_table(data):
        return data

    @sy.syft_function_single_use(data=asset)
    def first_row(data):
        return data.head(1)

    @sy.syft_function_single_use(data=asset)
    def first_row_as_json(data):
        return [{"age": int(data["age"][0]), "name": str(data["name"][0])}]

    @sy.syft_function_single_use(data=asset)
    def row_level_mean(data):
        return float(data["age"].mean())

    for func in (whole_table, first_row, first_row_as_json):
        job = granted_run(scientist, owner, func, data=asset)
        assert_held(job, "no_row_level", api, token, never=("ann", "bob"))
    job = granted_run(scientist, owner, row_level_mean, data=asset)
    assert not job.held and job.get() == pytest.approx(MEAN_AGE)


@needs_sandbox
def test_row_level_holds_every_result_over_an_input_it_cannot_read(api, actors, scientist, owner):
    name = unique("ages")
    dataset = sy.Dataset(name=name, summary="ages as a JSON list")
    dataset.add_asset(sy.Asset(name="ages", data=[31, 42, 57, 64, 23], mock=[20, 20, 20]))
    assert owner.upload_dataset(dataset)
    owner.datasets[name].set_output_checks(sy.OutputChecks(no_row_level=True))
    ages = asset_of(scientist, name, "ages")

    @sy.syft_function_single_use(data=ages)
    def json_input_mean(data):
        return sum(data) / len(data)

    job = granted_run(scientist, owner, json_input_mean, data=ages)
    assert_held(job, "no_row_level", api, actors["scientist"].token)


@needs_sandbox
def test_a_result_larger_than_allowed_is_held(api, actors, scientist, owner):
    _, asset = checked_people(owner, scientist, sy.OutputChecks(max_result_bytes=100))

    @sy.syft_function_single_use(data=asset)
    def long_text(data):
        return "x" * 500

    @sy.syft_function_single_use(data=asset)
    def short_text(data):
        return "x" * 50

    job = granted_run(scientist, owner, long_text, data=asset)
    assert_held(job, "max_result_bytes", api, actors["scientist"].token)
    assert granted_run(scientist, owner, short_text, data=asset).get() == "x" * 50


@needs_sandbox
def test_results_no_rule_reads_are_held_whatever_the_rules(api, actors, scientist, owner):
    _, asset = checked_people(owner, scientist, sy.OutputChecks(round_to=5))
    token = actors["scientist"].token

    @sy.syft_function_single_use(data=asset)
    def over_a_mebibyte(data):
        return "x" * (1100 * 1024)

    @sy.syft_function_single_use(data=asset)
    def raw_bytes(data):
        return str(data["name"][0]).encode()

    @sy.syft_function_single_use(data=asset)
    def an_array(data):
        return data["age"].to_numpy()

    assert_held(granted_run(scientist, owner, over_a_mebibyte, data=asset), "max_result_bytes",
                api, token)
    for func in (raw_bytes, an_array):
        assert_held(granted_run(scientist, owner, func, data=asset), "format", api, token,
                    never=("ann",))


@needs_sandbox
def test_a_run_that_prints_is_held_and_its_stdout_hidden(api, actors, scientist, owner):
    _, asset = checked_people(owner, scientist, sy.OutputChecks(round_to=5))
    marker = "printed-" + uuid.uuid4().hex[:8]

    @sy.syft_function(
        input_policy=sy.ExactMatch(data=asset, marker=marker),
        output_policy=sy.OutputPolicyExecuteOnce(),
    )
    def chatty(data, marker):
        print(marker, data["name"][0])
        return 0

    job = granted_run(scientist, owner, chatty, data=asset)
    assert_held(job, "printed_output", api, actors["scientist"].token, never=(marker, "ann"))
    logs = api.get("/api/v1/jobs/{}/logs".format(job.id), token=actors["scientist"].token)
    assert logs.status in (200, 409), logs
    assert marker not in logs.text and "ann" not in logs.text, logs.text
    # The run did print: its data owners read it.
    assert marker + " ann" in owner.jobs.get(job.id).logs().stdout


@needs_sandbox
def test_a_checked_runs_stdout_is_hidden_while_it_runs(api, actors, scientist, owner):
    _, asset = checked_people(owner, scientist, sy.OutputChecks(round_to=5))
    marker = "live-" + uuid.uuid4().hex[:8]

    @sy.syft_function(
        input_policy=sy.ExactMatch(data=asset, marker=marker),
        output_policy=sy.OutputPolicyExecuteOnce(),
    )
    def live_chatty(data, marker):
        import sys
        import time

        print(marker, data["name"][0])
        sys.stdout.flush()
        time.sleep(4)
        return 0

    approve_for_repeats(scientist, owner, live_chatty)
    job = scientist.code.live_chatty(data=asset, blocking=False)
    path = "/api/v1/jobs/{}/logs".format(job.id)
    # Wait (bounded) until its data owners read the line while it runs ...
    deadline = time.monotonic() + WAIT_SECONDS
    while marker not in api.get(path, token=actors["owner"].token).text:
        assert time.monotonic() < deadline, "the run printed nothing its owners could read"
        time.sleep(0.1)
    # ... then its requester reads none of it, running or ended.
    while True:
        running = job.refresh().status is sy.JobStatus.RUNNING
        seen = api.get(path, token=actors["scientist"].token)
        assert seen.status in (200, 409), seen
        assert marker not in seen.text and "ann" not in seen.text, seen.text
        if not running:
            break
        time.sleep(0.2)
    job.wait(timeout=WAIT_SECONDS)
    assert_held(job, "printed_output", api, actors["scientist"].token, never=(marker, "ann"))


@needs_sandbox
def test_the_rules_of_two_datasets_combine(api, actors, scientist, owner):
    counted, counted_asset = checked_people(owner, scientist, sy.OutputChecks(min_cell_count=4))
    _, rowed_asset = checked_people(
        owner, scientist, sy.OutputChecks(round_to=5, no_row_level=True)
    )

    @sy.syft_function_single_use(a=counted_asset, b=rowed_asset)
    def both_counts(a, b):
        return {"old": int((a["age"] >= 40).sum()), "all": len(b), "seven": 7, "zero": 0}

    # The strictest of each: the first's min_cell_count, the second's rounding.
    job = granted_run(scientist, owner, both_counts, a=counted_asset, b=rowed_asset)
    assert job.get() == {"old": None, "all": 5, "seven": 5, "zero": 0}

    # And the second's row-level rule, for a row of the first.
    @sy.syft_function_single_use(a=counted_asset, b=rowed_asset)
    def both_first_row(a, b):
        return a.head(1)

    job = granted_run(scientist, owner, both_first_row, a=counted_asset, b=rowed_asset)
    assert_held(job, "no_row_level", api, actors["scientist"].token, never=("ann",))

    # The first alone: only its own rule.
    alone = asset_of(scientist, counted)

    @sy.syft_function_single_use(a=alone)
    def one_count(a):
        return {"old": int((a["age"] >= 40).sum()), "all": len(a), "seven": 7}

    assert granted_run(scientist, owner, one_count, a=alone).get() == {
        "old": None, "all": 5, "seven": 7,
    }


@needs_sandbox
def test_what_a_second_cold_attack_got_past_the_rules_is_held_or_suppressed(
    api, actors, scientist, owner
):
    """Four bypasses a second cold attack found (F1 to F4), each through the client."""
    _, asset = checked_people(
        owner, scientist, sy.OutputChecks(min_cell_count=2, no_row_level=True)
    )
    token = actors["scientist"].token

    # F1: describe() of an object column mixes counts and names, so the column goes out as one
    # JSON text per cell ("\"dee\""); the rules read the decoded values.
    @sy.syft_function_single_use(data=asset)
    def oldest_described(data):
        return data[data["age"] > 60][["name"]].describe()

    # F2: an age (a whole number) used as a key is someone's value.
    @sy.syft_function_single_use(data=asset)
    def oldest_age_keys(data):
        return data[data["age"] > 60].groupby("age").size().to_dict()

    # F4: a name in another case is the name.
    @sy.syft_function_single_use(data=asset)
    def oldest_titled(data):
        return {"senior": list(data[data["age"] > 60]["name"].str.title())}

    # (What must not show is what the result would carry; "dee" alone is hex, in any id.)
    for func, never in ((oldest_described, ("top", "freq")), (oldest_age_keys, ('"64"',)),
                        (oldest_titled, ("Dee", "senior"))):
        job = granted_run(scientist, owner, func, data=asset)
        assert_held(job, "no_row_level", api, token, never=never)

    _, counted = checked_people(owner, scientist, sy.OutputChecks(min_cell_count=3))

    # F1: counts inside JSON cells are counts (a mixed Series is one JSON text per cell).
    @sy.syft_function_single_use(data=counted)
    def mixed_bands(data):
        import pandas as pd

        return pd.Series({"old": int((data["age"] >= 40).sum()),
                          "young": int((data["age"] < 40).sum()), "measure": "age bands"})

    job = granted_run(scientist, owner, mixed_bands, data=counted)
    assert not job.held and job.result_format == "csv", job
    series = job.get()
    assert series["old"] == OLD and series["young"] is None, series
    assert series["measure"] == "age bands"

    # F3: counts written as floats are counts (unstack() of an incomplete cross-table, astype).
    @sy.syft_function_single_use(data=counted)
    def float_bands(data):
        bands = data["age"].ge(40).map({True: "old", False: "young"}).rename("band")
        return data.groupby(bands).size().astype(float)

    @sy.syft_function_single_use(data=counted)
    def float_bands_json(data):
        return {"old": float((data["age"] >= 40).sum()), "young": float((data["age"] < 40).sum()),
                "mean": float(data["age"].mean())}

    series = granted_run(scientist, owner, float_bands, data=counted).get()
    assert series["old"] == float(OLD) and pd.isna(series["young"]), series
    assert str(series.dtype) == "float64", series.dtype
    assert granted_run(scientist, owner, float_bands_json, data=counted).get() == {
        "old": float(OLD), "young": None, "mean": pytest.approx(MEAN_AGE),
    }


@needs_sandbox
def test_the_rules_leave_runs_that_are_not_under_a_grant_alone(scientist, owner):
    strict = sy.OutputChecks(
        min_cell_count=10, small_cells="hold", round_to=5, no_row_level=True, max_result_bytes=50
    )
    _, asset = checked_people(owner, scientist, strict)

    @sy.syft_function(input_policy=sy.ExactMatch(data=asset),
                      output_policy=sy.OutputPolicyExecuteCount(limit=5))
    def unchecked(data):
        print("rows:", len(data))
        return {"old": int((data["age"] >= 40).sum()), "young": int((data["age"] < 40).sum())}

    # A mock run (ages 20, 20, 20).
    request = scientist.code.request_code_execution(unchecked, reason="a plain approval")
    mock_job = scientist.code.unchecked.mock(data=asset).job.wait(timeout=WAIT_SECONDS)
    assert not mock_job.held and mock_job.get() == {"old": 0, "young": 3}

    # The owner's review run.
    review = owner.requests.get(request.id)
    assert owner.code.get(request.code.id).run() == {"old": OLD, "young": YOUNG}

    # A plain approval: the owner reviewed the code, the scientist reads every run's output.
    assert review.approve() and review.grant is None
    pointer = scientist.code.unchecked(data=asset)
    job = pointer.job.wait(timeout=WAIT_SECONDS)
    assert job.grant_id is None and not job.held and job.held_reason is None
    assert pointer.get(timeout=WAIT_SECONDS) == {"old": OLD, "young": YOUNG}
    assert "rows: 5" in job.logs().stdout

    @sy.syft_function_single_use(data=asset)
    def unchecked_table(data):
        return data

    table_request = scientist.code.request_code_execution(unchecked_table, reason="plain")
    assert owner.requests.get(table_request.id).approve()
    table = scientist.code.unchecked_table(data=asset).get(timeout=WAIT_SECONDS)
    pd.testing.assert_frame_equal(table.reset_index(drop=True), PRIVATE)
