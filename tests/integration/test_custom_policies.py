"""Custom input and output policies (``sy.CustomInputPolicy`` / ``sy.CustomOutputPolicy``), run by
the server in the sandbox, beside the function, never in the server or a notebook's kernel.

- The policy classes' source goes with the code; the data owner sees it on review.
- A private run asks the input policy (``is_valid``, ``filter_kwargs``) before the call and the
  output policy (``is_valid`` before, ``apply_to_output`` after); their state (attributes, as
  JSON) is kept by the server between runs and across a restart, shown to data owners only.
- A refusal fails the run with a fixed kind; a policy that raises or keeps too much or non-JSON
  state fails it closed; the policy's own text reaches data owners only.
"""

import pytest

import datasite as sy
from code_helpers import PRIVATE, make_code_actors, upload_people, asset_of
from helpers import PASSWORD, Api, client_for, needs_sandbox

# The module's server, its actors and their table (fixtures shared with test_code_flow).
from test_code_flow import actors, asset, owner, people, scientist  # noqa: F401
from test_code_review import assert_hidden, scientist_answers

pytestmark = needs_sandbox

SECRET = "Z{}Q".format(int(PRIVATE["age"].sum()) * 7919)


class RepeatedCallPolicy(sy.CustomOutputPolicy):
    """PySyft's notebook policy: releases the named outputs n_calls times."""

    def __init__(self, n_calls=1, downloadable_output_args=None):
        self.downloadable_output_args = downloadable_output_args or []
        self.n_calls = n_calls
        self.state = {"counts": 0}

    def public_state(self):
        return self.state["counts"]

    def update_policy(self, context, outputs):
        self.state["counts"] += 1

    def apply_to_output(self, context, outputs, update_policy=True):
        if self.state["counts"] >= self.n_calls:
            return None
        released = {k: outputs[k] for k in self.downloadable_output_args}
        if update_policy:
            self.update_policy(context, outputs)
        return released

    def is_valid(self, context):
        return self.state["counts"] < self.n_calls


class AtMostRows(sy.CustomInputPolicy):
    """Refuses a run whose table has more rows than its ``max_rows`` binding."""

    def is_valid(self, context, usr_input_kwargs):
        return len(usr_input_kwargs["data"]) <= usr_input_kwargs["max_rows"]


class DropsExtra(sy.CustomInputPolicy):
    """Gives the function only ``data`` (its ``extra`` binding is for the policy)."""

    def filter_kwargs(self, kwargs, context):
        return {"data": kwargs["data"]}

    def is_valid(self, context, usr_input_kwargs):
        return self.inputs["extra"] == 5 and "data" in usr_input_kwargs


class RaisesWithTheData(sy.CustomOutputPolicy):
    """Raises with a value computed from the private result."""

    def apply_to_output(self, context, outputs, update_policy=True):
        raise ValueError("policy saw Z{}Q".format(outputs * 7919))


class KeepsTooMuch(sy.CustomOutputPolicy):
    def apply_to_output(self, context, outputs, update_policy=True):
        self.history = ["x" * 1000] * 100  # about 100 KB of state: over the 16 KiB kept
        return outputs


class KeepsNonJson(sy.CustomOutputPolicy):
    def apply_to_output(self, context, outputs, update_policy=True):
        self.seen = {1, 2, 3}  # a set: not JSON
        return outputs


def approved(scientist, owner, func):
    request = scientist.code.request_code_execution(func, reason="custom policy tests")
    assert owner.requests.get(request.id).approve()
    return request.refresh()


def owners_code(owner, code_id):
    return next(c for c in owner.code.get_all() if c.id == code_id)


def test_a_counting_output_policy_releases_n_results_then_refuses(scientist, owner, asset):
    @sy.syft_function(
        input_policy=sy.ExactMatch(data=asset),
        output_policy=RepeatedCallPolicy(n_calls=2, downloadable_output_args=["y"]),
    )
    def counted_total(data):
        return {"y": int(data["age"].sum()), "hidden": "not released"}

    request = approved(scientist, owner, counted_total)
    for _ in range(2):
        result = scientist.code.counted_total(data=asset).get()
        assert result == {"y": int(PRIVATE["age"].sum())}  # only what the policy releases
    with pytest.raises(sy.JobFailedError) as failed:
        scientist.code.counted_total(data=asset)
    job = failed.value.job
    assert job.failure == "output_policy_refused"
    assert "the output policy refused the result" in job.error
    assert "RepeatedCallPolicy" not in job.error  # the policy's own words: owners only
    assert "RepeatedCallPolicy" in owner.jobs.get(job.id).error

    # The owner sees what the policy kept; the scientist does not.
    seen = owners_code(owner, request.code.id)
    assert seen.output_policy.state == {"counts": 2}
    assert seen.policy_code["state"]["output"]["n_calls"] == 2
    mine = scientist.code.get_all()
    code = next(c for c in mine if c.id == request.code.id)
    assert code.policy_code["state"] is None
    with pytest.raises(AttributeError, match="data owners only"):
        code.output_policy.state


