"""Every role rule of docs/API.md, allowed and refused, on one shared server.

Actors log in once each (the login rate limit is per client address); every test that changes or
deletes a user works on a victim it creates itself.
"""

import datetime
import uuid

import pytest

import datasite as sy
from helpers import PASSWORD, ROOT_EMAIL, ROOT_PASSWORD, assert_error, client_for, unique_email

ROLES = ("guest", "data_scientist", "data_owner", "admin")


class Actor:
    def __init__(self, token, user):
        self.token = token
        self.user = user
        self.id = user["id"] if user else None


@pytest.fixture(scope="module")
def actors(api):
    """root, admin (a second admin), owner (data owner), scientist (data scientist), guest."""
    root_token = api.login(ROOT_EMAIL, ROOT_PASSWORD)
    people = {"root": Actor(root_token, api.get("/api/v1/account", token=root_token).json)}
    for key, role in (
        ("admin", "admin"),
        ("owner", "data_owner"),
        ("scientist", "data_scientist"),
    ):
        user = api.create_user(root_token, role=role, email=unique_email(key))
        people[key] = Actor(api.login(user["email"], PASSWORD), user)
    people["guest"] = Actor(api.guest(), None)
    return people


@pytest.fixture
def victim(api, actors):
    """Creates a user of the given role (as root) for one test."""

    def make(role="data_scientist"):
        return api.create_user(actors["root"].token, role=role, email=unique_email("victim"))

    return make


def user_path(uid):
    return "/api/v1/users/{}".format(uid)


def fetch(api, actors, uid):
    resp = api.get(user_path(uid), token=actors["root"].token)
    assert resp.status == 200, resp
    return resp.json


def exists(api, actors, uid):
    resp = api.get(user_path(uid), token=actors["root"].token)
    assert resp.status in (200, 404), resp
    return resp.status == 200


# Creating users ----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_admin_creates_user_of_each_role(module_server, actors, api, role):
    client = client_for(module_server.port, actors["root"].token)
    user = client.users.create(
        name="New",
        email=unique_email(role),
        password=PASSWORD,
        password_verify=PASSWORD,
        role=sy.ServiceRole(role),
    )
    assert user.role == sy.ServiceRole(role)
    assert fetch(api, actors, user.id)["role"] == role


@pytest.mark.parametrize("role", ROLES)
def test_second_admin_creates_user_of_each_role(api, actors, role):
    resp = api.post(
        "/api/v1/users",
        {
            "name": "New",
            "email": unique_email(role),
            "password": PASSWORD,
            "password_verify": PASSWORD,
            "role": role,
        },
        token=actors["admin"].token,
    )
    assert resp.status == 201, resp
    assert resp.json["role"] == role


@pytest.mark.parametrize("role", ("guest", "data_scientist"))
def test_data_owner_creates_guests_and_data_scientists(module_server, actors, api, role):
    client = client_for(module_server.port, actors["owner"].token)
    user = client.users.create(
        name="New",
        email=unique_email(role),
        password=PASSWORD,
        password_verify=PASSWORD,
        role=role,
    )
    assert fetch(api, actors, user.id)["role"] == role


@pytest.mark.parametrize("role", ("data_owner", "admin"))
def test_data_owner_cannot_create_data_owners_or_admins(module_server, actors, api, role):
    client = client_for(module_server.port, actors["owner"].token)
    email = unique_email(role)
    with pytest.raises(sy.PermissionDeniedError) as err:
        client.users.create(
            name="New", email=email, password=PASSWORD, password_verify=PASSWORD, role=role
        )
    assert (err.value.status, err.value.code) == (403, "PERMISSION_DENIED")
    resp = api.get("/api/v1/users?search=" + email, token=actors["root"].token)
    assert email not in [u["email"] for u in resp.json["items"]]


