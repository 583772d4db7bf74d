"""The air-gapped scenario of issue 14 through the command line, with the high side in a network
namespace of its own (only ``lo`` up, no route to the low side): every sync step on either side is a
`datasite sync ...` command, the high side's run inside that namespace, so only bundle files cross.
The scientist's steps on the low side and the owner's run on private data use the Python client (the
command line has no code submission); the owner's run is driven inside the namespace.
"""

import json
import subprocess

import datasite as sy
from helpers import ROOT_EMAIL, ROOT_PASSWORD, needs_sandbox, unique
from sync_sides import (
    FLAGS,
    HIGH_UPLOAD,
    Netns,
    NetnsServer,
    can_connect,
    register_scientist,
    skip_without_sync,
    start_side,
)

MOCK = {"age": [20, 20, 20], "name": ["MOCK-a", "MOCK-b", "MOCK-c"]}

RUN_FOR_REQUESTER = """
code = high.requests.get(args['request']).code
asset = high.datasets[args['dataset']].assets['people']
job = code(data=asset, for_requester=True, blocking=False)
job.wait(timeout=120)
result = str(job.status)
"""


def cli(prefix, binary, port, *args):
    """One `datasite` command against the server on ``port``, run in the namespace of ``prefix``."""
    proc = subprocess.run(prefix + [str(binary), *args, "--url", "http://127.0.0.1:%d" % port,
                                    "--email", ROOT_EMAIL, "--password", ROOT_PASSWORD],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=180)
    return proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")


def ok(result):
    code, out, err = result
    assert code == 0, (out, err)
    return out


@needs_sandbox
def test_air_gapped_scenario_through_the_cli_with_no_route(binary, tmp_path):
    netns = Netns()
    low = start_side(binary, tmp_path / "low", "low")
    high = NetnsServer(netns, binary, tmp_path / "high", "--side", "high", *FLAGS)
    try:
        skip_without_sync(low.port)
        high.start()
        assert netns.routes() == []
        assert not can_connect(netns.prefix(), "127.0.0.1", low.port)
        on_low = lambda *args: cli([], binary, low.port, *args)  # noqa: E731
        on_high = lambda *args: cli(netns.prefix(), binary, high.port, *args)  # noqa: E731

        # Keys exchanged out of band: each side's identity printed, then registered on the other.
        low_key = ok(on_low("sync", "identity", "--json"))
        high_key = ok(on_high("sync", "identity", "--json"))
        low_key, high_key = json.loads(low_key)["verify_key"], json.loads(high_key)["verify_key"]
        ok(on_low("sync", "peer", "add", "high", high_key))
        ok(on_high("sync", "peer", "add", "low", low_key))

        # The dataset goes down as a mock only.
        marker, dataset = "PRIVATE-" + unique("m"), unique("people")
        high.drive(HIGH_UPLOAD, name=dataset, mock=MOCK,
                   private={"age": [31, 42, 57], "name": [marker + "-" + c for c in "xyz"]})
        down = tmp_path / "down-1.dsync"
        ok(on_high("sync", "export", "--peer", "low", "--out", str(down)))
        assert "dataset:" in ok(on_low("sync", "import", str(down), "--yes"))

        # A scientist registers on the low side and asks twice.
        scientist, _ = register_scientist(low.port)
        asset = scientist.datasets[dataset].assets["people"]

        @sy.syft_function_single_use(data=asset)
        def netns_count(data):
            return len(data)

        @sy.syft_function_single_use(data=asset)
        def netns_names(data):
            return list(data["name"])

        approved = scientist.code.request_code_execution(netns_count, reason="count")
        denied = scientist.code.request_code_execution(netns_names, reason="names")

        # Up, through the command line on both sides.
        up = tmp_path / "up-1.dsync"
        ok(on_low("sync", "export", "--peer", "high", "--out", str(up)))
        imported = ok(on_high("sync", "import", str(up), "--yes"))
        assert "request:" + approved.id in imported and "request:" + denied.id in imported
        # The same file again is refused as replayed, and says so.
        code, _, err = on_high("sync", "import", str(up), "--yes")
        assert code == 1 and "bundle refused (replayed)" in err, err

        # The owner decides and runs on the high side.
        ok(on_high("requests", "approve", approved.id))
        ok(on_high("requests", "deny", denied.id, "--reason", "names identify people"))
        status = high.drive(RUN_FOR_REQUESTER, request=approved.id, dataset=dataset)
        assert "completed" in status.lower(), status

        # Down: the decisions and the result.
        down = tmp_path / "down-2.dsync"
        ok(on_high("sync", "export", "--peer", "low", "--out", str(down)))
        ok(on_low("sync", "import", str(down), "--yes"))
        assert scientist.code.netns_count(data=asset).get() == 3
        denied.refresh()
        assert str(denied.status) == str(sy.RequestStatus.REJECTED)
        assert denied.deny_reason == "names identify people"
        for path in tmp_path.glob("down-*.dsync"):
            assert marker.encode() not in path.read_bytes(), path
    finally:
        high.stop()
        low.stop()
        netns.remove()

