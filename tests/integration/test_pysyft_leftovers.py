"""Issue 12's leftovers of PySyft's surface, through the real client on a real server: the
server-wide data subject registry, ``settings.set`` with a whole settings object, ``sy.roles``,
``client.refresh()`` and ``client.code_histories[email].<function name>``.
"""

import pytest

import datasite as sy
from helpers import assert_error, unique


# The data subject registry -------------------------------------------------------------------


def test_owners_register_data_subjects_and_everyone_logged_in_lists_them(actors, api):
    owner, scientist = actors["owner"].client, actors["scientist"].client
    before = {s.name for s in scientist.data_subject_registry.get_all()}
    country = sy.DataSubject(name=unique("Country"), aliases=["country_code"])
    canada = sy.DataSubject(name=unique("Canada"), aliases=["country_code:ca"])
    spain = sy.DataSubject(name=unique("Spain"), description="in Europe")
    country.add_member(canada)
    country.add_member(spain)

    answer = owner.data_subject_registry.add_data_subject(country)
    assert isinstance(answer, sy.SyftSuccess) and answer.value == 3
    assert "3 Data Subjects Registered" in str(answer)

    subjects = {s.name: s for s in scientist.data_subject_registry.get_all()}
    assert set(subjects) - before == {country.name, canada.name, spain.name}
    got = subjects[country.name]
    assert got.aliases == ["country_code"]
    assert set(got.members) == {canada.name, spain.name}
    assert subjects[spain.name].description == "in Europe"
    assert [m.name for m in owner.data_subject_registry.members_for(country.name)] == [
        canada.name, spain.name]
    assert owner.data_subject_registry.get_by_name(canada.name).aliases == ["country_code:ca"]

    # A subject with members may name registered members again: they are linked, not doubled.
    region = sy.DataSubject(name=unique("Region"))
    region.add_member(sy.DataSubject(name=canada.name))
    assert actors["admin"].client.data_subject_registry.add_data_subject(region).value == 1
    names = [s.name for s in scientist.data_subject_registry.get_all()]
    assert names.count(canada.name) == 1
    assert names.index(country.name) < names.index(region.name)  # oldest first


def test_the_data_subject_registry_refuses_what_it_must(actors, api):
    owner = actors["owner"].client
    lone = sy.DataSubject(name=unique("Lone"))
    owner.data_subject_registry.add_data_subject(lone)
    with pytest.raises(sy.AlreadyExistsError, match="registered already"):
        owner.data_subject_registry.add_data_subject(sy.DataSubject(name=lone.name))
    with pytest.raises(sy.PermissionDeniedError):
        actors["scientist"].client.data_subject_registry.add_data_subject(
            sy.DataSubject(name=unique("Nope")))
    with pytest.raises(sy.NotFoundError):
        owner.data_subject_registry.get_by_name(unique("Missing"))

    tokens = {k: actors[k].token for k in ("admin", "owner", "scientist", "guest")}
    body = {"name": unique("Raw")}
    assert_error(api.post("/api/v1/data_subjects", body, token=tokens["scientist"]), 403,
                 "PERMISSION_DENIED")
    assert_error(api.post("/api/v1/data_subjects", body, token=tokens["guest"]), 403,
                 "PERMISSION_DENIED")
    assert_error(api.post("/api/v1/data_subjects", body), 401, "UNAUTHENTICATED")
    assert_error(api.get("/api/v1/data_subjects", token=tokens["guest"]), 403,
                 "PERMISSION_DENIED")
    assert_error(api.get("/api/v1/data_subjects"), 401, "UNAUTHENTICATED")
    for bad in (
        {},
        {"name": ""},
        {"name": "x" * 129},
        {"name": unique("B"), "aliases": "not a list"},
        {"name": unique("B"), "colour": "red"},
        {"name": unique("B"), "members": [{"description": "no name"}]},
        {"name": "Self", "members": [{"name": "Self"}]},
        {"name": unique("Deep"), "members": [{"name": "a", "members": [{"name": "b", "members": [
            {"name": "c", "members": [{"name": "d"}]}]}]}]},
    ):
        assert_error(api.post("/api/v1/data_subjects", bad, token=tokens["owner"]), 400,
                     "INVALID_ARGUMENT")
    # Nothing of the refused ones was registered.
    names = {s.name for s in owner.data_subject_registry.get_all()}
    assert "Self" not in names and "a" not in names


# Settings, roles, refresh --------------------------------------------------------------------


def test_settings_set_takes_a_whole_settings_object(actors):
    admin = actors["admin"].client
    services = admin.api.services
    current = services.settings.get()
    assert services.settings.set(current)  # unchanged: accepted
    changed = current.to_dict()
    changed["description"] = "set as a whole " + unique("d")
    assert services.settings.set(changed)
    assert admin.settings.get().description == changed["description"]
    with pytest.raises(ValueError, match="server_type"):
        admin.settings.set(dict(changed, server_type="gateway"))
    with pytest.raises(TypeError):
        admin.settings.set("description=x")
    with pytest.raises(sy.PermissionDeniedError):
        actors["owner"].client.settings.set(dict(changed, description="not an admin"))
    assert admin.settings.get().description == changed["description"]