def test_the_owner_sees_the_policy_source_on_review(scientist, owner, asset):
    @sy.syft_function(
        input_policy=sy.ExactMatch(data=asset),
        output_policy=RepeatedCallPolicy(n_calls=1, downloadable_output_args=["y"]),
    )
    def reviewed_with_policy(data):
        return {"y": 1}

    request = scientist.code.request_code_execution(reviewed_with_policy)
    seen = owner.requests.get(request.id)
    for shown in (repr(seen), seen._repr_html_(), seen._repr_markdown_()):
        assert "RepeatedCallPolicy(sy.CustomOutputPolicy)" in shown
    code = seen.code
    assert "class RepeatedCallPolicy(sy.CustomOutputPolicy):" in code.policy_source
    assert "def apply_to_output" in code.policy_source
    assert code.policy_code["output"] == {
        "class": "RepeatedCallPolicy",
        "init_kwargs": {"n_calls": 1, "downloadable_output_args": ["y"]},
    }
    for shown in (repr(code), code._repr_html_(), code._repr_markdown_()):
        assert "RepeatedCallPolicy(sy.CustomOutputPolicy)" in shown
    # The owner's review run applies the policy without counting.
    assert code.run() == {"y": 1}
    assert owners_code(owner, code.id).policy_code["state"] is None


def test_an_input_policy_that_rejects_the_kwargs_refuses_the_run(scientist, owner, asset):
    @sy.syft_function(input_policy=AtMostRows(data=asset, max_rows=3))
    def too_many_rows(data, max_rows):
        return len(data)

    approved(scientist, owner, too_many_rows)
    with pytest.raises(sy.JobFailedError) as failed:
        scientist.code.too_many_rows(data=asset, max_rows=3)
    job = failed.value.job
    assert job.failure == "input_policy_refused"
    assert "the input policy refused the run" in job.error
    # The same policy lets a smaller limit through once the binding allows it.

    @sy.syft_function(input_policy=AtMostRows(data=asset, max_rows=10))
    def few_rows(data, max_rows):
        return len(data)

    approved(scientist, owner, few_rows)
    assert scientist.code.few_rows(data=asset, max_rows=10).get() == len(PRIVATE)


def test_an_input_policy_filters_the_kwargs_the_function_gets(scientist, owner, asset):
    @sy.syft_function(input_policy=DropsExtra(data=asset, extra=5))
    def only_data(data, **rest):
        return {"rows": len(data), "rest": sorted(rest)}

    approved(scientist, owner, only_data)
    assert scientist.code.only_data(data=asset, extra=5).get() == {"rows": 5, "rest": []}


def test_a_raising_policy_fails_closed_and_its_text_stays_with_owners(
    api, actors, scientist, owner, asset
):
    @sy.syft_function(input_policy=sy.ExactMatch(data=asset), output_policy=RaisesWithTheData())
    def policy_leak(data):
        return int(data["age"].sum())

    request = approved(scientist, owner, policy_leak)
    with pytest.raises(sy.JobFailedError) as failed:
        scientist.code.policy_leak(data=asset)
    job = failed.value.job
    assert job.failure == "policy_error"
    assert job.result_format in (None, "")
    for text in (str(failed.value), job.error, repr(job)):
        assert SECRET not in text, text
    assert job.logs().stderr is None
    answers = scientist_answers(
        api, actors["scientist"].token, job.id, request.code.id, request.id
    )
    assert_hidden(answers, SECRET, "Traceback")
    seen = owner.jobs.get(job.id)
    assert SECRET in seen.error
    assert "RaisesWithTheData.apply_to_output raised ValueError" in seen.error
    assert 'File "<policy>"' in seen.logs().stderr and SECRET in seen.logs().stderr


def test_a_policy_whose_state_is_too_large_or_not_json_fails_closed(scientist, owner, asset):
    @sy.syft_function(input_policy=sy.ExactMatch(data=asset), output_policy=KeepsTooMuch())
    def keeps_too_much(data):
        return int(data["age"].sum())

    @sy.syft_function(input_policy=sy.ExactMatch(data=asset), output_policy=KeepsNonJson())
    def keeps_a_set(data):
        return int(data["age"].sum())

    for func, said in ((keeps_too_much, "16384"), (keeps_a_set, "not JSON")):
        request = approved(scientist, owner, func)
        with pytest.raises(sy.JobFailedError) as failed:
            getattr(scientist.code, func.name)(data=asset)
        job = failed.value.job
        assert job.failure == "policy_error"
        assert SECRET not in job.error
        assert said in owner.jobs.get(job.id).error
        assert owners_code(owner, request.code.id).policy_code["state"] is None


