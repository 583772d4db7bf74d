"""The one-container deployment (docs/DEPLOY.md, "One container"), built and run with podman.

Builds the image with scripts/build-image.sh (or takes DATASITE_TEST_IMAGE, an image already
built, to save time while developing), runs it with the documented least-privilege flags on a
loopback port, a fresh volume and the root password in a podman secret, waits for its HEALTHCHECK,
then drives the whole code flow from this machine through the Python client: the job runs in
bubblewrap inside the container. Also: no password, no start; the server is uid 10001; a job
reaches neither the network nor the volume; the data outlives the container. Everything the test
made (containers, volumes, secrets, images) is removed at the end, whatever happened.

Skipped, saying so, without podman or mmdebstrap (CI installs both with scripts/deps.sh).
"""

import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import time
import uuid

import pandas as pd
import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "python"))

import datasite as sy  # noqa: E402

PREBUILT_IMAGE = os.environ.get("DATASITE_TEST_IMAGE", "")
NEEDED = ("podman",) if PREBUILT_IMAGE else ("podman", "mmdebstrap")
MISSING = [tool for tool in NEEDED if not shutil.which(tool)]
pytestmark = pytest.mark.skipif(
    bool(MISSING),
    reason="{} not installed: the container test needs podman and mmdebstrap "
    "(bash scripts/deps.sh installs them)".format(" and ".join(MISSING)),
)


def in_chroot():
    """Whether this process's root is a directory chroot(2) made its root rather than a mount: no
    mount of /proc/self/mountinfo is at "/" then (mount points are shown relative to the root, and
    the mount holding a chroot's directory is not among them). A container's root is a mount. (pid
    1's root can't be compared: stat of /proc/1/root is refused here even to root.)"""
    try:
        with open("/proc/self/mountinfo") as f:
            return not any(line.split()[4] == "/" for line in f if len(line.split()) > 4)
    except OSError:
        return False


@pytest.fixture(scope="module", autouse=True)
def podman_runs():
    """podman installed but unable to build or run containers where the tests run: in a chroot (as
    ../shared/tools/fresh-machine makes one: its build of the image failed there), or where podman
    itself does not start. The test then skips, saying why, rather than fail on what is not
    datasite's. On a machine of its own (CI's) it runs."""
    if in_chroot():
        pytest.skip("running in a chroot: podman can't build or run containers here")
    probe = subprocess.run(["podman", "info", "--format", "{{.Host.OCIRuntime.Name}}"],
                           capture_output=True, text=True, timeout=120)
    if probe.returncode != 0:
        pytest.skip("podman cannot run here: " + (probe.stderr or probe.stdout).strip()[-300:])

# What this machine's podman needs to start any container: runc (crun refuses the hybrid cgroup
# layout) and descriptor/process limits below the host's hard limits. Not about datasite.
RUNTIME_FLAGS = os.environ.get(
    "DATASITE_TEST_PODMAN_FLAGS",
    "--runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024",
).split()

# The least privilege under which the sandbox works (docs/DEPLOY.md says why each is needed).
PROC_MASKS = (
    "/proc/acpi:/proc/asound:/proc/bus:/proc/fs:/proc/irq:/proc/kcore:/proc/keys:"
    "/proc/latency_stats:/proc/sched_debug:/proc/scsi:/proc/sys:/proc/sysrq-trigger:"
    "/proc/timer_list:/proc/timer_stats"
)
SANDBOX_FLAGS = [
    "--cap-drop", "ALL",
    "--security-opt", "no-new-privileges",
    "--security-opt", "seccomp=" + str(REPO_ROOT / "deploy" / "seccomp.json"),
    "--security-opt", "unmask=" + PROC_MASKS,
]

ROOT_EMAIL = "info@example.org"
PASSWORD = "Str0ng-Passw0rd"
PRIVATE = pd.DataFrame({"age": [31, 42, 57, 64, 23]})
MOCK = pd.DataFrame({"age": [20, 20, 20]})
WAIT_SECONDS = 90


