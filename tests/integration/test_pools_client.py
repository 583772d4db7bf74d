"""Worker images and worker pools through the Python client, against a launched server (issue 19).

A data owner registers Python environments (a system interpreter with Debian's scikit-learn, a
virtualenv with a module of its own, a virtualenv the server builds from a local wheel), launches
pools on them, scales and deletes them; a data scientist reads them, submits code with
``worker_pool_name=...``, has it reviewed (the owner sees the pool) and runs it there. Code that
imports a module its pool lacks fails naming the module and the pools that have it, and the failed
run does not use up its single-use approval. One server for the module; each test makes pools and
images of its own names.
"""

import time

import pytest

import datasite as sy
from code_helpers import PRIVATE, asset_of, make_code_actors, upload_people
from helpers import needs_sandbox, unique
from pool_helpers import SYSTEM_PYTHON, make_wheel, module_name, path_env, readable_dir

pytestmark = needs_sandbox

POOL_ONLY_MODULE = "datasite_pool_only_module"


@pytest.fixture(scope="module")
def actors(module_server):
    return make_code_actors(module_server.port)


@pytest.fixture(scope="module")
def owner(actors):
    return actors["owner"].client


@pytest.fixture(scope="module")
def scientist(actors):
    return actors["scientist"].client


@pytest.fixture(scope="module")
def people(owner):
    return upload_people(owner)


@pytest.fixture
def asset(scientist, people):
    return asset_of(scientist, people)


@pytest.fixture(scope="module")
def sklearn_image(owner):
    """A ready image of the system Python, checked for sklearn."""
    config = sy.PythonWorkerConfig(python=SYSTEM_PYTHON, imports=["sklearn"], name=unique("sys"))
    result = owner.worker_images.submit(worker_config=config)
    assert isinstance(result, sy.SyftSuccess), result
    return result.value


@pytest.fixture(scope="module")
def sklearn_pool(owner, sklearn_image):
    name = unique("ml")
    pool = owner.worker_pools.launch(pool_name=name, image_uid=sklearn_image.id, num_workers=1)
    yield pool
    try:
        owner.worker_pools.delete(pool_name=name)
    except sy.NotFoundError:
        pass


def run_approved(scientist, owner, func, pool_name=None):
    """The scientist asks for ``func``; the owner checks the pool on review and approves it.
    Returns the owner's Request."""
    request = scientist.code.request_code_execution(func, reason="pool test")
    review = owner.requests.get(request.id)
    if pool_name is not None:
        assert review.worker_pool_name == pool_name
        assert review.code.worker_pool_name == pool_name
        assert "Worker pool" in repr(review)
    assert review.approve()
    return review


# Reading ----------------------------------------------------------------------------------------


def test_the_default_image_and_pool_come_first_for_everyone(owner, scientist):
    # The server's own sandbox starts beside its first requests: "starting" until it has.
    deadline = time.monotonic() + 60
    while owner.worker_images.get("default").status != "ready":
        assert time.monotonic() < deadline, owner.worker_images.get("default")
        time.sleep(0.1)
    for client in (owner, scientist):
        images = client.worker_images
        assert len(images) >= 1 and images[0].id == "default"
        default = images.get("default")
        assert default.status == "ready" and default.packages and default.packages_hash
        assert any(p.startswith(("pandas==", "numpy==")) for p in default.packages)
        assert "packages_hash" in repr(images) and "<table" in images._repr_html_()
        pools = client.worker_pools
        assert pools[0].name == "default" and pools.get_by_name(pool_name="default").num_workers
        assert pools.get_all()["default"].image_id == "default"
        assert "default" in repr(pools)


def test_the_same_calls_are_under_api_services(owner, sklearn_pool):
    services = owner.api.services
    assert sklearn_pool.name in [p.name for p in services.worker_pool.get_all()]
    assert services.worker_pool.get_by_name(pool_name=sklearn_pool.name).image_id == \
        sklearn_pool.image_id
    assert "default" in [i.id for i in services.worker_image.get_all()]


# Images -----------------------------------------------------------------------------------------


def test_a_system_python_image_records_its_packages(sklearn_image):
    assert sklearn_image.status == "ready" and sklearn_image.kind == "path"
    assert sklearn_image.imports == ["sklearn"]
    assert any(p.startswith("scikit-learn==") for p in sklearn_image.packages)
    assert len(sklearn_image.packages_hash) == 64 and sklearn_image.python_version.startswith("3.")
    assert sklearn_image.image_identifier == sklearn_image.name
    assert "scikit-learn==" in repr(sklearn_image)


