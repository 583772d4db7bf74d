"""PySyft's surface on a real server: ``client.api.services``, the version check, ``sy.requires``,
``sy.raises``, ``sy.UID``, contributors and data subjects, the list calls PySyft tutorials use,
``sy.ActionObject`` answers of local calls, custom policies, and PySyft's import paths.
"""

import importlib
import warnings

import numpy as np
import pandas as pd
import pytest

import datasite as sy
from datasite import _api
from code_helpers import MOCK, PRIVATE, asset_of, upload_people
from helpers import PASSWORD, needs_sandbox, unique, unique_email


@pytest.fixture(scope="module")
def people(actors):
    return upload_people(actors["owner"].client)


# client.api.services -------------------------------------------------------------------------


def test_services_are_built_from_the_servers_description(actors, api):
    services = actors["admin"].client.api.services
    document = api.get("/api/v1/openapi.json").json
    ids = {
        op["operationId"]
        for item in document["paths"].values()
        for op in item.values()
        if isinstance(op, dict)
    }
    for op_id in ids:
        service, method = op_id.split(".")
        assert callable(getattr(getattr(services, service), method)), op_id
    for name in ("user.get_all", "user.create", "user.update", "dataset.get_all",
                 "request.get_all", "request.get_by_uid", "settings.get", "settings.update",
                 "job.get", "code.request_code_execution", "code_history.get_history",
                 "request.get_all_pending", "settings.welcome_preview"):
        service, method = name.split(".")
        assert name in ids or callable(getattr(getattr(services, service), method)), name


def test_user_get_all_create_update_answer_user_objects(actors):
    services = actors["admin"].client.api.services
    users = services.user.get_all()
    assert isinstance(users, sy.UserList) and all(isinstance(u, sy.User) for u in users)
    email = unique_email("svc")
    user = services.user.create(name="Svc", email=email, password=PASSWORD,
                                role=sy.ServiceRole.DATA_SCIENTIST)
    assert isinstance(user, sy.User) and user.email == email
    assert user.role == sy.ServiceRole.DATA_SCIENTIST
    updated = services.user.update(uid=sy.UID(user.id), name="Svc Two")
    assert isinstance(updated, sy.User) and updated.name == "Svc Two"
    assert services.user.view(user).name == "Svc Two"  # an object stands for its id
    page = services.user.get_all(page_size=1, page_index=0)
    assert len(page) == 1


def test_dataset_request_settings_job_calls(actors, people):
    owner = actors["owner"].client
    services = owner.api.services
    datasets = services.dataset.get_all()
    assert isinstance(datasets, sy.DatasetList)
    assert people in [d.name for d in datasets]
    settings = services.settings.get()
    assert isinstance(settings, sy.Settings) and settings.name
    assert isinstance(services.request.get_all(), sy.RequestList)
    assert isinstance(services.request.get_all_pending(), sy.RequestList)


@needs_sandbox
def test_request_get_by_uid_and_job_get_reach_the_same_objects(actors, people):
    scientist = actors["scientist"].client
    asset = asset_of(scientist, people)

    @sy.syft_function_single_use(data=asset)
    def svc_count(data):
        return int(len(data))

    request = scientist.api.services.code.request_code_execution(svc_count, reason="count")
    assert isinstance(request, sy.Request)
    again = actors["owner"].client.api.services.request.get_by_uid(uid=sy.UID(request.id))
    assert isinstance(again, sy.Request) and again.id == request.id
    assert again.status == sy.RequestStatus.PENDING
    job = scientist.code.svc_count.mock(data=asset, blocking=False)
    fetched = scientist.api.services.job.get(job.id)
    assert isinstance(fetched, sy.Job) and fetched.id == job.id


def test_a_bare_message_answers_syft_success(actors):
    admin = actors["admin"].client
    user = admin.users.create(name="Gone", email=unique_email("gone"), password=PASSWORD)
    assert isinstance(admin.api.services.user.delete(user.id), sy.SyftSuccess)


def test_arguments_are_checked_against_the_description_before_sending(actors):
    services = actors["admin"].client.api.services
    with pytest.raises(TypeError, match="unexpected argument"):
        services.user.get_all(colour="red")
    with pytest.raises(TypeError, match="unexpected argument"):
        services.settings.update(no_such_setting=True)
    with pytest.raises(TypeError, match="needs id"):
        services.user.view()
    with pytest.raises(TypeError, match="needs name"):
        services.user.create(email="x@example.org", password=PASSWORD)
    with pytest.raises(AttributeError, match="has no operation 'no_such_call'"):
        services.user.no_such_call


