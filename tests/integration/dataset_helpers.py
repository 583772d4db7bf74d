"""Helpers of the dataset tests: actors of every role, raw blob/dataset calls, private markers."""

import hashlib
import os
import pathlib
import uuid

from helpers import PASSWORD, ROOT_EMAIL, ROOT_PASSWORD, Api, client_for, unique_email

BLOBS = "/api/v1/blobs"
DATASETS = "/api/v1/datasets"
OCTETS = {"Content-Type": "application/octet-stream"}
# Files of a server's data dir that are not blobs (the database, the log, the pid file...).
_NOT_BLOBS = ("datasite.db", "server.")


class Actor:
    """One logged-in party: its token, a client for it, and its user JSON (None for a guest)."""

    def __init__(self, key, token, client, user=None):
        self.key = key
        self.token = token
        self.client = client
        self.user = user

    def __repr__(self):
        return "<Actor {}>".format(self.key)


def make_actors(port):
    """admin (root), owner and owner2 (data owners), scientist, guest; one login each."""
    api = Api(port)
    root = api.login(ROOT_EMAIL, ROOT_PASSWORD)
    actors = {"admin": Actor("admin", root, client_for(port, root))}
    for key, role in (
        ("owner", "data_owner"),
        ("owner2", "data_owner"),
        ("scientist", "data_scientist"),
    ):
        user = api.create_user(root, role=role, email=unique_email(key), name=key.title())
        token = api.login(user["email"], PASSWORD)
        actors[key] = Actor(key, token, client_for(port, token), user)
    guest = api.guest()
    actors["guest"] = Actor("guest", guest, client_for(port, guest))
    return actors


def marker():
    """A string that must never reach anyone without the right to the private data."""
    return "PRIVATE-MARKER-" + uuid.uuid4().hex


def sha256(raw):
    return hashlib.sha256(raw).hexdigest()


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def upload_blob(api, token, fmt, raw, query=None):
    """POST /api/v1/blobs?format=fmt with ``raw`` as body; the raw Response."""
    path = BLOBS if fmt is None else BLOBS + "?format=" + fmt
    if query:
        path += ("&" if "?" in path else "?") + query
    return api("POST", path, raw=raw, token=token, headers=OCTETS)


def new_blob(api, token, fmt, raw):
    """Uploads a blob that must be accepted; its JSON."""
    resp = upload_blob(api, token, fmt, raw)
    assert resp.status == 201, "blob upload ({}) refused: {!r}".format(fmt, resp)
    return resp.json


def create_dataset(api, token, name, assets, **meta):
    """POST /api/v1/datasets; the raw Response."""
    body = {"name": name, "assets": assets}
    body.update(meta)
    return api.post(DATASETS, body, token=token)


def dataset_total(api, token, search=None):
    path = DATASETS + "?page=1&page_size=1"
    if search is not None:
        path += "&search=" + search
    resp = api.get(path, token=token)
    assert resp.status == 200, resp
    return resp.json["total"]


def blob_files(data_dir):
    """Relative paths of the files in a server's data dir that may be blobs (anything but the
    database, the log and the server's own files), so a test can tell that no blob was left.
    """
    root = pathlib.Path(data_dir)
    found = set()
    for dirpath, _, names in os.walk(root):
        for name in names:
            rel = os.path.relpath(os.path.join(dirpath, name), root)
            if os.sep not in rel and rel.startswith(_NOT_BLOBS):
                continue
            found.add(rel)
    return found


def assert_no_marker(resp, secret):
    assert secret not in resp.text, "private marker leaked in {!r}".format(resp)
    assert secret.encode() not in resp.raw


def assert_refused(resp, statuses=(401, 403, 404)):
    """A refusal with the documented error body."""
    assert resp.status in statuses, "expected one of {}, got {!r}".format(statuses, resp)
    assert resp.error is not None and resp.error.get("code"), resp
    assert resp.error.get("message"), resp
