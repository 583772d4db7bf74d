"""Worker images and worker pools (PySyft's names): the Python environments code runs in.

An *image* is a Python environment on the server's machine, not a container: a virtualenv, a
conda prefix or a system Python registered by path, or a virtualenv the server builds with pip
from a requirements list. Each records the exact packages it holds (``packages``, and their
``packages_hash``), which scientists may read to reproduce it on the mock. A *pool* is a named
environment and a number of warm sandbox slots; code submitted with
``@sy.syft_function(..., worker_pool_name="ml")`` runs there. The pool "default" is the server's
own Python.

    image = client.worker_images.submit(worker_config=sy.PythonWorkerConfig(
        name="ml", python="/usr/bin/python3", imports=["sklearn"])).value
    client.worker_pools.launch(pool_name="ml", image_uid=image.id, num_workers=2)
    client.worker_pools.scale(number=4, pool_name="ml")

Reads are open to every logged-in user; changes are for data owners and admins.
"""

import datetime
import hashlib
import os
import warnings

from . import _display
from ._listing import ListingMixin, TableList
from .errors import DatasiteWarning, SyftSuccess

# Building a virtualenv with pip, or warming a pool's slots, takes longer than a plain call.
SLOW_CALL_SECONDS = 900.0
MAX_WORKERS = 64
DEFAULT_POOL = "default"

_NO_DOCKER = (
    "this server runs no Docker: a worker image is a Python environment on the server's "
    "machine. Use sy.PythonWorkerConfig(path=...) for a virtualenv or conda prefix, "
    "sy.PythonWorkerConfig(python=...) for an interpreter, or "
    "sy.PythonWorkerConfig(requirements=[...], find_links=...) for the server to build one"
)


def _ident(value, what):
    """An id or name given as text, or taken from an object's ``id`` / ``name``."""
    if isinstance(value, str) and value:
        return value
    for attr in ("id", "name"):
        found = getattr(value, attr, None)
        if isinstance(found, str) and found:
            return found
    raise TypeError("{} must be a non-empty string, got {!r}".format(what, value))


def _when(ms):
    """Milliseconds since the epoch as a UTC time for display; other values as they are."""
    if isinstance(ms, bool) or not isinstance(ms, (int, float)):
        return ms
    when = datetime.datetime.fromtimestamp(ms / 1000.0, tz=datetime.timezone.utc)
    return when.strftime("%Y-%m-%d %H:%M:%S UTC")


def _whole(value, name, low, high=None):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("{} must be a whole number, got {!r}".format(name, value))
    if value < low or (high is not None and value > high):
        bounds = "at least {}".format(low) if high is None else "from {} to {}".format(low, high)
        raise ValueError("{} must be {}, got {}".format(name, bounds, value))
    return value


# Configurations ----------------------------------------------------------------------------------


def _requirement_lines(text):
    lines = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            lines.append(line)
    return lines


def _requirements_of(requirements):
    """A list of requirement strings from a list, a file's path or the text of a file."""
    if requirements is None:
        return None
    if isinstance(requirements, os.PathLike) or (
        isinstance(requirements, str) and "\n" not in requirements and os.path.isfile(requirements)
    ):
        with open(requirements, encoding="utf-8") as f:
            return _requirement_lines(f.read())
    if isinstance(requirements, str):
        return _requirement_lines(requirements)
    if not isinstance(requirements, (list, tuple)):
        raise TypeError(
            "requirements must be a list of requirement strings (or a requirements file's path), "
            "got {!r}".format(requirements)
        )
    out = []
    for item in requirements:
        if not isinstance(item, str) or not item.strip():
            raise TypeError("each requirement must be a non-empty string, got {!r}".format(item))
        out.append(item.strip())
    return out


def _strings(values, name):
    if values is None:
        return None
    if isinstance(values, str):
        values = [values]
    out = []
    for value in values:
        if not isinstance(value, str) or not value.strip():
            raise TypeError("{} takes non-empty strings, got {!r}".format(name, value))
        out.append(value.strip())
    return out