def test_roles_still_hold_through_services(actors):
    services = actors["scientist"].client.api.services
    with pytest.raises(sy.PermissionDeniedError):
        services.user.get_all()
    with pytest.raises(sy.PermissionDeniedError):
        services.settings.update(description="not mine to change")


def test_a_custom_endpoint_with_a_built_in_service_name_is_left_out(actors):
    doc = {
        "paths": {
            "/api/v1/users": {"get": {"operationId": "user.get_all", "summary": "users"}},
            "/api/v1/x/a": {"post": {"operationId": "user.steal", "x-custom-endpoint": True}},
            "/api/v1/x/b": {"post": {"operationId": "bigquery.test_query",
                                     "x-custom-endpoint": True}},
        }
    }
    with pytest.warns(sy.DatasiteWarning, match="built-in service"):
        services = _api.build_services(actors["admin"].client, doc)
    assert "steal" not in dir(services.user)
    assert callable(services.bigquery.test_query)


# Versions --------------------------------------------------------------------------------------


def test_server_reports_its_version_and_api_version(api):
    metadata = api.get("/api/v1/metadata").json
    assert metadata["version"]
    assert metadata["api_version"].split(".")[0] == str(_api.API_MAJOR)


def test_login_refuses_a_server_of_another_api_major(module_server, monkeypatch):
    monkeypatch.setattr(_api, "API_MAJOR", _api.API_MAJOR + 1)
    with pytest.raises(sy.IncompatibleServerError, match="speaks HTTP API version 1"):
        sy.login_as_guest(url="localhost", port=module_server.port)


def test_a_server_without_an_api_version_is_taken_as_1_0():
    _api.check_server_version({"version": "0.0.9"}, "http://x", "0.1.0")
    with pytest.raises(sy.IncompatibleServerError, match="2.0"):
        _api.check_server_version({"api_version": "2.0"}, "http://x", "0.1.0")


# sy.requires, sy.raises, sy.UID --------------------------------------------------------------


def test_requires_accepts_pysyft_09_specs(capsys):
    assert sy.requires(">=0.9,<1.0.0") is True
    assert "matches" in capsys.readouterr().out
    assert sy.requires("==0.9.*", silent=True) is True
    assert sy.requires("~=0.9.1", silent=True) is True


def test_requires_tells_of_a_spec_that_does_not_hold(capsys):
    assert sy.requires(">=0.8.2,<0.8.3") is False
    assert "does not hold" in capsys.readouterr().out
    assert sy.requires("<0.9", silent=True) is False
    with pytest.raises(ValueError, match="cannot read"):
        sy.requires("latest please")


def test_raises_swallows_the_expected_exception_and_shows_it(actors, capsys):
    with sy.raises(sy.SyftException, show=True):
        actors["scientist"].client.users.get_all()
    assert "successfully caught" in capsys.readouterr().out


def test_raises_fails_when_nothing_or_something_else_is_raised():
    with pytest.raises(AssertionError, match="nothing was raised"):
        with sy.raises(sy.SyftException):
            pass
    with pytest.raises(KeyError):
        with sy.raises(sy.SyftException):
            raise KeyError("other")
    with pytest.raises(AssertionError, match="containing"):
        with sy.raises(ValueError("needle")):
            raise ValueError("haystack")


def test_uid_reads_pysyft_hex_and_our_ids(actors):
    uid = sy.UID("f8ea222576e045e0b6d930ef0f33e797")
    assert uid == "f8ea2225-76e0-45e0-b6d9-30ef0f33e797"
    assert uid.no_dash == "f8ea222576e045e0b6d930ef0f33e797"
    assert sy.UID(uid) is uid and isinstance(sy.UID(), str)
    me = actors["admin"].client.account
    assert actors["admin"].client.users.get(sy.UID(me.id)).id == me.id
    with pytest.raises(ValueError):
        sy.UID("not-a-uid")


# Datasets: contributors, data subjects, asset building -----------------------------------------