@pytest.mark.parametrize("who", ("scientist", "guest"))
def test_data_scientists_and_guests_cannot_create_users(api, actors, who):
    email = unique_email("nope")
    resp = api.post(
        "/api/v1/users",
        {"name": "New", "email": email, "password": PASSWORD, "password_verify": PASSWORD},
        token=actors[who].token,
    )
    assert_error(resp, 403, "PERMISSION_DENIED")
    listed = api.get("/api/v1/users?search=" + email, token=actors["root"].token).json["items"]
    assert email not in [u["email"] for u in listed]


def test_create_user_without_token_is_unauthenticated(api):
    resp = api.post(
        "/api/v1/users", {"name": "New", "email": unique_email(), "password": PASSWORD}
    )
    assert_error(resp, 401, "UNAUTHENTICATED")


def test_created_user_role_defaults_to_data_scientist(api, actors):
    resp = api.post(
        "/api/v1/users",
        {"name": "Default", "email": unique_email(), "password": PASSWORD},
        token=actors["root"].token,
    )
    assert resp.status == 201, resp
    assert resp.json["role"] == "data_scientist"


def test_created_user_has_documented_fields(api, actors):
    user = api.create_user(actors["root"].token, email=unique_email("fields"))
    for field in (
        "id",
        "email",
        "name",
        "role",
        "institution",
        "website",
        "is_root",
        "created_at",
        "updated_at",
    ):
        assert field in user, (field, user)
    assert "password" not in user and "password_hash" not in user
    assert user["is_root"] is False
    assert user["id"] == str(uuid.UUID(user["id"]))
    for stamp in ("created_at", "updated_at"):
        datetime.datetime.strptime(user[stamp], "%Y-%m-%dT%H:%M:%SZ")


def test_admin_cannot_give_a_user_a_taken_email(api, actors, victim):
    first, second = victim(), victim()
    resp = api.patch(
        user_path(second["id"]), {"email": first["email"]}, token=actors["root"].token
    )
    assert_error(resp, 409, "ALREADY_EXISTS")
    assert fetch(api, actors, second["id"])["email"] == second["email"]


# 254 characters: a 64-character local part (the most RFC 5321 allows) and 63-character labels.
EMAIL_254 = "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 57 + ".org"


@pytest.mark.parametrize(
    "email,password",
    [
        (None, "tulip-9x"),
        (None, "Aa1" + "x" * 125),
        (EMAIL_254, None),
    ],
    ids=["password-8-chars", "password-128-chars", "email-254-chars"],
)
def test_limits_are_inclusive(api, actors, email, password):
    body = {
        "name": "Limits",
        "email": email or unique_email("limit"),
        "password": password or PASSWORD,
    }
    resp = api.post("/api/v1/users", body, token=actors["root"].token)
    assert resp.status == 201, resp


def test_create_user_stores_email_lower_cased(api, actors):
    email = unique_email("MiXeD")
    resp = api.post(
        "/api/v1/users",
        {"name": "Case", "email": email.upper(), "password": PASSWORD},
        token=actors["root"].token,
    )
    assert resp.status == 201, resp
    assert resp.json["email"] == email.lower()


def test_create_user_with_email_taken_in_other_case_is_already_exists(api, actors):
    email = unique_email("twice")
    api.create_user(actors["root"].token, email=email)
    resp = api.post(
        "/api/v1/users",
        {"name": "Again", "email": email.upper(), "password": PASSWORD},
        token=actors["root"].token,
    )
    assert_error(resp, 409, "ALREADY_EXISTS")


# Listing and viewing users -----------------------------------------------------------------------


@pytest.mark.parametrize("who", ("root", "admin", "owner"))
def test_data_owners_and_admins_list_users(api, actors, who):
    resp = api.get("/api/v1/users", token=actors[who].token)
    assert resp.status == 200, resp
    body = resp.json
    assert set(body) >= {"items", "total", "page", "page_size"}
    assert ROOT_EMAIL in [u["email"] for u in body["items"]]
    assert body["total"] >= len(body["items"]) >= 4


