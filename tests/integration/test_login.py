"""Login, guest sessions, tokens and logout."""

import datetime

import pytest

import datasite as sy
from helpers import PASSWORD, ROOT_EMAIL, ROOT_PASSWORD, assert_error, unique_email

LOGIN = "/api/v1/auth/login"


@pytest.fixture(scope="module")
def root_login(api):
    resp = api.post(LOGIN, {"email": ROOT_EMAIL, "password": ROOT_PASSWORD})
    assert resp.status == 200, resp
    return resp.json


@pytest.fixture(scope="module")
def root_token(root_login):
    return root_login["token"]


def parse_time(text):
    assert text.endswith("Z"), text
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc
    )


def test_login_answers_token_expiry_user_and_default_password(root_login):
    assert isinstance(root_login["token"], str) and len(root_login["token"]) >= 20
    expires = parse_time(root_login["expires_at"])
    assert expires > datetime.datetime.now(datetime.timezone.utc)
    assert root_login["user"]["email"] == ROOT_EMAIL
    assert root_login["user"]["role"] == "admin"
    assert root_login["user"]["is_root"] is True
    assert "password" not in root_login["user"]
    assert root_login["default_password"] is True


def test_login_of_non_root_user_has_no_default_password_flag(api, root_token):
    user = api.create_user(root_token, email=unique_email("plain"))
    resp = api.post(LOGIN, {"email": user["email"], "password": PASSWORD})
    assert resp.status == 200, resp
    assert resp.json["default_password"] is False
    assert resp.json["user"]["id"] == user["id"]


def test_wrong_password_and_unknown_email_answer_identically(api):
    wrong_password = api.post(LOGIN, {"email": ROOT_EMAIL, "password": "Wr0ng-Passw0rd"})
    unknown_email = api.post(LOGIN, {"email": unique_email("ghost"), "password": "Wr0ng-Passw0rd"})
    assert_error(wrong_password, 401, "UNAUTHENTICATED")
    assert (wrong_password.status, wrong_password.text) == (
        unknown_email.status,
        unknown_email.text,
    )
    assert sorted(wrong_password.headers) == sorted(unknown_email.headers)


def test_client_login_with_wrong_password_raises_authentication_error(module_server):
    with pytest.raises(sy.AuthenticationError) as err:
        sy.login(
            url="localhost", port=module_server.port, email=ROOT_EMAIL, password="Wr0ng-Passw0rd"
        )
    assert (err.value.status, err.value.code) == (401, "UNAUTHENTICATED")


def test_token_works_for_authenticated_routes(api, root_token):
    resp = api.get("/api/v1/account", token=root_token)
    assert resp.status == 200, resp
    assert resp.json["email"] == ROOT_EMAIL


@pytest.mark.parametrize(
    "header",
    ["Bearer not-a-real-token", "Bearer ", "Basic aW5mbzpjaGFuZ2V0aGlz", "not-even-a-scheme"],
)
def test_bad_authorization_is_unauthenticated(api, header):
    resp = api.get("/api/v1/account", headers={"Authorization": header})
    assert_error(resp, 401, "UNAUTHENTICATED")


def test_logout_revokes_the_token(api, root_token):
    user = api.create_user(root_token, email=unique_email("leaving"))
    token = api.login(user["email"], PASSWORD)
    resp = api.post("/api/v1/auth/logout", token=token)
    assert resp.status == 200, resp
    assert resp.json == {"message": "Logged out"}
    assert_error(api.get("/api/v1/account", token=token), 401, "UNAUTHENTICATED")
    assert_error(api.post("/api/v1/auth/logout", token=token), 401, "UNAUTHENTICATED")


def test_logout_without_token_is_unauthenticated(api):
    assert_error(api.post("/api/v1/auth/logout"), 401, "UNAUTHENTICATED")


def test_logout_of_one_session_keeps_the_others(api, root_token):
    assert api.post("/api/v1/auth/logout", token=api.guest()).status == 200
    assert api.get("/api/v1/account", token=root_token).status == 200


def test_guest_session_is_anonymous(api):
    resp = api.post("/api/v1/auth/guest", {})
    assert resp.status == 200, resp
    assert isinstance(resp.json["token"], str) and resp.json["token"]
    parse_time(resp.json["expires_at"])
    user = resp.json["user"]
    assert (user["role"], user["id"], user["email"]) == ("guest", None, None)


def test_guest_sessions_can_be_turned_off(api, root_token):
    resp = api.patch("/api/v1/settings", {"allow_guest_sessions": False}, token=root_token)
    assert resp.status == 200, resp
    try:
        assert_error(api.post("/api/v1/auth/guest", {}), 409, "FAILED_PRECONDITION")
    finally:
        resp = api.patch("/api/v1/settings", {"allow_guest_sessions": True}, token=root_token)
        assert resp.status == 200, resp
    assert api.post("/api/v1/auth/guest", {}).status == 200


def test_client_login_as_guest_refused_when_guest_sessions_off(module_server, api, root_token):
    assert (
        api.patch("/api/v1/settings", {"allow_guest_sessions": False}, token=root_token).status
        == 200
    )
    try:
        with pytest.raises(sy.FailedPreconditionError):
            sy.login_as_guest(url="localhost", port=module_server.port)
    finally:
        assert (
            api.patch("/api/v1/settings", {"allow_guest_sessions": True}, token=root_token).status
            == 200
        )


def test_login_email_is_case_insensitive(api):
    resp = api.post(LOGIN, {"email": ROOT_EMAIL.upper(), "password": ROOT_PASSWORD})
    assert resp.status == 200, resp
    assert resp.json["user"]["email"] == ROOT_EMAIL