def test_contributors_with_phone_and_note_survive_upload(actors):
    owner = actors["owner"].client
    main = sy.Contributor(name="Jane", email="jane@example.org", role="Maintainer",
                          phone="+1 555", note="lead")
    ds = sy.Dataset(name=unique("contrib"), contributors=[main])
    ds.add_contributor("Bob", "bob@example.org", note="helped", phone="+1 556", role="Editor")
    asset = sy.Asset(name="a", data=PRIVATE, mock=MOCK)
    asset.set_description("described later")
    asset.set_shape(PRIVATE.shape)
    assert asset.shape == PRIVATE.shape
    ds.add_asset(asset)
    owner.upload_dataset(ds)
    back = owner.datasets[ds.name]
    by_name = {c.name: c for c in back.contributors}
    assert by_name["Jane"].phone == "+1 555" and by_name["Jane"].note == "lead"
    assert by_name["Bob"].phone == "+1 556" and by_name["Bob"].role == "Editor"
    assert back.assets["a"].description == "described later"
    assert back.assets["a"].shape[1] == PRIVATE.shape[1]  # the server's reading of the mock


def test_asset_contributors_and_data_subjects_are_kept_with_the_asset(actors):
    owner = actors["owner"].client
    canada = sy.DataSubject(name="Canada", description="a country", aliases=["CA"])
    america = sy.DataSubject(name="America")
    america.add_member(canada)
    asset = sy.Asset(name="a", data=np.arange(3), mock=np.zeros(3),
                     contributors=[sy.Contributor("Ann", "ann@example.org", phone="1")],
                     data_subjects=[america])
    asset.add_data_subject(sy.DataSubject(name="Mexico"))
    asset.add_contributor("Ben", "ben@example.org", role="Curator", note="cleaned it")
    assert [d.name for d in asset.data_subjects] == ["America", "Mexico"]
    assert america.member_names == ["Canada"]
    ds = sy.Dataset(name=unique("subjects"), asset_list=[asset])
    owner.upload_dataset(ds)
    back = actors["scientist"].client.datasets[ds.name].assets["a"]
    assert back.data_subjects == [america, sy.DataSubject(name="Mexico")]
    assert back.data_subjects[0].members["Canada"].aliases == ["CA"]
    assert [(c.name, c.phone, c.note) for c in back.contributors] == [
        ("Ann", "1", None), ("Ben", None, "cleaned it")]


@pytest.mark.parametrize(
    "subjects,match",
    [
        ("Canada", "must be a list"),
        (["Canada"], "is an object"),
        ([{"description": "no name"}], "needs a name"),
        ([{"name": "x", "colour": "red"}], "unknown data subject field"),
        ([{"name": "x" * 129}], "at most 128"),
        ([{"name": "x", "aliases": [1]}], "alias must be text"),
        ([{"name": "a", "members": [{"name": "b", "members": [{"name": "c", "members": [
            {"name": "d", "members": [{"name": "e"}]}]}]}]}], "4 levels"),
        ([{"name": str(i)} for i in range(1001)], "at most 1000"),
    ],
)
def test_malformed_data_subjects_are_refused(api, actors, subjects, match):
    from dataset_helpers import new_blob

    token = actors["owner"].token
    data = new_blob(api, token, "json", b"[1, 2]")["id"]
    body = {"name": unique("bad"),
            "assets": [{"name": "a", "data": data, "data_subjects": subjects}]}
    resp = api.post("/api/v1/datasets", body, token=token)
    assert resp.status == 400, resp
    assert match in resp.json["error"]["message"], resp.json


def test_contributor_fields_are_checked_by_the_server(api, actors):
    body = {"name": unique("bad"), "contributors": [{"name": "x", "phone": "1" * 65}],
            "assets": []}
    resp = api.post("/api/v1/datasets", body, token=actors["owner"].token)
    assert resp.status == 400, resp


# The calls tutorials make -----------------------------------------------------------------------


def test_users_get_all_pages_as_pysyft(actors):
    admin = actors["admin"].client
    everyone = admin.users.get_all()
    first = admin.users.get_all(page_size=2, page_index=0)
    second = admin.users.get_all(page_size=2, page_index=1)
    assert len(first) == 2
    assert [u.id for u in first] + [u.id for u in second] == [u.id for u in everyone][:4]
    with pytest.raises(ValueError, match="page_size"):
        admin.users.get_all(page_size=0)


def test_requests_by_status(actors, people):
    scientist = actors["scientist"].client
    asset = asset_of(scientist, people)

    @sy.syft_function_single_use(data=asset)
    def by_status(data):
        return 1

    request = scientist.code.request_code_execution(by_status)
    owner = actors["owner"].client
    assert request.id in [r.id for r in owner.requests.get_all_pending()]
    owner.requests.get(request.id).deny("no")
    assert request.id in [r.id for r in owner.requests.get_all_rejected()]
    assert request.id not in [r.id for r in owner.requests.get_all_approved()]


