"""Projects (docs/API.md, "Projects"), as in PySyft's tutorials: a data scientist makes a project
with a code request and sends it; a data owner lists projects, approves the request; the data
scientist sees the decision among the project's events and gets the result. Then who may see and
change what, and the input the server refuses.
"""

import linecache

import pytest

import datasite as sy
from code_helpers import PRIVATE, asset_of, make_code_actors, upload_people
from helpers import assert_error, needs_sandbox, unique


@pytest.fixture(scope="module")
def actors(module_server):
    return make_code_actors(module_server.port)


@pytest.fixture(scope="module")
def people(actors):
    return upload_people(actors["owner"].client)


@pytest.fixture
def scientist(actors):
    return actors["scientist"].client


@pytest.fixture
def owner(actors):
    return actors["owner"].client


def mean_age_function(asset, name):
    """A new decorated function (its own name, so each test submits new code). Its source is
    registered with linecache, where the decorator reads it, as a notebook cell's is."""
    source = "def {}(data):\n    return float(data['age'].mean())\n".format(name)
    filename = "<project-test-{}>".format(name)
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace = {}
    exec(compile(source, filename, "exec"), namespace)
    return sy.syft_function_single_use(data=asset)(namespace[name])


def new_project(scientist, asset, name=None, functions=1):
    """A sent project of the scientist's with ``functions`` code requests; (project, names)."""
    project = sy.Project(
        name=name or unique("project"), description="mean ages, please", members=[scientist]
    )
    names = []
    for _ in range(functions):
        fname = unique("mean_age").replace("-", "_")
        project.create_code_request(mean_age_function(asset, fname), scientist)
        names.append(fname)
    return project.send(), names


# The flow of PySyft's tutorials ------------------------------------------------------------------


@needs_sandbox
def test_a_project_flows_from_request_to_result(api, actors, people, scientist, owner):
    asset = asset_of(scientist, people)
    name = unique("My Cool UN Project")
    draft = sy.Project(name=name, description="Hi, I want the mean age.", members=[scientist])
    func = mean_age_function(asset, unique("mean_age").replace("-", "_"))
    assert draft.create_code_request(func, scientist)
    # The same function twice is refused, as PySyft's notebook checks.
    with sy.raises(sy.SyftException):
        draft.create_code_request(func, scientist)

    project = draft.send()
    assert isinstance(project, sy.service.project.project.Project)
    assert project.id and project.name == name

    mine = scientist.get_project(name=name)
    assert mine.id == project.id
    assert len(mine.events) == 1
    assert isinstance(mine.events[0], sy.service.project.project.ProjectRequest)
    assert mine.events[0].request.status == sy.RequestStatus.PENDING

    # The owner finds it among all projects, by index, by name and by id.
    assert any(p.id == project.id for p in owner.projects)
    by_id = owner.projects.get_by_uid(project.id)
    assert by_id.name == name
    assert [p.id for p in owner.projects.search(name=name)] == [project.id]
    assert owner.projects[name].id == project.id
    requests = by_id.requests
    assert len(requests) == 1
    request = requests[0]
    assert request.to_dict()["project"] == {"id": str(project.id), "name": name}
    # GET /requests?project= lists the project's requests for owners.
    listed = api.get("/api/v1/requests?project=" + str(project.id), token=owner.token)
    assert [r["id"] for r in listed.json["items"]] == [request.id]
    assert request.approve()

    events = mine.events
    assert [type(e).__name__ for e in events] == ["ProjectRequest", "ProjectRequestResponse"]
    assert events[1].response is True and events[1].request_id == request.id

    code = scientist.code.get(request.code.id)
    result = getattr(scientist.code, code.name)(data=asset)
    assert result.get() == pytest.approx(float(PRIVATE["age"].mean()))


