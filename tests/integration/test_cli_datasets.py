"""``datasite dataset list|show|upload|download-mock|delete`` against a server launched with the CLI.

One server per module (datasets get unique names, so tests do not disturb each other); tests that
look at what the command line does without a server need none.
"""

import hashlib
import http.server
import json
import os
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import uuid

import pytest

from helpers import PASSWORD, ROOT_EMAIL, ROOT_PASSWORD, Api, pid_is_datasite, unique

TIMEOUT = 120

PEOPLE_CSV = b"age,name,score\n31,alice,1.5\n42,bob,2.25\n57,carol,3.0\n"
PEOPLE_MOCK_CSV = b"age,name,score\n30,x,1.0\n40,y,2.0\n50,z,3.5\n"
COLUMNS = [("age", "int"), ("name", "string"), ("score", "float")]


class Result:
    def __init__(self, returncode, stdout, stderr):
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr

    def __repr__(self):
        return "<exit {} stdout={!r} stderr={!r}>".format(self.returncode, self.stdout, self.stderr)


def run(binary, *args, env=None, cwd=None):
    """Runs the binary with ``env`` added to a clean copy of ours; output through files."""
    full_env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATASITE_URL", "DATASITE_EMAIL", "DATASITE_PASSWORD", "DATASITE_TOKEN")
    }
    full_env.update(env or {})
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        code = subprocess.call(
            [binary] + [str(a) for a in args],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            timeout=TIMEOUT,
            env=full_env,
            cwd=cwd,
        )
        out.seek(0)
        err.seek(0)
        return Result(code, out.read().decode(), err.read().decode())


class Site:
    """A server launched with ``datasite launch --detach``, and the CLI pointed at it."""

    def __init__(self, binary, xdg, *launch_args):
        self.binary = binary
        self.xdg = xdg
        self.name = unique("ds")
        self.env = {"XDG_DATA_HOME": str(xdg)}
        result = self.run(
            "launch",
            "--name",
            self.name,
            "--port",
            "auto",
            "--detach",
            "--login-attempts-per-minute",
            "100000",
            *launch_args
        )
        assert result.returncode == 0, result
        info = json.loads((xdg / "datasite" / self.name / "server.json").read_text())
        self.port = int(info["port"])
        self.url = "http://127.0.0.1:{}".format(self.port)
        self.api = Api(self.port)
        self.admin_token = self.api.login(ROOT_EMAIL, ROOT_PASSWORD)

    def run(self, *args, env=None, cwd=None):
        full_env = dict(self.env)
        full_env.update(env or {})
        return run(self.binary, *args, env=full_env, cwd=cwd)

    def as_admin(self, command, *args, **kw):
        """``datasite dataset COMMAND --server NAME ARGS`` logged in as the root admin."""
        return self.run(
            "dataset",
            command,
            "--server",
            self.name,
            "--email",
            ROOT_EMAIL,
            "--password",
            ROOT_PASSWORD,
            *args,
            **kw
        )

    def land(self):
        result = self.run("land", self.name)
        if result.returncode == 0:
            return
        try:
            info = json.loads((self.xdg / "datasite" / self.name / "server.json").read_text())
            pid = int(info["pid"])
        except (OSError, ValueError, KeyError):
            return
        if pid_is_datasite(pid):
            os.kill(pid, signal.SIGTERM)


@pytest.fixture(scope="module")
def site(binary, tmp_path_factory):
    site = Site(binary, tmp_path_factory.mktemp("xdg"))
    yield site
    site.land()


@pytest.fixture(scope="module")
def scientist(site):
    """Email and password of a data scientist, created by the admin over the HTTP API."""
    user = site.api.create_user(site.admin_token, role="data_scientist")
    return user["email"], PASSWORD


@pytest.fixture
def files(tmp_path):
    """Writes files into the test's directory: files(name=bytes) -> {name: path}."""

    def write(**contents):
        paths = {}
        for name, data in contents.items():
            path = tmp_path / name.replace("_", ".")
            path.write_bytes(data)
            paths[name] = path
        return paths

    return write


def npy(shape, values):
    """A little-endian float64 .npy file (format 1.0) without numpy."""
    header = "{{'descr': '<f8', 'fortran_order': False, 'shape': {!r}, }}".format(tuple(shape))
    header += " " * (63 - (10 + len(header)) % 64) + "\n"  # the whole header: a multiple of 64
    return (
        b"\x93NUMPY\x01\x00"
        + struct.pack("<H", len(header))
        + header.encode("latin-1")
        + struct.pack("<{}d".format(len(values)), *values)
    )