def test_policy_state_is_kept_across_a_server_restart(launcher):
    name = "policies-restart"
    first = launcher.launch(name=name, reset=True)
    actors = make_code_actors(first.port)
    scientist, owner = actors["scientist"].client, actors["owner"].client
    email = actors["scientist"].user["email"]
    data = asset_of(scientist, upload_people(owner))

    @sy.syft_function(
        input_policy=sy.ExactMatch(data=data),
        output_policy=RepeatedCallPolicy(n_calls=2, downloadable_output_args=["y"]),
    )
    def survives(data):
        return {"y": len(data)}

    approved(scientist, owner, survives)
    assert scientist.code.survives(data=data).get() == {"y": 5}
    launcher.land(first)

    second = launcher.launch(name=name)
    admin = make_code_actors(second.port)["admin"].client
    code = next(c for c in admin.code.get_all() if c.name == "survives")
    assert code.output_policy.state == {"counts": 1}
    scientist = client_for(second.port, Api(second.port).login(email, PASSWORD))
    bound = {"data": next(iter(scientist.datasets)).assets[0]}
    assert scientist.code.survives(**bound).get() == {"y": 5}
    with pytest.raises(sy.JobFailedError) as failed:
        scientist.code.survives(**bound)
    assert failed.value.job.failure == "output_policy_refused"


def test_the_policy_spec_is_checked_at_submission(api, actors, asset):
    token = actors["scientist"].token
    base = {
        "name": "f",
        "source": "def f():\n    return 1\n",
        "output_policy": {"kind": "custom"},
    }
    cases = [
        ({}, "needs its 'policy_code'"),
        ({"policy_code": {"source": "class P: pass", "output": {"class": "1P"}}}, "class"),
        ({"policy_code": {"source": "", "output": {"class": "P"}}}, "1 byte"),
        ({"policy_code": {"source": "class P: pass"}}, "names no policy"),
        (
            {"policy_code": {"source": "class P: pass", "output": {"class": "P", "x": 1}}},
            "unknown field",
        ),
        (
            {
                "policy_code": {"source": "class P: pass", "input": {"class": "P"}},
            },
            "both or neither",
        ),
    ]
    for extra, said in cases:
        resp = api.post("/api/v1/code", dict(base, **extra), token=token)
        assert resp.status == 400, resp
        assert said in resp.error["message"], resp


def test_a_policy_defined_in_a_notebook_cell_runs_on_the_server(scientist, owner, asset):
    """IPython compiles a cell under a name of its own, kept in linecache, in a module without a
    file (inspect.getsource can't find classes there): PySyft's notebook policy, as written."""
    import linecache

    cell = (
        "from typing import Any\n"
        "import datasite as sy\n\n"
        "class CellPolicy(sy.CustomOutputPolicy):\n"
        "    n_calls: int = 0\n"
        "    state: dict[Any, Any] = {}\n\n"
        "    def __init__(self, n_calls=1):\n"
        "        self.n_calls = n_calls\n"
        "        self.state = {'counts': 0}\n\n"
        "    def apply_to_output(self, context, outputs, update_policy=True):\n"
        "        if self.state['counts'] >= self.n_calls:\n"
        "            return None\n"
        "        if update_policy:\n"
        "            self.state['counts'] += 1\n"
        "        return outputs\n"
    )
    filename = "<ipython-input-7-policies>"
    linecache.cache[filename] = (len(cell), None, cell.splitlines(True), filename)
    namespace = {"__name__": "__notebook__"}
    exec(compile(cell, filename, "exec"), namespace)
    policy = namespace["CellPolicy"](n_calls=1)

    @sy.syft_function(input_policy=sy.ExactMatch(data=asset), output_policy=policy)
    def from_a_cell(data):
        return int(len(data))

    assert "class CellPolicy(sy.CustomOutputPolicy):" in from_a_cell.to_wire()["policy_code"]["source"]
    approved(scientist, owner, from_a_cell)
    assert scientist.code.from_a_cell(data=asset).get() == len(PRIVATE)
    with pytest.raises(sy.JobFailedError) as failed:
        scientist.code.from_a_cell(data=asset)
    assert failed.value.job.failure == "output_policy_refused"


class RefusesEverything(sy.CustomOutputPolicy):
    """Lets the function run, then releases nothing."""

    def apply_to_output(self, context, outputs, update_policy=True):
        return None


