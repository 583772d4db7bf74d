"""Issue 15's "done when": API servers behind a real nginx and two `datasite worker` processes run the
code flow through the Python client; then, under load, one API server and the worker running a job
are SIGKILLed. No acknowledged write may be lost or applied twice, the killed worker's job must end
once (run again, or failed with a reason), and the clients must see no error at all: the Python
client sends its changes again with their Idempotency-Key, and waits for its blocking run on any
server.

On PostgreSQL: 3 replicas (`datasite serve`) sharing one database and one storage directory; one of
them is killed and stays dead. On SQLite: the one server is killed and started again on its data
directory (the same port), as an operator's supervisor would.
"""

import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time

import pytest

import datasite as sy
from code_helpers import MOCK, PRIVATE
from conftest import TEST_POSTGRES_URL, psql
from helpers import PASSWORD, ROOT_EMAIL, ROOT_PASSWORD, Api, needs_sandbox, unique, unique_email

pytestmark = needs_sandbox

# How long a dead worker's lease lasts: its job is taken up again by the other worker after this.
LEASE_SECONDS = 3
# The jobs' limits a worker must share with the servers (see test_workers.LIMITS).
LIMITS = ["--max-storage-bytes", str(1 << 40), "--user-quota-bytes", str(1 << 30),
          "--max-result-bytes", str(256 << 20), "--mock-results-kept", "10"]

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 512; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  upstream datasite {{
{servers}
    keepalive 16;
  }}
  server {{
    listen 127.0.0.1:{port};
    client_max_body_size 0;
    location / {{
      proxy_pass http://datasite;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host 127.0.0.1;
      proxy_read_timeout 700s;
    }}
  }}
}}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, proc, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, "exited with {}".format(proc.returncode)
        try:
            if Api(port).get("/readyz").status == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError("port {} not ready after {} s".format(port, seconds))


class Process:
    """A foreground process of the binary, its output in a log file."""

    def __init__(self, args, log_path):
        self.args = args
        self.log_path = log_path
        self.proc = None

    def start(self):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        log.close()
        return self

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def tail(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-3000:].decode(errors="replace")
        except OSError:
            return ""


class Cluster:
    """nginx in front of the API servers, and two workers."""

    def __init__(self, binary, tmp_path, database):
        self.tmp = tmp_path
        self.database = database  # a postgresql:// URL, or None for SQLite
        self.servers, self.workers = [], []
        storage = tmp_path / "storage"
        storage.mkdir()
        count = 3 if database else 1
        self.name = unique("scale")
        for i in range(count):
            data_dir = tmp_path / "data{}".format(i)
            args = [binary, "serve", "--name", self.name, "--port", str(free_port()),
                    "--data-dir", str(data_dir)]
            if database:
                args += ["--database", database, "--storage-dir", str(storage)]
            server = Process(args, str(tmp_path / "server{}.log".format(i)))
            server.port = int(args[args.index("--port") + 1])
            self.servers.append(server)
        for name in ("w1", "w2"):
            args = [binary, "worker", "--name", name, "--workers", "1",
                    "--job-lease-seconds", str(LEASE_SECONDS), *LIMITS]
            if database:
                args += ["--database", database, "--storage-dir", str(storage)]
            else:
                args += ["--data-dir", str(tmp_path / "data0")]
            self.workers.append(Process(args, str(tmp_path / (name + ".log"))))
        self.port = free_port()
        ndir = tmp_path / "nginx"
        ndir.mkdir()
        servers = "\n".join("    server 127.0.0.1:{} max_fails=1 fail_timeout=2s;".format(s.port)
                            for s in self.servers)
        (ndir / "nginx.conf").write_text(NGINX_CONF.format(dir=ndir, servers=servers, port=self.port))
        self.nginx = Process(["nginx", "-c", str(ndir / "nginx.conf"), "-p", str(ndir)],
                             str(ndir / "stdout.log"))

    def start(self):
        # The first server creates the datasite; the others (and the workers) join it.
        for server in self.servers:
            server.start()
            wait_ready(server.port, server.proc)
        for worker in self.workers:
            worker.start()
        self.nginx.start()
        wait_ready(self.port, self.nginx.proc)

    def stop(self):
        for p in [self.nginx] + self.servers + self.workers:
            p.stop()

    def logs(self):
        return "\n".join("== {}\n{}".format(p.log_path, p.tail())
                         for p in self.servers + self.workers)

    def job_row(self, job_id):
        """(status, attempts, lease_owner) of the job, read from the database."""
        sql = "SELECT status, attempts, coalesce(lease_owner, '') FROM jobs WHERE id = '{}'".format(
            job_id)
        if self.database:
            out = subprocess.run(["psql", "-qtA", "-F", "|", self.database, "-c", sql], check=True,
                                 capture_output=True, text=True, timeout=30).stdout.strip()
            status, attempts, owner = out.split("|")
            return status, int(attempts), owner
        db = sqlite3.connect(str(self.tmp / "data0" / "datasite.db"), timeout=30)
        try:
            return db.execute(sql).fetchone()
        finally:
            db.close()