def test_data_scientist_cannot_list_users(module_server, api, actors):
    assert_error(
        api.get("/api/v1/users", token=actors["scientist"].token), 403, "PERMISSION_DENIED"
    )
    client = client_for(module_server.port, actors["scientist"].token)
    with pytest.raises(sy.PermissionDeniedError):
        len(client.users)


def test_guest_cannot_list_users(api, actors):
    assert_error(api.get("/api/v1/users", token=actors["guest"].token), 403, "PERMISSION_DENIED")


def test_list_users_without_token_is_unauthenticated(api):
    assert_error(api.get("/api/v1/users"), 401, "UNAUTHENTICATED")


def test_list_users_pages(api, actors, victim):
    victim()
    victim()
    resp = api.get("/api/v1/users?page=2&page_size=1", token=actors["root"].token)
    assert resp.status == 200, resp
    assert (len(resp.json["items"]), resp.json["page"], resp.json["page_size"]) == (1, 2, 1)
    assert resp.json["total"] >= 3


def test_list_users_search_filters(api, actors, victim):
    target = victim()
    resp = api.get("/api/v1/users?search=" + target["email"], token=actors["root"].token)
    assert resp.status == 200, resp
    assert [u["email"] for u in resp.json["items"]] == [target["email"]]
    assert resp.json["total"] == 1


def test_data_scientist_views_self(api, actors):
    resp = api.get(user_path(actors["scientist"].id), token=actors["scientist"].token)
    assert resp.status == 200, resp
    assert resp.json["email"] == actors["scientist"].user["email"]


@pytest.mark.parametrize("other", ("root", "owner", "victim"))
def test_data_scientist_cannot_view_others(api, actors, victim, other):
    uid = victim()["id"] if other == "victim" else actors[other].id
    assert_error(
        api.get(user_path(uid), token=actors["scientist"].token), 403, "PERMISSION_DENIED"
    )


def test_guest_cannot_view_users(api, actors):
    assert_error(
        api.get(user_path(actors["scientist"].id), token=actors["guest"].token),
        403,
        "PERMISSION_DENIED",
    )


@pytest.mark.parametrize("who", ("owner", "admin"))
def test_data_owners_and_admins_view_others(api, actors, victim, who):
    target = victim()
    resp = api.get(user_path(target["id"]), token=actors[who].token)
    assert resp.status == 200, resp
    assert resp.json["email"] == target["email"]


def test_view_unknown_user_is_not_found(api, actors):
    resp = api.get(user_path("00000000-0000-4000-8000-000000000000"), token=actors["root"].token)
    assert_error(resp, 404, "NOT_FOUND")


# Editing users -----------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ("scientist", "owner", "admin"))
def test_users_edit_their_own_profile(api, actors, who):
    changes = {
        "name": "Renamed " + who,
        "institution": "Inst " + who,
        "website": "https://{}.example.org".format(who),
    }
    resp = api.patch(user_path(actors[who].id), changes, token=actors[who].token)
    assert resp.status == 200, resp
    fresh = fetch(api, actors, actors[who].id)
    assert {k: fresh[k] for k in changes} == changes


# Regression: a scientist changing their email got 409 naming the address when it was taken, so
# they could test whether anyone had an account. Now the refusal does not depend on the address.
@pytest.mark.parametrize("route", ("/api/v1/account", "users/{id}"))
def test_data_scientist_email_change_is_refused_alike_for_taken_and_free(api, actors, victim, route):
    target = victim()
    token = api.login(target["email"], PASSWORD)
    path = user_path(target["id"]) if route == "users/{id}" else route
    taken = api.patch(path, {"email": actors["owner"].user["email"]}, token=token)
    free = api.patch(path, {"email": unique_email("moved")}, token=token)
    assert_error(taken, 403, "PERMISSION_DENIED")
    assert_error(free, 403, "PERMISSION_DENIED")
    assert taken.error == free.error
    assert actors["owner"].user["email"] not in taken.error["message"]
    assert fetch(api, actors, target["id"])["email"] == target["email"]


