"""The sync routes through raw HTTP: admins only (guests, data scientists and data owners refused),
the bundle refusals the server names, a forged bundle's role cap, and the OpenAPI document."""

import hashlib
import uuid

import pytest

from helpers import assert_error
from sync_helpers import Peer, load, object_hash, scientist_object, server_key, sync_object

ROUTES = [
    ("GET", "/api/v1/sync/identity", None),
    ("GET", "/api/v1/sync/peers", None),
    ("POST", "/api/v1/sync/peers", {"name": "x", "verify_key": "ab" * 32}),
    ("PUT", "/api/v1/sync/peers/x", {"verify_key": "cd" * 32}),
    ("DELETE", "/api/v1/sync/peers/x", None),
    ("GET", "/api/v1/sync/export?peer=x", None),
    ("GET", "/api/v1/sync/imports/" + str(uuid.uuid4()), None),
    ("POST", "/api/v1/sync/imports/" + str(uuid.uuid4()) + "/apply", {}),
    ("GET", "/api/v1/sync/ignored", None),
    ("DELETE", "/api/v1/sync/ignored/x/request/" + str(uuid.uuid4()), None),
]


@pytest.fixture(scope="module")
def admin(actors):
    return actors["admin"].token


@pytest.mark.parametrize("method,path,body", ROUTES)
@pytest.mark.parametrize("who", ["guest", "scientist", "owner"])
def test_sync_routes_refuse_everyone_but_admins(api, actors, method, path, body, who):
    kw = {} if body is None else {"body": body}
    assert_error(api(method, path, token=actors[who].token, **kw), 403, "PERMISSION_DENIED")


@pytest.mark.parametrize("method,path,body", ROUTES)
def test_sync_routes_need_a_token(api, method, path, body):
    kw = {} if body is None else {"body": body}
    assert_error(api(method, path, **kw), 401, "UNAUTHENTICATED")


@pytest.mark.parametrize("who", ["guest", "scientist", "owner"])
def test_sync_import_refuses_everyone_but_admins(api, actors, admin, who):
    peer = Peer()
    peer.register(api, admin)
    resp = load(api, actors[who].token, peer.bundle(server_key(api, admin)))
    assert_error(resp, 403, "PERMISSION_DENIED")
    listed = api.get("/api/v1/sync/peers", token=admin).json["peers"]
    assert [p for p in listed if p["name"] == peer.name][0]["last_applied_seq"] == 0


def test_identity_and_peers(api, admin):
    me = api.get("/api/v1/sync/identity", token=admin).json
    assert len(me["verify_key"]) == 64 and me["side"] in ("low", "high")
    peer = Peer()
    added = peer.register(api, admin)
    assert added["name"] == peer.name and added["revoked_at"] is None
    again = api.post("/api/v1/sync/peers", {"name": peer.name, "verify_key": "ef" * 32},
                     token=admin)
    assert again.status == 409, again
    bad = api.post("/api/v1/sync/peers", {"name": "y", "verify_key": "nothex"}, token=admin)
    assert_error(bad, 400, "INVALID_ARGUMENT")
    extra = api.post("/api/v1/sync/peers", {"name": "y", "verify_key": "ab" * 32, "role": "x"},
                     token=admin)
    assert_error(extra, 400, "INVALID_ARGUMENT")


def test_bundle_refusals_name_their_reason(api, admin):
    me = server_key(api, admin)
    stranger = Peer()
    resp = load(api, admin, stranger.bundle(me))
    assert_error(resp, 403, "PERMISSION_DENIED")
    assert "bundle refused (unknown key)" in resp.error["message"]

    peer = Peer()
    peer.register(api, admin)
    good = peer.bundle(me)
    tampered = bytearray(good)
    tampered[-3] ^= 1
    resp = load(api, admin, bytes(tampered))
    assert_error(resp, 400, "INVALID_ARGUMENT")
    assert "bundle refused (tampered)" in resp.error["message"]
    resp = load(api, admin, good[:-5])
    assert "bundle refused (truncated)" in resp.error["message"]
    resp = load(api, admin, peer.bundle("00" * 32))
    assert "bundle refused (wrong destination)" in resp.error["message"]

    first = load(api, admin, good)
    assert first.status == 201, first
    applied = api.post("/api/v1/sync/imports/{}/apply".format(first.json["import_id"]), {},
                       token=admin)
    assert applied.status == 200, applied
    replay = load(api, admin, good)
    assert_error(replay, 409, "FAILED_PRECONDITION")
    assert "bundle refused (replayed)" in replay.error["message"]

    resp = api("DELETE", "/api/v1/sync/peers/" + peer.name, token=admin)
    assert resp.status == 200, resp
    resp = load(api, admin, peer.bundle(me))
    assert "bundle refused (revoked key)" in resp.error["message"]