def test_sy_roles_name_contributors_roles():
    from datasite.service.user.roles import Roles

    assert Roles is sy.roles
    dataset = sy.Dataset(name=unique("roles"))
    dataset.add_contributor(role=sy.roles.UPLOADER, name="Alice", email="alice@example.org",
                            note="the data engineer")
    assert dataset.contributors[0].role == "Uploader"
    assert str(sy.roles.SOURCE_CONTRIBUTOR) == "Source Contributor"


def test_client_refresh_reads_the_servers_description_again(actors):
    client = actors["scientist"].client
    first = client.api
    assert client.refresh() is None
    assert client.api is first and client.api.document["paths"]
    assert callable(client.api.services.data_subject.get_all)
    assert client.metadata.get("name")


# Code histories by user ------------------------------------------------------------------------


def test_code_histories_by_email_and_function_name(actors):
    from code_helpers import asset_of, upload_people

    owner, scientist = actors["owner"].client, actors["scientist"].client
    asset = asset_of(scientist, upload_people(owner))

    @sy.syft_function_single_use(data=asset)
    def hist_len(data):
        return len(data)

    scientist.code.submit(hist_len)

    @sy.syft_function_single_use(data=asset)
    def hist_len(data):  # noqa: F811 -- the second version
        return len(data) + 0

    scientist.code.submit(hist_len)
    email = actors["scientist"].user["email"]
    history = owner.code_histories[email]
    assert [c.version for c in history.hist_len] == [1, 2]
    assert history["hist_len"][0].version == 1
    with pytest.raises(sy.SyftException, match="negative indexing"):
        history.hist_len[-1]  # a reviewer indexes versions absolutely, as in PySyft
    assert scientist.code_history["hist_len"][-1].version == 2  # one's own history: any index
    assert "hist_len" in dir(history)
    assert email in repr(owner.code_histories)
    assert owner.code_histories["hist_len"][-1].version == 2  # by function name, as before
    with pytest.raises(AttributeError):
        history.no_such_function
    # A scientist sees only their own code: under another's email there is none.
    with pytest.raises(KeyError):
        scientist.code_histories[actors["owner"].user["email"]]["hist_len"]


# Free-standing files, empty placeholders -------------------------------------------------------


def test_owners_upload_files_and_read_them_back(actors, api, tmp_path):
    owner = actors["owner"].client
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text('{"x": 1}')
    b.write_text('{"x": 2}')
    lines = tmp_path / "lines.jsonl"
    lines.write_bytes(b'{"x": 1}\n{"x": 2}\n')
    pointer = owner.upload_files([a, b])
    assert isinstance(pointer, sy.ActionObject) and len(pointer) == 2
    assert pointer[0].read() == b'{"x": 1}' and pointer[1].file_name == "b.json"
    blob = pointer[1].syft_action_data
    assert blob.size == len('{"x": 2}') and blob.id
    assert list(owner.upload_files(lines)[0].syft_action_data.iter_lines()) == [
        b'{"x": 1}', b'{"x": 2}']
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "one.txt").write_text("1")
    (folder / "sub" / "two.txt").write_text("2")
    assert [f.file_name for f in owner.upload_files(str(folder))] == ["one.txt", "two.txt"]

    # Only its uploader reads a file; only owners and admins upload.
    for who in ("owner2", "admin", "scientist"):
        assert api.get("/api/v1/blobs/" + blob.id, token=actors[who].token).status in (403, 404)
    with pytest.raises(sy.PermissionDeniedError):
        actors["scientist"].client.upload_files([a])
    with pytest.raises(FileNotFoundError):
        owner.upload_files(tmp_path / "missing.json")
    with pytest.raises(ValueError):
        owner.upload_files([])


def test_an_asset_with_an_empty_mock_uploads_without_one(actors):
    import numpy as np

    owner = actors["owner"].client
    dataset = sy.Dataset(name=unique("empty mock"), asset_list=[
        sy.Asset(name="my asset2", data=np.array([1, 2, 3]), mock=sy.ActionObject.empty())])
    uploaded = owner.upload_dataset(dataset).value
    asset = owner.datasets[uploaded.id].assets["my asset2"]
    assert not asset.has_mock
    np.testing.assert_array_equal(asset.data, np.array([1, 2, 3]))
    assert sy.ActionObject.empty().is_empty and not sy.ActionObject.from_obj(0).is_empty
    # As the data of a high-side server's asset, a placeholder is no data.
    with pytest.raises(sy.InvalidArgumentError, match="no private data"):
        owner.upload_dataset(sy.Dataset(name=unique("placeholder"), asset_list=[
            sy.Asset(name="later", data=sy.ActionObject.empty(), mock=np.array([1]))]))