@pytest.mark.parametrize("who", ("owner", "admin"))
def test_owners_and_admins_edit_own_email(api, actors, victim, who):
    target = victim("admin" if who == "admin" else "data_owner")
    token = api.login(target["email"], PASSWORD)
    new_email = unique_email("moved")
    resp = api.patch(user_path(target["id"]), {"email": new_email}, token=token)
    assert resp.status == 200, resp
    assert fetch(api, actors, target["id"])["email"] == new_email


@pytest.mark.parametrize("who", ("scientist", "owner"))
def test_only_admins_edit_other_users_fields(api, actors, victim, who):
    target = victim()
    resp = api.patch(user_path(target["id"]), {"name": "Hijacked"}, token=actors[who].token)
    assert_error(resp, 403, "PERMISSION_DENIED")
    assert fetch(api, actors, target["id"])["name"] == target["name"]


@pytest.mark.parametrize("who", ("root", "admin"))
def test_admins_edit_other_users_fields(module_server, api, actors, victim, who):
    target = victim()
    client = client_for(module_server.port, actors[who].token)
    updated = client.users.update(target["id"], name="Edited", institution="Edited Inst")
    assert (updated.name, updated.institution) == ("Edited", "Edited Inst")
    assert fetch(api, actors, target["id"])["name"] == "Edited"


def test_data_scientist_cannot_change_own_role(api, actors):
    resp = api.patch(
        user_path(actors["scientist"].id), {"role": "admin"}, token=actors["scientist"].token
    )
    assert_error(resp, 403, "PERMISSION_DENIED")
    assert fetch(api, actors, actors["scientist"].id)["role"] == "data_scientist"


def test_data_scientist_cannot_change_others_roles(api, actors, victim):
    target = victim("guest")
    resp = api.patch(
        user_path(target["id"]), {"role": "data_scientist"}, token=actors["scientist"].token
    )
    assert_error(resp, 403, "PERMISSION_DENIED")
    assert fetch(api, actors, target["id"])["role"] == "guest"


def test_guest_cannot_edit_users(api, actors, victim):
    target = victim()
    resp = api.patch(
        user_path(target["id"]), {"name": "Guest was here"}, token=actors["guest"].token
    )
    assert_error(resp, 403, "PERMISSION_DENIED")
    assert fetch(api, actors, target["id"])["name"] == target["name"]


@pytest.mark.parametrize("start,end", [("data_scientist", "guest"), ("guest", "data_scientist")])
def test_data_owner_sets_roles_below_data_owner(api, actors, victim, start, end):
    target = victim(start)
    resp = api.patch(user_path(target["id"]), {"role": end}, token=actors["owner"].token)
    assert resp.status == 200, resp
    assert fetch(api, actors, target["id"])["role"] == end


@pytest.mark.parametrize("role", ("data_owner", "admin"))
def test_data_owner_cannot_promote_to_data_owner_or_admin(api, actors, victim, role):
    target = victim("data_scientist")
    resp = api.patch(user_path(target["id"]), {"role": role}, token=actors["owner"].token)
    assert_error(resp, 403, "PERMISSION_DENIED")
    assert fetch(api, actors, target["id"])["role"] == "data_scientist"


@pytest.mark.parametrize("role", ("data_owner", "admin"))
def test_data_owner_cannot_change_roles_of_data_owners_or_admins(api, actors, victim, role):
    target = victim(role)
    resp = api.patch(
        user_path(target["id"]), {"role": "data_scientist"}, token=actors["owner"].token
    )
    assert_error(resp, 403, "PERMISSION_DENIED")
    assert fetch(api, actors, target["id"])["role"] == role