def upload_people(site, tmp_path, name=None, mock="mock", extra=()):
    """Uploads PEOPLE_CSV as asset ``people`` (with the given mock option); returns the name."""
    name = name or unique("people")
    data = tmp_path / "people.csv"
    data.write_bytes(PEOPLE_CSV)
    spec = "people={}".format(data)
    if mock == "mock":
        mock_path = tmp_path / "people_mock.csv"
        mock_path.write_bytes(PEOPLE_MOCK_CSV)
        spec += ",mock={}".format(mock_path)
    elif mock:
        spec += "," + mock
    result = site.as_admin("upload", "--name", name, "--asset", spec, *extra)
    assert result.returncode == 0, result
    return name


def list_rows(result):
    assert result.returncode == 0, result
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert lines and lines[0].split()[:4] == ["NAME", "ASSETS", "UPDATED", "SUMMARY"], result
    return {line.split()[0]: line.split() for line in lines[1:]}


def get_dataset(site, name):
    resp = site.api.get("/api/v1/datasets/" + name, token=site.admin_token)
    return resp


# Upload ------------------------------------------------------------------------------------------


def test_upload_with_a_mock_file_creates_the_dataset(site, tmp_path):
    name = unique("census")
    upload_people(
        site,
        tmp_path,
        name=name,
        extra=(
            "--summary",
            "People of the town",
            "--description",
            "A *small* table",
            "--citation",
            "Town hall 2026",
            "--dataset-url",
            "https://example.org/census",
            "--contributor",
            "Jane Doe <jane@example.org> maintainer",
            "--contributor",
            "Bob",
        ),
    )
    resp = get_dataset(site, name)
    assert resp.status == 200, resp
    d = resp.json
    assert (d["name"], d["summary"], d["description"], d["citation"], d["url"]) == (
        name,
        "People of the town",
        "A *small* table",
        "Town hall 2026",
        "https://example.org/census",
    )
    assert d["contributors"] == [
        {"name": "Jane Doe", "email": "jane@example.org", "role": "maintainer", "phone": "",
         "note": ""},
        {"name": "Bob", "email": "", "role": "", "phone": "", "note": ""},
    ]
    [asset] = d["assets"]
    assert asset["name"] == "people" and asset["format"] == "csv" and asset["has_mock"]
    assert asset["mock_size"] == len(PEOPLE_MOCK_CSV)
    assert asset["data_size"] == len(PEOPLE_CSV)
    assert [(c["name"], c["type"]) for c in asset["schema"]["columns"]] == COLUMNS


def test_upload_prints_the_dataset_and_its_assets(site, tmp_path):
    data = tmp_path / "t.csv"
    data.write_bytes(PEOPLE_CSV)
    name = unique("printed")
    result = site.as_admin("upload", "--name", name, "--asset", "t={},generate-mock".format(data))
    assert result.returncode == 0, result
    assert name in result.stdout and "1 asset" in result.stdout
    assert "t: csv" in result.stdout
    # Regression (issue 12): the server's answer said has_mock false, so this said "empty mock".
    [asset] = get_dataset(site, name).json["assets"]
    assert "empty mock" not in result.stdout, result.stdout
    assert "mock " + human_bytes(asset["mock_size"]) in result.stdout, result.stdout
    assert "data {}".format(human_bytes(len(PEOPLE_CSV))) in result.stdout, result.stdout


def human_bytes(n):
    """Sizes as the CLI prints them (HumanBytes in src/cli): bytes below 1 KiB."""
    units = ["B", "KiB", "MiB", "GiB"]
    value, unit = float(n), 0
    while value >= 1024 and unit < len(units) - 1:
        value /= 1024
        unit += 1
    return "{} B".format(n) if unit == 0 else "{:.1f} {}".format(value, units[unit])


