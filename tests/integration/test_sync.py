"""Sync between a low and a high side (issue 14), through the Python client.

The air-gapped scenario runs the high side in a network namespace of its own (only ``lo`` up, no
route to the low side) and drives it with scripts run inside that namespace, so only bundle files
cross. The other tests run both servers on this machine's loopback. Every test skips when the
server has no sync routes yet.
"""

import json
import pathlib
import shutil

import pytest

import datasite as sy
from helpers import PASSWORD, needs_sandbox, unique
from sync_helpers import Peer, scientist_object, sync_object
from sync_sides import (
    FLAGS,
    HIGH_UPLOAD,
    Netns,
    NetnsServer,
    admin_of,
    batch_index,
    can_connect,
    carry,
    exchange_keys,
    register_scientist,
    root_namespace_addresses,
    skip_without_sync,
    start_side,
    state_of,
)

PRIVATE_AGES = [31, 42, 57, 64, 23]
MOCK_NAMES = ["MOCKNAME-x", "MOCKNAME-y", "MOCKNAME-z"]
HOSTILE_REASON = "<img src=x onerror=alert(1)> for the paper"


def private_frame(marker):
    return {"age": PRIVATE_AGES, "name": ["{}-{}".format(marker, n) for n in "abcde"]}


def mock_frame():
    return {"age": [20, 20, 20], "name": MOCK_NAMES}


def new_marker():
    return "PRIVATE-MARKER-" + unique("m")


@pytest.fixture
def pair(binary, tmp_path):
    """A low and a high server on loopback, keys exchanged; their admins' clients."""
    low = start_side(binary, tmp_path / "low", "low")
    high = start_side(binary, tmp_path / "high", "high")
    try:
        skip_without_sync(low.port)
        low_admin, high_admin = admin_of(low), admin_of(high)
        exchange_keys(low_admin, high_admin)
        yield low, high, low_admin, high_admin
    finally:
        low.stop()
        high.stop()


def upload_people(admin, marker, name=None):
    import pandas as pd

    name = name or unique("people")
    dataset = sy.Dataset(name=name, summary="people and their ages")
    dataset.add_asset(sy.Asset(name="people", data=pd.DataFrame(private_frame(marker)),
                               mock=pd.DataFrame(mock_frame())))
    assert admin.upload_dataset(dataset)
    return name


def run_as_requester(high_admin, email, code_id, dataset, blocking=True):
    """The owner runs a requester's approved code on the high side for its requester: a private
    run that is theirs (the synced account itself can't log in there)."""
    asset = high_admin.datasets[dataset].assets["people"]
    job = high_admin.code.get(code_id)(data=asset, blocking=False, for_requester=True)
    job.wait(timeout=60)
    assert job.user["id"] == high_admin.users.search(email=email)[0].id
    return job


def assert_refused(load, reason, error):
    with pytest.raises(error, match=r"^bundle refused \({}\): ".format(reason)):
        load()


# The whole air-gapped scenario ----------------------------------------------------------------


@pytest.fixture
def netns():
    ns = Netns()
    yield ns
    ns.remove()


HIGH_LOAD = """
w = high.sync.load(args['path'])
result = {'import_id': w.import_id, 'html': w._repr_html_(),
          'batches': [[w[i].obj_diff_batch.id, w[i].obj_diff_batch.root_type,
                       sorted(d.kind for d in w[i].obj_diff_batch.diffs),
                       w[i].obj_diff_batch.status] for i in range(len(w))]}
"""

HIGH_DECIDE = """
w = high.sync.get_import(args['import_id']).resolve()
deny = 'request:' + args['deny']
# The requester comes with one of their requests' batches: that one first.
for i in range(len(w)):
    b = w[i].obj_diff_batch
    if b.id != deny and any(d.kind == 'user' for d in b.diffs):
        w[i].click_sync()
for i in range(len(w)):
    if w[i].obj_diff_batch.id == deny:
        w[i].deny_and_ignore(args['reason'])
w.sync_all()
asset = high.datasets[args['dataset']].assets['people']
first = high.requests.get(args['first'])
value = first.code(data=asset).get()          # the owner's review run, on private data
first.deposit_result(value, log_stdout='mean computed', approve=True)
high.settings.set_output_review(True)
second = high.requests.get(args['second'])
second.approve()
job = second.code(data=asset, blocking=False, for_requester=True)
job.wait(timeout=60)
result = {'job': job.id, 'held': bool(job.held), 'value': value,
          'statuses': {r.id: str(r.status) for r in high.requests}}
"""


