"""Changing your own password: the new one works, the old one does not, other sessions end."""

import pytest

import datasite as sy
from helpers import PASSWORD, ROOT_EMAIL, ROOT_PASSWORD, assert_error, client_for, unique_email

PASSWORD_ROUTE = "/api/v1/account/password"
NEW_PASSWORD = "N3w-Passw0rd-Here"


@pytest.fixture(scope="module")
def root_token(api):
    return api.login(ROOT_EMAIL, ROOT_PASSWORD)


@pytest.fixture
def user(api, root_token):
    return api.create_user(root_token, email=unique_email("acct"))


def test_password_change_ends_other_sessions_and_keeps_this_one(api, user):
    current = api.login(user["email"], PASSWORD)
    other = api.login(user["email"], PASSWORD)
    resp = api.post(
        PASSWORD_ROUTE, {"old_password": PASSWORD, "new_password": NEW_PASSWORD}, token=current
    )
    assert resp.status == 200, resp
    assert isinstance(resp.json.get("message"), str)
    assert_error(api.get("/api/v1/account", token=other), 401, "UNAUTHENTICATED")
    assert api.get("/api/v1/account", token=current).status == 200


def test_new_password_replaces_the_old_one(api, user):
    token = api.login(user["email"], PASSWORD)
    resp = api.post(
        PASSWORD_ROUTE, {"old_password": PASSWORD, "new_password": NEW_PASSWORD}, token=token
    )
    assert resp.status == 200, resp
    assert_error(
        api.post("/api/v1/auth/login", {"email": user["email"], "password": PASSWORD}),
        401,
        "UNAUTHENTICATED",
    )
    api.login(user["email"], NEW_PASSWORD)


def test_client_set_password_changes_it(module_server, api, user):
    client = client_for(module_server.port, api.login(user["email"], PASSWORD))
    result = client.account.set_password(NEW_PASSWORD, old_password=PASSWORD)
    assert isinstance(result, sy.SyftSuccess)
    assert client.account.email == user["email"]


def test_client_set_password_with_wrong_old_password_raises(module_server, api, user):
    client = client_for(module_server.port, api.login(user["email"], PASSWORD))
    with pytest.raises(sy.FailedPreconditionError) as err:
        client.account.set_password(NEW_PASSWORD, old_password="Wr0ng-Passw0rd")
    assert (err.value.status, err.value.code) == (409, "FAILED_PRECONDITION")


def test_client_set_password_to_weak_password_raises(module_server, api, user):
    client = client_for(module_server.port, api.login(user["email"], PASSWORD))
    with pytest.raises(sy.InvalidArgumentError):
        client.account.set_password("weak", old_password=PASSWORD)