class WorkerConfig:
    """What every worker configuration is (PySyft's ``WorkerConfig``)."""

    def to_wire(self):
        raise NotImplementedError


class PythonWorkerConfig(WorkerConfig):
    """A Python environment for a worker image.

    Give one of:

    - ``path``: the root of a virtualenv or conda prefix on the server's machine (its
      ``bin/python`` runs the code), optionally with ``python`` naming another interpreter in it;
    - ``python``: an interpreter's path, e.g. ``"/usr/bin/python3"`` (its own packages);
    - ``requirements``: a list of requirements (or a requirements file's path) for the server to
      install with pip into a new virtualenv when the image is built, from ``find_links`` (a
      folder of wheels on the server, used with ``--no-index``) or ``index_url``.

    ``imports`` are modules the server imports when it checks the environment ("sklearn").
    ``name`` names the image (default: from the path or interpreter).
    """

    def __init__(
        self,
        path=None,
        python=None,
        requirements=None,
        find_links=None,
        index_url=None,
        imports=None,
        name=None,
    ):
        for value, what in ((path, "path"), (python, "python"), (find_links, "find_links"),
                            (index_url, "index_url"), (name, "name")):
            if value is not None and not isinstance(value, (str, os.PathLike)):
                raise TypeError("{} must be a string, got {!r}".format(what, value))
        self.path = os.fspath(path) if path is not None else None
        self.python = os.fspath(python) if python is not None else None
        self.requirements = _requirements_of(requirements)
        self.find_links = os.fspath(find_links) if find_links is not None else None
        self.index_url = index_url
        self.imports = _strings(imports, "imports")
        self.name = name
        if self.requirements is not None and (self.path or self.python):
            raise ValueError(
                "PythonWorkerConfig takes path/python (an environment that exists) or "
                "requirements (one the server builds), not both"
            )
        if self.requirements is None and not (self.path or self.python):
            raise ValueError(
                "PythonWorkerConfig needs path=, python= or requirements=, e.g. "
                "sy.PythonWorkerConfig(python='/usr/bin/python3', imports=['sklearn'])"
            )
        if self.requirements is not None and not self.requirements:
            raise ValueError("requirements is empty: name at least one package")
        if self.requirements is None and (self.find_links or self.index_url):
            raise ValueError("find_links and index_url are for requirements=")

    @property
    def kind(self):
        return "requirements" if self.requirements is not None else "path"

    def default_name(self):
        """A name for an image of this configuration when none is given."""
        if self.name:
            return self.name
        if self.path:
            return os.path.basename(os.path.normpath(self.path)) or "env"
        if self.python:
            return os.path.basename(self.python) or "python"
        digest = hashlib.sha256("\n".join(self.requirements).encode("utf-8")).hexdigest()
        return "env-" + digest[:8]

    def to_wire(self):
        """The ``worker_config`` object of ``POST /api/v1/worker_images``."""
        wire = {}
        for key in ("path", "python", "requirements", "find_links", "index_url", "imports"):
            value = getattr(self, key)
            if value is not None:
                wire[key] = value
        return wire

    @classmethod
    def _from_image(cls, data):
        """The configuration an image JSON describes (None when it describes none)."""
        try:
            if data.get("kind") == "requirements":
                return cls(
                    requirements=list(data.get("requirements") or []),
                    find_links=data.get("find_links"),
                    index_url=data.get("index_url"),
                    imports=data.get("imports") or None,
                    name=data.get("name"),
                )
            return cls(
                path=data.get("path") or None,
                python=data.get("python") or None,
                imports=data.get("imports") or None,
                name=data.get("name"),
            )
        except (TypeError, ValueError):
            return None

    def __eq__(self, other):
        if isinstance(other, PythonWorkerConfig):
            return (self.to_wire(), self.name) == (other.to_wire(), other.name)
        return NotImplemented

    __hash__ = None

    def __repr__(self):
        parts = ["{}={!r}".format(k, v) for k, v in self.to_wire().items()]
        if self.name:
            parts.append("name={!r}".format(self.name))
        return "PythonWorkerConfig({})".format(", ".join(parts))