def test_an_image_that_does_not_exist_or_import_is_refused(owner):
    with pytest.raises(sy.InvalidArgumentError):
        owner.worker_images.submit(worker_config=sy.PythonWorkerConfig(
            path="/nonexistent/env", name=unique("bad")))
    with pytest.raises(sy.InvalidArgumentError, match="no_such_module_here"):
        owner.worker_images.submit(worker_config=sy.PythonWorkerConfig(
            python=SYSTEM_PYTHON, imports=["no_such_module_here"], name=unique("bad")))


def test_docker_configs_are_refused_before_anything_is_sent(owner):
    with pytest.raises(ValueError, match="runs no Docker"):
        owner.worker_images.submit(worker_config=sy.DockerWorkerConfig(dockerfile="FROM x"))
    with pytest.raises(ValueError, match="sy.PythonWorkerConfig"):
        owner.api.services.worker_image.submit(worker_config=sy.PrebuiltWorkerConfig(tag="x:1"))


def test_a_scientist_reads_but_does_not_change(scientist, sklearn_image, sklearn_pool):
    assert scientist.worker_images.get(sklearn_image.id).packages == sklearn_image.packages
    assert scientist.worker_pools.get_by_name(pool_name=sklearn_pool.name).name == sklearn_pool.name
    with pytest.raises(sy.PermissionDeniedError):
        scientist.worker_images.submit(worker_config=sy.PythonWorkerConfig(python=SYSTEM_PYTHON))
    with pytest.raises(sy.PermissionDeniedError):
        scientist.worker_images.build(image_uid=sklearn_image.id)
    with pytest.raises(sy.PermissionDeniedError):
        scientist.worker_images.remove(uid=sklearn_image.id)
    with pytest.raises(sy.PermissionDeniedError):
        scientist.worker_pools.launch(pool_name=unique("no"), image_uid=sklearn_image.id)
    with pytest.raises(sy.PermissionDeniedError):
        scientist.worker_pools.scale(number=2, pool_name=sklearn_pool.name)
    with pytest.raises(sy.PermissionDeniedError):
        scientist.worker_pools.delete(pool_name=sklearn_pool.name)


def test_an_image_built_from_a_local_wheel(owner, tmp_path):
    name = module_name("tinypkg")
    make_wheel(tmp_path / "wheels", name, value=17)
    config = sy.PythonWorkerConfig(requirements=[name + "==1.0"],
                                   find_links=str(tmp_path / "wheels"), imports=[name],
                                   name=unique("built"))
    submitted = owner.worker_images.submit(worker_config=config).value
    assert submitted.status == "submitted" and submitted.kind == "requirements"
    assert submitted.requirements == [name + "==1.0"]
    built = owner.worker_images.build(image_uid=submitted.id, tag="ignored:1.0")
    image = built.value
    assert image.status == "ready", image
    assert any(p.replace("-", "_").startswith(name + "==1.0") for p in image.packages), image
    assert owner.worker_images.get(image.id).packages_hash == image.packages_hash
    assert owner.worker_images.remove(uid=image.id)
    with pytest.raises(sy.NotFoundError):
        owner.worker_images.get(image.id)


def test_a_failed_build_says_why_and_marks_the_image(owner, tmp_path):
    (tmp_path / "empty").mkdir()
    config = sy.PythonWorkerConfig(requirements=["no-such-package-here==9.9"],
                                   find_links=str(tmp_path / "empty"), name=unique("fail"))
    image = owner.worker_images.submit(worker_config=config).value
    with pytest.raises(sy.InvalidArgumentError, match="no-such-package-here"):
        owner.worker_images.build(image_uid=image.id)
    again = owner.worker_images.get(image.id)
    assert again.status == "failed" and again.error


# Pools ------------------------------------------------------------------------------------------


def test_launch_scale_and_delete_a_pool(owner, sklearn_image):
    name = unique("scaled")
    launched = owner.worker_pools.launch(pool_name=name, image_uid=sklearn_image.id,
                                         num_workers=1, memory_bytes=1 << 30, cpu_seconds=20,
                                         timeout_seconds=40)
    assert len(launched) == 1 and launched[0].error is None  # PySyft's spawn statuses
    pool = launched.pool
    assert isinstance(pool, sy.WorkerPool) and pool.workers[0].name == name + "-1"
    assert (pool.name, pool.image_id, pool.status) == (name, sklearn_image.id, "ready")
    assert (pool.num_workers, pool.workers_ready) == (1, 1)
    assert (pool.memory_bytes, pool.cpu_seconds, pool.timeout_seconds) == (1 << 30, 20, 40)
    assert pool.packages_hash == sklearn_image.packages_hash
    assert name in [p.name for p in owner.worker_pools]

    scaled = owner.worker_pools.scale(number=3, pool_name=name)
    assert scaled and scaled.value.num_workers == 3
    assert len(owner.worker_pools[name].healthy_workers) == 3
    assert owner.worker_pools.get_by_name(pool_name=name).num_workers == 3
    assert owner.api.services.worker_pool.scale(number=1, pool_name=name).value.num_workers == 1

    # An image a pool uses stays.
    with pytest.raises(sy.DatasiteError) as used:
        owner.worker_images.remove(uid=sklearn_image.id)
    assert used.value.status == 409

    assert owner.worker_pools.delete(pool_name=name)
    with pytest.raises(sy.NotFoundError):
        owner.worker_pools.get_by_name(pool_name=name)


