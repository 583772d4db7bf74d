"""Keeping a low side and a high side in step (PySyft 0.9's names): ``client.sync``,
``sy.compare_clients`` and ``sy.sync``.

Every sync is a signed bundle that one server exports and the other loads; the two servers never
talk to each other. Across an air gap the owner carries the file::

    low.sync.export("to-high.dsync", peer="high")      # on the low side
    widget = high.sync.load("to-high.dsync")            # on the high side
    widget[0].click_sync()                              # or widget.sync_all()

Online, the owner's notebook carries it (admin on both sides)::

    widget = sy.sync(from_client=low, to_client=high)

Loading only shows the differences; nothing changes until a batch is accepted, ignored or denied,
and each call applies all of its batches or none. Which kinds may go which way is decided by the
servers, never here.
"""

import json
import os
import pathlib
import tempfile

from . import _display, _transfer, errors
from ._http import route_path
from .errors import SyftSuccess

CHUNK_SIZE = 1 << 20
BUNDLE_SUFFIX = ".dsync"


# Peers and bundles: client.sync ---------------------------------------------------------------


class SyncAPI:
    """``client.sync``: this server's identity, its peers, and bundles out and in (admins only)."""

    def __init__(self, client):
        self._client = client

    def _call(self, route, **kwargs):
        return self._client._transport.call(route, **kwargs)

    @property
    def identity(self):
        """``{"name", "verify_key", "server_id", "side"}``: give ``name`` and ``verify_key`` to
        the other side's owner, out of band, to register as a peer there."""
        return dict(self._call("sync_identity") or {})

    @property
    def peers(self):
        """The registered peers: dicts with name, verify_key, side, added_at, revoked_at,
        last_sent_seq and last_applied_seq."""
        return list((self._call("sync_peers") or {}).get("peers") or [])

    def add_peer(self, name, verify_key):
        """Registers the other side's verify key (from its ``client.sync.identity``) under
        ``name``; bundles it signs are then accepted here, and ``export(peer=name)`` writes for it.
        """
        _need_text("name", name)
        _need_text("verify_key", verify_key)
        peer = self._call("sync_peer_add", body={"name": name, "verify_key": verify_key})
        return SyftSuccess("Peer '{}' added.".format(name), value=peer)

    def rotate_peer(self, name, verify_key):
        """Replaces a peer's key: the old one is revoked, the sequence numbers are kept."""
        _need_text("verify_key", verify_key)
        peer = self._call(
            "sync_peer_rotate", path_params={"name": name}, body={"verify_key": verify_key}
        )
        return SyftSuccess("Peer '{}' has a new key.".format(name), value=peer)

    def revoke_peer(self, name):
        """Revokes a peer: bundles signed by its key are refused from now on."""
        peer = self._call("sync_peer_revoke", path_params={"name": name})
        return SyftSuccess("Peer '{}' revoked.".format(name), value=peer)

    def export(self, path, peer="high"):
        """Writes one signed bundle for ``peer`` to ``path``: everything that peer lacks, as far
        as this server knows. The bytes go straight to the file (never whole in memory), which is
        fsynced and only then takes its name. Returns ``SyftSuccess`` whose ``value`` is the path,
        with ``seq`` (the bundle's sequence number) and ``size``.
        """
        _need_text("peer", peer)
        target, seq, size = export_bundle(self._client._transport, peer, path)
        result = SyftSuccess(
            "Bundle {} for '{}' written to {} ({} bytes).".format(seq, peer, target, size),
            value=target,
        )
        result.seq = seq
        result.size = size
        return result

    def load(self, path):
        """Uploads the bundle at ``path`` (streamed); the server verifies it and answers what it
        would change. Returns the resolver (``len(widget)``, ``widget[i].click_sync()``,
        ``widget.sync_all()``); nothing is applied before that.
        """
        diff = load_bundle(self._client, path)
        return diff.resolve()

    def get_import(self, import_id):
        """A pending import's diff, as loaded (``ServerDiff``)."""
        data = self._call("sync_import_get", path_params={"id": import_id})
        return ServerDiff(data, self._client)

    @property
    def ignored(self):
        """``[{"peer", "batch"}]``: batches left out of every diff until unignored."""
        return list((self._call("sync_ignored") or {}).get("ignored") or [])

    def unignore(self, peer, batch_id):
        """Brings an ignored batch (``"request:<id>"``) of ``peer`` back into later diffs."""
        kind, _, obj_id = str(batch_id).partition(":")
        if not kind or not obj_id:
            raise ValueError("a batch id looks like 'request:<id>', got {!r}".format(batch_id))
        self._call("sync_unignore", path_params={"peer": peer, "kind": kind, "id": obj_id})
        return SyftSuccess("Batch {} of '{}' is no longer ignored.".format(batch_id, peer))

    def __repr__(self):
        return "<sync of {}>".format(self._client.name)