def test_upload_with_generate_mock_makes_a_mock_of_the_same_shape(site, tmp_path):
    name = upload_people(site, tmp_path, mock="generate-mock")
    [asset] = get_dataset(site, name).json["assets"]
    assert asset["has_mock"] and not asset["mock_is_real"]
    assert [(c["name"], c["type"]) for c in asset["schema"]["columns"]] == COLUMNS
    assert asset["schema"]["rows"] == 100, "a fixed row count, not the private one (3)"
    out = tmp_path / "generated.csv"
    result = site.as_admin("download-mock", name, "people", "-o", out)
    assert result.returncode == 0, result
    lines = out.read_bytes().decode().splitlines()
    assert lines[0] == "age,name,score" and len(lines) == 101
    assert out.read_bytes() != PEOPLE_CSV


def test_upload_with_generate_mock_parameters_from_a_file(site, tmp_path):
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"rows": 5, "columns": {"age": {"min": 1, "max": 2}}}))
    name = upload_people(site, tmp_path, mock="generate-mock={}".format(params))
    [asset] = get_dataset(site, name).json["assets"]
    assert asset["schema"]["rows"] == 5
    out = tmp_path / "generated.csv"
    assert site.as_admin("download-mock", name, "people", "-o", out).returncode == 0
    ages = [line.split(",")[0] for line in out.read_bytes().decode().splitlines()[1:]]
    assert set(ages) <= {"1", "2"}

    params.write_text(json.dumps({"columns": {"nope": {"min": 1, "max": 2}}}))
    data = tmp_path / "people.csv"
    result = site.as_admin(
        "upload", "--name", unique("bad"), "--asset", "p={},generate-mock={}".format(data, params)
    )
    assert result.returncode == 1, result
    assert "columns.nope: the table has no column named 'nope'" in result.stderr
    params.write_text("[1, 2]")
    result = site.as_admin(
        "upload", "--name", unique("bad"), "--asset", "p={},generate-mock={}".format(data, params)
    )
    assert result.returncode != 0 and "one JSON object of mock parameters" in result.stderr


def test_upload_without_a_mock_option_gives_an_empty_mock_and_says_so(site, tmp_path):
    data = tmp_path / "t.csv"
    data.write_bytes(PEOPLE_CSV)
    name = unique("nomock")
    result = site.as_admin("upload", "--name", name, "--asset", "t={}".format(data))
    assert result.returncode == 0, result
    assert "empty mock" in result.stderr
    [asset] = get_dataset(site, name).json["assets"]
    assert asset["has_mock"] is False