class DockerWorkerConfig(WorkerConfig):
    """PySyft's image from a Dockerfile. Kept so that PySyft code reads; submitting one raises:
    this server has no Docker (use ``sy.PythonWorkerConfig``)."""

    def __init__(self, dockerfile=None, file_name=None, description=None, **kwargs):
        self.dockerfile = dockerfile
        self.file_name = file_name
        self.description = description

    def to_wire(self):
        raise ValueError("sy.DockerWorkerConfig: " + _NO_DOCKER)


class PrebuiltWorkerConfig(WorkerConfig):
    """PySyft's prebuilt container image by tag. Kept so that PySyft code reads; submitting one
    raises: this server has no Docker (use ``sy.PythonWorkerConfig``)."""

    def __init__(self, tag=None, description=None, **kwargs):
        self.tag = tag
        self.description = description

    def to_wire(self):
        raise ValueError("sy.PrebuiltWorkerConfig: " + _NO_DOCKER)


# Images ------------------------------------------------------------------------------------------


class WorkerImage:
    """A worker image as the server last described it: ``id``, ``name``, ``kind`` ("path" or
    "requirements"), ``python``, ``path``, ``requirements``, ``find_links``, ``index_url``,
    ``imports``, ``status`` ("ready", "submitted" or "failed"), ``error``, ``packages``
    (["name==version", ...]), ``packages_hash``, ``python_version``, ``created_at`` (ms),
    ``created_by``. PySyft's ``image_identifier`` (its name) and ``config`` too.
    """

    def __init__(self, data, client):
        self._client = client
        self._load(data)

    def _load(self, data):
        data = dict(data or {})
        self._data = data
        self.id = data.get("id")
        self.name = data.get("name")
        self.kind = data.get("kind")
        self.python = data.get("python")
        self.path = data.get("path")
        self.requirements = list(data.get("requirements") or [])
        self.find_links = data.get("find_links")
        self.index_url = data.get("index_url")
        self.imports = list(data.get("imports") or [])
        self.status = data.get("status")
        self.error = data.get("error")
        self.packages = list(data.get("packages") or [])
        self.packages_hash = data.get("packages_hash")
        self.python_version = data.get("python_version")
        self.created_at = data.get("created_at")
        self.created_by = data.get("created_by")

    def to_dict(self):
        return dict(self._data)

    # PySyft's names.
    @property
    def image_identifier(self):
        return self.name

    @property
    def config(self):
        return PythonWorkerConfig._from_image(self._data)

    @property
    def is_built(self):
        return self.status == "ready"

    @property
    def is_prebuilt(self):
        return self.kind == "path"

    def package_versions(self):
        """``{name: version}`` of the packages the environment holds."""
        out = {}
        for item in self.packages:
            name, _, version = str(item).partition("==")
            out[name] = version
        return out

    def _call(self, route, **kwargs):
        return self._client._transport.call(route, path_params={"id": self.id}, **kwargs)

    def refresh(self):
        self._load(self._call("worker_image_get"))
        return self

    def build(self, tag=None, **kwargs):
        """Builds the environment (see ``client.worker_images.build``)."""
        return WorkerImageCollection(self._client).build(self.id, tag=tag, **kwargs)

    def remove(self):
        return WorkerImageCollection(self._client).remove(self.id)

    def _rows(self):
        rows = [
            ("Id", self.id),
            ("Name", self.name),
            ("Status", self.status),
            ("Kind", self.kind),
            ("Python", "{} ({})".format(self.python, self.python_version)
             if self.python_version else self.python),
        ]
        if self.path:
            rows.append(("Path", self.path))
        if self.kind == "requirements":
            rows.append(("Requirements", ", ".join(self.requirements)))
            if self.find_links:
                rows.append(("Find links", self.find_links))
            if self.index_url:
                rows.append(("Index URL", self.index_url))
        rows.append(("Imports checked", ", ".join(self.imports)))
        if self.error:
            rows.append(("Error", self.error))
        rows += [
            ("Packages", "{} ({})".format(len(self.packages), ", ".join(self.packages))
             if self.packages else "0"),
            ("Packages hash", self.packages_hash),
            ("Created", "{} by {}".format(_when(self.created_at), self.created_by)
             if self.created_by else _when(self.created_at)),
        ]
        return rows

    def __repr__(self):
        return _display.text_fields("WorkerImage", self._rows())

    def _repr_html_(self):
        return _display.html_fields("WorkerImage: {}".format(self.name), self._rows())

    def _repr_markdown_(self):
        return _display.md_fields("WorkerImage: {}".format(self.name), self._rows())