def test_a_request_and_messages_join_a_sent_project(actors, people, scientist, owner):
    asset = asset_of(scientist, people)
    project, _ = new_project(scientist, asset)
    assert project.send_message("hello owners")
    fname = unique("later").replace("-", "_")
    added = project.create_code_request(mean_age_function(asset, fname), scientist)
    assert added.value.to_dict()["project"]["id"] == str(project.id)
    # A request made outside any project may be moved in, once.
    outside = scientist.code.request_code_execution(
        mean_age_function(asset, unique("outside").replace("-", "_"))
    )
    assert project.add_request(outside)
    with pytest.raises(sy.FailedPreconditionError):
        project.add_request(outside)
    assert owner.requests.get(outside.id).deny("not this one")

    kinds = [(type(e).__name__, e.seq_no) for e in project.events]
    assert kinds == [
        ("ProjectRequest", 1),
        ("ProjectMessage", 2),
        ("ProjectRequest", 3),
        ("ProjectRequest", 4),
        ("ProjectRequestResponse", 5),
    ]
    assert project.get_messages()[0].message == "hello owners"
    assert project.events[4].response is False and project.events[4].reason == "not this one"
    assert len(owner.projects.get_by_uid(project.id).requests) == 3


def test_a_project_is_created_with_all_its_requests_or_none(api, actors, people, scientist):
    """A request the server refuses (code that already has one) leaves no project behind."""
    asset = asset_of(scientist, people)
    requested = scientist.code.request_code_execution(
        mean_age_function(asset, unique("taken").replace("-", "_"))
    )
    name = unique("atomic")
    resp = api.post(
        "/api/v1/projects",
        {"name": name, "requests": [{"code_id": requested.code.id}]},
        token=actors["scientist"].token,
    )
    assert_error(resp, 409, "ALREADY_EXISTS")
    assert len(scientist.projects.search(name=name)) == 0


# Who sees what ---------------------------------------------------------------------------------


def test_another_scientist_does_not_see_a_project(api, actors, people, scientist):
    project, _ = new_project(scientist, asset_of(scientist, people))
    other = actors["scientist2"]
    for path in ("/api/v1/projects/{}", "/api/v1/projects/{}/events"):
        assert_error(api.get(path.format(project.id), token=other.token), 404, "NOT_FOUND")
    assert_error(
        api.get("/api/v1/projects/by_name/" + project.name, token=other.token), 404, "NOT_FOUND"
    )
    assert all(p.id != project.id for p in other.client.projects)
    assert len(other.client.projects.search(name=project.name)) == 0
    # Nor writes to it: the same 404, so the project's existence does not leak.
    resp = api.post(
        "/api/v1/projects/{}/messages".format(project.id), {"message": "hi"}, token=other.token
    )
    assert_error(resp, 404, "NOT_FOUND")
    code = other.client.code._submit(
        mean_age_function(asset_of(other.client, people), unique("intruder").replace("-", "_"))
    )
    resp = api.post(
        "/api/v1/projects/{}/requests".format(project.id),
        {"code_id": code.id},
        token=other.token,
    )
    assert_error(resp, 404, "NOT_FOUND")
    # The owner's listing by project shows none of it to the other scientist.
    resp = api.get("/api/v1/requests?project={}".format(project.id), token=other.token)
    assert resp.status == 200 and resp.json["items"] == []
    assert len(project.events) == 1


def test_owners_see_but_do_not_write_to_a_project_they_are_not_in(api, actors, people, scientist):
    project, _ = new_project(scientist, asset_of(scientist, people))
    owner = actors["owner"]
    assert api.get("/api/v1/projects/{}".format(project.id), token=owner.token).status == 200
    resp = api.post(
        "/api/v1/projects/{}/messages".format(project.id), {"message": "hi"}, token=owner.token
    )
    assert_error(resp, 403, "PERMISSION_DENIED")
    # Someone else's request may not be moved into a project, even by its member.
    other = actors["scientist2"]
    theirs = other.client.code.request_code_execution(
        mean_age_function(asset_of(other.client, people), unique("theirs").replace("-", "_"))
    )
    resp = api.post(
        "/api/v1/projects/{}/requests".format(project.id),
        {"request_id": theirs.id},
        token=actors["scientist"].token,
    )
    assert_error(resp, 404, "NOT_FOUND")
    assert theirs.refresh().to_dict()["project"] is None