def test_upload_of_several_assets_and_an_npy_array(site, tmp_path, files):
    paths = files(
        a_csv=PEOPLE_CSV,
        m_npy=npy((3, 2), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
        n_json=b'[{"x": 1}, {"x": 2}]',
    )
    name = unique("multi")
    result = site.as_admin(
        "upload",
        "--name",
        name,
        "--asset",
        "table={},no-mock".format(paths["a_csv"]),
        "--asset",
        "matrix={},generate-mock".format(paths["m_npy"]),
        "--asset",
        "records={},mock={}".format(paths["n_json"], paths["n_json"]),
    )
    assert result.returncode == 0, result
    d = get_dataset(site, name).json
    by_name = {a["name"]: a for a in d["assets"]}
    assert {n: a["format"] for n, a in by_name.items()} == {
        "table": "csv",
        "matrix": "npy",
        "records": "json",
    }
    assert by_name["matrix"]["schema"]["dtype"] == "<f8"
    assert by_name["matrix"]["schema"]["shape"] == [100, 2]
    shown = site.as_admin("show", name)
    assert shown.returncode == 0, shown
    assert "<f8" in shown.stdout and "[100,2]" in shown.stdout.replace(" ", "")


def test_upload_refused_by_the_server_creates_nothing(site, tmp_path, files):
    paths = files(good_csv=PEOPLE_CSV, bad_csv=b"a,b\n1\n")
    name = unique("broken")
    result = site.as_admin(
        "upload",
        "--name",
        name,
        "--asset",
        "good={},no-mock".format(paths["good_csv"]),
        "--asset",
        "bad={},no-mock".format(paths["bad_csv"]),
    )
    assert result.returncode == 1, result
    assert result.stderr.startswith("error: "), result
    assert "bad.csv" in result.stderr
    assert get_dataset(site, name).status == 404


def test_upload_past_the_server_blob_limit_fails_and_creates_nothing(binary, tmp_path):
    small = Site(binary, tmp_path / "xdg_small", "--max-blob-bytes", "100000")
    try:
        data = tmp_path / "big.bin"
        data.write_bytes(os.urandom(3 << 20))
        name = unique("toolarge")
        result = small.as_admin("upload", "--name", name, "--asset", "a={},no-mock".format(data))
        assert result.returncode == 1, result
        assert result.stderr.startswith("error: "), result
        assert get_dataset(small, name).status == 404
    finally:
        small.land()


def test_upload_of_a_taken_name_fails(site, tmp_path):
    name = upload_people(site, tmp_path)
    data = tmp_path / "again.csv"
    data.write_bytes(PEOPLE_CSV)
    result = site.as_admin("upload", "--name", name, "--asset", "a={},no-mock".format(data))
    assert result.returncode == 1, result
    assert result.stderr.startswith("error: ") and "already exists" in result.stderr


@pytest.mark.parametrize(
    "spec",
    [
        "people.csv",  # no ASSET=
        "=people.csv",  # empty asset name
        "people=",  # empty path
        "people=people.csv,mock=",  # empty mock path
        "people=people.csv,bogus",  # unknown option
        "people=people.csv,mock=mock.json",  # mock format differs from the data's
        "people=missing.csv",  # no such file
    ],
)
def test_upload_with_bad_asset_syntax_exits_2_before_uploading(site, tmp_path, spec):
    (tmp_path / "people.csv").write_bytes(PEOPLE_CSV)
    (tmp_path / "mock.json").write_bytes(b"[]")
    name = unique("syntax")
    result = site.as_admin("upload", "--name", name, "--asset", spec, cwd=tmp_path)
    assert result.returncode == 2, result
    assert result.stderr.startswith("error: "), result
    assert get_dataset(site, name).status == 404


def test_upload_with_two_assets_of_one_name_exits_2(site, tmp_path):
    (tmp_path / "p.csv").write_bytes(PEOPLE_CSV)
    result = site.as_admin(
        "upload",
        "--name",
        unique("twice"),
        "--asset",
        "a=p.csv",
        "--asset",
        "a=p.csv",
        cwd=tmp_path,
    )
    assert result.returncode == 2, result


def test_upload_with_a_bad_contributor_exits_2(site, tmp_path):
    (tmp_path / "p.csv").write_bytes(PEOPLE_CSV)
    result = site.as_admin(
        "upload",
        "--name",
        unique("contrib"),
        "--asset",
        "a=p.csv",
        "--contributor",
        "Jane <jane@example.org",
        cwd=tmp_path,
    )
    assert result.returncode == 2, result


def test_upload_without_credentials_is_a_usage_error(site, tmp_path):
    (tmp_path / "p.csv").write_bytes(PEOPLE_CSV)
    result = site.run(
        "dataset",
        "upload",
        "--server",
        site.name,
        "--name",
        unique("anon"),
        "--asset",
        "a=p.csv",
        cwd=tmp_path,
    )
    assert result.returncode == 2, result
    assert "--email" in result.stderr


def test_upload_takes_the_description_from_a_file(site, tmp_path):
    text = "# Census\n\nLine two with ünïcode.\n"
    (tmp_path / "README.md").write_text(text, encoding="utf-8")
    name = upload_people(site, tmp_path, extra=("--description-file", tmp_path / "README.md"))
    assert get_dataset(site, name).json["description"] == text


# List and show -----------------------------------------------------------------------------------


def test_list_shows_the_datasets_in_a_table(site, tmp_path):
    name = upload_people(site, tmp_path, extra=("--summary", "Listed summary"))
    rows = list_rows(site.as_admin("list"))
    assert name in rows
    row = rows[name]
    assert row[1] == "1"
    assert row[2].endswith("Z") and "T" in row[2]
    assert " ".join(row[3:]) == "Listed summary"


def test_list_search_filters(site, tmp_path):
    tag = uuid.uuid4().hex[:8]
    name = upload_people(site, tmp_path, name="search_" + tag)
    other = upload_people(site, tmp_path)
    rows = list_rows(site.as_admin("list", "--search", tag))
    assert list(rows) == [name]
    assert other not in rows


def test_list_json_prints_the_server_json(site, tmp_path):
    name = upload_people(site, tmp_path)
    result = site.as_admin("list", "--json")
    assert result.returncode == 0, result
    answer = json.loads(result.stdout)
    assert answer["total"] == len(answer["items"])
    assert name in [d["name"] for d in answer["items"]]


def test_show_prints_the_dataset_and_each_asset(site, tmp_path):
    name = upload_people(
        site,
        tmp_path,
        extra=(
            "--summary",
            "Shown summary",
            "--description",
            "First line\nSecond line",
            "--contributor",
            "Jane Doe <jane@example.org> maintainer",
        ),
    )
    result = site.as_admin("show", name)
    assert result.returncode == 0, result
    out = result.stdout
    for text in (
        name,
        "Shown summary",
        "First line",
        "Second line",
        "Jane Doe",
        "jane@example.org",
        "maintainer",
        "people",
        "csv",
        "3 rows",
        "{} bytes".format(len(PEOPLE_MOCK_CSV)),
    ):
        assert text in out, (text, out)
    for column, kind in COLUMNS:
        assert any(line.split() == [column, kind] for line in out.splitlines()), out


def test_show_json_prints_the_server_json(site, tmp_path):
    name = upload_people(site, tmp_path)
    result = site.as_admin("show", name, "--json")
    assert result.returncode == 0, result
    assert json.loads(result.stdout) == get_dataset(site, name).json


def test_show_by_url_with_credentials_from_the_environment(site, tmp_path):
    name = upload_people(site, tmp_path)
    result = site.run(
        "dataset",
        "show",
        name,
        "--json",
        env={
            "DATASITE_URL": site.url,
            "DATASITE_EMAIL": ROOT_EMAIL,
            "DATASITE_PASSWORD": ROOT_PASSWORD,
        },
    )
    assert result.returncode == 0, result
    assert json.loads(result.stdout)["name"] == name


def test_show_with_a_token(site, tmp_path):
    name = upload_people(site, tmp_path)
    result = site.run("dataset", "show", name, "--url", site.url, "--token", site.admin_token)
    assert result.returncode == 0, result
    assert name in result.stdout


def test_show_of_an_unknown_dataset_exits_1(site):
    name = unique("nothere")
    result = site.as_admin("show", name)
    assert result.returncode == 1, result
    assert result.stderr.startswith("error: ") and name in result.stderr
    assert result.stdout == ""


def test_a_guest_lists_and_shows_without_credentials(site, tmp_path):
    name = upload_people(site, tmp_path)
    rows = list_rows(site.run("dataset", "list", "--server", site.name))
    assert name in rows
    shown = site.run("dataset", "show", name, "--server", site.name, "--json")
    assert shown.returncode == 0, shown
    shown = json.loads(shown.stdout)
    assert "data_size" not in shown["assets"][0]


# Download-mock -----------------------------------------------------------------------------------


def test_download_mock_writes_the_mock_byte_for_byte(site, tmp_path):
    name = upload_people(site, tmp_path)
    out = tmp_path / "out" / "mock.csv"
    out.parent.mkdir()
    result = site.as_admin("download-mock", name, "people", "-o", out)
    assert result.returncode == 0, result
    assert out.read_bytes() == PEOPLE_MOCK_CSV
    assert [p.name for p in out.parent.iterdir()] == ["mock.csv"]  # no temporary file left


def test_download_mock_defaults_to_asset_dot_format_in_the_current_directory(site, tmp_path):
    name = upload_people(site, tmp_path)
    workdir = tmp_path / "work"
    workdir.mkdir()
    result = site.as_admin("download-mock", name, "people", cwd=workdir)
    assert result.returncode == 0, result
    assert (workdir / "people.csv").read_bytes() == PEOPLE_MOCK_CSV


def test_download_mock_into_a_directory_uses_the_default_name(site, tmp_path):
    name = upload_people(site, tmp_path)
    outdir = tmp_path / "into"
    outdir.mkdir()
    result = site.as_admin("download-mock", name, "people", "-o", outdir)
    assert result.returncode == 0, result
    assert (outdir / "people.csv").read_bytes() == PEOPLE_MOCK_CSV


def test_download_mock_to_stdout(site, tmp_path):
    name = upload_people(site, tmp_path)
    result = site.as_admin("download-mock", name, "people", "-o", "-")
    assert result.returncode == 0, result
    assert result.stdout.encode() == PEOPLE_MOCK_CSV


def test_download_mock_of_a_larger_file_matches(site, tmp_path):
    rows = "".join("{},{},{}\n".format(i, "n" + str(i), i * 0.5) for i in range(200000))
    big = ("a,b,c\n" + rows).encode()
    data, mock = tmp_path / "big.csv", tmp_path / "big_mock.csv"
    data.write_bytes(big)
    mock.write_bytes(big)
    name = unique("big")
    result = site.as_admin("upload", "--name", name, "--asset", "t={},mock={}".format(data, mock))
    assert result.returncode == 0, result
    out = tmp_path / "back.csv"
    result = site.as_admin("download-mock", name, "t", "-o", out)
    assert result.returncode == 0, result
    assert out.read_bytes() == big


def test_download_mock_of_an_empty_mock_fails(site, tmp_path):
    name = upload_people(site, tmp_path, mock="no-mock")
    out = tmp_path / "nothing.csv"
    result = site.as_admin("download-mock", name, "people", "-o", out)
    assert result.returncode == 1, result
    assert "empty mock" in result.stderr
    assert not out.exists()


def test_download_mock_of_unknown_dataset_or_asset_exits_1(site, tmp_path):
    name = upload_people(site, tmp_path)
    out = tmp_path / "x.csv"
    for args in ((unique("nothere"), "people"), (name, "nosuchasset")):
        result = site.as_admin("download-mock", *args, "-o", out)
        assert result.returncode == 1, (args, result)
        assert result.stderr.startswith("error: ")
        assert not out.exists()


# Delete ------------------------------------------------------------------------------------------


def test_delete_removes_the_dataset(site, tmp_path):
    name = upload_people(site, tmp_path)
    assert name in list_rows(site.as_admin("list"))
    result = site.as_admin("delete", name, "--yes")
    assert result.returncode == 0, result
    assert name in result.stdout
    assert name not in list_rows(site.as_admin("list"))
    assert site.as_admin("show", name).returncode == 1


def test_delete_without_yes_and_no_terminal_exits_2(site, tmp_path):
    name = upload_people(site, tmp_path)
    result = site.as_admin("delete", name)
    assert result.returncode == 2, result
    assert "--yes" in result.stderr
    assert get_dataset(site, name).status == 200


def test_delete_of_unknown_dataset_exits_1(site):
    result = site.as_admin("delete", unique("nothere"), "--yes")
    assert result.returncode == 1, result
    assert result.stderr.startswith("error: ")


# A data scientist --------------------------------------------------------------------------------


def as_scientist(site, scientist, command, *args, **kw):
    email, password = scientist
    return site.run(
        "dataset", command, "--url", site.url, "--email", email, "--password", password, *args, **kw
    )


def test_a_data_scientist_lists_shows_and_downloads_mocks(site, scientist, tmp_path):
    name = upload_people(site, tmp_path)
    assert name in list_rows(as_scientist(site, scientist, "list"))
    shown = as_scientist(site, scientist, "show", name, "--json")
    assert shown.returncode == 0, shown
    asset = json.loads(shown.stdout)["assets"][0]
    assert "data_size" not in asset and "data_sha256" not in asset
    out = tmp_path / "sci.csv"
    result = as_scientist(site, scientist, "download-mock", name, "people", "-o", out)
    assert result.returncode == 0, result
    assert out.read_bytes() == PEOPLE_MOCK_CSV


def assert_permission_error(result):
    assert result.returncode == 1, result
    assert result.stderr.startswith("error: "), result
    text = result.stderr.lower()
    assert "may not" in text or "permission" in text or "only data owners" in text, result


def test_a_data_scientist_cannot_upload(site, scientist, tmp_path):
    (tmp_path / "p.csv").write_bytes(PEOPLE_CSV)
    name = unique("sci")
    result = as_scientist(
        site, scientist, "upload", "--name", name, "--asset", "a=p.csv,generate-mock", cwd=tmp_path
    )
    assert_permission_error(result)
    assert get_dataset(site, name).status == 404


def test_a_data_scientist_cannot_delete(site, scientist, tmp_path):
    name = upload_people(site, tmp_path)
    result = as_scientist(site, scientist, "delete", name, "--yes")
    assert_permission_error(result)
    assert get_dataset(site, name).status == 200


# Connection and login failures -------------------------------------------------------------------


def test_wrong_password_exits_1(site):
    result = site.run(
        "dataset",
        "list",
        "--server",
        site.name,
        "--email",
        ROOT_EMAIL,
        "--password",
        "Wr0ng-password",
    )
    assert result.returncode == 1, result
    assert result.stderr.startswith("error: "), result
    assert result.stdout == ""


def test_bad_token_exits_1(site):
    result = site.run("dataset", "list", "--url", site.url, "--token", "not-a-token")
    assert result.returncode == 1, result
    assert result.stderr.startswith("error: "), result


def test_unreachable_url_exits_1(binary, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        url = "http://127.0.0.1:{}".format(port)
        result = run(binary, "dataset", "list", "--url", url)
    assert result.returncode == 1, result
    assert result.stderr.startswith("error: cannot reach {}: ".format(url)), result


def test_unknown_local_server_exits_1(binary):
    result = run(binary, "dataset", "list", "--server", unique("nobody"))
    assert result.returncode == 1, result
    assert "no running server" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("dataset",),
        ("dataset", "show"),
        ("dataset", "list", "--url", "ftp://example.org"),
        ("dataset", "list", "--server", "a", "--url", "http://127.0.0.1:1"),
        ("dataset", "list", "--email", "a@b.org", "--token", "x"),
        ("dataset", "list", "--url", "http://127.0.0.1:1", "--email", "a@b.org"),
        ("dataset", "upload", "--name", "x"),
    ],
)
def test_usage_errors_exit_2(binary, args):
    result = run(binary, *args)
    assert result.returncode == 2, result
    assert result.stderr.startswith("error: "), result


