"""The ``datasite`` command line: launch, list, land, version (docs/API.md, last section)."""

import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from helpers import Api, assert_error, pid_is_datasite, port_is_closed, unique

TIMEOUT = 60


class Result:
    def __init__(self, returncode, stdout, stderr):
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr

    def __repr__(self):
        return "<exit {} stdout={!r} stderr={!r}>".format(
            self.returncode, self.stdout, self.stderr
        )


class Cli:
    """Runs the binary; lands at teardown every server it launched."""

    def __init__(self, binary, xdg):
        self.binary = binary
        self.xdg = xdg
        self.launched = []

    def run(self, *args, env=None):
        # Output to files: a detached server that kept our pipes open would make pipes hang.
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            code = subprocess.call(
                [self.binary] + list(args),
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                timeout=TIMEOUT,
                env=env,
            )
            out.seek(0)
            err.seek(0)
            return Result(code, out.read().decode(), err.read().decode())

    def launch(self, name, *extra, env=None):
        self.launched.append((name, extra))
        result = self.run("launch", "--name", name, "--port", "auto", *extra, "--detach", env=env)
        assert result.returncode == 0, result
        return result

    def cleanup(self):
        for name, extra in self.launched:
            args = ["land", name]
            if "--data-dir" in extra:
                args += ["--data-dir", extra[extra.index("--data-dir") + 1]]
            result = self.run(*args)
            if result.returncode == 0:
                continue
            data_dir = (
                extra[extra.index("--data-dir") + 1]
                if "--data-dir" in extra
                else os.path.join(str(self.xdg), "datasite", name)
            )
            try:
                pid = json.loads(pathlib.Path(data_dir, "server.json").read_text())["pid"]
            except (OSError, ValueError, KeyError):
                continue
            if pid_is_datasite(pid):
                os.kill(pid, signal.SIGTERM)


@pytest.fixture
def cli(binary, xdg_data_home):
    cli = Cli(binary, xdg_data_home)
    yield cli
    cli.cleanup()


def printed_port(stdout, name):
    match = re.match(r"Starting {} server on 127\.0\.0\.1:(\d+)\n".format(re.escape(name)), stdout)
    assert match, stdout
    return int(match.group(1))


def expected_lines(name, port):
    return [
        "Starting {} server on 127.0.0.1:{}".format(name, port),
        "You have launched a development server at http://127.0.0.1:{}. "
        "It is intended only for local use.".format(port),
    ]


def list_rows(cli):
    result = cli.run("list")
    assert result.returncode == 0, result
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert lines, "datasite list printed no header"
    return [line.split() for line in lines[1:]]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_launch_detach_prints_the_two_lines_with_the_real_port(cli):
    name = unique("cli")
    result = cli.launch(name)
    port = printed_port(result.stdout, name)
    assert port > 0
    assert result.stdout.splitlines() == expected_lines(name, port)
    assert Api(port).get("/healthz").status == 200