@needs_sandbox
def test_air_gapped_sync_moves_only_files(binary, tmp_path, netns):
    low = start_side(binary, tmp_path / "low", "low")
    high = NetnsServer(netns, binary, tmp_path / "high", "--side", "high", *FLAGS)
    try:
        skip_without_sync(low.port)
        high.start()
        # The high side has no route anywhere, and cannot reach the low server at any address.
        assert netns.routes() == []
        assert can_connect([], "127.0.0.1", low.port)
        for address in ["127.0.0.1"] + root_namespace_addresses():
            assert not can_connect(netns.prefix(), address, low.port), address

        # Keys exchanged out of band.
        low_admin = admin_of(low)
        high_id = high.drive("result = high.sync.identity")
        low_id = low_admin.sync.identity
        assert (low_id["side"], high_id["side"]) == ("low", "high")
        assert low_admin.sync.add_peer(name="high", verify_key=high_id["verify_key"])
        high.drive("high.sync.add_peer(name='low', verify_key=args['key'])",
                   key=low_id["verify_key"])

        marker, dataset = new_marker(), unique("people")
        to_low = []

        def high_export():
            path = tmp_path / "to-low-{}.dsync".format(len(to_low))
            high.drive("high.sync.export(args['path'], peer='low')", path=str(path))
            to_low.append(path)
            return path

        # The owner's dataset goes down as a mock only.
        high.drive(HIGH_UPLOAD, name=dataset, private=private_frame(marker), mock=mock_frame())
        widget = low_admin.sync.load(high_export())
        assert [widget[i].obj_diff_batch.root_type for i in range(len(widget))] == ["dataset"]
        assert widget.sync_all()

        # A scientist registers on the low side and asks three times.
        scientist, email = register_scientist(low.port)
        asset = scientist.datasets[dataset].assets["people"]
        assert list(asset.mock["name"]) == MOCK_NAMES

        @sy.syft_function_single_use(data=asset)
        def mean_age(data):
            return float(data["age"].mean())

        @sy.syft_function_single_use(data=asset)
        def max_age(data):
            print("max computed")
            return int(data["age"].max())

        @sy.syft_function_single_use(data=asset)
        def all_names(data):
            return list(data["name"])

        first = scientist.code.request_code_execution(mean_age, reason=HOSTILE_REASON)
        second = scientist.code.request_code_execution(max_age, reason="the oldest")
        third = scientist.code.request_code_execution(all_names, reason="every name")
        assert str(first.status) == str(sy.RequestStatus.PENDING)

        # Up: the owner loads it on the high side and reviews it.
        up = tmp_path / "to-high-1.dsync"
        assert low_admin.sync.export(up, peer="high")
        loaded = high.drive(HIGH_LOAD, path=str(up))
        by_id = {b[0]: b for b in loaded["batches"]}
        for request in (first, second, third):
            batch = by_id["request:" + request.id]
            assert batch[1] == "request" and batch[3] == "new"
            assert {"request", "code"} <= set(batch[2])
        # The requester travels once, with one of their requests.
        assert sum(b[2].count("user") for b in loaded["batches"]) == 1
        assert "<img" not in loaded["html"] and "&lt;img" in loaded["html"]
        decided = high.drive(HIGH_DECIDE, import_id=loaded["import_id"], deny=third.id,
                             reason="names are identifying", dataset=dataset, first=first.id,
                             second=second.id, email=email, password=PASSWORD)
        assert decided["value"] == pytest.approx(sum(PRIVATE_AGES) / 5)
        assert decided["held"] is True
        assert decided["statuses"][third.id].lower().endswith("denied")

        # Down: the decisions and the released result; the held one stays up there.
        widget = low_admin.sync.load(high_export())
        assert widget.sync_all()
        assert scientist.code.mean_age(data=asset).get() == pytest.approx(sum(PRIVATE_AGES) / 5)
        assert str(first.refresh().status) == str(sy.RequestStatus.APPROVED)
        with pytest.raises(sy.FailedPreconditionError, match="not been synced"):
            scientist.code.max_age(data=asset)
        third.refresh()
        assert str(third.status) == str(sy.RequestStatus.REJECTED)
        assert third.deny_reason == "names are identifying"

        # The owner releases the held result; it comes down with the next bundle.
        high.drive("high.jobs.get(args['job']).release()", job=decided["job"])
        widget = low_admin.sync.load(high_export())
        assert widget.sync_all()
        job = scientist.code.max_age(data=asset, blocking=False)
        assert job.wait().get() == max(PRIVATE_AGES)
        assert "max computed" in job.logs().stdout

        # Nothing private ever went down; the mock did.
        for path in to_low:
            raw = path.read_bytes()
            assert marker.encode() not in raw, path
        assert any(b"MOCKNAME-x" in path.read_bytes() for path in to_low)
    finally:
        high.stop()
        low.stop()


