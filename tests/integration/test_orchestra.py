"""``sy.orchestra.launch`` and ``ServerHandle``: arguments, binary lookup, launch, land, remote."""

import json
import os
import socket
import stat

import pytest

import datasite as sy
from datasite import _binary, orchestra
from helpers import ROOT_EMAIL, ROOT_PASSWORD, Api, port_is_closed, unique

# Arguments (no server needed) --------------------------------------------------------------------


def flag_value(args, flag):
    return args[args.index(flag) + 1] if flag in args else None


def test_launch_args_defaults():
    args = orchestra.launch_args("srv")
    assert args[:3] == ["launch", "--name", "srv"]
    assert flag_value(args, "--port") == "auto"
    assert "--host" not in args  # the server's default: loopback
    assert flag_value(args, "--server-type") == "datasite"
    assert flag_value(args, "--side") == "high"
    assert args[-1] == "--detach"
    for flag in (
        "--reset",
        "--dev-mode",
        "--workers",
        "--data-dir",
        "--association-request-auto-approval",
        "--allowed-host",
    ):
        assert flag not in args


@pytest.mark.parametrize(
    "kwargs,flag,value",
    [
        ({"port": None}, "--port", "auto"),
        ({"port": "auto"}, "--port", "auto"),
        ({"port": 8093}, "--port", "8093"),
        ({"host": "127.0.0.1"}, "--host", "127.0.0.1"),
        ({"host": "0.0.0.0"}, "--host", "0.0.0.0"),
        ({"allowed_hosts": ["datasite.example"]}, "--allowed-host", "datasite.example"),
        ({"allowed_hosts": "datasite.example"}, "--allowed-host", "datasite.example"),
        ({"n_consumers": 3}, "--workers", "3"),
        ({"create_producer": False}, "--workers", "0"),
        ({"create_producer": True, "n_consumers": 2}, "--workers", "2"),
        ({"server_type": "gateway"}, "--server-type", "gateway"),
        ({"server_type": sy.ServerType.ENCLAVE}, "--server-type", "enclave"),
        ({"server_side_type": "low"}, "--side", "low"),
        ({"data_dir": "/tmp/x"}, "--data-dir", "/tmp/x"),
    ],
)
def test_launch_args_map_parameters_to_flags(kwargs, flag, value):
    assert flag_value(orchestra.launch_args("srv", **kwargs), flag) == value


@pytest.mark.parametrize(
    "kwargs,flag",
    [
        ({"reset": True}, "--reset"),
        ({"dev_mode": True}, "--dev-mode"),
        ({"association_request_auto_approval": True}, "--association-request-auto-approval"),
    ],
)
def test_launch_args_boolean_flags(kwargs, flag):
    assert flag in orchestra.launch_args("srv", **kwargs)


def test_thread_workers_is_accepted_with_a_note_that_it_changes_nothing():
    # PySyft's dev_mode notebooks pass thread_workers=True; jobs still run in sandboxed processes.
    with pytest.warns(sy.DatasiteWarning, match="sandboxed"):
        orchestra._note_no_effect({"thread_workers": True})
    assert "--workers" not in orchestra.launch_args("srv", thread_workers=True)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"port": "eighty"},
        {"port": 0},
        {"port": 70000},
        {"port": True},
        {"server_type": "castle"},
        {"server_side_type": "middle"},
        {"n_consumers": -1},
        {"create_producer": False, "n_consumers": 2},
    ],
)
def test_invalid_launch_parameters_raise_value_error(kwargs):
    with pytest.raises(ValueError):
        orchestra.launch_args("srv", **kwargs)


def test_binary_lookup_honours_datasite_binary(monkeypatch, tmp_path):
    fake = tmp_path / "my-datasite"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("DATASITE_BINARY", str(fake))
    assert _binary.find_binary() == str(fake)


def test_binary_lookup_refuses_a_missing_datasite_binary(monkeypatch, tmp_path):
    monkeypatch.setenv("DATASITE_BINARY", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="DATASITE_BINARY"):
        _binary.find_binary()


def test_binary_lookup_error_names_all_three_places(monkeypatch, tmp_path):
    monkeypatch.delenv("DATASITE_BINARY", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    candidates = tuple(str(tmp_path / d / "datasite") for d in ("a", "b", "c"))
    monkeypatch.setattr(_binary, "BUILD_CANDIDATES", candidates)
    with pytest.raises(FileNotFoundError) as err:
        _binary.find_binary()
    message = str(err.value)
    assert "DATASITE_BINARY" in message and "PATH" in message
    for candidate in candidates:
        assert candidate in message


def test_binary_lookup_default_build_folders():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(sy.__file__))))
    assert _binary.BUILD_CANDIDATES == tuple(
        os.path.join(root, "build", *p)
        for p in (("datasite",), ("release", "datasite"), ("debug", "datasite"))
    )