@pytest.mark.parametrize("role", ("admin", "data_scientist"))
def test_data_owner_cannot_change_own_role(api, actors, role):
    resp = api.patch(user_path(actors["owner"].id), {"role": role}, token=actors["owner"].token)
    assert_error(resp, 403, "PERMISSION_DENIED")
    assert fetch(api, actors, actors["owner"].id)["role"] == "data_owner"


@pytest.mark.parametrize(
    "start,end", [("data_scientist", "admin"), ("admin", "data_owner"), ("data_owner", "guest")]
)
def test_admin_changes_any_non_root_role(api, actors, victim, start, end):
    target = victim(start)
    resp = api.patch(user_path(target["id"]), {"role": end}, token=actors["admin"].token)
    assert resp.status == 200, resp
    assert fetch(api, actors, target["id"])["role"] == end


@pytest.mark.parametrize("who", ("root", "admin", "owner"))
def test_nobody_changes_root_role(api, actors, who):
    resp = api.patch(
        user_path(actors["root"].id), {"role": "data_scientist"}, token=actors[who].token
    )
    assert_error(resp, 403, "PERMISSION_DENIED")
    root = fetch(api, actors, actors["root"].id)
    assert (root["role"], root["is_root"]) == ("admin", True)


def test_admin_sets_another_users_password(api, actors, victim):
    target = victim()
    resp = api.patch(
        user_path(target["id"]), {"password": "Reset-Passw0rd"}, token=actors["admin"].token
    )
    assert resp.status == 200, resp
    assert "password" not in resp.json
    api.login(target["email"], "Reset-Passw0rd")


def test_admin_set_password_replaces_the_old_one(api, actors, victim):
    target = victim()
    resp = api.patch(
        user_path(target["id"]), {"password": "Reset-Passw0rd"}, token=actors["root"].token
    )
    assert resp.status == 200, resp
    old = api.post("/api/v1/auth/login", {"email": target["email"], "password": PASSWORD})
    assert_error(old, 401, "UNAUTHENTICATED")


@pytest.mark.parametrize("who", ("owner", "scientist"))
def test_only_admins_set_another_users_password(api, actors, victim, who):
    target = victim("guest" if who == "owner" else "data_scientist")
    resp = api.patch(
        user_path(target["id"]), {"password": "Stolen-Passw0rd"}, token=actors[who].token
    )
    assert_error(resp, 403, "PERMISSION_DENIED")


def test_edit_unknown_user_is_not_found(api, actors):
    resp = api.patch(
        user_path("00000000-0000-4000-8000-000000000000"),
        {"name": "Ghost"},
        token=actors["root"].token,
    )
    assert_error(resp, 404, "NOT_FOUND")


# Deleting users ----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_admin_deletes_users_of_any_role(api, actors, victim, role):
    target = victim(role)
    resp = api.delete(user_path(target["id"]), token=actors["admin"].token)
    assert resp.status == 200, resp
    assert isinstance(resp.json.get("message"), str)
    assert not exists(api, actors, target["id"])


@pytest.mark.parametrize("role", ("guest", "data_scientist"))
def test_data_owner_deletes_guests_and_data_scientists(module_server, api, actors, victim, role):
    target = victim(role)
    client = client_for(module_server.port, actors["owner"].token)
    assert client.users.delete(target["id"])
    assert not exists(api, actors, target["id"])


@pytest.mark.parametrize("role", ("data_owner", "admin"))
def test_data_owner_cannot_delete_data_owners_or_admins(module_server, api, actors, victim, role):
    target = victim(role)
    client = client_for(module_server.port, actors["owner"].token)
    with pytest.raises(sy.PermissionDeniedError):
        client.users.delete(target["id"])
    assert exists(api, actors, target["id"])


@pytest.mark.parametrize("who", ("scientist", "guest"))
def test_data_scientists_and_guests_cannot_delete_users(api, actors, victim, who):
    target = victim("guest")
    assert_error(
        api.delete(user_path(target["id"]), token=actors[who].token), 403, "PERMISSION_DENIED"
    )
    assert exists(api, actors, target["id"])