def test_a_scientist_may_not_add_other_members(api, actors, scientist):
    for member in (actors["scientist2"].user["id"], "nobody@example.org"):
        resp = api.post(
            "/api/v1/projects",
            {"name": unique("crowd"), "members": [member]},
            token=actors["scientist"].token,
        )
        # The same refusal whether the account exists or not.
        assert_error(resp, 403, "PERMISSION_DENIED")


def test_guests_have_no_projects(api, actors):
    resp = api.post("/api/v1/projects", {"name": unique("g")}, token=actors["guest"].token)
    assert_error(resp, 403, "PERMISSION_DENIED")
    assert_error(api.get("/api/v1/projects", token=actors["guest"].token), 403, "PERMISSION_DENIED")


# Bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"name": "x" * 201},
        {"name": " padded "},
        {"name": "line\nbreak"},
        {"name": "ok", "description": "d" * 10001},
        {"name": "ok", "members": "me"},
        {"name": "ok", "members": [1]},
        {"name": "ok", "requests": [{"code_id": "a"}, {"code_id": "a"}]},
        {"name": "ok", "extra": 1},
        {"description": "no name"},
    ],
)
def test_bad_project_bodies_are_refused(api, actors, body):
    resp = api.post("/api/v1/projects", body, token=actors["scientist"].token)
    assert_error(resp, 400, "INVALID_ARGUMENT")


def test_unknown_ids_are_not_found(api, actors, people, scientist):
    token = actors["scientist"].token
    missing = "00000000-0000-4000-8000-000000000000"
    assert_error(api.get("/api/v1/projects/" + missing, token=token), 404, "NOT_FOUND")
    assert_error(api.get("/api/v1/projects/not-an-id/events", token=token), 404, "NOT_FOUND")
    resp = api.post("/api/v1/projects/" + missing + "/messages", {"message": "x"}, token=token)
    assert_error(resp, 404, "NOT_FOUND")
    project, _ = new_project(scientist, asset_of(scientist, people), functions=0)
    path = "/api/v1/projects/{}/requests".format(project.id)
    assert_error(api.post(path, {"code_id": missing}, token=token), 404, "NOT_FOUND")
    assert_error(api.post(path, {"request_id": missing}, token=token), 404, "NOT_FOUND")
    assert_error(api.post(path, {}, token=token), 400, "INVALID_ARGUMENT")
    msg = "/api/v1/projects/{}/messages".format(project.id)
    assert_error(api.post(msg, {"message": ""}, token=token), 400, "INVALID_ARGUMENT")
    assert_error(api.post(msg, {"message": "m" * 10001}, token=token), 400, "INVALID_ARGUMENT")
    resp = api.post("/api/v1/projects", {"name": project.name}, token=token)
    assert resp.status == 409 and resp.error["code"] == "ALREADY_EXISTS"


def test_a_project_name_is_escaped_in_html(actors, people, scientist):
    project, _ = new_project(
        scientist, asset_of(scientist, people), name=unique("<script>alert(1)</script>"),
        functions=0,
    )
    html = project._repr_html_() + actors["owner"].client.projects.get_all()._repr_html_()
    assert "<script>alert" not in html
    assert "&lt;script&gt;" in html


def test_the_service_namespace_reaches_projects(actors, people, scientist):
    """PySyft's client.api.services.project.* resolve to the project routes."""
    project, _ = new_project(
        scientist, asset_of(scientist, people), name=unique("a name with spaces"), functions=0
    )
    services = scientist.api.services
    assert any(p.id == project.id for p in services.project.get_all())
    assert services.project.get_by_uid(uid=project.id).name == project.name
    assert services.project.get_by_name(name=project.name).id == project.id
    assert services.project.send_message(project.id, message="via services")
    assert [e.kind for e in project.events] == ["message"]


