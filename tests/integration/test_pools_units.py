"""The worker pool client's own logic, without a server: configurations, request bodies, the
objects made from the server's JSON, their display, and ``worker_pool_name`` on code (issue 19)."""

import pytest

import datasite as sy
from datasite import worker_pools
from datasite._routes import ROUTES

IMAGE = {
    "id": "0b4c6c2e-8a57-4c59-9d7b-1f0f6d1c2a3b", "name": "ml", "kind": "path",
    "python": "/usr/bin/python3", "path": "", "requirements": [], "find_links": None,
    "index_url": None, "imports": ["sklearn"], "status": "ready", "error": None,
    "packages": ["numpy==1.24.2", "scikit-learn==1.2.1"], "packages_hash": "ab" * 32,
    "python_version": "3.11.2", "created_at": 1764921600000, "created_by": "info@example.org",
}
POOL = {
    "name": "ml", "image_id": IMAGE["id"], "image_name": "ml", "num_workers": 2,
    "workers_ready": 2, "memory_bytes": 1 << 30, "cpu_seconds": 30, "timeout_seconds": 60,
    "packages_hash": "ab" * 32, "status": "ready", "error": None, "created_at": 1764921600000,
    "created_by": "info@example.org",
}


class FakeTransport:
    """Records each call and answers from ``answers`` (route -> JSON)."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def call(self, route, path_params=None, query=None, body=None, authenticated=True,
             timeout=None):
        assert route in ROUTES, route
        self.calls.append((route, path_params, body))
        return self.answers[route]


class FakeClient:
    def __init__(self, answers):
        self._transport = FakeTransport(answers)


def test_a_python_config_sends_only_what_was_given():
    config = sy.PythonWorkerConfig(python="/usr/bin/python3", imports=["sklearn"], name="ml")
    assert config.to_wire() == {"python": "/usr/bin/python3", "imports": ["sklearn"]}
    assert config.kind == "path" and config.default_name() == "ml"
    assert sy.PythonWorkerConfig(path="/opt/envs/stats/").default_name() == "stats"
    built = sy.PythonWorkerConfig(requirements=["tinypkg==1.0"], find_links="/srv/wheels")
    assert built.to_wire() == {"requirements": ["tinypkg==1.0"], "find_links": "/srv/wheels"}
    assert built.kind == "requirements" and built.default_name().startswith("env-")


def test_requirements_are_read_from_a_file_without_comments(tmp_path):
    path = tmp_path / "requirements.txt"
    path.write_text("# pinned\ntinypkg==1.0  # the one\n\nother>=2\n")
    assert sy.PythonWorkerConfig(requirements=str(path)).requirements == ["tinypkg==1.0",
                                                                          "other>=2"]
    assert sy.PythonWorkerConfig(requirements=path).requirements == ["tinypkg==1.0", "other>=2"]


@pytest.mark.parametrize("kwargs,match", [
    ({}, "needs path=, python= or requirements="),
    ({"python": "/usr/bin/python3", "requirements": ["x"]}, "not both"),
    ({"requirements": []}, "empty"),
    ({"python": "/usr/bin/python3", "find_links": "/w"}, "for requirements="),
])
def test_a_python_config_refuses_what_makes_no_environment(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sy.PythonWorkerConfig(**kwargs)


@pytest.mark.parametrize("kwargs", [{"python": 3}, {"imports": [""]}, {"requirements": [1]}])
def test_a_python_config_refuses_values_of_the_wrong_type(kwargs):
    with pytest.raises(TypeError):
        sy.PythonWorkerConfig(**kwargs)


@pytest.mark.parametrize("config", [
    sy.DockerWorkerConfig(dockerfile="FROM openmined/syft-backend:0.9.0\nRUN pip install x"),
    sy.PrebuiltWorkerConfig(tag="docker.io/openmined/syft-backend:0.9.0"),
])
def test_pysyft_docker_configs_say_to_use_a_python_config(config):
    client = FakeClient({})
    with pytest.raises(ValueError, match="runs no Docker.*sy.PythonWorkerConfig"):
        worker_pools.WorkerImageCollection(client).submit(worker_config=config)
    assert client._transport.calls == []


def test_submit_sends_the_name_and_config_and_answers_the_image():
    client = FakeClient({"worker_images_create": IMAGE})
    config = sy.PythonWorkerConfig(python="/usr/bin/python3", imports=["sklearn"], name="ml")
    result = worker_pools.WorkerImageCollection(client).submit(worker_config=config)
    assert result and isinstance(result.value, sy.WorkerImage)
    assert "ready" in result.message and "2 packages" in result.message
    route, _, body = client._transport.calls[0]
    assert route == "worker_images_create"
    assert body == {"name": "ml", "worker_config": {"python": "/usr/bin/python3",
                                                    "imports": ["sklearn"]}}


def test_an_image_has_the_json_keys_and_pysyft_names():
    image = sy.WorkerImage(IMAGE, None)
    assert image.id == IMAGE["id"] and image.image_identifier == "ml" and image.is_built
    assert image.packages_hash == "ab" * 32 and image.python_version == "3.11.2"
    assert image.package_versions()["scikit-learn"] == "1.2.1"
    assert image.config == sy.PythonWorkerConfig(python="/usr/bin/python3", imports=["sklearn"],
                                                 name="ml")
    text = repr(image)
    assert "scikit-learn==1.2.1" in text and "2025-12-05" in text and "3.11.2" in text
    assert "<td" in image._repr_html_() and "**Name:** ml" in image._repr_markdown_()


def test_listings_are_tables_indexed_by_position_and_id():
    default = dict(IMAGE, id="default", name="default", imports=[])
    client = FakeClient({"worker_images_list": [default, IMAGE],
                         "worker_pools_list": [dict(POOL, name="default"), POOL]})
    images = worker_pools.WorkerImageCollection(client)
    assert len(images) == 2 and images[0].id == "default"
    assert images.get_all()[IMAGE["id"]].name == "ml"
    assert [i.name for i in images] == ["default", "ml"]
    assert "packages_hash" in repr(images.get_all()) and "<table" in images._repr_html_()
    pools = worker_pools.WorkerPoolCollection(client)
    assert [p.name for p in pools] == ["default", "ml"]
    assert pools.get_all()["ml"].num_workers == 2
    assert "2/2" in repr(pools.get_all())


def test_launch_sends_the_pool_and_its_limits():
    client = FakeClient({"worker_pools_create": POOL})
    pools = worker_pools.WorkerPoolCollection(client)
    result = pools.launch(pool_name="ml", image_uid=sy.WorkerImage(IMAGE, None), num_workers=2,
                          memory_bytes=1 << 30, cpu_seconds=30, timeout_seconds=60)
    # PySyft's answer: one spawn status per worker; it also reads as the pool.
    assert len(result) == 2 and all(status.error is None for status in result)
    assert [status.worker_name for status in result] == ["ml-1", "ml-2"]
    pool = result.pool
    assert isinstance(pool, sy.WorkerPool) and pool.id == "ml" and pool.max_count == 2
    assert result.name == "ml" and result.num_workers == 2
    assert [w.worker_pool_name for w in pool.workers] == ["ml", "ml"]
    assert len(pool.worker_list) == len(pool.healthy_workers) == 2
    assert client._transport.calls[0][2] == {
        "name": "ml", "image_id": IMAGE["id"], "num_workers": 2, "memory_bytes": 1 << 30,
        "cpu_seconds": 30, "timeout_seconds": 60}
    assert "2 of 2 ready" in repr(pool) and "1024 MiB memory" in repr(pool)


@pytest.mark.parametrize("kwargs,error", [
    ({"num_workers": 0}, ValueError), ({"num_workers": 65}, ValueError),
    ({"num_workers": 1.5}, TypeError), ({"num_workers": True}, TypeError),
    ({"memory_bytes": -1}, ValueError), ({"registry_username": "me"}, ValueError),
])
def test_launch_refuses_bad_numbers_before_sending(kwargs, error):
    client = FakeClient({})
    with pytest.raises(error):
        worker_pools.WorkerPoolCollection(client).launch(pool_name="ml", image_uid="x", **kwargs)
    assert client._transport.calls == []


def test_scale_and_delete_name_the_pool():
    client = FakeClient({"worker_pool_scale": dict(POOL, num_workers=4, workers_ready=4),
                         "worker_pool_delete": {"deleted": "ml"}})
    pools = worker_pools.WorkerPoolCollection(client)
    scaled = pools.scale(number=4, pool_name="ml")
    assert scaled and scaled.value.num_workers == 4 and "4 workers" in scaled.message
    assert client._transport.calls[0] == ("worker_pool_scale", {"name": "ml"},
                                          {"num_workers": 4})
    assert pools.delete(pool_name="ml")
    assert client._transport.calls[1][:2] == ("worker_pool_delete", {"name": "ml"})
    with pytest.raises(TypeError):
        pools.scale(number=2)


def test_build_and_remove_call_the_image_routes():
    client = FakeClient({"worker_image_build": IMAGE, "worker_image_delete": {"deleted": "x"}})
    images = worker_pools.WorkerImageCollection(client)
    built = images.build(image_uid=IMAGE["id"], tag="local/ml:1.0")
    assert built.value.id == IMAGE["id"]
    assert client._transport.calls[0][:2] == ("worker_image_build", {"id": IMAGE["id"]})
    assert images.remove(uid=IMAGE["id"])
    assert client._transport.calls[1][:2] == ("worker_image_delete", {"id": IMAGE["id"]})


def test_worker_pool_name_goes_into_the_code_submission():
    @sy.syft_function(worker_pool_name="ml")
    def in_pool():
        return 1

    assert in_pool.worker_pool_name == "ml"
    assert in_pool.to_wire()["worker_pool_name"] == "ml"
    assert "Worker pool:" in repr(in_pool)

    @sy.syft_function_single_use(worker_pool_name=sy.WorkerPool(POOL, None))
    def from_object():
        return 1

    assert from_object.to_wire()["worker_pool_name"] == "ml"

    @sy.syft_function()
    def default_pool():
        return 1

    assert "worker_pool_name" not in default_pool.to_wire()


def test_share_results_with_owners_is_still_refused_and_a_bad_pool_name_too():
    with pytest.raises(ValueError, match="share_results_with_owners"):
        sy.syft_function(share_results_with_owners=True)
    with pytest.raises(TypeError, match="worker_pool_name"):
        sy.syft_function(worker_pool_name=3)


def test_code_and_requests_read_their_pool():
    code = sy.UserCode({"id": "c", "name": "f", "source": "def f():\n    return 1\n",
                        "worker_pool_name": "ml"}, None)
    assert code.worker_pool_name == "ml" and "Worker pool" in repr(code)
    request = sy.Request({"id": "r", "status": "pending", "code": {
        "id": "c", "name": "f", "source": "def f():\n    return 1\n",
        "worker_pool_name": "ml"}}, None)
    assert request.worker_pool_name == "ml" and "Worker pool" in repr(request)
    assert sy.UserCode({"id": "c", "name": "f"}, None).worker_pool_name is None


def test_the_services_tree_has_pysyft_worker_pool_and_worker_image_calls():
    from datasite._api import build_services

    transport = FakeTransport({"worker_pools_list": [POOL], "worker_pools_create": POOL,
                               "worker_images_list": [IMAGE]})
    transport.base_url = "http://localhost:1"
    client = sy.DatasiteClient(transport.base_url, "token", {}, {}, transport=transport)
    assert client.worker_pools[0].name == "ml" and client.worker_images[0].name == "ml"
    services = build_services(client, {"paths": {}})
    assert [p.name for p in services.worker_pool.get_all()] == ["ml"]
    assert services.worker_pool.launch(name="ml", image_uid="x", num_workers=2).name == "ml"
    assert client.images[0].name == "ml"
    assert services.worker_image.get_all()[0].id == IMAGE["id"]
    for name in ("get_by_name", "scale", "delete"):
        assert callable(getattr(services.worker_pool, name))
    for name in ("submit", "build", "remove", "get_by_uid"):
        assert callable(getattr(services.worker_image, name))


def test_pysyft_import_paths_reach_the_pool_objects():
    from datasite.service.worker.worker_image import SyftWorkerImage
    from datasite.service.worker.worker_pool import ContainerSpawnStatus, SyftWorker, WorkerPool

    assert SyftWorkerImage is sy.WorkerImage and WorkerPool is sy.WorkerPool
    result = worker_pools.LaunchResult(sy.WorkerPool(POOL, None))
    assert isinstance(result[0], sy.service.worker.worker_pool.ContainerSpawnStatus)
    assert isinstance(result[0].worker, SyftWorker) and ContainerSpawnStatus is type(result[0])
