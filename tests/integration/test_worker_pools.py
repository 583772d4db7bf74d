"""Worker pools (issue 19) against a real server: an owner registers an environment holding a
library the default Python lacks (a virtualenv over the system's packages, plus a package pip
installs from a local wheel folder), launches a pool on it, and a scientist's function that needs
the library is reviewed, approved and run there. The same function in the default pool fails before
any of it runs, naming the module and the pools that have it, and its approval is not used up.
Raw HTTP throughout (test_pools_client.py covers the Python client's names).
"""

import base64
import hashlib
import json
import sqlite3
import textwrap
import time
import zipfile

import pytest

from code_helpers import make_code_actors, upload_people
from helpers import Api, DetachedServer, needs_sandbox

pytestmark = needs_sandbox

PROBE_SOURCE = "MAGIC = 4242\n\ndef triple(x):\n    return 3 * x\n"


def make_wheel(folder, name="dsprobe", version="1.0", source=PROBE_SOURCE):
    """A pure-Python wheel of one module, written by hand (no build backend needed offline)."""
    files = {f"{name}/__init__.py": source.encode()}
    info = f"{name}-{version}.dist-info"
    files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    files[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: datasite-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for name_in, data in files.items():
            wheel.writestr(name_in, data)
    return path


USES_PROBE = textwrap.dedent(
    """
    def use_probe(data):
        import dsprobe
        return {"magic": dsprobe.MAGIC, "tripled_ages": int(dsprobe.triple(data["age"].sum()))}
    """
).strip()


class World:
    def __init__(self, port):
        self.api = Api(port)
        self.actors = make_code_actors(port)
        self.owner = self.actors["owner"].token
        self.scientist = self.actors["scientist"].token
        dataset = upload_people(self.actors["owner"].client)
        ds = self.api.get("/api/v1/datasets/" + dataset, token=self.owner).json
        self.asset_id = ds["assets"][0]["id"]

    def submit(self, source, name, pool=None):
        body = {"name": name, "source": source,
                "inputs": {"data": {"asset_id": self.asset_id}},
                "output_policy": {"kind": "execute_count", "limit": 1}}
        if pool is not None:
            body["worker_pool_name"] = pool
        return self.api.post("/api/v1/code", body, token=self.scientist)

    def request_and_approve(self, code_id):
        req = self.api.post("/api/v1/requests", {"code_id": code_id, "reason": "pools"},
                            token=self.scientist)
        assert req.status in (200, 201), req
        got = self.api.get("/api/v1/requests/" + req.json["id"], token=self.owner)
        approved = self.api.post(f"/api/v1/requests/{req.json['id']}/approve", {},
                                 token=self.owner)
        assert approved.status == 200, approved
        return got.json

    def run(self, code_id, mock=False):
        resp = self.api.post(f"/api/v1/code/{code_id}/run", {"mock": mock}, token=self.scientist)
        return resp

    def result(self, job):
        return self.api.get(f"/api/v1/jobs/{job['id']}/result", token=self.scientist)


@pytest.fixture()
def envs_dir(tmp_path_factory, monkeypatch):
    """Where the server builds environments: a directory the sandbox's uid 65534 can reach
    (pytest's own temporary directories are private to their user), not under /tmp (the sandbox
    mounts its own there)."""
    import tempfile, os, shutil
    path = tempfile.mkdtemp(prefix="datasite-test-envs-", dir="/var/tmp")
    os.chmod(path, 0o755)
    monkeypatch.setenv("DATASITE_ENVS_DIR", path)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture()
def world(envs_dir, server):
    return World(server.port)


def build_probe_image(world, tmp_path, name="probe-env"):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    make_wheel(wheels)
    return submit_and_build(world, wheels, name)


def submit_and_build(world, wheels, name):
    resp = world.api.post("/api/v1/worker_images",
                          {"name": name, "worker_config": {"requirements": ["dsprobe==1.0"],
                                                           "find_links": str(wheels),
                                                           "imports": ["dsprobe"]}},
                          token=world.owner)
    assert resp.status == 201, resp
    assert resp.json["status"] == "submitted"
    built = world.api.post(f"/api/v1/worker_images/{resp.json['id']}/build", {},
                           token=world.owner)
    assert built.status == 200, built
    return built.json


def test_a_function_needing_a_library_runs_in_its_pool_and_fails_clearly_elsewhere(world,
                                                                                   tmp_path):
    image = build_probe_image(world, tmp_path)
    assert image["status"] == "ready"
    assert "dsprobe==1.0" in image["packages"]
    assert len(image["packages_hash"]) == 64
    # Scientists see the environments and what they hold.
    seen = world.api.get("/api/v1/worker_images", token=world.scientist)
    assert seen.status == 200
    assert [i["name"] for i in seen.json][:1] == ["default"]
    assert any("dsprobe==1.0" in i["packages"] for i in seen.json)

    pool = world.api.post("/api/v1/worker_pools",
                          {"name": "ml", "image_id": image["id"], "num_workers": 1},
                          token=world.owner)
    assert pool.status == 201, pool
    assert pool.json["workers_ready"] == 1
    assert pool.json["packages_hash"] == image["packages_hash"]

    # In the pool: reviewed (the owner sees the pool), approved, run, right.
    code = world.submit(USES_PROBE, "use_probe", pool="ml")
    assert code.status == 201, code
    assert code.json["worker_pool_name"] == "ml"
    request = world.request_and_approve(code.json["id"])
    assert request["code"]["worker_pool_name"] == "ml"
    job = world.run(code.json["id"])
    assert job.status in (200, 201), job
    assert job.json["status"] == "completed", job.json
    result = world.result(job.json)
    assert result.status == 200, result
    assert result.json == {"magic": 4242, "tripled_ages": 3 * (31 + 42 + 57 + 64 + 23)}

    # The same function in the default pool: approved, run, it fails before any of it runs,
    # naming the module and the pools that have it; the approval is not used up.
    default = world.submit(USES_PROBE + "\n# default pool\n", "use_probe")
    assert default.status == 201, default
    assert default.json["worker_pool_name"] == "default"
    world.request_and_approve(default.json["id"])
    for _ in range(2):
        failed = world.run(default.json["id"])
        assert failed.status in (200, 201), failed
        assert failed.json["status"] == "errored", failed.json
        assert "No module named 'dsprobe'" in failed.json["error"], failed.json
        assert "Pools that have it: ml" in failed.json["error"], failed.json
        assert "not counted" in failed.json["error"]
    code_now = world.api.get(f"/api/v1/code/{default.json['id']}", token=world.scientist).json
    assert code_now["output_policy"]["used"] == 0

    # A pool no one launched is refused at submission, naming the pools there are.
    unknown = world.submit(USES_PROBE + "\n# nowhere\n", "use_probe", pool="gpu")
    assert unknown.status == 400
    assert "default, ml" in unknown.json["error"]["message"]


def test_approval_binds_the_pools_environment(world, tmp_path):
    image = build_probe_image(world, tmp_path)
    assert world.api.post("/api/v1/worker_pools", {"name": "ml", "image_id": image["id"]},
                          token=world.owner).status == 201
    code = world.submit(USES_PROBE, "use_probe", pool="ml").json
    world.request_and_approve(code["id"])
    # The pool is relaunched on another environment (the system Python): the approval no longer
    # holds, and the run says why.
    assert world.api.delete("/api/v1/worker_pools/ml", token=world.owner).status == 200
    other = world.api.post("/api/v1/worker_images",
                           {"name": "system", "worker_config": {"python": "/usr/bin/python3"}},
                           token=world.owner)
    assert other.status == 201, other
    assert world.api.post("/api/v1/worker_pools", {"name": "ml", "image_id": other.json["id"]},
                          token=world.owner).status == 201
    job = world.run(code["id"])
    assert job.json["status"] == "errored", job.json
    assert "needs a new review" in job.json["error"]
    code_now = world.api.get(f"/api/v1/code/{code['id']}", token=world.scientist).json
    assert code_now["output_policy"]["used"] == 0


def test_an_environment_rebuilt_with_other_contents_needs_a_new_review(world, tmp_path):
    # A cold attack: the hash an approval bound covered package names and versions only, so a
    # wheel of the same version with other contents, rebuilt, ran under the old approval.
    image = build_probe_image(world, tmp_path)
    assert world.api.post("/api/v1/worker_pools", {"name": "ml", "image_id": image["id"]},
                          token=world.owner).status == 201
    code = world.submit(USES_PROBE, "use_probe", pool="ml").json
    request = world.request_and_approve(code["id"])
    # Approved once more while nothing changed: nothing to do.
    same = world.api.post(f"/api/v1/requests/{request['id']}/approve", {}, token=world.owner)
    assert same.status != 200 and "already approved" in same.raw.decode(), same
    # A running pool's image is not rebuilt under it.
    busy = world.api.post(f"/api/v1/worker_images/{image['id']}/build", {}, token=world.owner)
    assert busy.status == 409, busy
    assert world.api.delete("/api/v1/worker_pools/ml", token=world.owner).status == 200
    make_wheel(tmp_path / "wheels", source="MAGIC = 1\n\ndef triple(x):\n    return 0\n")
    rebuilt = world.api.post(f"/api/v1/worker_images/{image['id']}/build", {}, token=world.owner)
    assert rebuilt.status == 200, rebuilt
    assert rebuilt.json["packages"] == image["packages"]
    assert rebuilt.json["packages_hash"] != image["packages_hash"]
    assert world.api.post("/api/v1/worker_pools", {"name": "ml", "image_id": image["id"]},
                          token=world.owner).status == 201
    job = world.run(code["id"])
    assert job.json["status"] == "errored", job.json
    assert "needs a new review" in job.json["error"]
    # The new review: the owner approves the request again, which binds the environment there is
    # now, and the code runs in it.
    again = world.api.post(f"/api/v1/requests/{request['id']}/approve", {}, token=world.owner)
    assert again.status == 200, again
    job = world.run(code["id"])
    assert job.json["status"] == "completed", job.json
    assert world.result(job.json).json == {"magic": 1, "tripled_ages": 0}


def default_image_when_ready(world):
    """The default image once the server's sandbox has started (beside its first requests): its
    environment is then known, and approvals bind it."""
    deadline = time.time() + 60
    while True:
        images = world.api.get("/api/v1/worker_images", token=world.owner).json
        default = next(i for i in images if i["name"] == "default")
        if default["status"] == "ready" or time.time() > deadline:
            break
        time.sleep(0.1)
    assert len(default["packages_hash"]) == 64, default
    return default


def test_the_default_pools_approvals_bind_its_environment(binary, tmp_path):
    server = DetachedServer(binary, tmp_path / "data")
    try:
        server.start()
        world = World(server.port)
        default = default_image_when_ready(world)
        code = world.submit("def total(data):\n    return int(data['age'].sum())\n", "total").json
        request = world.request_and_approve(code["id"])
        db = sqlite3.connect(str(tmp_path / "data" / "datasite.db"))
        try:
            bound = db.execute("SELECT doc FROM worker_pool_records WHERE kind = 'approval' AND "
                               "key = ?", (code["id"],)).fetchone()
            assert bound == (default["packages_hash"],)
            # As if it had been approved under another Python or other packages than the server
            # runs now: its private runs are refused, and not counted.
            db.execute("UPDATE worker_pool_records SET doc = ? WHERE kind = 'approval' AND "
                       "key = ?", ("0" * 64, code["id"]))
            db.commit()
        finally:
            db.close()
        job = world.run(code["id"])
        assert job.json["status"] == "errored", job.json
        assert "default worker pool runs another environment" in job.json["error"], job.json
        assert "needs a new review" in job.json["error"]
        code_now = world.api.get(f"/api/v1/code/{code['id']}", token=world.scientist).json
        assert code_now["output_policy"]["used"] == 0
        # The owner approves it again: the environment there is now is bound, and it runs.
        again = world.api.post(f"/api/v1/requests/{request['id']}/approve", {}, token=world.owner)
        assert again.status == 200, again
        job = world.run(code["id"])
        assert job.json["status"] == "completed", job.json
        assert world.result(job.json).json == 31 + 42 + 57 + 64 + 23
    finally:
        server.stop()


def test_an_approval_that_bound_no_environment_is_not_approved_twice(binary, tmp_path):
    # An approval made before the default pool's environment was known (its sandbox still warming
    # up, as on a loaded machine) binds none. Once the environment is known, approving the request
    # again must still be refused as for any decided request, not taken for a new review.
    server = DetachedServer(binary, tmp_path / "data")
    try:
        server.start()
        world = World(server.port)
        default_image_when_ready(world)
        code = world.submit("def count(data):\n    return len(data)\n", "count").json
        request = world.request_and_approve(code["id"])
        db = sqlite3.connect(str(tmp_path / "data" / "datasite.db"))
        try:
            # What such an approval leaves: the request approved, no environment bound.
            gone = db.execute("DELETE FROM worker_pool_records WHERE kind = 'approval' AND key = ?",
                              (code["id"],))
            assert gone.rowcount == 1
            db.commit()
        finally:
            db.close()
        again = world.api.post(f"/api/v1/requests/{request['id']}/approve", {}, token=world.owner)
        assert again.status == 409, again
        # Nothing bound, nothing refused: it runs.
        job = world.run(code["id"])
        assert job.json["status"] == "completed", job.json
        assert world.result(job.json).json == 5
    finally:
        server.stop()


def test_a_grant_holds_the_code_of_those_it_names_to_its_pool_and_environment(binary, tmp_path,
                                                                             envs_dir):
    # A cold review: a scientist a grant names runs the same source as code of their own, which no
    # approval bound; it ran in the default pool after the owner approved it in "ml", and in the
    # default pool's environment after that changed. (And in "ml" it was always refused.)
    from helpers import PASSWORD, unique_email
    server = DetachedServer(binary, tmp_path / "data")
    try:
        server.start()
        world = World(server.port)
        image = build_probe_image(world, tmp_path)
        assert world.api.post("/api/v1/worker_pools", {"name": "ml", "image_id": image["id"]},
                              token=world.owner).status == 201
        third = world.api.create_user(world.actors["admin"].token, role="data_scientist",
                                      email=unique_email("scientist3"))
        named = [world.actors["scientist2"].user["email"], third["email"]]
        tokens = [world.actors["scientist2"].token, world.api.login(third["email"], PASSWORD)]

        def submit(token, source, name, pool=None):
            body = {"name": name, "source": source, "inputs": {"data": {"asset_id": world.asset_id}}}
            if pool is not None:
                body["worker_pool_name"] = pool
            code = world.api.post("/api/v1/code", body, token=token)
            assert code.status == 201, code
            return code.json["id"]

        def approve_for(code_id):
            req = world.api.post("/api/v1/requests", {"code_id": code_id, "reason": "grant"},
                                 token=world.scientist)
            approved = world.api.post(f"/api/v1/requests/{req.json['id']}/approve",
                                      {"repeat": {"per_hour": 100}, "users": named},
                                      token=world.owner)
            assert approved.status == 200, approved

        def run(token, code_id):
            return world.api.post(f"/api/v1/code/{code_id}/run", {"mock": False}, token=token).json

        # Approved in "ml": a named scientist's copy runs there, and not in the default pool.
        approve_for(submit(world.scientist, USES_PROBE, "use_probe", pool="ml"))
        job = run(tokens[0], submit(tokens[0], USES_PROBE, "use_probe", pool="ml"))
        assert job["status"] == "completed" and job["grant_id"], job
        job = run(tokens[1], submit(tokens[1], USES_PROBE, "use_probe"))
        assert job["status"] == "errored", job
        assert "approved this code for worker pool 'ml', not 'default'" in job["error"], job

        # Approved in the default pool, whose environment then changed: the named scientist's copy
        # is refused as the requester's own run is.
        total = "def total(data):\n    return int(data['age'].sum())\n"
        default_image_when_ready(world)
        own = submit(world.scientist, total, "total")
        approve_for(own)
        db = sqlite3.connect(str(tmp_path / "data" / "datasite.db"))
        try:
            db.execute("UPDATE worker_pool_records SET doc = ? WHERE kind = 'approval' AND "
                       "key = ?", ("0" * 64, own))
            db.commit()
        finally:
            db.close()
        for token, code_id in ((world.scientist, own), (tokens[0], submit(tokens[0], total, "total"))):
            job = run(token, code_id)
            assert job["status"] == "errored", job
            assert "needs a new review" in job["error"], job
    finally:
        server.stop()


def test_scientists_see_what_an_environment_holds_not_where_it_came_from(world, tmp_path):
    # A cold attack: an index URL's credentials and pip's output were shown to scientists.
    secret = "https://deploy:S3cr3tT0ken@pypi.corp.example/simple"
    image = world.api.post("/api/v1/worker_images",
                           {"name": "corp", "worker_config": {"requirements": ["dsprobe"],
                                                              "index_url": secret}},
                           token=world.owner)
    assert image.status == 201, image
    for path in ("/api/v1/worker_images", f"/api/v1/worker_images/{image.json['id']}"):
        seen = world.api.get(path, token=world.scientist)
        assert seen.status == 200
        assert "S3cr3tT0ken" not in seen.raw.decode() and "/var/tmp" not in seen.raw.decode()
        owners = world.api.get(path, token=world.owner)
        assert "S3cr3tT0ken" in owners.raw.decode()
    # Direct references would pass --no-index and the wheel folder: refused.
    for spec in ("smuggled @ file:///var/tmp/x.whl", "https://evil.example/x.whl",
                 "./local-dir", "-r other.txt"):
        bad = world.api.post("/api/v1/worker_images",
                             {"name": "bad", "worker_config": {"requirements": [spec],
                                                               "find_links": str(tmp_path)}},
                             token=world.owner)
        assert bad.status == 400, (spec, bad)


def test_pools_scale_and_only_owners_manage_them(world, tmp_path):
    system = world.api.post("/api/v1/worker_images",
                            {"name": "system", "worker_config": {"python": "/usr/bin/python3",
                                                                 "imports": ["json"]}},
                            token=world.owner)
    assert system.status == 201, system
    launch = {"name": "cpu", "image_id": system.json["id"], "num_workers": 1}
    assert world.api.post("/api/v1/worker_pools", launch, token=world.scientist).status == 403
    assert world.api.post("/api/v1/worker_pools", launch).status == 401
    assert world.api.post("/api/v1/worker_pools", launch, token=world.owner).status == 201
    assert world.api.post("/api/v1/worker_pools", launch, token=world.owner).status == 409
    scaled = world.api.post("/api/v1/worker_pools/cpu/scale", {"num_workers": 3},
                            token=world.owner)
    assert scaled.status == 200, scaled
    assert scaled.json["workers_ready"] == 3
    assert world.api.post("/api/v1/worker_pools/cpu/scale", {"num_workers": 0},
                          token=world.owner).status == 400
    assert world.api.post("/api/v1/worker_pools/cpu/scale", {"num_workers": 2},
                          token=world.scientist).status == 403
    down = world.api.post("/api/v1/worker_pools/cpu/scale", {"num_workers": 1},
                          token=world.owner)
    assert down.json["workers_ready"] == 1
    listed = world.api.get("/api/v1/worker_pools", token=world.scientist).json
    assert [p["name"] for p in listed] == ["default", "cpu"]
    # An image a pool runs can't be removed; the default pool can't be deleted.
    assert world.api.delete(f"/api/v1/worker_images/{system.json['id']}",
                            token=world.owner).status == 409
    assert world.api.delete("/api/v1/worker_pools/default", token=world.owner).status == 400
    assert world.api.delete("/api/v1/worker_pools/cpu", token=world.owner).status == 200
    assert world.api.delete(f"/api/v1/worker_images/{system.json['id']}",
                            token=world.owner).status == 200
    # Each change is in the audit log, with who made it.
    log = world.api.get("/api/v1/audit?limit=1000", token=world.owner)
    assert log.status == 200, log
    entries = [json.loads(line) for line in log.raw.decode().splitlines() if line]
    done = {(e["action"], e["target"]) for e in entries}
    for action, target in (("worker_image.submit", "worker_image:" + system.json["id"]),
                           ("worker_pool.launch", "worker_pool:cpu"),
                           ("worker_pool.scale", "worker_pool:cpu"),
                           ("worker_pool.delete", "worker_pool:cpu"),
                           ("worker_image.remove", "worker_image:" + system.json["id"])):
        assert (action, target) in done, (action, target, sorted(done)[-12:])
    # Bad environments are refused, saying why.
    for config, words in (({"python": "relative/python"}, "absolute"),
                          ({"python": "/usr/bin/python3", "imports": ["nosuchmodule_zz"]},
                           "nosuchmodule_zz"),
                          ({"requirements": ["x"]}, "find_links"),
                          ({"requirements": ["--index-url=http://evil"],
                            "find_links": str(tmp_path)}, "specifier"),
                          ({"dockerfile": "FROM x"}, "unknown key")):
        bad = world.api.post("/api/v1/worker_images", {"name": "bad", "worker_config": config},
                             token=world.owner)
        assert bad.status == 400, (config, bad)
        assert words in bad.json["error"]["message"], (config, bad.json)


def launch_system_pool(world, name, workers):
    """A pool of `workers` slots over an image of the system's Python."""
    system = world.api.post("/api/v1/worker_images",
                            {"name": "system", "worker_config": {"python": "/usr/bin/python3"}},
                            token=world.owner).json
    assert world.api.post("/api/v1/worker_pools",
                          {"name": name, "image_id": system["id"], "num_workers": workers},
                          token=world.owner).status == 201


def test_pools_come_back_after_a_restart(envs_dir, launcher, tmp_path):
    server = launcher.launch()
    world = World(server.port)
    launch_system_pool(world, "cpu", 2)
    code = world.submit("def f(data):\n    return int(data['age'].count())\n", "f",
                        pool="cpu").json
    world.request_and_approve(code["id"])
    launcher.land(server)
    server = launcher.launch(name=server.name)
    api = Api(server.port)
    token = world.scientist  # sessions outlive a restart
    deadline = time.monotonic() + 60
    while True:
        pools = api.get("/api/v1/worker_pools", token=token)
        if pools.status == 200 and any(p["name"] == "cpu" and p["workers_ready"] == 2
                                       for p in pools.json):
            break
        assert time.monotonic() < deadline, pools
        time.sleep(0.2)
    job = api.post(f"/api/v1/code/{code['id']}/run", {}, token=token)
    assert job.json["status"] == "completed", job.json


def test_a_restored_pool_is_listed_and_managed_while_it_starts(envs_dir, launcher, tmp_path):
    # The stored pools were restarted only once the default pool's sandbox ran: until then, a
    # restarted server did not list them, refused code naming them, and answered 404 to their
    # deletion; a pool deleted or relaunched meanwhile was then overwritten by the stored one.
    server = launcher.launch()
    world = World(server.port)
    launch_system_pool(world, "gone", 1)
    launcher.land(server)
    server = launcher.launch(name=server.name)
    api = Api(server.port)
    # At once, with no wait for the sandboxes: it is listed, starting or (on a fast machine) ready.
    listed = api.get("/api/v1/worker_pools", token=world.owner)
    assert listed.status == 200, listed
    gone = [p for p in listed.json if p["name"] == "gone"]
    assert len(gone) == 1 and gone[0]["status"] in ("starting", "ready"), listed.json
    deleted = api.delete("/api/v1/worker_pools/gone", token=world.owner)
    assert deleted.status in (200, 204), deleted
    # Once the server's sandboxes have started, it stays deleted, and after another restart too.
    deadline = time.monotonic() + 60
    while api.get("/api/v1/worker_images/default", token=world.owner).json["status"] != "ready":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    time.sleep(1.0)
    names = [p["name"] for p in api.get("/api/v1/worker_pools", token=world.owner).json]
    assert names == ["default"], names
    launcher.land(server)
    server = launcher.launch(name=server.name)
    names = [p["name"] for p in Api(server.port).get("/api/v1/worker_pools",
                                                     token=world.owner).json]
    assert names == ["default"], names


def test_scientists_are_not_told_why_a_pool_is_down(envs_dir, launcher, tmp_path):
    # A cold attack: a pool restored as failed (its environment gone) showed scientists the
    # sandbox's words, which name the environment's path on the server, and who launched it.
    import shutil
    server = launcher.launch()
    world = World(server.port)
    image = build_probe_image(world, tmp_path)
    assert world.api.post("/api/v1/worker_pools", {"name": "ml", "image_id": image["id"]},
                          token=world.owner).status == 201
    launcher.land(server)
    shutil.rmtree(image["path"])
    server = launcher.launch(name=server.name)
    api = Api(server.port)
    deadline = time.monotonic() + 60
    while True:
        owners = api.get("/api/v1/worker_pools/ml", token=world.owner)
        if owners.status == 200 and owners.json["status"] == "failed":
            break
        assert time.monotonic() < deadline, owners
        time.sleep(0.2)
    assert image["path"] in owners.json["error"]
    for path in ("/api/v1/worker_pools/ml", "/api/v1/worker_pools"):
        seen = api.get(path, token=world.scientist)
        assert seen.status == 200, seen
        assert image["path"] not in seen.raw.decode() and "created_by" not in seen.raw.decode()
    assert api.get("/api/v1/worker_pools/ml", token=world.scientist).json["error"] == \
        "the pool is down"