def test_launch_detach_releases_its_output_pipes(cli):
    name = unique("cli")
    cli.launched.append((name, ()))
    try:
        result = subprocess.run(
            [cli.binary, "launch", "--name", name, "--port", "auto", "--detach"],
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(
            "`datasite launch --detach` with piped output did not return within 30 s: the "
            "background server keeps the pipes open"
        )
    assert result.returncode == 0, result
    assert result.stdout.splitlines() == expected_lines(name, printed_port(result.stdout, name))


def test_launch_is_ready_when_it_returns(cli):
    name = unique("cli")
    port = printed_port(cli.launch(name).stdout, name)
    resp = Api(port).get("/readyz")
    assert (resp.status, resp.json) == (200, {"status": "ready"})


def test_launch_logs_to_server_log_in_data_dir(cli):
    name = unique("cli")
    cli.launch(name)
    assert (cli.xdg / "datasite" / name / "server.log").is_file()


def test_list_shows_the_running_server(cli):
    name = unique("cli")
    port = printed_port(cli.launch(name).stdout, name)
    rows = [row for row in list_rows(cli) if row and row[0] == name]
    assert len(rows) == 1, rows
    row = rows[0]
    assert len(row) == 4, row
    assert row[1].isdigit()
    assert str(port) in row[2] and row[2].startswith("http://")
    assert os.path.realpath(row[3]) == os.path.realpath(str(cli.xdg / "datasite" / name))


def test_server_json_describes_the_running_server(cli):
    name = unique("cli")
    port = printed_port(cli.launch(name).stdout, name)
    info = json.loads((cli.xdg / "datasite" / name / "server.json").read_text())
    assert set(info) >= {"name", "pid", "host", "port", "url"}
    assert (info["name"], info["port"]) == (name, port)
    assert str(port) in info["url"]
    [row] = [row for row in list_rows(cli) if row[0] == name]
    assert int(row[1]) == info["pid"]
    assert pid_is_datasite(info["pid"])


def test_land_prints_stopping_and_the_server_stops(cli):
    name = unique("cli")
    port = printed_port(cli.launch(name).stdout, name)
    result = cli.run("land", name)
    assert result.returncode == 0, result
    assert result.stdout == "Stopping {}\n".format(name)
    assert port_is_closed(port)
    assert name not in [row[0] for row in list_rows(cli)]


def test_land_of_unknown_name_exits_1(cli):
    name = unique("nobody")
    result = cli.run("land", name)
    assert result.returncode == 1, result
    assert result.stderr.strip() == "error: no running server named {}".format(name)
    assert "Stopping" not in result.stdout


def test_second_land_exits_1(cli):
    name = unique("cli")
    cli.launch(name)
    assert cli.run("land", name).returncode == 0
    result = cli.run("land", name)
    assert result.returncode == 1, result
    assert result.stderr.strip() == "error: no running server named {}".format(name)


def test_launch_on_a_busy_port_fails_with_an_error(cli):
    name = unique("cli")
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        cli.launched.append((name, ()))
        result = cli.run("launch", "--name", name, "--port", str(port), "--detach")
    assert result.returncode != 0, result
    assert result.stderr.startswith("error: "), result
    assert name not in [row[0] for row in list_rows(cli)]


def test_launch_on_a_given_port_uses_it(cli):
    name = unique("cli")
    port = free_port()
    cli.launched.append((name, ()))
    result = cli.run("launch", "--name", name, "--port", str(port), "--detach")
    assert result.returncode == 0, result
    assert result.stdout.splitlines() == expected_lines(name, port)


def test_data_dir_flag_places_storage_and_land_finds_it(cli, tmp_path):
    name = unique("cli")
    data_dir = tmp_path / "elsewhere"
    port = printed_port(cli.launch(name, "--data-dir", str(data_dir)).stdout, name)
    assert json.loads((data_dir / "server.json").read_text())["port"] == port
    assert not (cli.xdg / "datasite" / name / "server.json").exists()
    result = cli.run("land", name, "--data-dir", str(data_dir))
    assert (result.returncode, result.stdout) == (0, "Stopping {}\n".format(name)), result
    assert port_is_closed(port)


def test_a_server_with_its_own_data_dir_is_found_by_name(cli, tmp_path):
    # Regression (issue 12): list, land and --server NAME looked only in the default directory.
    name = unique("cli")
    data_dir = tmp_path / "own"
    port = printed_port(cli.launch(name, "--data-dir", str(data_dir)).stdout, name)
    rows = [row for row in list_rows(cli) if row and row[0] == name]
    assert len(rows) == 1, rows
    assert str(port) in rows[0][2]
    assert os.path.realpath(rows[0][3]) == os.path.realpath(str(data_dir))

    listed = cli.run("dataset", "list", "--server", name)
    assert listed.returncode == 0, listed
    assert listed.stdout.split()[:2] == ["NAME", "ASSETS"], listed

    landed = cli.run("land", name)
    assert (landed.returncode, landed.stdout) == (0, "Stopping {}\n".format(name)), landed
    assert port_is_closed(port)
    assert not [row for row in list_rows(cli) if row and row[0] == name]
    gone = cli.run("dataset", "list", "--server", name)
    assert gone.returncode == 1 and "no running server named" in gone.stderr, gone


def test_version_prints_the_server_version(cli):
    result = cli.run("version")
    assert result.returncode == 0, result
    assert re.search(r"\d+\.\d+\.\d+", result.stdout), result
    name = unique("cli")
    port = printed_port(cli.launch(name).stdout, name)
    assert Api(port).get("/api/v1/metadata").json["version"] in result.stdout


def test_root_credential_flags_replace_the_defaults(cli):
    name = unique("cli")
    port = printed_port(
        cli.launch(
            name, "--root-email", "boss@example.org", "--root-password", "B0ss-Passw0rd"
        ).stdout,
        name,
    )
    api = Api(port)
    resp = api.post(
        "/api/v1/auth/login", {"email": "boss@example.org", "password": "B0ss-Passw0rd"}
    )
    assert resp.status == 200, resp
    assert resp.json["default_password"] is False
    assert resp.json["user"]["is_root"] is True
    default = api.post(
        "/api/v1/auth/login", {"email": "info@example.org", "password": "changethis"}
    )
    assert_error(default, 401, "UNAUTHENTICATED")
    assert api.get("/api/v1/metadata").json["admin_email"] == "boss@example.org"


def test_root_credentials_from_the_environment(cli):
    name = unique("cli")
    env = dict(
        os.environ,
        DATASITE_ROOT_EMAIL="env-root@example.org",
        DATASITE_ROOT_PASSWORD="Env-Passw0rd",
    )
    port = printed_port(cli.launch(name, env=env).stdout, name)
    resp = Api(port).post(
        "/api/v1/auth/login", {"email": "env-root@example.org", "password": "Env-Passw0rd"}
    )
    assert resp.status == 200, resp
    assert resp.json["user"]["is_root"] is True


def test_signup_flag_enables_signup(cli):
    name = unique("cli")
    port = printed_port(cli.launch(name, "--signup").stdout, name)
    assert Api(port).get("/api/v1/metadata").json["signup_enabled"] is True


def test_association_flag_enables_auto_approval(cli):
    name = unique("cli")
    port = printed_port(cli.launch(name, "--association-request-auto-approval").stdout, name)
    api = Api(port)
    token = api.login("info@example.org", "changethis")
    assert api.settings(token)["association_request_auto_approval"] is True


@pytest.mark.parametrize(
    "kind,side", [("gateway", "low"), ("enclave", "high"), ("datasite", "low")]
)
def test_server_type_and_side_flags(cli, kind, side):
    name = unique("cli")
    port = printed_port(cli.launch(name, "--server-type", kind, "--side", side).stdout, name)
    meta = Api(port).get("/api/v1/metadata").json
    assert (meta["server_type"], meta["server_side_type"]) == (kind, side)


def test_invalid_flag_values_fail_with_an_error(cli):
    for args in (["--server-type", "castle"], ["--side", "middle"], ["--port", "http"]):
        name = unique("cli")
        cli.launched.append((name, ()))
        result = cli.run("launch", "--name", name, *args, "--detach")
        assert result.returncode != 0, (args, result)
        assert result.stderr.startswith("error: "), (args, result)


def test_foreground_launch_runs_until_sigterm(cli, tmp_path):
    name = unique("fg")
    out_path = tmp_path / "out.txt"
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(
            [cli.binary, "launch", "--name", name, "--port", "auto"],
            stdout=out,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + TIMEOUT
        while len(out_path.read_text().splitlines()) < 2:
            assert proc.poll() is None, "foreground launch exited early: " + out_path.read_text()
            assert time.monotonic() < deadline, "no launch lines: " + out_path.read_text()
            time.sleep(0.05)
        text = out_path.read_text()
        port = printed_port(text, name)
        assert text.splitlines()[:2] == expected_lines(name, port)
        assert Api(port).get("/healthz").status == 200
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        assert port_is_closed(port)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
