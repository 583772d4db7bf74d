"""Relaunching a server by name keeps its storage; ``reset=True`` wipes it."""

import datasite as sy
from helpers import PASSWORD, ROOT_EMAIL, ROOT_PASSWORD, Api, assert_error, unique, unique_email


def populate(server):
    """Adds a user and changes settings; returns (user email, settings before relaunch)."""
    api = Api(server.port)
    token = api.login(ROOT_EMAIL, ROOT_PASSWORD)
    email = unique_email("kept")
    api.create_user(token, email=email)
    resp = api.patch(
        "/api/v1/settings",
        {"description": "Survives a relaunch.", "signup_enabled": True},
        token=token,
    )
    assert resp.status == 200, resp
    return email, api.settings(token)


def test_relaunch_keeps_users_and_settings(launcher):
    name = unique("keep")
    first = launcher.launch(name=name)
    email, settings = populate(first)
    launcher.land(first)

    second = launcher.launch(name=name)
    api = Api(second.port)
    token = api.login(email, PASSWORD)
    kept = api.settings(token)
    for field in ("id", "name", "description", "signup_enabled", "deployed_on", "admin_email"):
        assert kept[field] == settings[field], field


def test_relaunch_keeps_changed_root_password(launcher):
    name = unique("keep")
    first = launcher.launch(name=name)
    api = Api(first.port)
    token = api.login(ROOT_EMAIL, ROOT_PASSWORD)
    resp = api.post(
        "/api/v1/account/password",
        {"old_password": ROOT_PASSWORD, "new_password": "Kept-Passw0rd"},
        token=token,
    )
    assert resp.status == 200, resp
    launcher.land(first)

    second = launcher.launch(name=name)
    api = Api(second.port)
    assert_error(
        api.post("/api/v1/auth/login", {"email": ROOT_EMAIL, "password": ROOT_PASSWORD}),
        401,
        "UNAUTHENTICATED",
    )
    resp = api.post("/api/v1/auth/login", {"email": ROOT_EMAIL, "password": "Kept-Passw0rd"})
    assert resp.status == 200, resp
    assert resp.json["default_password"] is False


def test_reset_wipes_users_and_settings(launcher):
    name = unique("wipe")
    first = launcher.launch(name=name)
    email, settings = populate(first)
    launcher.land(first)

    second = launcher.launch(name=name, reset=True)
    api = Api(second.port)
    assert_error(
        api.post("/api/v1/auth/login", {"email": email, "password": PASSWORD}),
        401,
        "UNAUTHENTICATED",
    )
    fresh = api.settings(api.guest())
    assert fresh["description"] != "Survives a relaunch."
    assert fresh["signup_enabled"] is False
    root = api.post("/api/v1/auth/login", {"email": ROOT_EMAIL, "password": ROOT_PASSWORD})
    assert root.status == 200, root
    assert root.json["default_password"] is True
    resp = api.get("/api/v1/users?search=" + email, token=root.json["token"])
    assert resp.json["items"] == []


def test_tokens_do_not_survive_reset(launcher):
    name = unique("wipe")
    first = launcher.launch(name=name)
    token = Api(first.port).login(ROOT_EMAIL, ROOT_PASSWORD)
    launcher.land(first)
    second = launcher.launch(name=name, reset=True)
    assert_error(Api(second.port).get("/api/v1/account", token=token), 401, "UNAUTHENTICATED")


def test_servers_with_different_names_do_not_share_storage(launcher):
    one = launcher.launch()
    email, _ = populate(one)
    other = launcher.launch()
    resp = Api(other.port).post("/api/v1/auth/login", {"email": email, "password": PASSWORD})
    assert_error(resp, 401, "UNAUTHENTICATED")


def test_client_sees_kept_settings_after_relaunch(launcher):
    name = unique("keep")
    first = launcher.launch(name=name)
    populate(first)
    launcher.land(first)
    second = launcher.launch(name=name)
    assert second.client.settings.description == "Survives a relaunch."
    assert isinstance(second.client, sy.DatasiteClient)