# Online sync: the owner's notebook carries the bundles ----------------------------------------


@needs_sandbox
def test_online_sync_with_pysyft_names(binary, tmp_path):
    low = start_side(binary, tmp_path / "low", "low")
    high = start_side(binary, tmp_path / "high", "high")
    try:
        skip_without_sync(low.port)
        low_admin, high_admin = admin_of(low), admin_of(high)
        assert low_admin.sync.peers == [] and high_admin.sync.peers == []
        marker = new_marker()
        dataset = upload_people(high_admin, marker)

        widget = sy.sync(from_client=high_admin, to_client=low_admin)
        # Each side was registered as the other's peer.
        assert [p["verify_key"] for p in low_admin.sync.peers] == [
            high_admin.sync.identity["verify_key"]]
        assert [p["verify_key"] for p in high_admin.sync.peers] == [
            low_admin.sync.identity["verify_key"]]
        assert len(widget) == 1 and widget[0].obj_diff_batch.root_type == "dataset"
        assert widget._sync_all()

        scientist, _ = register_scientist(low.port)
        asset = scientist.datasets[dataset].assets["people"]

        @sy.syft_function_single_use(data=asset)
        def online_mean(data):
            return float(data["age"].mean())

        @sy.syft_function_single_use(data=asset)
        def online_names(data):
            return list(data["name"])

        first = scientist.code.request_code_execution(online_mean, reason=HOSTILE_REASON)
        second = scientist.code.request_code_execution(online_names, reason="names")

        diff = sy.compare_clients(from_client=low_admin, to_client=high_admin)
        assert not diff.is_same
        assert {b.id for b in diff.batches} >= {"request:" + first.id, "request:" + second.id}
        html = diff._repr_html_()
        assert "<img" not in html and "&lt;img" in html
        assert "Local" in html and "Incoming" in html

        widget = sy.sync(from_client=low_admin, to_client=high_admin)
        # Denied first: the batch that carries the requester comes along with it.
        widget[batch_index(widget, "request:" + second.id)].deny_and_ignore("too identifying")
        assert widget.sync_all()
        request = high_admin.requests.get(first.id)
        value = request.code(data=high_admin.datasets[dataset].assets["people"]).get()
        request.deposit_result(value, approve=True)

        with pytest.raises(sy.FailedPreconditionError, match="no result you may read"):
            first.get_results()
        widget = sy.sync(from_client=high_admin, to_client=low_admin)
        assert widget.sync_all()
        assert first.get_results() == pytest.approx(sum(PRIVATE_AGES) / 5)
        assert scientist.code.online_mean(data=asset).get() == pytest.approx(sum(PRIVATE_AGES) / 5)
        assert second.refresh().deny_reason == "too identifying"
        assert sy.compare_clients(from_client=high_admin, to_client=low_admin).is_same
    finally:
        low.stop()
        high.stop()


# Refusals: each says which, and changes nothing ----------------------------------------------