def _need_text(label, value):
    if not isinstance(value, str) or not value.strip():
        raise ValueError("{} must be a non-empty string, got {!r}".format(label, value))


def export_bundle(transport, peer, path, progress_stream=None):
    """Streams ``GET /sync/export?peer=`` into ``path``; returns ``(path, seq, size)``.

    Written next to ``path`` first and renamed once complete and fsynced, so a broken-off export
    never leaves a file that looks like a bundle.
    """
    target = pathlib.Path(path)
    _, url = route_path("sync_export", query={"peer": peer})
    conn = _transfer._connection(transport, transport.timeout)
    fd, tmp = tempfile.mkstemp(prefix=".datasite-bundle-", dir=str(target.parent or "."))
    dest = None
    try:
        headers = {"Accept": "application/octet-stream"}
        if transport.token:
            headers["Authorization"] = "Bearer " + transport.token
        try:
            conn.request("GET", url, headers=headers)
            resp = conn.getresponse()
        except (OSError, _transfer.http.client.HTTPException) as err:
            raise _transfer._unreachable(transport, err) from None
        if resp.status >= 400:
            _transfer._raise_for(resp)
        length = resp.getheader("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        seq = resp.getheader("X-Datasite-Bundle-Seq")
        dest = _transfer.DurableFileWriter(fd)  # it owns the descriptor from here
        fd = None

        def read_some(view):
            try:
                return resp.readinto(view)
            except (OSError, _transfer.http.client.HTTPException) as err:
                raise errors.ServerConnectionError(
                    None, "the export broke off after {} bytes: {}".format(dest.size, err), None
                ) from None

        progress = _transfer.Progress(expected, "Exporting bundle", stream=progress_stream)
        try:
            while True:
                n = dest.fill(read_some)  # a failed write to this disk raises its OSError
                if not n:
                    break
                progress.update(n)
        finally:
            progress.close()
        size = dest.size
        dest.finish()
        if expected is not None and size != expected:
            raise errors.ServerConnectionError(
                None,
                "the export broke off after {} of {} bytes".format(size, expected),
                None,
            )
        os.replace(tmp, target)
        _fsync_dir(target.parent)
        return target, (int(seq) if seq and seq.isdigit() else seq), size
    except BaseException:
        if dest is not None:
            dest.close()
        elif fd is not None:
            os.close(fd)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    finally:
        conn.close()


def _fsync_dir(directory):
    try:
        dfd = os.open(str(directory or "."), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def load_bundle(client, path):
    """Streams the bundle file at ``path`` to ``POST /sync/imports``; returns its ``ServerDiff``."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError("no bundle file at {}".format(path))
    payload = _transfer.Payload("raw", path=str(path))
    data = _transfer.upload(
        client._transport, payload, label="Loading bundle", route="sync_imports", query={}
    )
    return ServerDiff(data, client)


# Online sync: sy.compare_clients, sy.sync -----------------------------------------------------


def _ensure_peer(client, identity):
    """The name under which ``client``'s server knows the server of ``identity``; registers it
    (under its own name, or that name plus the key's start when the name is taken) if missing."""
    key = identity.get("verify_key")
    for peer in client.sync.peers:
        if peer.get("verify_key") == key and not peer.get("revoked_at"):
            return peer.get("name")
    name = identity.get("name") or "peer"
    try:
        client.sync.add_peer(name=name, verify_key=key)
    except errors.AlreadyExistsError:
        name = "{}-{}".format(name, key[:12])
        client.sync.add_peer(name=name, verify_key=key)
    return name


def compare_clients(from_client, to_client):
    """What ``to_client``'s server would change if it took what ``from_client``'s server has for
    it (PySyft's ``sy.compare_clients``): a ``ServerDiff``. The owner must be an admin on both;
    each server is registered as the other's peer first if it is not yet. The bundle goes
    through a temporary file of this machine; nothing is applied.
    """
    source = from_client.sync.identity
    destination = to_client.sync.identity
    if source.get("verify_key") == destination.get("verify_key"):
        raise ValueError("from_client and to_client are the same server")
    peer_name = _ensure_peer(from_client, destination)
    _ensure_peer(to_client, source)
    fd, tmp = tempfile.mkstemp(prefix="datasite-sync-", suffix=BUNDLE_SUFFIX)
    os.close(fd)
    try:
        export_bundle(from_client._transport, peer_name, tmp)
        return load_bundle(to_client, tmp)
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def sync(from_client, to_client):
    """PySyft's ``sy.sync``: ``compare_clients(...).resolve()``, the resolver of what
    ``to_client``'s server would take from ``from_client``'s."""
    return compare_clients(from_client=from_client, to_client=to_client).resolve()


# The diff ---------------------------------------------------------------------------------------


def _value_text(value):
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


class ObjectDiff:
    """One object of a batch: ``kind``, ``id``, ``status`` (same, new, changed, conflict,
    deleted), and its fields here (``local``, None when absent) and in the bundle (``incoming``).
    """

    def __init__(self, data):
        self._data = dict(data or {})
        self.kind = self._data.get("kind")
        self.id = self._data.get("id")
        self.status = self._data.get("status")
        self.version = self._data.get("version")
        self.hash = self._data.get("hash")
        self.incoming = self._data.get("incoming")
        self.local = self._data.get("local")

    @property
    def object_type(self):
        return self.kind

    @property
    def fields(self):
        """Every field name of either side, sorted."""
        names = set((self.incoming or {}).keys()) | set((self.local or {}).keys())
        return sorted(names)

    @property
    def changed_fields(self):
        """The fields whose local and incoming values differ."""
        local, incoming = self.local or {}, self.incoming or {}
        return [f for f in self.fields if local.get(f) != incoming.get(f)]

    def to_dict(self):
        return dict(self._data)

    def __repr__(self):
        return "<ObjectDiff {} {} {}>".format(self.kind, self.id, self.status)

    def _html(self):
        local, incoming = self.local or {}, self.incoming or {}
        changed = set(self.changed_fields)
        rows = []
        for name in self.fields:
            differs = name in changed and self.local is not None
            mark = ' style="background:#fff3cd"' if differs else ""
            rows.append(
                '<tr{}><th style="text-align:left">{}</th>'
                '<td style="text-align:left"><pre>{}</pre></td>'
                '<td style="text-align:left"><pre>{}</pre></td></tr>'.format(
                    mark,
                    _display.esc(name),
                    _display.esc(_value_text(local.get(name)) if self.local is not None else ""),
                    _display.esc(_value_text(incoming.get(name))),
                )
            )
        return (
            '<div class="datasite-sync-object"><h5>{} {} {}</h5>'
            '<table><thead><tr><th style="text-align:left">Field</th>'
            '<th style="text-align:left">Local</th><th style="text-align:left">Incoming</th>'
            "</tr></thead><tbody>{}</tbody></table></div>".format(
                _display.esc(self.kind),
                _display.esc(self.id),
                _display.badge(self.status or ""),
                "".join(rows),
            )
        )


class ObjectDiffBatch:
    """A batch: a root object (a request, a dataset, a user, a project) and what comes with it.
    ``status`` is new, changed, conflict or deleted; ``state`` (PySyft's ``decision``) is pending,
    applied, ignored or denied. A diff lists each batch's objects by kind, id and status; their
    fields (``diffs``) are fetched from the server the first time they are asked for.
    """

    def __init__(self, data, server_diff):
        self._diff = server_diff
        self._diffs = None
        self._set(data)

    def _set(self, data):
        self._data = dict(data or {})
        self.id = self._data.get("id")
        root = self._data.get("root") or {}
        self.root_type = root.get("kind")
        self.root_id = root.get("id")
        self.status = self._data.get("status")
        self.state = self._data.get("state")
        self._diffs = None

    def _has_fields(self):
        return all("incoming" in o for o in self._data.get("objects") or [])

    @property
    def diffs(self):
        """Each object's ``ObjectDiff``, local and incoming fields side by side."""
        if self._diffs is None:
            if not self._has_fields() and self._diff is not None:
                full = self._diff._fetch_batch(self.id)
                if full is not None:
                    self._set(full)
            self._diffs = [ObjectDiff(o) for o in self._data.get("objects") or []]
        return self._diffs

    @property
    def decision(self):
        return self.state

    @property
    def root(self):
        """The root object's ``ObjectDiff``."""
        for diff in self.diffs:
            if diff.kind == self.root_type and diff.id == self.root_id:
                return diff
        return None

    @property
    def is_conflict(self):
        return self.status == "conflict"

    def ignore(self):
        """Leaves this batch out of this and later diffs with this peer until ``unignore()``."""
        return self._diff._apply(ignore=[self.id])

    def unignore(self):
        return self._diff._unignore(self.id)

    def to_dict(self):
        return dict(self._data)

    def __repr__(self):
        return "<ObjectDiffBatch {} {} ({}), {} objects>".format(
            self.id, self.status, self.state, len(self._data.get("objects") or [])
        )

    def _html(self):
        return (
            '<div class="datasite-sync-batch"><h4>{} {} <small>{}</small></h4>{}</div>'.format(
                _display.esc(self.id),
                _display.badge(self.status or ""),
                _display.esc(self.state),
                "".join(d._html() for d in self.diffs),
            )
        )

    def _repr_html_(self):
        return self._html()


class ServerDiff:
    """What one server would change on taking a bundle (PySyft's ``ServerDiff``): ``batches``
    (pending ones first-class; batches with nothing to change are left out), ``ignored_batches``,
    ``summary``, ``is_same``; ``resolve()`` gives the resolver. The server lists the batches with
    their objects' kinds, ids and statuses; a batch's fields come when it is shown."""

    HTML_PAGE = 20  # batches the HTML view shows with their fields

    def __init__(self, data, client):
        self._client = client
        self._load(data)

    def _load(self, data):
        self._data = dict(data or {})
        self.import_id = self._data.get("import_id")
        self.peer = dict(self._data.get("peer") or {})
        self.direction = self._data.get("direction")
        self.seq = self._data.get("seq")
        self.created_at = self._data.get("created_at")
        self.summary = dict(self._data.get("summary") or {})
        self._raw = list(self._data.get("batches") or [])
        self._place = {b.get("id"): i for i, b in enumerate(self._raw)}
        self._made = {}  # batch id -> its ObjectDiffBatch, made when first asked for
        self.ignored_batches = list(self._data.get("ignored") or [])

    def _batch(self, batch_id):
        """The batch of that id, or None when it is no longer listed."""
        place = self._place.get(batch_id)
        if place is None:
            return None
        made = self._made.get(batch_id)
        if made is None:
            made = self._made[batch_id] = ObjectDiffBatch(self._raw[place], self)
        return made

    def _batch_ids(self):
        return [b.get("id") for b in self._raw]

    def _fetch_batch(self, batch_id):
        """One batch with its fields, from the server (None without a client)."""
        if self._client is None or not self.import_id:
            return None
        kind, _, obj_id = str(batch_id).partition(":")
        return self._client._transport.call(
            "sync_import_batch",
            path_params={"id": self.import_id, "kind": kind, "batch_id": obj_id},
        )

    def _fetch_fields(self, batch_ids):
        """Fills the fields of the listed batches among ``batch_ids`` with one call per page."""
        missing = [i for i in batch_ids if i in self._place and not self._batch(i)._has_fields()]
        if not missing or self._client is None or not self.import_id:
            return
        first = min(self._place[i] for i in missing)
        last = max(self._place[i] for i in missing)
        page = self._client._transport.call(
            "sync_import_get",
            path_params={"id": self.import_id},
            query={"fields": 1, "offset": first, "limit": last - first + 1},
        ) or {}
        for full in page.get("batches") or []:
            made = self._batch(full.get("id"))
            if made is not None and made._diffs is None:
                made._set(full)

    @property
    def all_batches(self):
        return [self._batch(i) for i in self._batch_ids()]

    @property
    def batches(self):
        return self.all_batches

    @property
    def is_same(self):
        """True when the bundle changes nothing here: no batch to decide, nothing deleted."""
        return not self._raw and not self.summary.get("deleted")

    def __len__(self):
        return len(self._raw)

    def __getitem__(self, index):
        return self._batch(self._raw[index].get("id"))

    def __iter__(self):
        return (self._batch(i) for i in self._batch_ids())

    def resolve(self):
        return PaginatedResolveWidget(self)

    def to_dict(self):
        return dict(self._data, batches=list(self._raw), ignored=list(self.ignored_batches),
                    summary=dict(self.summary))

    def _apply(self, accept=(), overwrite=(), ignore=(), deny=()):
        body = {
            "accept": list(accept),
            "overwrite": list(overwrite),
            "ignore": list(ignore),
            "deny": [{"batch": b, "reason": r} for b, r in deny],
        }
        answer = self._client._transport.call(
            "sync_import_apply", path_params={"id": self.import_id}, body=body
        ) or {}
        self._update(answer)
        done = []
        for key, label in (("applied", "synced"), ("ignored", "ignored"), ("denied", "denied")):
            ids = answer.get(key) or []
            if ids:
                done.append("{} {}".format(label, ", ".join(str(i) for i in ids)))
        return SyftSuccess("; ".join(done) or "Nothing to sync", value=answer)

    def _update(self, answer):
        """Takes in an apply's answer: the batches it wrote as they stand now, the ignored ones
        out of the list, the new summary."""
        if answer.get("summary") is not None:
            self.summary = dict(answer["summary"])
        for written in answer.get("batches") or []:
            place = self._place.get(written.get("id"))
            if place is None:
                continue
            self._raw[place] = written
            self._made.pop(written.get("id"), None)
        gone = [i for i in answer.get("ignored") or [] if i in self._place]
        if gone:
            self._raw = [b for b in self._raw if b.get("id") not in gone]
            self._place = {b.get("id"): i for i, b in enumerate(self._raw)}
            for batch_id in gone:
                self._made.pop(batch_id, None)
                if batch_id not in self.ignored_batches:
                    self.ignored_batches.append(batch_id)

    def _unignore(self, batch_id):
        return self._client.sync.unignore(self.peer.get("name"), batch_id)

    def _summary_text(self):
        s = self.summary
        text = "{} batches: {} new, {} changed, {} conflicts, {} same, {} deleted, {} ignored"
        return text.format(
            s.get("batches", len(self._raw)),
            s.get("new", 0),
            s.get("changed", 0),
            s.get("conflicts", 0),
            s.get("same", 0),
            s.get("deleted", 0),
            s.get("ignored", len(self.ignored_batches)),
        )

    def _title(self):
        return "Sync from '{}' ({}), bundle {}".format(
            self.peer.get("name"), self.direction, self.seq
        )

    def __repr__(self):
        lines = [self._title(), self._summary_text()]
        for i, batch in enumerate(self._raw):
            lines.append(
                "  [{}] {} {} ({})".format(
                    i, batch.get("id"), batch.get("status"), batch.get("state")
                )
            )
        if self.ignored_batches:
            lines.append("Ignored: " + ", ".join(str(b) for b in self.ignored_batches))
        return "\n".join(lines)

    def _repr_html_(self):
        ignored = ""
        if self.ignored_batches:
            ignored = "<p>Ignored: {}</p>".format(
                ", ".join(_display.esc(b) for b in self.ignored_batches)
            )
        shown = self._batch_ids()[: self.HTML_PAGE]
        self._fetch_fields(shown)
        more = ""
        if len(self._raw) > len(shown):
            more = "<p>{} more batches: <code>widget[i]</code> shows batch i.</p>".format(
                len(self._raw) - len(shown)
            )
        return '<div class="datasite datasite-sync"><h3>{}</h3><p>{}</p>{}{}{}</div>'.format(
            _display.esc(self._title()),
            _display.esc(self._summary_text()),
            "".join(self._batch(i)._html() for i in shown),
            more,
            ignored,
        )


# The resolver -------------------------------------------------------------------------------------


class ResolveWidget:
    """One batch of the resolver (``widget[i]``): ``obj_diff_batch``, ``click_sync()``,
    ``ignore()``, ``unignore()``, ``deny_and_ignore(reason)``."""

    def __init__(self, server_diff, batch_id):
        self._diff = server_diff
        self._batch_id = batch_id

    @property
    def obj_diff_batch(self):
        """The batch as the server last described it."""
        batch = self._diff._batch(self._batch_id)
        if batch is None:
            raise LookupError("batch {} is no longer in this diff".format(self._batch_id))
        return batch

    @property
    def is_synced(self):
        return self.obj_diff_batch.state != "pending"

    def click_sync(self, overwrite=False):
        """Applies this batch here. A batch in conflict (changed here and there since the last
        sync) is refused unless ``overwrite=True``, which takes the incoming side."""
        batch = self.obj_diff_batch
        if batch.state != "pending":
            raise errors.FailedPreconditionError(
                None, "batch {} is already {}".format(batch.id, batch.state), None
            )
        return self._diff._apply(accept=[batch.id], overwrite=[batch.id] if overwrite else [])

    def ignore(self):
        return self.obj_diff_batch.ignore()

    def unignore(self):
        return self._diff._unignore(self._batch_id)

    def deny_and_ignore(self, reason):
        """Denies the batch's request with ``reason`` (high side, request batches): the request
        and its code are taken in, denied, in one step, so the batch does not come again and
        the denial travels back to the requester with the next export."""
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError("deny_and_ignore needs a reason the data scientist will read")
        batch = self.obj_diff_batch
        if batch.root_type != "request":
            raise ValueError(
                "deny_and_ignore is for request batches; {} is a {}".format(
                    batch.id, batch.root_type
                )
            )
        return self._diff._apply(deny=[(batch.id, reason)])

    def __repr__(self):
        return repr(self.obj_diff_batch)

    def _repr_html_(self):
        return self.obj_diff_batch._html()


class PaginatedResolveWidget:
    """The resolver of a ``ServerDiff`` (what ``sy.sync`` and ``client.sync.load`` give):
    ``len(widget)``, ``widget[i]`` (a ``ResolveWidget``), ``sync_all()``, and an HTML view with
    each batch's objects, local and incoming fields side by side."""

    def __init__(self, server_diff):
        self.diff = server_diff
        self._batch_ids = server_diff._batch_ids()

    @property
    def import_id(self):
        return self.diff.import_id

    @property
    def batches(self):
        return self.diff.batches

    def __len__(self):
        return len(self._batch_ids)

    def __getitem__(self, index):
        return ResolveWidget(self.diff, self._batch_ids[index])

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def click_sync(self, index, overwrite=False):
        return self[index].click_sync(overwrite=overwrite)

    def sync_all(self):
        """Applies every pending batch that is not in conflict, in one step (all or none), and
        acknowledges the bundle even when there is nothing to take. Conflicts are left pending;
        they are named in the answer."""
        pending = [b for b in self.diff._raw if b.get("state") == "pending"]
        accept = [b.get("id") for b in pending if b.get("status") != "conflict"]
        skipped = [b.get("id") for b in pending if b.get("status") == "conflict"]
        # Applied even when empty: the first apply of an import acknowledges its bundle.
        result = self.diff._apply(accept=accept)
        if skipped:
            result.message += "; left in conflict: " + ", ".join(skipped)
        return result

    _sync_all = sync_all

    def __repr__(self):
        return repr(self.diff)

    def _repr_html_(self):
        return self.diff._repr_html_()