def test_code_histories_and_code_history(actors, people):
    scientist = actors["scientist"].client
    asset = asset_of(scientist, people)

    @sy.syft_function_single_use(data=asset)
    def hist_fn(data):
        return 1

    scientist.code.submit(hist_fn)
    assert len(scientist.code_history["hist_fn"]) == 1
    assert "hist_fn" in repr(actors["owner"].client.code_histories)
    assert len(scientist.api.services.code_history.get_history()["hist_fn"]) == 1


def test_settings_get_and_welcome(actors):
    admin = actors["admin"].client
    assert admin.settings.get().name == admin.settings.name
    preview = admin.settings.welcome_preview(markdown="# Hi <b>there</b>")
    assert "&lt;b&gt;" in preview._repr_markdown_()
    assert admin.settings.welcome_customize(markdown="# Welcome here")
    assert admin.settings.welcome_show() == "# Welcome here"
    with pytest.raises(ValueError, match="markdown"):
        admin.settings.welcome_customize(html="<b>x</b>")


# Local calls answer an ActionObject ------------------------------------------------------------


def test_a_local_call_on_the_mock_answers_a_pointer_with_get(actors, people):
    asset = asset_of(actors["scientist"].client, people)

    @sy.syft_function_single_use(data=asset)
    def mean_age(data):
        return float(data["age"].mean())

    pointer = mean_age(data=asset)
    assert isinstance(pointer, sy.ActionObject)
    assert pointer.get() == float(MOCK["age"].mean())
    assert pointer.syft_action_data == pointer.get()
    assert pointer == 20.0 and pointer + 1 == 21.0 and float(pointer) == 20.0
    assert repr(pointer) == "20.0"

    @sy.syft_function_single_use(data=asset)
    def head(data):
        return data.head(2)

    frame = head(data=asset)
    assert list(frame.columns) == ["age", "name"] and len(frame) == 2
    assert isinstance(frame.get(), pd.DataFrame)


@needs_sandbox
def test_a_server_result_is_an_action_object_too(actors, people):
    scientist = actors["scientist"].client
    asset = asset_of(scientist, people)

    @sy.syft_function_single_use(data=asset)
    def srv_mean(data):
        return float(data["age"].mean())

    scientist.code.request_code_execution(srv_mean)
    result = scientist.code.srv_mean.mock(data=asset)
    assert isinstance(result, sy.ActionObject)
    assert result.get() == 20.0


# Custom policies ---------------------------------------------------------------------------------


class RepeatedCallPolicy(sy.CustomOutputPolicy):
    def __init__(self, n_calls=1, downloadable_output_args=None):
        self.n_calls = n_calls
        self.downloadable_output_args = downloadable_output_args or []
        self.state = {"counts": 0}

    def apply_to_output(self, context, outputs, update_policy=True):
        if hasattr(outputs, "syft_action_data"):
            outputs = outputs.syft_action_data
        return {k: outputs[k] for k in self.downloadable_output_args}


class CustomExactMatch(sy.CustomInputPolicy):
    def __init__(self, *args, **kwargs):
        pass


def test_custom_policies_subclass_and_run_locally(actors, people):
    policy = RepeatedCallPolicy(n_calls=2, downloadable_output_args=["y"])
    assert policy.init_kwargs == {"n_calls": 2, "downloadable_output_args": ["y"]}
    assert policy.apply_to_output(None, sy.ActionObject.from_obj({"y": [1, 2]})) == {"y": [1, 2]}
    asset = asset_of(actors["scientist"].client, people)

    @sy.syft_function(input_policy=CustomExactMatch(data=asset), output_policy=policy)
    def custom_fn(data):
        return int(len(data))

    assert custom_fn(data=asset).get() == len(MOCK)