def test_every_refusal_says_which_and_changes_nothing(pair, tmp_path):
    low, high, low_admin, high_admin = pair
    register_scientist(low.port)
    forger = Peer(side="low")
    assert high_admin.sync.add_peer(name=forger.name, verify_key=forger.verify_key)
    same_side = Peer(side="high")
    assert high_admin.sync.add_peer(name=same_side.name, verify_key=same_side.verify_key)
    high_key = high_admin.sync.identity["verify_key"]
    low_key = low_admin.sync.identity["verify_key"]

    good = tmp_path / "good.dsync"
    assert low_admin.sync.export(good, peer="high")
    raw = good.read_bytes()
    before = state_of(high_admin)

    def load_bytes(data, name):
        path = tmp_path / name
        path.write_bytes(data)
        return lambda: high_admin.sync.load(path)

    dataset_id = "5" * 32
    dataset = sync_object("dataset", dataset_id, "dataset:" + dataset_id, {
        "id": dataset_id, "name": "planted", "summary": "", "description": "", "citation": "",
        "url": "", "contributors": [], "created_at": 0, "updated_at": 0, "deleted_at": None})
    flipped = bytearray(raw)
    flipped[-1] ^= 0x01
    cases = [
        (load_bytes(bytes(flipped), "flipped"), "tampered", sy.InvalidArgumentError),
        (load_bytes(b"XXSYNC01" + raw[8:], "magic"), "tampered", sy.InvalidArgumentError),
        (load_bytes(raw + b"\0", "trailing"), "tampered", sy.InvalidArgumentError),
        (load_bytes(raw[:-7], "truncated"), "truncated", sy.InvalidArgumentError),
        (load_bytes(raw[:20], "header-cut"), "truncated", sy.InvalidArgumentError),
        (load_bytes(Peer(side="low").bundle(high_key), "stranger"), "unknown key",
         sy.PermissionDeniedError),
        (load_bytes(forger.bundle(low_key, seq=1), "elsewhere"), "wrong destination",
         sy.PermissionDeniedError),
        (load_bytes(same_side.bundle(high_key, seq=1), "same-side"), "out of sequence",
         sy.FailedPreconditionError),
        (load_bytes(forger.bundle(high_key, [dataset], seq=1), "dataset-up"), "kind not allowed",
         sy.PermissionDeniedError),
    ]
    for load, reason, error in cases:
        assert_refused(load, reason, error)
        assert state_of(high_admin) == before, reason

    # A low side refuses what only a high side may receive.
    low_forger = Peer(side="high")
    assert low_admin.sync.add_peer(name=low_forger.name, verify_key=low_forger.verify_key)
    low_before = state_of(low_admin)
    path = tmp_path / "user-down.dsync"
    path.write_bytes(low_forger.bundle(low_key, [scientist_object()], seq=1))
    assert_refused(lambda: low_admin.sync.load(path), "kind not allowed", sy.PermissionDeniedError)
    assert state_of(low_admin) == low_before

    # Replayed: a bundle applied once is refused the second time.
    assert high_admin.sync.load(good).sync_all()
    before = state_of(high_admin)
    assert_refused(lambda: high_admin.sync.load(good), "replayed", sy.FailedPreconditionError)
    assert state_of(high_admin) == before

    # Out of sequence: an older bundle after a newer one was applied.
    older, newer = tmp_path / "older.dsync", tmp_path / "newer.dsync"
    assert low_admin.sync.export(older, peer="high")
    assert low_admin.sync.export(newer, peer="high")
    assert high_admin.sync.load(newer).sync_all()
    before = state_of(high_admin)
    assert_refused(lambda: high_admin.sync.load(older), "out of sequence",
                   sy.FailedPreconditionError)
    assert state_of(high_admin) == before

    # Revoked: the peer's bundles are refused once it is revoked.
    assert high_admin.sync.revoke_peer("low")
    later = tmp_path / "later.dsync"
    assert low_admin.sync.export(later, peer="high")
    before = state_of(high_admin)
    assert_refused(lambda: high_admin.sync.load(later), "revoked key", sy.PermissionDeniedError)
    assert state_of(high_admin) == before


def test_peer_calls_refuse_clearly(pair):
    low, high, low_admin, high_admin = pair
    key = high_admin.sync.identity["verify_key"]
    with pytest.raises(sy.AlreadyExistsError):
        low_admin.sync.add_peer(name="high", verify_key=key)
    with pytest.raises(sy.NotFoundError):
        low_admin.sync.export(pathlib.Path("/tmp") / unique("never.dsync"), peer="nobody")
    scientist, _ = register_scientist(low.port)
    with pytest.raises(sy.PermissionDeniedError):
        scientist.sync.identity
    with pytest.raises(sy.PermissionDeniedError):
        scientist.sync.export(pathlib.Path("/tmp") / unique("never.dsync"), peer="high")


# Recovery -----------------------------------------------------------------------------------------