def test_pool_refusals(owner, sklearn_image, sklearn_pool):
    with pytest.raises(sy.NotFoundError):
        owner.worker_pools.launch(pool_name=unique("x"), image_uid="no-such-image")
    with pytest.raises(sy.DatasiteError) as taken:
        owner.worker_pools.launch(pool_name=sklearn_pool.name, image_uid=sklearn_image.id)
    assert taken.value.status == 409
    with pytest.raises(sy.InvalidArgumentError):
        owner.worker_pools.delete(pool_name="default")
    with pytest.raises(sy.DatasiteError):
        owner.worker_images.remove(uid="default")
    with pytest.raises(sy.NotFoundError):
        owner.worker_pools.scale(number=2, pool_name=unique("none"))


def test_a_pool_on_an_unbuilt_image_is_refused(owner, tmp_path):
    config = sy.PythonWorkerConfig(requirements=["x==1"], find_links=str(tmp_path),
                                   name=unique("unbuilt"))
    image = owner.worker_images.submit(worker_config=config).value
    with pytest.raises(sy.DatasiteError) as refused:
        owner.worker_pools.launch(pool_name=unique("p"), image_uid=image.id)
    assert refused.value.status == 409
    owner.worker_images.remove(uid=image.id)


# Code in a pool ---------------------------------------------------------------------------------


def test_code_runs_in_its_pool_with_sklearn(owner, scientist, asset, sklearn_pool):
    @sy.syft_function_single_use(data=asset, worker_pool_name=sklearn_pool.name)
    def pool_scaled_mean(data):
        from sklearn.preprocessing import StandardScaler

        return float(StandardScaler().fit(data[["age"]]).mean_[0])

    assert pool_scaled_mean.to_wire()["worker_pool_name"] == sklearn_pool.name
    run_approved(scientist, owner, pool_scaled_mean, pool_name=sklearn_pool.name)
    assert scientist.code.pool_scaled_mean(data=asset).get() == pytest.approx(
        float(PRIVATE["age"].mean()))


def test_an_unknown_pool_is_refused_at_submit_naming_the_pools(scientist, asset):
    @sy.syft_function_single_use(data=asset, worker_pool_name="no_such_pool")
    def in_no_pool(data):
        return 1

    with pytest.raises(sy.InvalidArgumentError, match="default"):
        scientist.code.request_code_execution(in_no_pool)


@pytest.fixture
def own_env():
    """A virtualenv, readable by the sandbox, with a module only it has (the module's server is
    its own: a fixed name)."""
    with readable_dir() as folder:
        yield path_env(folder / "venv", POOL_ONLY_MODULE, 31337)


def test_a_missing_module_fails_clearly_without_using_up_the_approval(
        owner, scientist, asset, own_env):
    env = own_env
    image = owner.worker_images.submit(worker_config=sy.PythonWorkerConfig(
        path=str(env), imports=[POOL_ONLY_MODULE], name=unique("own"))).value
    assert image.status == "ready"
    pool_name = unique("own")
    owner.worker_pools.launch(pool_name=pool_name, image_uid=image.id)

    @sy.syft_function_single_use(data=asset)
    def in_default(data):
        import datasite_pool_only_module

        return datasite_pool_only_module.VALUE + len(data)

    run_approved(scientist, owner, in_default)
    for _ in range(2):  # the failed run did not use the single run up: the same error again
        with pytest.raises(sy.JobFailedError) as failed:
            scientist.code.in_default(data=asset).get()
        message = str(failed.value)
        assert POOL_ONLY_MODULE in message and "default" in message, message
        assert pool_name in message, message

    @sy.syft_function_single_use(data=asset, worker_pool_name=pool_name)
    def in_own_pool(data):
        import datasite_pool_only_module

        return datasite_pool_only_module.VALUE + len(data)

    run_approved(scientist, owner, in_own_pool, pool_name=pool_name)
    assert scientist.code.in_own_pool(data=asset).get() == 31337 + len(PRIVATE)
    owner.worker_pools.delete(pool_name=pool_name)