def test_a_refused_runs_stdout_stays_with_owners(api, actors, scientist, owner, asset):
    """Regression: a private run of code with custom policies streamed its stdout to the scientist
    live and kept it readable when the output policy then refused the result."""
    import time

    @sy.syft_function(input_policy=sy.ExactMatch(data=asset), output_policy=RefusesEverything())
    def prints_the_secret(data):
        import sys
        import time

        print("Z{}Q".format(int(data["age"].sum()) * 7919))
        sys.stdout.flush()
        time.sleep(3)
        return int(data["age"].sum())

    request = approved(scientist, owner, prints_the_secret)
    token = actors["scientist"].token
    job = scientist.code.prints_the_secret(data=asset, blocking=False)
    # While it runs (the secret printed and flushed): nothing of its stdout reaches the scientist.
    deadline = time.monotonic() + 30
    while owner.jobs.get(job.id).status == "queued" and time.monotonic() < deadline:
        time.sleep(0.2)
    while SECRET not in (owner.jobs.get(job.id).logs().stdout or "") and time.monotonic() < deadline:
        time.sleep(0.2)
    live = api.get("/api/v1/jobs/{}/logs".format(job.id), token=token)
    assert live.status == 200, live
    assert SECRET not in live.text, live
    assert job.wait(progress=False).failure == "output_policy_refused"
    answers = scientist_answers(api, token, job.id, request.code.id, request.id)
    assert_hidden(answers, SECRET)
    assert not job.logs().stdout
    # Data owners read what it printed.
    assert SECRET in owner.jobs.get(job.id).logs().stdout


def test_a_completed_runs_stdout_reaches_the_scientist(scientist, owner, asset):
    @sy.syft_function(
        input_policy=sy.ExactMatch(data=asset),
        output_policy=RepeatedCallPolicy(n_calls=1, downloadable_output_args=["y"]),
    )
    def prints_and_passes(data):
        print("printed rows", len(data))
        return {"y": len(data)}

    approved(scientist, owner, prints_and_passes)
    job = scientist.code.prints_and_passes(data=asset, blocking=False).wait(progress=False)
    assert job.get() == {"y": len(PRIVATE)}
    assert "printed rows {}".format(len(PRIVATE)) in job.logs().stdout


def test_a_second_private_run_waits_for_the_first(api, actors, scientist, owner, asset):
    """Regression: two private runs of code with custom policies could both pass is_valid on the
    same state (a one-run budget gave two runs of the function on private data)."""

    @sy.syft_function(
        input_policy=sy.ExactMatch(data=asset),
        output_policy=RepeatedCallPolicy(n_calls=2, downloadable_output_args=["y"]),
    )
    def slow_budgeted(data):
        import time

        time.sleep(3)
        return {"y": len(data)}

    request = approved(scientist, owner, slow_budgeted)
    first = scientist.code.slow_budgeted(data=asset, blocking=False)
    resp = api.post(
        "/api/v1/code/{}/run".format(request.code.id),
        {"mock": False, "blocking": False},
        token=actors["scientist"].token,
    )
    assert resp.status == 409, resp
    assert "one run at a time" in resp.error["message"], resp
    with pytest.raises(sy.DatasiteError, match="one run at a time"):
        scientist.code.slow_budgeted(data=asset, blocking=False)
    assert first.wait(progress=False).get() == {"y": len(PRIVATE)}
    # Once it ended, the next run reads the state it kept.
    assert scientist.code.slow_budgeted(data=asset).get() == {"y": len(PRIVATE)}
    assert owners_code(owner, request.code.id).output_policy.state == {"counts": 2}
    runs = [j for j in owner.jobs.get_all() if j.code_id == request.code.id]
    assert len(runs) == 2, runs


class GenerousPolicy(sy.CustomOutputPolicy):
    """Its source reads one run; the scientist makes it with another number."""

    def __init__(self, limit=1, note=""):
        self.limit = limit
        self.note = note

    def apply_to_output(self, context, outputs, update_policy=True):
        return outputs


def test_the_owner_sees_the_arguments_a_custom_policy_was_made_with(scientist, owner, asset):
    """Regression: the review showed ``def __init__(self, limit=1)`` and hid that the object was
    made with limit=1000000."""

    @sy.syft_function(
        input_policy=sy.ExactMatch(data=asset),
        output_policy=GenerousPolicy(limit=1000000, note="<b>x</b>\u202e"),
    )
    def generous(data):
        return len(data)

    request = scientist.code.request_code_execution(generous)
    seen = owner.requests.get(request.id)
    described = seen.code.output_policy.describe()
    assert "GenerousPolicy (custom output policy), made with" in described
    assert '"limit": 1000000' in described
    for where in (seen, seen.code):
        text, html, md = repr(where), where._repr_html_(), where._repr_markdown_()
        for shown in (text, html, md):
            assert "1000000" in shown, shown
        # Escaped in every display: no markup, no hidden bidirectional control.
        assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
        assert "\u202e" not in text and "\u202e" not in html and "\u202e" not in md
