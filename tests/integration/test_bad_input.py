"""Bad input over raw HTTP: each is a 4xx with the documented error body and changes nothing."""

import json

import pytest

from helpers import PASSWORD, ROOT_EMAIL, ROOT_PASSWORD, assert_error, unique_email

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def token(api):
    return api.login(ROOT_EMAIL, ROOT_PASSWORD)


@pytest.fixture(scope="module")
def target(api, token):
    """A user whose record the PATCH cases try to damage."""
    return api.create_user(token, email=unique_email("target"), name="Target")


@pytest.fixture
def unchanged(api, token, target):
    """After the test: no user added; settings and the target user exactly as before."""
    total = api.user_total(token)
    settings = api.settings(token)
    user = api.get("/api/v1/users/" + target["id"], token=token).json
    yield
    assert api.user_total(token) == total
    assert api.settings(token) == settings
    assert api.get("/api/v1/users/" + target["id"], token=token).json == user


def new_user(**changes):
    body = {
        "name": "Bad Input",
        "email": unique_email("bad"),
        "password": PASSWORD,
        "password_verify": PASSWORD,
        "role": "data_scientist",
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not _DROP}


_DROP = object()

MALFORMED = {
    "truncated": '{"name": "x", "email": ',
    "not-json": "name=x&email=y",
    "trailing-garbage": '{"name": "x"} extra',
    "array": "[1, 2, 3]",
    "string": '"just a string"',
    "number": "42",
    "null": "null",
    "empty": "",
    "invalid-utf8": b'{"name": "\xff\xfe"}',
}

BAD_USERS = {
    "name-is-number": new_user(name=5),
    "email-is-list": new_user(email=["a@b.org"]),
    "password-is-number": new_user(password=12345678, password_verify=12345678),
    "role-is-number": new_user(role=7),
    "unknown-role": new_user(role="superuser"),
    "institution-is-object": new_user(institution={"x": 1}),
    "unknown-field": new_user(nickname="nick"),
    "missing-email": new_user(email=_DROP),
    "missing-password": new_user(password=_DROP, password_verify=_DROP),
    "email-without-at": new_user(email="no-at-sign.example.org"),
    "email-without-tld": new_user(email="user@localhost"),
    "email-with-space": new_user(email="a b@example.org"),
    "email-too-long": new_user(
        email="a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 58 + ".org"
    ),
    "password-too-short": new_user(password="Sh0rt", password_verify="Sh0rt"),
    "password-common": new_user(password="password123", password_verify="password123"),
    "password-common-upper": new_user(password="QWERTYUIOP", password_verify="QWERTYUIOP"),
    "password-repeated": new_user(password="zzzzzzzzzz", password_verify="zzzzzzzzzz"),
    "password-too-long": new_user(password="Aa1" + "x" * 126, password_verify="Aa1" + "x" * 126),
    "passwords-differ": new_user(password_verify="Different-Passw0rd"),
}

BAD_SETTINGS = {
    "signup-is-string": {"signup_enabled": "yes"},
    "name-is-number": {"name": 5},
    "description-is-list": {"description": ["x"]},
    "unknown-field": {"colour": "blue"},
    "read-only-field": {"server_type": "gateway"},
    "admin-email-invalid": {"admin_email": "not-an-email"},
    "guest-sessions-is-number": {"allow_guest_sessions": 1},
}

BAD_USER_PATCHES = {
    "name-is-number": {"name": 5},
    "unknown-field": {"is_root": True},
    "bad-email": {"email": "nope"},
    "unknown-role": {"role": "owner"},
    "weak-password": {"password": "weak"},
    "id-field": {"id": "00000000-0000-4000-8000-000000000000"},
}