# Against a fake server: what a real one never sends ----------------------------------------------


class FakeDatasite(http.server.BaseHTTPRequestHandler):
    """Serves one dataset, ``fake``, whose mock download carries the server's ``sha_to_send``."""

    protocol_version = "HTTP/1.1"
    mock = b"a,b\n1,2\n"
    sha256 = hashlib.sha256(mock).hexdigest()

    def log_message(self, *args):
        pass

    def reply(self, status, body, content_type="application/json", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers:
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path in ("/api/v1/auth/guest", "/api/v1/auth/logout"):
            return self.reply(200, json.dumps({"token": "fake", "message": "ok"}).encode())
        return self.reply(404, b'{"error": {"code": "NOT_FOUND", "message": "no route"}}')

    def do_GET(self):
        dataset = {
            "id": "d1",
            "name": "fake",
            "assets": [{"name": "a", "format": "csv", "has_mock": True, "mock_size": 8}],
        }
        if self.path == "/api/v1/datasets/fake":
            return self.reply(200, json.dumps(dataset).encode())
        if self.path == "/api/v1/datasets/d1/assets/a/mock":
            sha = self.server.sha_to_send
            headers = [("X-Content-SHA256", sha)] if sha else []
            return self.reply(200, self.mock, "text/csv", headers)
        return self.reply(404, b'{"error": {"code": "NOT_FOUND", "message": "no such dataset"}}')


@pytest.fixture
def fake_site():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeDatasite)
    server.sha_to_send = FakeDatasite.sha256
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def fake_download(binary, fake_site, out):
    url = "http://127.0.0.1:{}".format(fake_site.server_address[1])
    return run(binary, "dataset", "download-mock", "fake", "a", "-o", out, "--url", url)


def test_download_mock_checks_the_sha256_header(binary, fake_site, tmp_path):
    out = tmp_path / "ok.csv"
    result = fake_download(binary, fake_site, out)
    assert result.returncode == 0, result
    assert out.read_bytes() == FakeDatasite.mock


def test_download_mock_with_a_wrong_sha256_fails_and_leaves_no_file(binary, fake_site, tmp_path):
    fake_site.sha_to_send = "0" * 64
    outdir = tmp_path / "out"
    outdir.mkdir()
    result = fake_download(binary, fake_site, outdir / "bad.csv")
    assert result.returncode == 1, result
    assert result.stderr.startswith("error: ") and "SHA256" in result.stderr.upper(), result
    assert list(outdir.iterdir()) == []


def test_download_mock_without_a_sha256_header_fails_and_leaves_no_file(
    binary, fake_site, tmp_path
):
    fake_site.sha_to_send = ""
    outdir = tmp_path / "out"
    outdir.mkdir()
    result = fake_download(binary, fake_site, outdir / "unchecked.csv")
    assert result.returncode == 1, result
    assert list(outdir.iterdir()) == []
