"""``datasite images list|show|submit|build|remove`` and ``datasite pools
list|show|launch|scale|delete`` against a server launched with the CLI (issue 19).

One server per module (shared with test_cli_requests' fixtures); the data owner registers
environments and runs pools from the command line, a data scientist reads them and is refused
changes. Usage errors exit 2 before connecting; the server's refusals exit 1 with its message.
"""

import json

import pytest

import datasite as sy
from helpers import needs_sandbox, unique
from pool_helpers import SYSTEM_PYTHON, make_wheel, module_name

# A server and CLI users of this module's own (fixtures shared with test_cli_requests).
from test_cli_requests import asset, dataset, owner, scientist, site  # noqa: F401
from test_cli_datasets import run


def images(person, *args):
    return person.site.run("images", *args, "--server", person.site.name, "--token", person.token)


def pools(person, *args):
    return person.site.run("pools", *args, "--server", person.site.name, "--token", person.token)


def rows(result):
    """The rows under the header of a printed table, as lists of cells."""
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    return [line.split() for line in lines[1:]]


def fields(result):
    """``Label:  value`` lines of a show command as a dict."""
    out = {}
    for line in result.stdout.splitlines():
        label, sep, value = line.partition(":")
        if sep and not line.startswith(" "):
            out[label] = value.strip()
    return out


@pytest.fixture(scope="module")
def system_image(owner):
    """An image of the system Python, checked for sklearn: its id."""
    submitted = images(owner, "submit", "--name", unique("sys"), "--python", SYSTEM_PYTHON,
                       "--import", "sklearn", "--json")
    assert submitted.returncode == 0, submitted
    image = json.loads(submitted.stdout)
    assert image["status"] == "ready", image
    return image["id"]


@needs_sandbox
def test_images_list_and_show(owner, scientist, system_image):
    listed = images(scientist, "list")
    assert listed.returncode == 0, listed
    assert listed.stdout.splitlines()[0].split()[:3] == ["ID", "NAME", "STATUS"]
    ids = [row[0] for row in rows(listed)]
    assert ids[0] == "default" and system_image in ids

    shown = images(scientist, "show", system_image)
    assert shown.returncode == 0, shown
    info = fields(shown)
    assert info["Status"] == "ready" and info["Imports"] == "sklearn", shown
    # Scientists see the Python's version, not where it is (an image's paths are the owners').
    assert info["Python"].startswith("(3."), shown
    assert "  scikit-learn==" in shown.stdout, shown
    as_json = json.loads(images(owner, "show", system_image, "--json").stdout)
    assert as_json["id"] == system_image and len(as_json["packages_hash"]) == 64
    listed_json = json.loads(images(owner, "list", "--json").stdout)
    assert [i["id"] for i in listed_json][0] == "default"


@needs_sandbox
def test_submit_build_and_remove_from_a_requirements_file(owner, tmp_path):
    name = module_name("clipkg")
    make_wheel(tmp_path / "wheels", name, value=5)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# the one package\n{}==1.0\n".format(name))
    submitted = images(owner, "submit", "--name", unique("built"), "--requirements",
                       requirements, "--find-links", tmp_path / "wheels", "--import", name)
    assert submitted.returncode == 0, submitted
    assert "submitted; build it with: datasite images build " in submitted.stdout, submitted
    image_id = fields(submitted)["Id"]
    assert fields(submitted)["Requirements"] == name + "==1.0"

    built = images(owner, "build", image_id)
    assert built.returncode == 0, built
    assert built.stdout.startswith("Built image " + image_id), built
    assert fields(built)["Status"] == "ready"
    assert any(line.strip().replace("-", "_").startswith(name + "==1.0")
               for line in built.stdout.splitlines()), built

    removed = images(owner, "remove", image_id)
    assert removed.returncode == 0 and "Removed image " + image_id in removed.stdout, removed
    gone = images(owner, "show", image_id)
    assert gone.returncode == 1 and gone.stderr.startswith("error: "), gone