# Launching ---------------------------------------------------------------------------------------


def test_launch_returns_a_handle(launcher):
    name = unique("orch")
    server = launcher.launch(name=name)
    assert (server.name, server.url) == (name, "http://localhost")
    assert isinstance(server.port, int) and server.port > 0
    assert server.deployment_type is sy.DeploymentType.PYTHON
    assert server.server_type == "datasite" and server.server_side_type == "high"
    assert os.path.isdir(server.data_dir)
    assert Api(server.port).get("/healthz").status == 200


def test_launch_echoes_the_two_lines(launcher, capsys):
    name = unique("orch")
    server = launcher.launch(name=name)
    assert capsys.readouterr().out.splitlines() == [
        "Starting {} server on 127.0.0.1:{}".format(name, server.port),
        "You have launched a development server at http://127.0.0.1:{}. "
        "It is intended only for local use.".format(server.port),
    ]


def test_launch_port_is_the_one_the_server_uses(launcher):
    server = launcher.launch()
    info = json.loads(open(os.path.join(server.data_dir, "server.json")).read())
    assert info["port"] == server.port


def test_launch_on_a_given_port(launcher):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = launcher.launch(port=port)
    assert server.port == port
    assert Api(port).get("/healthz").status == 200


def test_launch_gateway_low_side(launcher):
    server = launcher.launch(server_type="gateway", server_side_type="low")
    assert (server.server_type, server.server_side_type) == ("gateway", "low")
    meta = Api(server.port).get("/api/v1/metadata").json
    assert (meta["server_type"], meta["server_side_type"]) == ("gateway", "low")
    guest = server.login_as_guest()
    assert repr(guest) == "Logged into <{}: Low side Gateway> as GUEST".format(server.name)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_consumers": 2},
        {"create_producer": False},
        {"dev_mode": True},
        {"association_request_auto_approval": True},
    ],
)
def test_launch_accepts_worker_and_mode_options(launcher, kwargs):
    server = launcher.launch(**kwargs)
    assert Api(server.port).get("/readyz").status == 200


def test_launch_into_data_dir(launcher, tmp_path):
    data_dir = tmp_path / "data"
    server = launcher.launch(data_dir=data_dir)
    assert server.data_dir == str(data_dir)
    assert json.loads((data_dir / "server.json").read_text())["port"] == server.port
    launcher.land(server)
    assert port_is_closed(server.port)


def test_launch_failure_raises_runtime_error_with_stderr(launcher):
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        sock.listen(1)
        with pytest.raises(RuntimeError) as err:
            launcher.launch(port=sock.getsockname()[1])
    assert "error: " in str(err.value)


def test_land_prints_stopping_and_stops(launcher, capsys):
    server = launcher.launch()
    capsys.readouterr()
    launcher.land(server)
    assert capsys.readouterr().out == "Stopping {}\n".format(server.name)
    assert port_is_closed(server.port)


def test_second_land_raises_runtime_error(launcher):
    server = launcher.launch()
    launcher.land(server)
    with pytest.raises(RuntimeError, match="no running server named"):
        server.land()


def test_land_finds_the_server_after_xdg_data_home_changed(launcher, monkeypatch, tmp_path):
    server = launcher.launch()
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "another"))
    launcher.land(server)
    assert port_is_closed(server.port)


def test_handle_login_gives_a_client(launcher):
    server = launcher.launch()
    with pytest.warns(sy.DatasiteWarning):
        client = server.login(email=ROOT_EMAIL, password=ROOT_PASSWORD)
    assert isinstance(client, sy.DatasiteClient)
    assert client.account.email == ROOT_EMAIL


def test_remote_handle_reaches_an_existing_server(launcher, capsys):
    server = launcher.launch()
    remote = sy.orchestra.launch(
        name=server.name, deploy_to="remote", host="localhost", port=server.port
    )
    assert remote.deployment_type is sy.DeploymentType.REMOTE
    assert (remote.url, remote.port) == ("http://localhost", server.port)
    assert remote.client.settings.name == server.name
    capsys.readouterr()
    remote.land()
    assert "not implemented" in capsys.readouterr().out.lower()
    assert Api(server.port).get("/healthz").status == 200
