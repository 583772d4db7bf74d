"""Sync bundles made in the test, signed by a key the test holds (a peer it registers), and the
sync routes' small helpers. The format is src/sync/bundle.h's."""

import hashlib
import json
import struct
import time
import uuid

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

MAGIC = b"DSSYNC01"
CONTEXT = b"datasite-sync-bundle-v1\0"


def canonical(value):
    """The JSON the server hashes: compact, keys sorted (as nlohmann's dump())."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def object_hash(fields, blob=None):
    return hashlib.sha256((canonical(fields) + (blob or "")).encode()).hexdigest()


def sync_object(kind, oid, root, fields):
    return {"kind": kind, "id": oid, "root": root, "version": 1,
            "hash": object_hash(fields), "fields": fields, "blob": None}


def scientist_object(uid=None):
    """A low side's data scientist, as its bundle carries one."""
    uid = uid or str(uuid.uuid4())
    fields = {"id": uid, "email": "sync-{}@example.org".format(uid[:8]), "name": "Synced",
              "institution": "", "website": "", "created_at": 1}
    return sync_object("user", uid, "user:" + uid, fields)


class Peer:
    """A peer the test plays: its own ed25519 key, its side, and the seq of its next bundle."""

    def __init__(self, side="low", name=None):
        self.key = Ed25519PrivateKey.generate()
        self.side = side
        self.name = name or "peer-" + uuid.uuid4().hex[:10]
        self.seq = 0

    @property
    def verify_key(self):
        raw = self.key.public_key().public_bytes(serialization.Encoding.Raw,
                                                 serialization.PublicFormat.Raw)
        return raw.hex()

    def register(self, api, admin_token):
        resp = api.post("/api/v1/sync/peers", {"name": self.name, "verify_key": self.verify_key},
                        token=admin_token)
        assert resp.status == 201, resp
        return resp.json

    def bundle(self, destination_key, objects=(), seq=None, blobs=()):
        """A signed bundle for the server whose verify key is `destination_key`, with `blobs`
        (bytes) after its objects."""
        if seq is None:
            self.seq += 1
            seq = self.seq
        body = canonical({"objects": list(objects), "deleted": [], "inventory": []}).encode()
        header = json.dumps({
            "format": 1,
            "source": {"name": self.name, "verify_key": self.verify_key,
                       "server_id": str(uuid.uuid4()), "side": self.side},
            "destination": {"verify_key": destination_key},
            "seq": seq, "peer_seq_seen": 0, "created_at": int(time.time() * 1000),
            "objects": {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()},
            "blobs": [{"sha256": hashlib.sha256(b).hexdigest(), "size": len(b)} for b in blobs],
        }, separators=(",", ":")).encode()
        signature = self.key.sign(CONTEXT + header)
        return MAGIC + struct.pack(">I", len(header)) + header + signature + body + b"".join(blobs)


def server_key(api, admin_token):
    resp = api.get("/api/v1/sync/identity", token=admin_token)
    assert resp.status == 200, resp
    return resp.json["verify_key"]


def load(api, admin_token, raw):
    return api("POST", "/api/v1/sync/imports", raw=raw, token=admin_token,
               headers={"Content-Type": "application/octet-stream"})
