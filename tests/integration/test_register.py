"""POST /api/v1/auth/register: who may register, and what the answer tells (or does not tell)."""

import pytest

import datasite as sy
from helpers import PASSWORD, ROOT_EMAIL, ROOT_PASSWORD, assert_error, client_for, unique_email

REGISTER = "/api/v1/auth/register"


@pytest.fixture(scope="module")
def tokens(api):
    root = api.login(ROOT_EMAIL, ROOT_PASSWORD)
    owner = api.create_user(root, role="data_owner", email=unique_email("owner"))
    scientist = api.create_user(root, role="data_scientist", email=unique_email("scientist"))
    return {
        "root": root,
        "owner": api.login(owner["email"], PASSWORD),
        "scientist": api.login(scientist["email"], PASSWORD),
    }


@pytest.fixture
def signup(api, tokens):
    """Sets signup_enabled for one test, and turns it off again afterwards."""

    def set_signup(enabled):
        resp = api.patch("/api/v1/settings", {"signup_enabled": enabled}, token=tokens["root"])
        assert resp.status == 200, resp
        assert resp.json["signup_enabled"] is enabled

    yield set_signup
    set_signup(False)


def form(email=None, name="Reggie Ster", password=PASSWORD, **extra):
    body = {
        "name": name,
        "email": email or unique_email("reg"),
        "password": password,
        "password_verify": password,
    }
    body.update(extra)
    return body


def find(api, tokens, email):
    resp = api.get("/api/v1/users?search=" + email, token=tokens["root"])
    assert resp.status == 200, resp
    return [u for u in resp.json["items"] if u["email"] == email.lower()]


def test_anonymous_register_refused_while_signup_disabled(api, tokens, signup):
    signup(False)
    body = form()
    assert_error(api.post(REGISTER, body), 403, "PERMISSION_DENIED")
    assert find(api, tokens, body["email"]) == []


def test_data_scientist_token_does_not_open_registration(api, tokens, signup):
    signup(False)
    body = form()
    assert_error(api.post(REGISTER, body, token=tokens["scientist"]), 403, "PERMISSION_DENIED")
    assert find(api, tokens, body["email"]) == []


def test_anonymous_register_allowed_after_signup_enabled(module_server, api, tokens, signup):
    signup(True)
    body = form(institution="Caltech", website="https://caltech.edu")
    resp = api.post(REGISTER, body)
    assert resp.status == 201, resp
    assert isinstance(resp.json.get("message"), str) and resp.json["message"]
    assert "user" not in resp.json
    [user] = find(api, tokens, body["email"])
    assert (user["role"], user["institution"], user["website"]) == (
        "data_scientist",
        "Caltech",
        "https://caltech.edu",
    )


def test_registered_user_can_log_in(module_server, tokens, signup):
    signup(True)
    client = sy.login_as_guest(url="localhost", port=module_server.port)
    email = unique_email("joins")
    result = sy.register(
        url="localhost",
        port=module_server.port,
        name="Joiner",
        email=email,
        password=PASSWORD,
        password_verify=PASSWORD,
    )
    assert isinstance(result, sy.SyftSuccess)
    assert client.settings.signup_enabled is True
    joined = module_server.login(email=email, password=PASSWORD)
    assert joined.account.role == sy.ServiceRole.DATA_SCIENTIST


def test_settings_update_through_client_opens_registration(module_server, api, tokens, signup):
    root = client_for(module_server.port, tokens["root"])
    assert root.settings.update(signup_enabled=True)
    result = module_server.register(
        name="Via Handle",
        email=unique_email("handle"),
        password=PASSWORD,
        password_verify=PASSWORD,
    )
    assert isinstance(result, sy.SyftSuccess)


def test_self_registration_with_taken_email_answers_like_a_fresh_one(api, tokens, signup):
    signup(True)
    taken = api.create_user(tokens["root"], email=unique_email("taken"))
    fresh_email = unique_email("fresh")
    fresh = api.post(
        REGISTER, form(email=fresh_email, name="Same Name", password="Other-Passw0rd")
    )
    dup = api.post(
        REGISTER, form(email=taken["email"], name="Same Name", password="Other-Passw0rd")
    )
    assert fresh.status == dup.status == 201, (fresh, dup)
    assert fresh.text.replace(fresh_email, "<email>") == dup.text.replace(
        taken["email"], "<email>"
    )
    assert sorted(fresh.headers) == sorted(dup.headers)


def test_self_registration_with_taken_email_changes_nothing(api, tokens, signup):
    signup(True)
    taken = api.create_user(tokens["root"], email=unique_email("kept"), name="Original")
    before = api.user_total(tokens["root"])
    resp = api.post(
        REGISTER, form(email=taken["email"], name="Impostor", password="Other-Passw0rd")
    )
    assert resp.status == 201, resp
    assert api.user_total(tokens["root"]) == before
    [user] = find(api, tokens, taken["email"])
    assert user["name"] == "Original"
    impostor = api.post(
        "/api/v1/auth/login", {"email": taken["email"], "password": "Other-Passw0rd"}
    )
    assert_error(impostor, 401, "UNAUTHENTICATED")
    api.login(taken["email"], PASSWORD)


@pytest.mark.parametrize("who", ("owner", "root"))
def test_data_owners_and_admins_register_while_signup_disabled(api, tokens, signup, who):
    signup(False)
    body = form()
    resp = api.post(REGISTER, body, token=tokens[who])
    assert resp.status == 201, resp
    assert isinstance(resp.json.get("message"), str)
    assert resp.json["user"]["email"] == body["email"]
    assert resp.json["user"]["role"] == "data_scientist"
    assert len(find(api, tokens, body["email"])) == 1


@pytest.mark.parametrize("who", ("owner", "root"))
def test_data_owners_and_admins_get_already_exists_for_taken_email(api, tokens, who):
    taken = api.create_user(tokens["root"], email=unique_email("taken"))
    before = api.user_total(tokens["root"])
    resp = api.post(REGISTER, form(email=taken["email"]), token=tokens[who])
    assert_error(resp, 409, "ALREADY_EXISTS")
    assert api.user_total(tokens["root"]) == before


def test_client_register_as_data_owner_returns_user(module_server, tokens):
    owner = client_for(module_server.port, tokens["owner"])
    email = unique_email("byowner")
    result = owner.register(
        name="By Owner", email=email, password=PASSWORD, password_verify=PASSWORD
    )
    assert isinstance(result, sy.SyftSuccess)
    assert result.value.email == email


def test_client_register_taken_email_as_admin_raises_already_exists(module_server, api, tokens):
    taken = api.create_user(tokens["root"], email=unique_email("taken"))
    root = client_for(module_server.port, tokens["root"])
    with pytest.raises(sy.AlreadyExistsError):
        root.register(
            name="Again", email=taken["email"], password=PASSWORD, password_verify=PASSWORD
        )


@pytest.mark.parametrize(
    "body",
    [
        form(password="qwertyuiop"),
        form(password="Sh0rt"),
        form(email="not-an-email"),
        dict(form(), password_verify="Different-Passw0rd"),
        dict(form(), role="admin"),
        {"email": unique_email("noname"), "password": PASSWORD, "password_verify": PASSWORD},
    ],
    ids=[
        "common-password",
        "short-password",
        "bad-email",
        "passwords-differ",
        "role-field",
        "missing-name",
    ],
)
def test_invalid_registration_refused(api, tokens, signup, body):
    signup(True)
    before = api.user_total(tokens["root"])
    assert_error(api.post(REGISTER, body), 400, "INVALID_ARGUMENT")
    assert api.user_total(tokens["root"]) == before