@needs_sandbox
def test_pools_launch_list_show_scale_delete(owner, scientist, system_image):
    name = unique("clipool")
    launched = pools(owner, "launch", name, "--image", system_image, "--workers", "1",
                     "--memory-bytes", str(1 << 30), "--cpu-seconds", "20",
                     "--timeout-seconds", "40")
    assert launched.returncode == 0, launched
    assert launched.stdout.startswith("Launched pool {}: 1 of 1 workers ready".format(name))
    assert fields(launched)["Limits"] == "memory {} bytes, CPU 20 s, timeout 40 s".format(1 << 30)

    listed = pools(scientist, "list")
    assert listed.returncode == 0, listed
    assert listed.stdout.splitlines()[0].split()[:4] == ["NAME", "STATUS", "IMAGE", "WORKERS"]
    names = [row[0] for row in rows(listed)]
    assert names[0] == "default" and name in names
    row = next(r for r in rows(listed) if r[0] == name)
    assert row[1] == "ready" and row[3] == "1/1", listed

    shown = json.loads(pools(scientist, "show", name, "--json").stdout)
    assert (shown["image_id"], shown["timeout_seconds"]) == (system_image, 40)

    scaled = pools(owner, "scale", name, "2")
    assert scaled.returncode == 0, scaled
    assert scaled.stdout.startswith("Scaled pool {} to 2 workers".format(name)), scaled
    assert fields(pools(owner, "show", name))["Workers"] == "2 of 2 ready"

    in_use = images(owner, "remove", system_image)
    assert in_use.returncode == 1 and in_use.stderr.startswith("error: "), in_use

    deleted = pools(owner, "delete", name)
    assert deleted.returncode == 0 and "Deleted pool " + name in deleted.stdout, deleted
    gone = pools(owner, "show", name)
    assert gone.returncode == 1 and gone.stderr.startswith("error: "), gone


@needs_sandbox
def test_requests_show_names_the_pool_the_code_runs_in(owner, scientist, asset, system_image):
    name = unique("review")
    assert pools(owner, "launch", name, "--image", system_image).returncode == 0

    @sy.syft_function_single_use(data=asset, worker_pool_name=name)
    def cli_in_pool(data):
        return len(data)

    request = scientist.client.code.request_code_execution(cli_in_pool)
    shown = owner.cli("requests", "show", request.id)
    assert shown.returncode == 0, shown
    assert fields(shown)["Worker pool"] == name, shown


@needs_sandbox
def test_a_scientist_is_refused_changes(scientist, system_image):
    for result in (
        pools(scientist, "launch", unique("no"), "--image", system_image),
        pools(scientist, "scale", "default", "2"),
        pools(scientist, "delete", "default"),
        images(scientist, "submit", "--name", unique("no"), "--python", SYSTEM_PYTHON),
        images(scientist, "build", system_image),
        images(scientist, "remove", system_image),
    ):
        assert result.returncode == 1 and result.stderr.startswith("error: "), result


@needs_sandbox
def test_the_server_refusals_exit_1_with_its_message(owner):
    default = pools(owner, "delete", "default")
    assert default.returncode == 1 and "default" in default.stderr, default
    missing = pools(owner, "launch", unique("p"), "--image", "no-such-image")
    assert missing.returncode == 1 and missing.stderr.startswith("error: "), missing
    bad_path = images(owner, "submit", "--name", unique("bad"), "--path", "/nonexistent/env")
    assert bad_path.returncode == 1 and bad_path.stderr.startswith("error: "), bad_path


@pytest.mark.parametrize("args", [
    ("images", "submit", "--name", "x"),
    ("images", "submit", "--name", "x", "--python", SYSTEM_PYTHON, "--requirements", "r.txt"),
    ("images", "submit", "--name", "x", "--python", SYSTEM_PYTHON, "--find-links", "/w"),
    ("images", "submit", "--name", "x", "--requirements", "/nonexistent/requirements.txt"),
    ("images", "submit", "--name", " ", "--python", SYSTEM_PYTHON),
    ("pools", "launch", "p", "--image", "i", "--workers", "0"),
    ("pools", "launch", "p", "--image", "i", "--workers", "65"),
    ("pools", "launch", "p", "--image", "i", "--cpu-seconds", "-1"),
    ("pools", "launch", "p"),
    ("pools", "scale", "p", "x"),
    ("pools",),
    ("images",),
])
def test_usage_errors_exit_2_before_connecting(binary, args):
    # No server at this URL: a usage error must not try to reach it.
    result = run(binary, *args, "--url", "http://127.0.0.1:9", "--token", "t")
    assert result.returncode == 2, result


def test_an_empty_requirements_file_is_a_usage_error(binary, tmp_path):
    empty = tmp_path / "requirements.txt"
    empty.write_text("# nothing\n\n")
    result = run(binary, "images", "submit", "--name", "x", "--requirements", empty,
                      "--url", "http://127.0.0.1:9", "--token", "t")
    assert result.returncode == 2 and "names no requirement" in result.stderr, result
