"""Public routes: health, readiness, metadata."""

import uuid

from helpers import ROOT_EMAIL, assert_error


def test_healthz_answers_ok_without_login(api):
    resp = api.get("/healthz")
    assert resp.status == 200, resp
    assert resp.json == {"status": "ok"}


def test_readyz_answers_ready_without_login(api):
    resp = api.get("/readyz")
    assert resp.status == 200, resp
    assert resp.json == {"status": "ready"}


def test_metadata_answers_without_login(api, module_server):
    resp = api.get("/api/v1/metadata")
    assert resp.status == 200, resp
    meta = resp.json
    for field in (
        "id",
        "name",
        "server_type",
        "server_side_type",
        "version",
        "organization",
        "description",
        "signup_enabled",
        "admin_email",
        "verify_key",
    ):
        assert field in meta, (field, meta)
    assert uuid.UUID(meta["id"])
    assert meta["name"] == module_server.name
    assert (meta["server_type"], meta["server_side_type"]) == ("datasite", "high")
    assert meta["signup_enabled"] is False
    assert meta["admin_email"] == ROOT_EMAIL
    assert isinstance(meta["version"], str) and meta["version"]


def test_metadata_matches_settings(api):
    meta = api.get("/api/v1/metadata").json
    settings = api.settings(api.guest())
    for field in (
        "id",
        "name",
        "server_type",
        "server_side_type",
        "version",
        "organization",
        "description",
        "signup_enabled",
        "admin_email",
    ):
        assert meta[field] == settings[field], field


def test_metadata_reveals_no_secrets(api):
    text = api.get("/api/v1/metadata").text.lower()
    for word in ("password", "hash", "token", "secret", "private"):
        assert word not in text, word


def test_errors_are_json_with_code_and_message(api):
    resp = api.get("/api/v1/account")
    assert_error(resp, 401, "UNAUTHENTICATED")
    assert resp.headers.get("content-type", "").startswith("application/json")