class WorkerImageList(TableList):
    """Worker images that render as a table; index by position or by id."""

    _noun = "worker image"
    _title = "Worker images"
    _columns = ("id", "name", "status", "kind", "python_version", "packages", "packages_hash")

    def _row(self, image):
        return [
            image.id,
            image.name,
            image.status,
            image.kind,
            image.python_version,
            len(image.packages),
            (image.packages_hash or "")[:12],
        ]


class WorkerImageCollection(ListingMixin):
    """``client.worker_images`` (and ``client.api.services.worker_image``): the server's Python
    environments, oldest first ("default", the server's own Python, first), read anew on each
    use. List-like; ``get``, ``get_all``, ``submit``, ``build``, ``remove``.
    """

    def get_all(self):
        items = self._unpaged("worker_images_list")
        return WorkerImageList(WorkerImage(item, self._client) for item in items)

    def get(self, uid):
        """One image by id; NotFoundError when there is none."""
        data = self._transport().call(
            "worker_image_get", path_params={"id": _ident(uid, "image id")}
        )
        return WorkerImage(data, self._client)

    get_by_uid = get

    def get_by_name(self, name):
        """The oldest image called ``name``; NotFoundError-like KeyError when none is."""
        for image in self.get_all():
            if image.name == name:
                return image
        raise KeyError("no worker image named {!r}".format(name))

    def submit(self, worker_config, name=None):
        """Registers an environment (data owners). A path or interpreter is checked at once
        (status "ready", or ``InvalidArgumentError`` saying why); a requirements list is
        "submitted" until ``build``. Returns ``SyftSuccess`` whose ``value`` is the image.
        """
        if isinstance(worker_config, (DockerWorkerConfig, PrebuiltWorkerConfig)):
            raise ValueError(type(worker_config).__name__ + ": " + _NO_DOCKER)
        if isinstance(worker_config, dict):
            worker_config = PythonWorkerConfig(**worker_config)
        if not isinstance(worker_config, PythonWorkerConfig):
            raise TypeError(
                "worker_config must be a sy.PythonWorkerConfig, got {!r}".format(worker_config)
            )
        body = {
            "name": name or worker_config.default_name(),
            "worker_config": worker_config.to_wire(),
        }
        data = self._transport().call("worker_images_create", body=body, timeout=SLOW_CALL_SECONDS)
        image = WorkerImage(data, self._client)
        if image.status == "ready":
            text = (
                "Worker image {!r} ({}) submitted successfully: ready, {} packages, "
                "Python {}.".format(image.name, image.id, len(image.packages), image.python_version)
            )
        else:
            text = "Worker image {!r} ({}) submitted successfully: build it with " \
                "client.worker_images.build(image_uid={!r}).".format(image.name, image.id, image.id)
        return SyftSuccess(text, value=image)

    def build(self, image_uid, tag=None, registry_uid=None, pull_image=None, force_build=None):
        """Builds an image's environment (data owners): a virtualenv from its requirements, or
        for a path image a new check of what it holds. ``tag`` is PySyft's container tag and is
        not used (an image's name is set at submit). Returns ``SyftSuccess`` whose ``value`` is
        the image; ``InvalidArgumentError`` with pip's last lines when the build fails.
        """
        if registry_uid is not None:
            raise ValueError("registry_uid: " + _NO_DOCKER)
        image_id = _ident(image_uid, "image_uid")
        data = self._transport().call(
            "worker_image_build", path_params={"id": image_id}, body={},
            timeout=SLOW_CALL_SECONDS,
        )
        image = WorkerImage(data, self._client)
        return SyftSuccess(
            "Worker image {!r} ({}) built successfully: {} packages, Python {}.".format(
                image.name, image.id, len(image.packages), image.python_version
            ),
            value=image,
        )

    def remove(self, uid):
        """Removes an image (data owners); ``AlreadyExistsError``-style conflict while a pool
        uses it; the "default" image stays."""
        image_id = _ident(uid, "uid")
        self._transport().call("worker_image_delete", path_params={"id": image_id})
        return SyftSuccess("Worker image {} removed.".format(image_id))

    delete = remove