def test_a_new_project_notifies_the_data_owners_linked_to_it(actors, people, scientist, owner):
    """PySyft's cookbooks find the project among the owner's notifications by its linked object's
    type, then reach its first request through the project's events."""
    project, names = new_project(scientist, asset_of(scientist, people))
    linked = [
        n
        for n in owner.notifications
        if n.linked_obj is not None and issubclass(n.linked_obj.object_type, sy.Project)
    ]
    mine = [n for n in linked if n.linked_obj.id == project.id]
    assert len(mine) == 1, [n.subject for n in linked]
    assert project.name in mine[0].subject
    request = mine[0].link.events[0].request
    assert request.code.service_func_name == names[0]
    # Not the data scientists': neither the creator nor another one hears of it.
    for who in ("scientist", "scientist2"):
        theirs = actors[who].client.notifications
        assert not [n for n in theirs if n.linked_obj and n.linked_obj.id == project.id]


def test_a_denial_reason_reaches_the_requester_not_the_other_members(api, actors, people):
    """The owner's reason may quote private data: in a project of two scientists it is shown to
    the request's author (and owners), not to the other member, who can't read the request."""
    owner = actors["owner"]
    alice, mal = actors["scientist"], actors["scientist2"]
    resp = api.post(
        "/api/v1/projects",
        {"name": unique("joint"), "members": [alice.user["email"], mal.user["email"]]},
        token=owner.token,
    )
    assert resp.status == 201, resp.json
    project_id = resp.json["id"]
    code = alice.client.code._submit(
        mean_age_function(asset_of(alice.client, people), unique("joint").replace("-", "_"))
    )
    resp = api.post(
        "/api/v1/projects/{}/requests".format(project_id), {"code_id": code.id}, token=alice.token
    )
    assert resp.status in (200, 201), resp.json
    request_id = resp.json["id"]
    reason = "the max age is 57 (patient PRIVATE-CANARY-77)"
    resp = api.post(
        "/api/v1/requests/{}/deny".format(request_id), {"reason": reason}, token=owner.token
    )
    assert resp.status == 200, resp.json

    def decision_texts(token):
        resp = api.get("/api/v1/projects/{}/events".format(project_id), token=token)
        assert resp.status == 200, resp.json
        return [e["text"] for e in resp.json["items"] if e["kind"] == "decision"]

    assert decision_texts(alice.token) == [reason]
    assert decision_texts(owner.token) == [reason]
    assert decision_texts(mal.token) == [""]
    assert "PRIVATE-CANARY-77" not in str(
        api.get("/api/v1/projects/{}/events".format(project_id), token=mal.token).json
    )
    assert_error(api.get("/api/v1/requests/" + request_id, token=mal.token), 404, "NOT_FOUND")


def test_a_message_notifies_the_other_members_without_its_text(api, actors, people):
    owner = actors["owner"]
    alice, mal = actors["scientist"], actors["scientist2"]
    resp = api.post(
        "/api/v1/projects",
        {"name": unique("talk"), "members": [alice.user["email"], mal.user["email"]]},
        token=owner.token,
    )
    assert resp.status == 201, resp.json
    project_id = resp.json["id"]
    resp = api.post(
        "/api/v1/projects/{}/messages".format(project_id),
        {"message": "the secret word is MESSAGE-CANARY-5"},
        token=alice.token,
    )
    assert resp.status in (200, 201), resp.json

    def about(who):
        return [
            n
            for n in actors[who].client.notifications
            if n.linked_obj is not None and n.linked_obj.id == project_id
        ]

    heard = about("scientist2")
    assert len(heard) == 1 and heard[0].kind == "project.message"
    assert "MESSAGE-CANARY-5" not in heard[0].subject
    assert heard[0].link.id == project_id
    assert about("scientist") == []  # not the author