def podman(*args, check=True, timeout=600):
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=check,
                          timeout=timeout)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Podman:
    """Containers, volumes and secrets made by the test, all removed by ``cleanup``."""

    def __init__(self, image):
        self.image = image
        self.tag = uuid.uuid4().hex[:10]
        self.containers, self.volumes, self.secrets = [], [], []

    def volume(self):
        name = "datasite-test-" + uuid.uuid4().hex[:10]
        podman("volume", "create", name)
        self.volumes.append(name)
        return name

    def secret(self, value, directory):
        name = "datasite-test-" + uuid.uuid4().hex[:10]
        path = pathlib.Path(directory) / name
        path.write_text(value + "\n")  # the newline an editor leaves: the entrypoint drops it
        podman("secret", "create", name, str(path))
        self.secrets.append(name)
        return name

    def run(self, *args, command=(), detach=True):
        """``podman run`` with the runtime flags, ``args`` and ``command`` (the container's
        arguments); the container's name, or without ``detach`` the finished process."""
        name = "datasite-test-" + uuid.uuid4().hex[:10]
        self.containers.append(name)
        cmd = ["run", "--name", name, *RUNTIME_FLAGS, *args, self.image, *command]
        if not detach:
            return podman(*cmd, check=False, timeout=120)
        podman("run", "--detach", *cmd[1:])
        return name

    def remove(self, name):
        # --volumes: the anonymous volume of a container run without --volume goes with it.
        podman("rm", "--force", "--volumes", "--time", "10", name, check=False)

    def cleanup(self):
        for name in self.containers:
            self.remove(name)
        for name in self.volumes:
            podman("volume", "rm", "--force", name, check=False)
        for name in self.secrets:
            podman("secret", "rm", name, check=False)


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """The image under test: DATASITE_TEST_IMAGE, or one built here (removed afterwards, with the
    base image if this build imported it)."""
    if PREBUILT_IMAGE:
        yield PREBUILT_IMAGE
        return
    binary = os.environ.get("DATASITE_BINARY") or str(REPO_ROOT / "build" / "datasite")
    tag = "localhost/datasite-test:" + uuid.uuid4().hex[:10]
    before = set(podman("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split())
    try:
        build = subprocess.run(
            ["bash", str(REPO_ROOT / "scripts" / "build-image.sh"),
             "--binary", binary, "--tag", tag],
            capture_output=True, text=True, timeout=900)
        sys.stderr.write(build.stdout[-2000:])
        noise = ("(Reading database", "Get:", "Fetched", "Chrooting", "Selecting", "Preparing",
                 "Unpacking", "Setting up", "removed", "rmdir")
        errors = "\n".join(line for line in build.stderr.splitlines()
                           if not line.lstrip().startswith(noise))
        assert build.returncode == 0, "build-image.sh failed:\n{}\n{}".format(
            build.stdout[-1000:], errors[-4000:])
        yield tag
    finally:
        after = set(podman("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split())
        for made in sorted(after - before):
            if made == tag or made.startswith("localhost/datasite-base:"):
                podman("rmi", "--force", made, check=False)


@pytest.fixture(scope="module")
def pod(image):
    p = Podman(image)
    yield p
    p.cleanup()


def start_site(pod, volume, secret, port):
    """A datasite container on 127.0.0.1:port with the documented flags; waits until healthy."""
    name = pod.run(
        "--publish", "127.0.0.1:{}:8080".format(port),
        "--volume", volume + ":/var/lib/datasite",
        "--secret", secret + ",uid=10001,gid=10001,mode=0400",
        "--env", "DATASITE_ROOT_PASSWORD_FILE=/run/secrets/" + secret,
        *SANDBOX_FLAGS)
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        # No systemd here to run the HEALTHCHECK's timer: run it ourselves; it records the state.
        check = podman("healthcheck", "run", name, check=False, timeout=60)
        if check.returncode == 0:
            break
        state = podman("inspect", "--format", "{{.State.Status}}", name, check=False).stdout.strip()
        logs = podman("logs", name, check=False).stderr[-3000:]
        assert state == "running" and time.monotonic() < deadline, "not healthy ({}): {}{}".format(
            state, check.stdout + check.stderr, logs)
        time.sleep(1)
    health = podman("inspect", "--format", "{{json .State}}", name).stdout
    assert json.loads(health)["Health"]["Status"] == "healthy", health
    return name


def test_without_a_password_the_container_refuses_to_start(pod):
    done = pod.run("--volume", pod.volume() + ":/var/lib/datasite", *SANDBOX_FLAGS, detach=False)
    assert done.returncode == 64, done
    assert "no root admin password: set DATASITE_ROOT_PASSWORD_FILE" in done.stderr, done.stderr


def test_the_published_default_password_is_refused(pod):
    done = pod.run("--env", "DATASITE_ROOT_PASSWORD=changethis", *SANDBOX_FLAGS, detach=False)
    assert done.returncode == 64, done
    assert "published default 'changethis'" in done.stderr, done.stderr


def test_a_password_both_in_the_environment_and_in_a_file_is_refused(pod):
    done = pod.run("--env", "DATASITE_ROOT_PASSWORD=Ct-" + uuid.uuid4().hex,
                   "--env", "DATASITE_ROOT_PASSWORD_FILE=/etc/hostname",
                   *SANDBOX_FLAGS, detach=False)
    assert done.returncode == 64, done
    assert "both DATASITE_ROOT_PASSWORD and DATASITE_ROOT_PASSWORD_FILE" in done.stderr, done


def test_help_needs_no_password(pod):
    done = pod.run(*SANDBOX_FLAGS, command=("launch", "--help"), detach=False)
    assert done.returncode == 0, done
    assert "Usage: /usr/local/bin/datasite launch" in done.stdout, done


def test_code_flow_sandbox_isolation_and_persistence(pod, tmp_path):
    root_password = "Ct-" + uuid.uuid4().hex
    secret = pod.secret(root_password, tmp_path)
    volume = pod.volume()
    port = free_port()
    url = "http://127.0.0.1:{}".format(port)
    site = start_site(pod, volume, secret, port)

    # The server runs as the image's user, not root (read from this machine's /proc).
    pid = podman("inspect", "--format", "{{.State.Pid}}", site).stdout.strip()
    status = pathlib.Path("/proc/{}/status".format(pid)).read_text()
    uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
    assert uids == ["10001"] * 4, status
    assert "datasite" in pathlib.Path("/proc/{}/cmdline".format(pid)).read_text()
    # The server reads the secret file itself: the password is in no environment (the entrypoint
    # once exported it, readable in /proc/PID/environ by any process of the container's user).
    assert root_password.encode() not in pathlib.Path("/proc/{}/environ".format(pid)).read_bytes()

    # The data owner logs in, uploads a dataset with a mock and registers a data scientist.
    owner = sy.login(url=url, email=ROOT_EMAIL, password=root_password)
    dataset = sy.Dataset(name="people", summary="people and their ages")
    dataset.add_asset(sy.Asset(name="people", data=PRIVATE, mock=MOCK))
    assert owner.upload_dataset(dataset)
    email = "scientist.{}@example.org".format(uuid.uuid4().hex[:8])
    assert owner.register(name="Sci", email=email, password=PASSWORD)

    # The scientist submits code on the asset; the owner approves; the job runs in the container's
    # sandbox and the scientist gets the result computed from the private data.
    scientist = sy.login(url=url, email=email, password=PASSWORD)
    asset = scientist.datasets["people"].assets["people"]

    @sy.syft_function_single_use(data=asset)
    def mean_age(data):
        return float(data["age"].mean())

    request = scientist.code.request_code_execution(mean_age, reason="mean age")
    assert owner.requests.get(request.id).approve()
    pointer = scientist.code.mean_age(data=asset)
    assert pointer.get(timeout=WAIT_SECONDS) == pytest.approx(float(PRIVATE["age"].mean()))
    result_job_id = pointer.job.id

    # Isolation holds inside the container: a job reaches neither the server's port (which this
    # container's own processes reach) nor the volume (which holds the database).
    listing = podman("exec", site, "ls", "/var/lib/datasite/site").stdout.split()
    assert "datasite.db" in listing, listing
    connect = "import socket; socket.create_connection(('127.0.0.1', 8080), 5); print('ok')"
    probe_port = podman("exec", site, "python3", "-c", connect)
    assert probe_port.stdout.strip() == "ok", probe_port

    @sy.syft_function_single_use(data=asset)
    def escape(data):
        import socket

        found = {}
        try:
            socket.create_connection(("127.0.0.1", 8080), 2).close()
            found["net"] = "connected"
        except OSError as err:
            found["net"] = "refused: " + repr(err)
        try:
            with open("/var/lib/datasite/site/datasite.db", "rb") as f:
                found["volume"] = "read {} bytes".format(len(f.read(64)))
        except OSError as err:
            found["volume"] = "refused: " + repr(err)
        return found

    review = owner.requests.get(scientist.code.request_code_execution(escape, reason="probe").id)
    found = review.code.run()
    assert found["net"].startswith("refused"), found
    assert found["volume"].startswith("refused"), found

    # The password reached the server through the secret, and no log line shows it.
    logs = podman("logs", site)
    assert root_password not in logs.stdout + logs.stderr

    # A new container on the same volume (an upgrade is the same steps) finds everything again.
    pod.remove(site)
    site = start_site(pod, volume, secret, port)
    scientist = sy.login(url=url, email=email, password=PASSWORD)
    assert "people" in [d.name for d in scientist.datasets]
    job = scientist.jobs.get(result_job_id)
    assert job.get(timeout=WAIT_SECONDS) == pytest.approx(float(PRIVATE["age"].mean()))