def test_code_with_custom_policies_sends_their_source(actors, people):
    scientist = actors["scientist"].client
    asset = asset_of(scientist, people)

    @sy.syft_function(
        input_policy=CustomExactMatch(data=asset), output_policy=RepeatedCallPolicy(n_calls=3)
    )
    def custom_both(data):
        return 1

    body = custom_both.to_wire()
    assert body["output_policy"] == {"kind": "custom"}
    assert body["inputs"] == {"data": {"asset_id": asset.id}}
    code = body["policy_code"]
    assert code["input"] == {"class": "CustomExactMatch"}
    assert code["output"] == {
        "class": "RepeatedCallPolicy",
        "init_kwargs": {"n_calls": 3},
    }
    assert "class RepeatedCallPolicy(sy.CustomOutputPolicy):" in code["source"]
    assert "class CustomExactMatch(sy.CustomInputPolicy):" in code["source"]

    # Its init kwargs must be JSON: the server makes the policy again from them.
    @sy.syft_function(output_policy=RepeatedCallPolicy(n_calls={1, 2}))
    def custom_bad():
        return 1

    with pytest.raises(TypeError, match="n_calls"):
        custom_bad.to_wire()


# Import paths ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "module,names",
    [
        ("datasite.service.user.user", ["ServiceRole", "User", "UserView"]),
        ("datasite.service.user.user_roles", ["ServiceRole"]),
        ("datasite.service.request.request", ["Request", "RequestStatus"]),
        ("datasite.service.dataset.dataset", ["Dataset", "Asset", "CreateAsset", "Contributor",
                                              "DatasetPageView"]),
        ("datasite.service.job.job_stash", ["Job", "JobStatus"]),
        ("datasite.service.code.user_code", ["UserCode", "SubmitUserCode"]),
        ("datasite.service.action.action_object", ["ActionObject"]),
        ("datasite.service.policy.policy", ["CustomInputPolicy", "CustomOutputPolicy"]),
        ("datasite.service.response", ["SyftError", "SyftSuccess", "SyftWarning"]),
        ("datasite.client.api", ["SyftAPI", "APIModule", "ServerIdentity"]),
        ("datasite.types.uid", ["UID"]),
        ("datasite.types.errors", ["SyftException"]),
    ],
)
def test_pysyft_import_paths_resolve_to_our_objects(module, names):
    mod = importlib.import_module(module)
    for name in names:
        assert hasattr(mod, name), (module, name)
    assert importlib.import_module("datasite.service.request.request").RequestStatus is (
        sy.RequestStatus
    )
    assert importlib.import_module("datasite.types.uid").UID is sy.UID


def test_server_identity_from_api(actors):
    from datasite.client.api import ServerIdentity

    client = actors["scientist"].client
    identity = ServerIdentity.from_api(client.api)
    assert identity == ServerIdentity.from_api(client.api)
    assert identity.server_name == client.name


def test_no_warning_on_import():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        importlib.reload(importlib.import_module("datasite.service.dataset.dataset"))


def test_pysyft_shortcuts_reach_the_same_tree(actors):
    client = actors["owner"].client
    assert client.services is client.api.services
    assert client.api.dataset.get_all is not None  # client.api.<service> as PySyft has it
    assert "code" in dir(client.api) and "code" in dir(client.services)
    with pytest.raises(AttributeError):
        client.api.no_such_service


def test_dataset_search_pages_as_pysyft(actors):
    owner = actors["owner"].client
    tag = unique("srch")
    for i in range(3):
        upload_people(owner, name="{}-{}".format(tag, i))
    everything = owner.datasets.search(tag)
    assert [d.name for d in everything] == ["{}-{}".format(tag, i) for i in range(3)]
    page = owner.datasets.search(tag, page_size=1, page_index=1)
    assert [d.name for d in page.datasets] == ["{}-1".format(tag)]
    with pytest.raises(ValueError, match="page_size"):
        owner.datasets.search(tag, page_size=0)
    with pytest.raises(ValueError, match="needs a page_size"):
        owner.datasets.search(tag, page_index=2)


def test_request_changes_and_their_state(actors, people):
    scientist, owner = actors["scientist"].client, actors["owner"].client
    asset = asset_of(scientist, people)

    @sy.syft_function_single_use(df=asset)
    def count_rows_for_changes(df):
        return len(df)

    scientist.code.request_code_execution(count_rows_for_changes)
    request = [r for r in owner.requests if r.code.name == "count_rows_for_changes"][0]
    (change,) = request.changes
    assert request.current_change_state == {change.id: False}
    request.approve()
    assert request.current_change_state == {change.id: True}


def test_an_admin_sets_a_users_email_and_password_as_pysyft(actors):
    admin = actors["admin"].client
    email = unique_email("setters")
    user = admin.users.create(name="Setters", email=email, password=PASSWORD)
    new_email = unique_email("setters2")
    user.set_email(new_email)
    assert admin.users.get(user.id).email == new_email
    assert user.set_password("another long passphrase", confirm=False)