# Pools -------------------------------------------------------------------------------------------


class SyftWorker:
    """One warm sandbox slot of a pool (PySyft's ``SyftWorker``, as far as it applies): ``name``
    ("POOL-1", "POOL-2", ...), ``worker_pool_name``, ``status`` ("ready" or "starting"),
    ``error``, ``image`` (the pool's ``WorkerImage``). Slots are not processes of their own to
    the client: ``logs`` is empty (a job's output is ``job.logs()``)."""

    def __init__(self, pool, index, ready):
        self._pool = pool
        self.name = "{}-{}".format(pool.name, index + 1)
        self.id = self.name
        self.worker_pool_name = pool.name
        self.status = "ready" if ready else "starting"
        self.healthcheck = "healthy" if ready else "unhealthy"
        self.error = None

    @property
    def image(self):
        return self._pool.image

    @property
    def logs(self):
        return ""

    def __repr__(self):
        return "SyftWorker({}, {})".format(self.name, self.status)


class ContainerSpawnStatus:
    """What launching made of one worker (PySyft's ``ContainerSpawnStatus``): ``worker_name``,
    ``worker`` and ``error`` (None: it is warm)."""

    def __init__(self, worker):
        self.worker = worker
        self.worker_name = worker.name
        self.error = None if worker.status == "ready" else "not warm yet"

    def __repr__(self):
        return "ContainerSpawnStatus({}, error={!r})".format(self.worker_name, self.error)


class LaunchResult(list):
    """What ``launch`` answers: PySyft's list of ``ContainerSpawnStatus``, one per worker, that
    also reads as the launched ``WorkerPool`` (``result.name``, ``result.pool``)."""

    def __init__(self, pool):
        super().__init__(ContainerSpawnStatus(w) for w in pool.workers)
        self.pool = pool

    def __getattr__(self, name):
        if name.startswith("_") or name == "pool":
            raise AttributeError(name)
        return getattr(self.pool, name)

    def __repr__(self):
        return repr(self.pool)

    def _repr_html_(self):
        return self.pool._repr_html_()

    def _repr_markdown_(self):
        return self.pool._repr_markdown_()