def test_a_high_kind_from_a_low_peer_is_refused(api, admin):
    me = api.get("/api/v1/sync/identity", token=admin).json
    peer = Peer(side="high" if me["side"] == "low" else "low")
    peer.register(api, admin)
    wrong = "user" if me["side"] == "low" else "dataset"
    obj = sync_object(wrong, "x1", wrong + ":x1", {"id": "x1"})
    resp = load(api, admin, peer.bundle(me["verify_key"], [obj]))
    assert_error(resp, 403, "PERMISSION_DENIED")
    assert "bundle refused (kind not allowed)" in resp.error["message"]


def test_a_synced_scientist_is_capped_and_cannot_log_in(api, admin):
    me = api.get("/api/v1/sync/identity", token=admin).json
    if me["side"] != "high":
        pytest.skip("users are taken by a high side only")
    peer = Peer()
    peer.register(api, admin)
    obj = scientist_object()
    obj["fields"]["role"] = "admin"
    obj["hash"] = object_hash(obj["fields"])
    resp = load(api, admin, peer.bundle(me["verify_key"], [obj]))
    assert resp.status == 201, resp
    batch = resp.json["batches"][0]["id"]
    applied = api.post("/api/v1/sync/imports/{}/apply".format(resp.json["import_id"]),
                       {"accept": [batch]}, token=admin)
    assert applied.status == 200, applied
    user = api.get("/api/v1/users/" + obj["id"], token=admin).json
    assert user["role"] == "data_scientist"
    login = api.post("/api/v1/auth/login",
                     {"email": obj["fields"]["email"], "password": "anything-at-all"})
    assert login.status == 401, login


def applied_scientist(api, admin):
    """A scientist taken in from a forged low peer; skips unless this server is a high side."""
    me = api.get("/api/v1/sync/identity", token=admin).json
    if me["side"] != "high":
        pytest.skip("users are taken by a high side only")
    peer = Peer()
    peer.register(api, admin)
    obj = scientist_object()
    resp = load(api, admin, peer.bundle(me["verify_key"], [obj]))
    assert resp.status == 201, resp
    applied = api.post("/api/v1/sync/imports/{}/apply".format(resp.json["import_id"]),
                       {"accept": [resp.json["batches"][0]["id"]]}, token=admin)
    assert applied.status == 200, applied
    return obj


def test_a_synced_scientist_gets_no_password_by_a_reset(api, admin):
    # Attack: the anonymous forgot/reset flow (or an admin's reset) gave a synced account a
    # password, so a scientist (or a low side that changed their email) logged in on the high side.
    obj = applied_scientist(api, admin)
    by_admin = api.post("/api/v1/users/{}/password_reset".format(obj["id"]), {}, token=admin)
    assert_error(by_admin, 409, "FAILED_PRECONDITION")
    assert "came from a sync peer" in by_admin.error["message"]
    set_by_admin = api.patch("/api/v1/users/" + obj["id"], {"password": "Zq8!vK2#mW4pLx-long"},
                             token=admin)
    assert_error(set_by_admin, 409, "FAILED_PRECONDITION")
    # The anonymous route answers as for any address (it tells nobody which accounts exist), and
    # makes no token.
    forgot = api.post("/api/v1/auth/forgot_password", {"email": obj["fields"]["email"]})
    assert forgot.status == 200, forgot
    pending = api.get("/api/v1/password_resets", token=admin).json
    assert all(r.get("user_id") != obj["id"] for r in pending.get("items", pending)), pending


def test_a_bundle_to_a_high_side_carries_no_blob(api, admin):
    # Attack: a blob named by a user object was staged (kept a day, up to the storage limit).
    me = api.get("/api/v1/sync/identity", token=admin).json
    if me["side"] != "high":
        pytest.skip("the high side's kinds carry no blobs")
    peer = Peer()
    peer.register(api, admin)
    blob = b"x" * 4096
    sha = hashlib.sha256(blob).hexdigest()
    obj = scientist_object()
    obj["blob"] = sha
    obj["hash"] = object_hash(obj["fields"], sha)
    resp = load(api, admin, peer.bundle(me["verify_key"], [obj], blobs=[blob]))
    # Refused at the header, before a byte of the blob is written.
    assert_error(resp, 403, "PERMISSION_DENIED")
    assert "kind not allowed" in resp.error["message"], resp
    assert "carries no blob" in resp.error["message"], resp


def test_sync_routes_are_in_the_openapi_document(api):
    doc = api.get("/api/v1/openapi.json").json
    paths = doc["paths"]
    for path in ("/sync/identity", "/sync/peers", "/sync/peers/{name}", "/sync/export",
                 "/sync/imports", "/sync/imports/{id}", "/sync/imports/{id}/apply",
                 "/sync/ignored", "/sync/ignored/{peer}/{kind}/{id}"):
        assert any(p.endswith(path) for p in paths), path