@pytest.mark.parametrize("raw", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_json_creating_user(api, token, unchanged, raw):
    assert_error(api.post("/api/v1/users", raw=raw, token=token), 400, "INVALID_ARGUMENT")


@pytest.mark.parametrize("body", list(BAD_USERS.values()), ids=list(BAD_USERS))
def test_invalid_new_user(api, token, unchanged, body):
    assert_error(api.post("/api/v1/users", body, token=token), 400, "INVALID_ARGUMENT")


def test_unknown_field_is_named_in_the_message(api, token, unchanged):
    resp = api.post("/api/v1/users", new_user(nickname="nick"), token=token)
    assert_error(resp, 400, "INVALID_ARGUMENT")
    assert "nickname" in resp.error["message"]


@pytest.mark.parametrize("raw", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_json_updating_settings(api, token, unchanged, raw):
    assert_error(api.patch("/api/v1/settings", raw=raw, token=token), 400, "INVALID_ARGUMENT")


@pytest.mark.parametrize("body", list(BAD_SETTINGS.values()), ids=list(BAD_SETTINGS))
def test_invalid_settings_update(api, token, unchanged, body):
    assert_error(api.patch("/api/v1/settings", body, token=token), 400, "INVALID_ARGUMENT")


def test_invalid_field_refuses_the_whole_settings_update(api, token, unchanged):
    body = {"description": "should not be stored", "signup_enabled": "yes"}
    assert_error(api.patch("/api/v1/settings", body, token=token), 400, "INVALID_ARGUMENT")


@pytest.mark.parametrize("body", list(BAD_USER_PATCHES.values()), ids=list(BAD_USER_PATCHES))
def test_invalid_user_update(api, token, target, unchanged, body):
    resp = api.patch("/api/v1/users/" + target["id"], body, token=token)
    assert_error(resp, 400, "INVALID_ARGUMENT")


@pytest.mark.parametrize("raw", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_json_updating_user(api, token, target, unchanged, raw):
    resp = api.patch("/api/v1/users/" + target["id"], raw=raw, token=token)
    assert_error(resp, 400, "INVALID_ARGUMENT")


@pytest.mark.parametrize(
    "body",
    [{"name": 5}, {"role": "admin"}, {"email": "nope"}],
    ids=["name-is-number", "role-not-allowed", "bad-email"],
)
def test_invalid_account_update(api, token, unchanged, body):
    assert_error(api.patch("/api/v1/account", body, token=token), 400, "INVALID_ARGUMENT")


@pytest.mark.parametrize(
    "raw",
    ['{"email": "info@example.org", "password": ', "[]", '"text"', ""],
    ids=["truncated", "array", "string", "empty"],
)
def test_malformed_login(api, raw):
    assert_error(api.post("/api/v1/auth/login", raw=raw), 400, "INVALID_ARGUMENT")


@pytest.mark.parametrize(
    "body",
    [
        {"email": ROOT_EMAIL},
        {"password": ROOT_PASSWORD},
        {"email": ROOT_EMAIL, "password": 12345678},
        {"email": ROOT_EMAIL, "password": ROOT_PASSWORD, "otp": "1"},
    ],
    ids=["no-password", "no-email", "password-not-string", "unknown-field"],
)
def test_incomplete_login(api, body):
    assert_error(api.post("/api/v1/auth/login", body), 400, "INVALID_ARGUMENT")


def oversize(field_name, base, size=MIB + 1024):
    body = dict(base)
    body[field_name] = "x" * size
    return json.dumps(body).encode("utf-8")


def test_oversize_user_creation_is_payload_too_large(api, token, unchanged):
    raw = oversize("name", new_user())
    assert len(raw) > MIB
    assert_error(api.post("/api/v1/users", raw=raw, token=token), 413, "PAYLOAD_TOO_LARGE")


def test_oversize_settings_update_is_payload_too_large(api, token, unchanged):
    raw = oversize("description", {})
    assert_error(api.patch("/api/v1/settings", raw=raw, token=token), 413, "PAYLOAD_TOO_LARGE")


def test_oversize_login_is_payload_too_large(api):
    raw = oversize("password", {"email": ROOT_EMAIL})
    assert_error(api.post("/api/v1/auth/login", raw=raw), 413, "PAYLOAD_TOO_LARGE")


@pytest.mark.parametrize(
    "query",
    ["page=0", "page=-1", "page=abc", "page_size=0", "page_size=abc", "page_size=1001"],
)
def test_invalid_paging_is_invalid_argument(api, token, query):
    assert_error(api.get("/api/v1/users?" + query, token=token), 400, "INVALID_ARGUMENT")
