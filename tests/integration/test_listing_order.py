"""Every listing is oldest first, as PySyft's: ``client.datasets[0]``, ``client.requests[0]``,
``client.code[0]``, ``client.jobs[0]`` and ``client.users[0]`` are the first created, over the client,
the HTTP API and the command line; pages are stable (page 1 holds the oldest) and say the total.

Regression: lists were newest first, so ``client.requests[0]`` picked the latest request, not the one
every PySyft tutorial means (an owner could approve the wrong request).
"""

import json

import pandas as pd
import pytest

import datasite as sy
from datasite import _listing
from helpers import ROOT_EMAIL, ROOT_PASSWORD, needs_sandbox, unique

# A server and CLI users of this module's own (fixtures shared with test_cli_requests).
from test_cli_requests import owner, scientist, site  # noqa: F401

MOCK = pd.DataFrame({"v": [1, 2, 3]})
PRIVATE = pd.DataFrame({"v": [4, 5, 6]})


@pytest.fixture(scope="module")
def datasets(owner):
    """Three datasets, in the order they were uploaded."""
    names = []
    for i in range(3):
        name = unique("order{}".format(i))
        dataset = sy.Dataset(name=name, summary="set {}".format(i))
        dataset.add_asset(sy.Asset(name="t", data=PRIVATE, mock=MOCK))
        assert owner.client.upload_dataset(dataset)
        names.append(name)
    return names


@pytest.fixture(scope="module")
def requests_made(scientist, datasets):
    """Three code submissions with their requests, in the order they were made: [(code_id, id)]."""
    asset = scientist.client.datasets[datasets[0]].assets["t"]

    def order_first(data):
        return len(data)

    def order_second(data):
        return len(data) + 1

    def order_third(data):
        return len(data) + 2

    made = []
    for i, func in enumerate((order_first, order_second, order_third)):
        submitted = sy.syft_function_single_use(data=asset)(func)
        request = scientist.client.code.request_code_execution(submitted, reason="r{}".format(i))
        made.append((request.code.id, request.id))
    return made


def ids(items):
    return [item["id"] if isinstance(item, dict) else item.id for item in items]


def test_datasets_are_oldest_first(site, owner, scientist, datasets):
    names = [d.name for d in scientist.client.datasets if d.name in datasets]
    assert names == datasets
    mine = [d for d in scientist.client.datasets.get_all() if d.name in datasets]
    assert [d.name for d in mine] == datasets
    everything = scientist.client.datasets.get_all()
    assert scientist.client.datasets[0].id == everything[0].id
    assert everything[-1].name == datasets[-1]

    first = site.api.get("/api/v1/datasets?page=1&page_size=1", token=scientist.token).json
    last = site.api.get(
        "/api/v1/datasets?page={}&page_size=1".format(first["total"]), token=scientist.token
    ).json
    assert first["items"][0]["id"] == everything[0].id
    assert last["items"][0]["name"] == datasets[-1]

    listed = owner.cli("dataset", "list")
    assert listed.returncode == 0, listed
    order = [line.split()[0] for line in listed.stdout.splitlines()[1:]]
    assert [n for n in order if n in datasets] == datasets


@pytest.mark.filterwarnings("ignore::datasite.DatasiteWarning")
def test_users_are_oldest_first(site):
    made = [site.api.create_user(site.admin_token)["id"] for _ in range(3)]
    admin = sy.login(url=site.url, email=ROOT_EMAIL, password=ROOT_PASSWORD)
    users = admin.users.get_all()
    assert users[0].email == ROOT_EMAIL
    assert admin.users[0].email == ROOT_EMAIL
    assert [u.id for u in users if u.id in made] == made
    answer = site.api.get("/api/v1/users?page=1&page_size=1000", token=site.admin_token).json
    assert answer["items"][0]["email"] == ROOT_EMAIL
    assert [i for i in ids(answer["items"]) if i in made] == made


def test_code_and_requests_are_oldest_first(site, owner, scientist, requests_made):
    code_ids = [c for c, _ in requests_made]
    request_ids = [r for _, r in requests_made]

    assert ids(scientist.client.code.get_all()) == code_ids
    assert scientist.client.code[0].id == code_ids[0]
    assert scientist.client.code[-1].id == code_ids[-1]
    assert ids(scientist.client.requests.get_all()) == request_ids
    assert scientist.client.requests[0].id == request_ids[0]
    # The owner sees everyone's: the scientist's three in the order they were made.
    assert [i for i in ids(owner.client.requests) if i in request_ids] == request_ids
    assert owner.client.requests.pending[0].id == request_ids[0]

    for route, expected in (("/api/v1/code", code_ids), ("/api/v1/requests", request_ids)):
        answer = site.api.get(route, token=scientist.token).json
        assert ids(answer["items"]) == expected
        assert answer["total"] == 3 and answer["page"] == 1
        for page in (1, 2, 3):
            one = site.api.get(
                "{}?page={}&page_size=1".format(route, page), token=scientist.token
            ).json
            assert ids(one["items"]) == [expected[page - 1]] and one["total"] == 3
        beyond = site.api.get(route + "?page=4&page_size=1", token=scientist.token).json
        assert beyond["items"] == [] and beyond["total"] == 3

    # The client reads every page: with pages of two, the third request is not dropped.
    paged = _listing.fetch_all_pages(scientist.client._transport, "requests_list", page_size=2)
    assert ids(paged) == request_ids

    listed = scientist.cli("requests", "list")
    assert listed.returncode == 0, listed
    order = [line.split()[0] for line in listed.stdout.splitlines()[1:]]
    assert order == request_ids
    as_json = scientist.cli("requests", "list", "--json")
    assert ids(json.loads(as_json.stdout)["items"]) == request_ids


@pytest.mark.parametrize(
    "query", ["page=0", "page_size=0", "page_size=1001", "page=x", "page_size=-1"]
)
@pytest.mark.parametrize("route", ["/api/v1/code", "/api/v1/requests", "/api/v1/jobs"])
def test_a_bad_page_is_refused(site, scientist, route, query):
    resp = site.api.get(route + "?" + query, token=scientist.token)
    assert resp.status == 400 and resp.json["error"]["code"] == "INVALID_ARGUMENT", resp


@needs_sandbox
def test_jobs_are_oldest_first(site, owner, scientist, datasets, requests_made):
    asset = scientist.client.datasets[datasets[0]].assets["t"]
    code = scientist.client.code.get(requests_made[0][0])
    jobs = [code.mock(data=asset, blocking=False).id for _ in range(3)]
    for job_id in jobs:
        scientist.client.jobs.get(job_id).wait(timeout=60)

    assert ids(scientist.client.jobs.get_all()) == jobs
    assert scientist.client.jobs[0].id == jobs[0]
    assert ids(code.jobs) == jobs
    assert [i for i in ids(owner.client.jobs) if i in jobs] == jobs

    answer = site.api.get("/api/v1/jobs", token=scientist.token).json
    assert ids(answer["items"]) == jobs and answer["total"] == 3
    second = site.api.get("/api/v1/jobs?page=2&page_size=1", token=scientist.token).json
    assert ids(second["items"]) == [jobs[1]]
    paged = _listing.fetch_all_pages(scientist.client._transport, "jobs_list", page_size=2)
    assert ids(paged) == jobs

    listed = scientist.cli("jobs", "list")
    assert listed.returncode == 0, listed
    assert [line.split()[0] for line in listed.stdout.splitlines()[1:]] == jobs