class WorkerPool:
    """A worker pool as the server last described it: ``name``, ``image_id``, ``image_name``,
    ``num_workers``, ``workers_ready``, ``memory_bytes``, ``cpu_seconds``, ``timeout_seconds``,
    ``packages_hash``, ``status`` ("ready", "starting" after a restart, or "failed"), ``error``, ``created_at`` (ms),
    ``created_by``. ``id`` is its name (pools are named); PySyft's ``max_count`` is
    ``num_workers``, ``image`` the ``WorkerImage``.
    """

    def __init__(self, data, client):
        self._client = client
        self._load(data)

    def _load(self, data):
        data = dict(data or {})
        self._data = data
        self.name = data.get("name")
        self.id = data.get("id") or self.name
        self.image_id = data.get("image_id")
        self.image_name = data.get("image_name")
        self.num_workers = data.get("num_workers")
        self.workers_ready = data.get("workers_ready")
        self.memory_bytes = data.get("memory_bytes")
        self.cpu_seconds = data.get("cpu_seconds")
        self.timeout_seconds = data.get("timeout_seconds")
        self.packages_hash = data.get("packages_hash")
        self.status = data.get("status")
        self.error = data.get("error")
        self.created_at = data.get("created_at")
        self.created_by = data.get("created_by")

    def to_dict(self):
        return dict(self._data)

    @property
    def max_count(self):
        return self.num_workers

    @property
    def workers(self):
        """One ``SyftWorker`` per slot (the first ``workers_ready`` of them warm)."""
        ready = self.workers_ready or 0
        return [SyftWorker(self, i, i < ready) for i in range(self.num_workers or 0)]

    worker_list = workers

    @property
    def healthy_workers(self):
        return [w for w in self.workers if w.status == "ready"]

    @property
    def image(self):
        """The pool's ``WorkerImage`` (read from the server)."""
        if not self.image_id:
            return None
        return WorkerImageCollection(self._client).get(self.image_id)

    def refresh(self):
        self._load(self._client._transport.call(
            "worker_pool_get", path_params={"name": self.name}))
        return self

    def scale(self, number):
        return WorkerPoolCollection(self._client).scale(number=number, pool_name=self.name)

    def delete(self):
        return WorkerPoolCollection(self._client).delete(pool_name=self.name)

    def _limits(self):
        parts = []
        if self.memory_bytes:
            parts.append("{} MiB memory".format(self.memory_bytes // (1 << 20)))
        if self.cpu_seconds:
            parts.append("{} s CPU".format(self.cpu_seconds))
        if self.timeout_seconds:
            parts.append("{} s timeout".format(self.timeout_seconds))
        return ", ".join(parts) or "the server's"

    def _rows(self):
        rows = [
            ("Name", self.name),
            ("Status", self.status),
            ("Image", "{} ({})".format(self.image_name, self.image_id)),
            ("Workers", "{} of {} ready".format(self.workers_ready, self.num_workers)),
            ("Limits", self._limits()),
            ("Packages hash", self.packages_hash),
        ]
        if self.error:
            rows.append(("Error", self.error))
        rows.append(("Created", "{} by {}".format(_when(self.created_at), self.created_by)
                     if self.created_by else _when(self.created_at)))
        return rows

    def __repr__(self):
        return _display.text_fields("WorkerPool", self._rows())

    def _repr_html_(self):
        return _display.html_fields("WorkerPool: {}".format(self.name), self._rows())

    def _repr_markdown_(self):
        return _display.md_fields("WorkerPool: {}".format(self.name), self._rows())


class WorkerPoolList(TableList):
    """Worker pools that render as a table; index by position or by name."""

    _noun = "worker pool"
    _title = "Worker pools"
    _columns = ("name", "image", "status", "workers", "memory_bytes", "cpu_seconds",
                "timeout_seconds", "packages_hash")

    def _row(self, pool):
        return [
            pool.name,
            pool.image_name,
            pool.status,
            "{}/{}".format(pool.workers_ready, pool.num_workers),
            pool.memory_bytes,
            pool.cpu_seconds,
            pool.timeout_seconds,
            (pool.packages_hash or "")[:12],
        ]


def _pool_name(pool_name, pool_id):
    if pool_name is not None and pool_id is not None:
        if _ident(pool_name, "pool_name") != _ident(pool_id, "pool_id"):
            raise ValueError("give pool_name or pool_id, not two different pools")
    value = pool_name if pool_name is not None else pool_id
    if value is None:
        raise TypeError("needs pool_name=...")
    return _ident(value, "pool_name")


class WorkerPoolCollection(ListingMixin):
    """``client.worker_pools`` (and ``client.api.services.worker_pool``): the server's pools,
    "default" first, read anew on each use. List-like; ``get_all``, ``get_by_name``,
    ``launch``, ``scale``, ``delete``.
    """

    def get_all(self):
        items = self._unpaged("worker_pools_list")
        return WorkerPoolList(WorkerPool(item, self._client) for item in items)

    def get(self, pool_name):
        """One pool by name; NotFoundError when there is none."""
        data = self._transport().call(
            "worker_pool_get", path_params={"name": _ident(pool_name, "pool_name")}
        )
        return WorkerPool(data, self._client)

    def get_by_name(self, pool_name):
        return self.get(pool_name)

    get_by_uid = get

    def launch(
        self,
        pool_name=None,
        image_uid=None,
        num_workers=1,
        memory_bytes=None,
        cpu_seconds=None,
        timeout_seconds=None,
        registry_username=None,
        registry_password=None,
        pod_annotations=None,
        pod_labels=None,
        name=None,
    ):
        """Starts a pool of ``num_workers`` (1 to 64) warm sandbox slots running the image
        ``image_uid`` (data owners); answers once the slots are warm, with the ``WorkerPool``.
        ``memory_bytes``, ``cpu_seconds`` and ``timeout_seconds`` limit each job in it (default:
        the server's limits). PySyft's registry credentials are refused (no registry here); its
        Kubernetes pod labels and annotations are not used.

        Answers, as PySyft does, a list with one ``ContainerSpawnStatus`` per worker; the list
        also reads as the ``WorkerPool`` (``result.name``, ``result.num_workers``,
        ``result.pool``). ``name=`` is an older PySyft spelling of ``pool_name=``.
        """
        if pool_name is None:
            pool_name = name
        if pool_name is None or image_uid is None:
            raise TypeError("launch needs pool_name=... and image_uid=...")
        if registry_username is not None or registry_password is not None:
            raise ValueError("registry_username/registry_password: " + _NO_DOCKER)
        if pod_annotations or pod_labels:
            warnings.warn(
                DatasiteWarning("pod_annotations and pod_labels are not used: a pool is warm "
                                "sandbox slots in the server, not Kubernetes pods"),
                stacklevel=2,
            )
        body = {
            "name": _ident(pool_name, "pool_name"),
            "image_id": _ident(image_uid, "image_uid"),
            "num_workers": _whole(num_workers, "num_workers", 1, MAX_WORKERS),
        }
        for key, value in (("memory_bytes", memory_bytes), ("cpu_seconds", cpu_seconds),
                           ("timeout_seconds", timeout_seconds)):
            if value is not None:
                body[key] = _whole(value, key, 1)
        data = self._transport().call("worker_pools_create", body=body, timeout=SLOW_CALL_SECONDS)
        return LaunchResult(WorkerPool(data, self._client))

    create = launch

    def scale(self, number, pool_name=None, pool_id=None):
        """Sets a pool's number of warm slots (data owners). Returns ``SyftSuccess`` whose
        ``value`` is the pool."""
        name = _pool_name(pool_name, pool_id)
        body = {"num_workers": _whole(number, "number", 1, MAX_WORKERS)}
        data = self._transport().call(
            "worker_pool_scale", path_params={"name": name}, body=body, timeout=SLOW_CALL_SECONDS
        )
        pool = WorkerPool(data, self._client)
        return SyftSuccess(
            "Worker pool {!r} scaled to {} workers ({} ready).".format(
                pool.name, pool.num_workers, pool.workers_ready
            ),
            value=pool,
        )

    def delete(self, pool_name=None, pool_id=None):
        """Deletes a pool (data owners); "default" stays."""
        name = _pool_name(pool_name, pool_id)
        self._transport().call("worker_pool_delete", path_params={"name": name})
        return SyftSuccess("Worker pool {!r} deleted.".format(name))