def test_a_lost_bundle_is_replaced_by_exporting_again(pair, tmp_path):
    low, high, low_admin, high_admin = pair
    _, email = register_scientist(low.port)
    lost = tmp_path / "lost.dsync"
    assert low_admin.sync.export(lost, peer="high")
    lost.unlink()
    widget, _ = carry(low_admin, "high", high_admin, tmp_path)
    assert any(widget[i].obj_diff_batch.root_type == "user" for i in range(len(widget)))
    assert widget.sync_all()
    assert email in [u.email for u in high_admin.users]


def test_a_rotated_peer_key_replaces_the_old_one(binary, tmp_path, pair):
    low, high, low_admin, high_admin = pair
    # The low side's new key (a reinstalled low side): a server of its own.
    renewed = start_side(binary, tmp_path / "renewed-low", "low")
    try:
        renewed_admin = admin_of(renewed)
        renewed_admin.sync.add_peer(name="high", verify_key=high_admin.sync.identity["verify_key"])
        new_key = renewed_admin.sync.identity["verify_key"]
        assert high_admin.sync.rotate_peer("low", verify_key=new_key)
        current = [p for p in high_admin.sync.peers if p["name"] == "low" and not p["revoked_at"]]
        assert [p["verify_key"] for p in current] == [new_key]

        _, email = register_scientist(renewed.port)
        widget, _ = carry(renewed_admin, "high", high_admin, tmp_path, "renewed")
        assert widget.sync_all()
        assert email in [u.email for u in high_admin.users]

        stale = tmp_path / "stale.dsync"
        assert low_admin.sync.export(stale, peer="high")
        before = state_of(high_admin)
        assert_refused(lambda: high_admin.sync.load(stale), "revoked key",
                       sy.PermissionDeniedError)
        assert state_of(high_admin) == before
    finally:
        renewed.stop()


def test_a_side_restored_from_backup_finds_the_common_point(pair, tmp_path):
    low, high, low_admin, high_admin = pair
    scientist, _ = register_scientist(low.port)
    widget, _ = carry(low_admin, "high", high_admin, tmp_path, "first")
    assert widget.sync_all()

    backup = tmp_path / "high-backup"
    high.land()
    shutil.copytree(str(high.data_dir), str(backup))
    high.start()
    high_admin = admin_of(high)

    @sy.syft_function_single_use()
    def after_backup():
        return 1

    request = scientist.code.request_code_execution(after_backup, reason="after the backup")
    for source, peer, dest in ((low_admin, "high", high_admin), (high_admin, "low", low_admin)):
        widget, _ = carry(source, peer, dest, tmp_path, "before-restore")
        assert widget.sync_all()
    assert request.id in [r.id for r in high_admin.requests]

    high.land()
    shutil.rmtree(str(high.data_dir))
    shutil.copytree(str(backup), str(high.data_dir))
    high.start()
    high_admin = admin_of(high)
    assert request.id not in [r.id for r in high_admin.requests]

    # One bundle each way, then the low side sends what the restored side lacks.
    for source, peer, dest in ((low_admin, "high", high_admin), (high_admin, "low", low_admin),
                               (low_admin, "high", high_admin)):
        widget, _ = carry(source, peer, dest, tmp_path, "after-restore")
        assert widget.sync_all()
    assert request.id in [r.id for r in high_admin.requests]
    widget, _ = carry(low_admin, "high", high_admin, tmp_path, "settled")
    assert len(widget) == 0 and widget.diff.is_same


def test_an_ignored_batch_stays_out_until_unignored(pair, tmp_path):
    low, high, low_admin, high_admin = pair
    scientist, _ = register_scientist(low.port)

    @sy.syft_function_single_use()
    def ignored_one():
        return 1

    request = scientist.code.request_code_execution(ignored_one, reason="ignore me")
    batch_id = "request:" + request.id
    widget, _ = carry(low_admin, "high", high_admin, tmp_path)
    assert widget[batch_index(widget, batch_id)].ignore()
    assert {"peer": "low", "batch": batch_id} in high_admin.sync.ignored

    widget, _ = carry(low_admin, "high", high_admin, tmp_path)
    assert batch_id not in [b.id for b in widget.batches]
    assert batch_id in widget.diff.ignored_batches
    assert request.id not in [r.id for r in high_admin.requests]

    assert high_admin.sync.unignore("low", batch_id)
    widget, _ = carry(low_admin, "high", high_admin, tmp_path)
    index = batch_index(widget, batch_id)
    assert widget[index].click_sync()
    assert request.id in [r.id for r in high_admin.requests]


# Nothing private goes down ------------------------------------------------------------------------