@pytest.fixture(params=["postgres", "sqlite"])
def cluster(request, binary, tmp_path):
    database = None
    if request.param == "postgres":
        if not TEST_POSTGRES_URL:
            pytest.skip("needs DATASITE_TEST_POSTGRES_URL")
        name = "t_" + unique("scale").replace("-", "_")[-16:]
        psql(TEST_POSTGRES_URL, "CREATE DATABASE {}".format(name))
        base, _, query = TEST_POSTGRES_URL.partition("?")
        database = base.rsplit("/", 1)[0] + "/" + name + ("?" + query if query else "")
    c = Cluster(binary, tmp_path, database)
    try:
        c.start()
        yield c
    finally:
        c.stop()
        if database:
            psql(TEST_POSTGRES_URL, "DROP DATABASE IF EXISTS {} WITH (FORCE)".format(name))


def login(port, email, password=PASSWORD):
    return sy.login(url="http://127.0.0.1", port=port, email=email, password=password)


def test_losing_a_server_and_a_worker_mid_job_loses_nothing(cluster):
    port = cluster.port
    admin = login(port, ROOT_EMAIL, ROOT_PASSWORD)
    owner_email, scientist_email = unique_email("owner"), unique_email("scientist")
    admin.users.create(email=owner_email, name="Owner", password=PASSWORD,
                       password_verify=PASSWORD, role=sy.ServiceRole.DATA_OWNER)
    admin.users.create(email=scientist_email, name="Scientist", password=PASSWORD,
                       password_verify=PASSWORD)
    owner, scientist = login(port, owner_email), login(port, scientist_email)

    # The whole code flow through the proxy: upload, submit, review, approve.
    dataset = sy.Dataset(name=unique("people"), summary="people and their ages")
    dataset.add_asset(sy.Asset(name="people", data=PRIVATE, mock=MOCK))
    owner.upload_dataset(dataset)
    asset = scientist.datasets[dataset.name].assets["people"]
    assert list(asset.mock["age"]) == list(MOCK["age"])

    @sy.syft_function_single_use(data=asset)
    def slow_total(data):
        import time

        time.sleep(6)
        return int(data["age"].sum())

    scientist.code.request_code_execution(slow_total)
    request = owner.requests[-1]
    request.approve()

    # Load: two sessions of the scientist submit code (writes: a source submitted twice would be
    # refused as ALREADY_EXISTS), two read.
    stop = threading.Event()
    errors, acknowledged, reads = [], [], [0]

    # Logged in before the load starts: a thread slow to start (a loaded machine) would otherwise
    # log in while the one SQLite server is down, a first request that no client retries.
    sessions = [login(port, scientist_email) for _ in range(4)]

    def writer(me):
        while not stop.is_set():
            name = unique("load").replace("-", "_")
            body = {"name": name, "source": "def {}(data):\n    return 1\n".format(name),
                    "inputs": {"data": {"asset_id": asset.id}}}
            try:
                me._transport.call("code_submit", body=body)  # the client's own transport
                acknowledged.append(name)
            except Exception as err:  # every error counts: the clients must see none
                errors.append("write: %r" % err)

    def reader(me):
        while not stop.is_set():
            try:
                me.datasets.get_all()
                me.jobs.get_all()
                reads[0] += 1
            except Exception as err:
                errors.append("read: %r" % err)

    threads = [threading.Thread(target=f, args=(me,))
               for f, me in zip((writer, writer, reader, reader), sessions)]
    for t in threads:
        t.start()
    outcome = {}

    def run():
        try:
            outcome["value"] = scientist.code.slow_total(data=asset).get()
        except Exception as err:
            outcome["error"] = err

    runner = threading.Thread(target=run)
    try:
        runner.start()
        # Once a worker runs the job: kill it, and one API server, mid-load and mid-job.
        deadline = time.monotonic() + 60
        while True:
            jobs = owner.jobs.get_all()
            running = [j for j in jobs if j.status == sy.JobStatus.PROCESSING]
            if running:
                break
            assert time.monotonic() < deadline, "the job never ran: " + cluster.logs()
            time.sleep(0.05)
        job_id = running[0].id
        holder = cluster.job_row(job_id)[2]
        victim = next(w for w in cluster.workers if w.args[w.args.index("--name") + 1] == holder)
        time.sleep(0.5)
        victim.kill9()
        cluster.servers[0].kill9()
        if cluster.database is None:
            time.sleep(1)  # the operator's supervisor restarts the one server
            cluster.servers[0].start()
        runner.join(timeout=120)
        assert not runner.is_alive(), "the blocking run never returned: " + cluster.logs()
        time.sleep(1)  # more load after the failure
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)

    assert not errors, errors[:5]
    assert "error" not in outcome, repr(outcome.get("error"))
    assert outcome["value"] == int(PRIVATE["age"].sum())
    assert reads[0] > 0 and acknowledged
    # The killed worker's job ran again once, elsewhere, and was recorded once.
    status, attempts, _ = cluster.job_row(job_id)
    assert (status, attempts) == ("completed", 2), (status, attempts)
    code_id = next(j.code_id for j in owner.jobs.get_all() if j.id == job_id)
    assert [j.id for j in owner.jobs.get_all() if j.code_id == code_id] == [job_id]
    # Every acknowledged submission is there, and none twice.
    names, page = [], 1
    while True:
        listing = scientist._transport.call("code_list", query={"page": page, "page_size": 1000})
        names += [c["name"] for c in listing["items"]]
        if len(names) >= listing["total"] or not listing["items"]:
            break
        page += 1
    missing = set(acknowledged) - set(names)
    assert not missing, (len(missing), len(acknowledged), sorted(missing)[:5])
    assert len(names) == len(set(names))