@pytest.mark.parametrize("who", ("root", "admin", "owner"))
def test_nobody_deletes_root(api, actors, who):
    assert_error(
        api.delete(user_path(actors["root"].id), token=actors[who].token), 403, "PERMISSION_DENIED"
    )
    assert exists(api, actors, actors["root"].id)


def test_admin_cannot_delete_self(api, actors, victim):
    me = victim("admin")
    token = api.login(me["email"], PASSWORD)
    assert_error(api.delete(user_path(me["id"]), token=token), 403, "PERMISSION_DENIED")
    assert exists(api, actors, me["id"])


@pytest.mark.parametrize("who", ("owner", "scientist"))
def test_non_admins_cannot_delete_self(api, actors, who):
    assert_error(
        api.delete(user_path(actors[who].id), token=actors[who].token), 403, "PERMISSION_DENIED"
    )
    assert exists(api, actors, actors[who].id)


def test_delete_unknown_user_is_not_found(api, actors):
    resp = api.delete(
        user_path("00000000-0000-4000-8000-000000000000"), token=actors["root"].token
    )
    assert_error(resp, 404, "NOT_FOUND")


def test_delete_without_token_is_unauthenticated(api, victim):
    target = victim()
    assert_error(api.delete(user_path(target["id"])), 401, "UNAUTHENTICATED")


# Settings ----------------------------------------------------------------------------------------


SETTINGS_FIELDS = (
    "id",
    "name",
    "organization",
    "description",
    "deployed_on",
    "signup_enabled",
    "notifications_enabled",
    "admin_email",
    "server_type",
    "server_side_type",
    "association_request_auto_approval",
    "allow_guest_sessions",
    "welcome_markdown",
    "version",
)


@pytest.mark.parametrize("who", ("root", "admin", "owner", "scientist", "guest"))
def test_every_session_reads_settings(api, actors, who):
    resp = api.get("/api/v1/settings", token=actors[who].token)
    assert resp.status == 200, resp
    assert resp.json["admin_email"] == ROOT_EMAIL


ADMIN_ONLY_SETTINGS = ("association_request_auto_approval", "allow_guest_sessions")


@pytest.mark.parametrize("who", ("root", "admin"))
def test_admins_read_every_documented_settings_field(api, actors, who):
    settings = api.get("/api/v1/settings", token=actors[who].token).json
    missing = [field for field in SETTINGS_FIELDS if field not in settings]
    assert missing == [], "GET /api/v1/settings as {} lacks {}".format(who, missing)


@pytest.mark.parametrize("who", ("owner", "scientist", "guest"))
def test_others_read_the_public_settings_only(api, actors, who):
    settings = api.get("/api/v1/settings", token=actors[who].token).json
    public = [field for field in SETTINGS_FIELDS if field not in ADMIN_ONLY_SETTINGS]
    missing = [field for field in public if field not in settings]
    assert missing == [], "GET /api/v1/settings as {} lacks {}".format(who, missing)
    shown = [field for field in ADMIN_ONLY_SETTINGS if field in settings]
    assert shown == [], "GET /api/v1/settings as {} shows admin-only {}".format(who, shown)


@pytest.mark.parametrize("who", ("root", "admin", "owner", "scientist", "guest"))
def test_every_session_reads_welcome(api, actors, who):
    resp = api.get("/api/v1/settings/welcome", token=actors[who].token)
    assert resp.status == 200, resp
    assert isinstance(resp.json["markdown"], str)


def test_settings_without_token_is_unauthenticated(api):
    assert_error(api.get("/api/v1/settings"), 401, "UNAUTHENTICATED")
    assert_error(api.get("/api/v1/settings/welcome"), 401, "UNAUTHENTICATED")