@needs_sandbox
def test_no_planted_private_marker_reaches_a_high_to_low_bundle(pair, tmp_path):
    low, high, low_admin, high_admin = pair
    marker = new_marker()
    dataset = upload_people(high_admin, marker)
    bundles = []

    def down():
        widget, path = carry(high_admin, "low", low_admin, tmp_path, "down")
        bundles.append(path)
        assert widget.sync_all()

    down()
    scientist, email = register_scientist(low.port)
    asset = scientist.datasets[dataset].assets["people"]

    @sy.syft_function_single_use(data=asset)
    def to_stderr(data):
        import sys

        sys.stderr.write("|".join(data["name"]))
        return len(data)

    @sy.syft_function_single_use(data=asset)
    def fails_privately(data):
        raise ValueError("|".join(data["name"]))

    @sy.syft_function_single_use(data=asset)
    def held_names(data):
        return list(data["name"])

    requests = [scientist.code.request_code_execution(f, reason="markers")
                for f in (to_stderr, fails_privately, held_names)]
    widget, _ = carry(low_admin, "high", high_admin, tmp_path, "up")
    assert widget.sync_all()
    for request in requests:
        assert high_admin.requests.get(request.id).approve()
    codes = [high_admin.requests.get(r.id).code.id for r in requests]
    assert run_as_requester(high_admin, email, codes[0], dataset).status == "completed"
    assert run_as_requester(high_admin, email, codes[1], dataset).status in ("errored", "failed")
    assert high_admin.settings.set_output_review(True)
    assert run_as_requester(high_admin, email, codes[2], dataset).held

    down()
    for path in bundles:
        raw = path.read_bytes()
        assert marker.encode() not in raw, path
    assert any(b"MOCKNAME-x" in path.read_bytes() for path in bundles)
    assert scientist.code.to_stderr(data=asset).get() == len(PRIVATE_AGES)
    with pytest.raises(sy.FailedPreconditionError, match="not been synced"):
        scientist.code.held_names(data=asset)


@needs_sandbox
def test_a_result_over_a_mebibyte_crosses_whole(pair, tmp_path):
    # A result past 1 MiB is kept as a file on the high side, not in the job's row: it is hashed
    # piecewise for the bundle and arrives whole.
    low, high, low_admin, high_admin = pair
    dataset = upload_people(high_admin, new_marker())
    widget, _ = carry(high_admin, "low", low_admin, tmp_path, "down1")
    assert widget.sync_all()
    scientist, email = register_scientist(low.port)
    asset = scientist.datasets[dataset].assets["people"]

    @sy.syft_function_single_use(data=asset)
    def long_text(data):
        return "y" * (3 * 1024 * 1024 + 7) + str(len(data))

    request = scientist.code.request_code_execution(long_text, reason="big")
    widget, _ = carry(low_admin, "high", high_admin, tmp_path, "up")
    assert widget.sync_all()
    assert high_admin.requests.get(request.id).approve()
    code_id = high_admin.requests.get(request.id).code.id
    assert run_as_requester(high_admin, email, code_id, dataset).status == "completed"
    widget, _ = carry(high_admin, "low", low_admin, tmp_path, "down2")
    assert widget.sync_all()
    assert request.get_results() == "y" * (3 * 1024 * 1024 + 7) + "5"


def test_the_resolver_html_escapes_what_a_scientist_chose(pair, tmp_path):
    low, high, low_admin, high_admin = pair
    hostile = "<script>alert('x')</script>"
    email = "x{}@example.org".format(unique("e"))
    assert sy.register(url="localhost", port=low.port, name=hostile, email=email,
                       password=PASSWORD, institution="<b>inst</b>", website="javascript:x")
    scientist = sy.login(url="localhost", port=low.port, email=email, password=PASSWORD)

    @sy.syft_function_single_use()
    def hostile_source():
        return "</pre><script>alert(1)</script>"

    scientist.code.request_code_execution(hostile_source, reason=HOSTILE_REASON)
    widget, _ = carry(low_admin, "high", high_admin, tmp_path)
    for html in [widget._repr_html_()] + [widget[i]._repr_html_() for i in range(len(widget))]:
        assert "<script" not in html and "<img" not in html and "<b>" not in html
    html = widget._repr_html_()
    assert "&lt;script&gt;" in html and "&lt;img" in html
    assert json.dumps(widget.diff.summary)