@pytest.mark.parametrize("who", ("root", "admin"))
def test_admins_update_settings(module_server, api, actors, who):
    client = client_for(module_server.port, actors[who].token)
    assert client.settings.update(description="Set by " + who)
    assert api.settings(actors["root"].token)["description"] == "Set by " + who


@pytest.mark.parametrize("who", ("owner", "scientist", "guest"))
def test_only_admins_update_settings(api, actors, who):
    before = api.settings(actors["root"].token)
    resp = api.patch("/api/v1/settings", {"description": "Set by " + who}, token=actors[who].token)
    assert_error(resp, 403, "PERMISSION_DENIED")
    assert api.settings(actors["root"].token) == before


def test_guest_settings_update_through_client_raises(module_server, actors):
    guest = client_for(module_server.port, actors["guest"].token)
    assert guest.settings.name
    with pytest.raises(sy.PermissionDeniedError):
        guest.settings.update(signup_enabled=True)


def test_update_settings_without_token_is_unauthenticated(api, actors):
    before = api.settings(actors["root"].token)
    assert_error(
        api.patch("/api/v1/settings", {"description": "anonymous"}), 401, "UNAUTHENTICATED"
    )
    assert api.settings(actors["root"].token) == before


# Account -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ("root", "admin", "owner", "scientist"))
def test_account_is_the_caller(api, actors, who):
    resp = api.get("/api/v1/account", token=actors[who].token)
    assert resp.status == 200, resp
    assert resp.json["id"] == (actors[who].id)


def test_guest_account_is_anonymous(api, actors):
    resp = api.get("/api/v1/account", token=actors["guest"].token)
    assert resp.status == 200, resp
    assert (resp.json["role"], resp.json["id"], resp.json["email"]) == ("guest", None, None)


def test_account_without_token_is_unauthenticated(api):
    assert_error(api.get("/api/v1/account"), 401, "UNAUTHENTICATED")


def test_data_scientist_updates_own_account(api, actors):
    resp = api.patch(
        "/api/v1/account", {"institution": "Own Institution"}, token=actors["scientist"].token
    )
    assert resp.status == 200, resp
    assert resp.json["institution"] == "Own Institution"
    assert resp.json["id"] == actors["scientist"].id


def test_account_update_cannot_change_role(api, actors):
    resp = api.patch("/api/v1/account", {"role": "admin"}, token=actors["scientist"].token)
    assert_error(resp, 400, "INVALID_ARGUMENT")
    assert fetch(api, actors, actors["scientist"].id)["role"] == "data_scientist"


def test_guest_cannot_update_account(api, actors):
    resp = api.patch("/api/v1/account", {"name": "Guest"}, token=actors["guest"].token)
    assert_error(resp, 403, "PERMISSION_DENIED")


def test_guest_cannot_change_password(module_server, api, actors):
    resp = api.post(
        "/api/v1/account/password",
        {"old_password": "whatever", "new_password": "N3w-Passw0rd"},
        token=actors["guest"].token,
    )
    assert_error(resp, 403, "PERMISSION_DENIED")
    guest = client_for(module_server.port, actors["guest"].token)
    with pytest.raises(sy.PermissionDeniedError):
        guest.account.set_password("N3w-Passw0rd", old_password="whatever")


def test_change_password_with_wrong_old_password_fails_precondition(api, actors):
    resp = api.post(
        "/api/v1/account/password",
        {"old_password": "Wr0ng-Passw0rd", "new_password": "N3w-Passw0rd"},
        token=actors["scientist"].token,
    )
    assert_error(resp, 409, "FAILED_PRECONDITION")
    assert api.get("/api/v1/account", token=actors["scientist"].token).status == 200


def test_change_password_to_weak_password_is_invalid(api, actors):
    resp = api.post(
        "/api/v1/account/password",
        {"old_password": PASSWORD, "new_password": "weak"},
        token=actors["scientist"].token,
    )
    assert_error(resp, 400, "INVALID_ARGUMENT")
    assert api.get("/api/v1/account", token=actors["scientist"].token).status == 200
