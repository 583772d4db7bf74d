"""Logging in, and the client object: ``sy.login``, ``sy.login_as_guest``, ``sy.register``."""

import getpass

from . import _api, _display, _warn, audit as _audit, code as _code, datasets as _datasets, jobs as _jobs
from . import grants as _grants, notifications as _notifications, requests as _requests
from . import users as _users
from ._http import Transport, base_url_for
from ._routes import API_PREFIX
from .errors import SyftSuccess
from .settings import Settings
from .users import Account, User, UserCollection, _stdin_is_tty

DEFAULT_PASSWORD_MESSAGE = (
    "You are using a default password. Please change the password using "
    "`[your_client].account.set_password([new_password])`."
)


def _title(word):
    return (word or "").replace("_", " ").title()


class DatasiteClient:
    """A session with one server: a bearer token, and ``users``, ``account``, ``settings``."""

    def __init__(self, base_url, token, user, metadata, default_password=False, transport=None):
        self._transport = transport or Transport(base_url)
        self._transport.token = token
        self._user = dict(user or {})
        self._metadata = dict(metadata or {})
        self._default_password = bool(default_password)
        self.url = self._transport.base_url
        self._api = None

    # Identity ------------------------------------------------------------------------------------

    @property
    def api_url(self):
        return self.url + API_PREFIX

    @property
    def token(self):
        """The bearer token of this session (None after logout)."""
        return self._transport.token

    @property
    def metadata(self):
        return dict(self._metadata)

    @property
    def name(self):
        return self._metadata.get("name")

    @property
    def is_guest(self):
        return (self._user.get("role") == "guest") and self._user.get("id") is None

    @property
    def logged_in(self):
        return self._transport.token is not None

    def _refresh_metadata(self):
        self._metadata = self._transport.call("metadata", authenticated=False) or self._metadata

    def _server_label(self):
        side = _title(self._metadata.get("server_side_type") or "high")
        kind = _title(self._metadata.get("server_type") or "datasite")
        return "<{}: {} side {}>".format(self.name, side, kind)

    def _user_label(self):
        if self.is_guest:
            return "GUEST"
        return "<{}>".format(self._user.get("email"))

    def __repr__(self):
        return "Logged into {} as {}".format(self._server_label(), self._user_label())

    def _repr_markdown_(self):
        """The "Logged into" line, the default-password warning, the welcome and the URL."""
        parts = [_display.md_esc(repr(self)), ""]
        if self._default_password:
            parts += ["**SyftWarning:**  ", DEFAULT_PASSWORD_MESSAGE, ""]
        try:
            markdown = (self._transport.call("settings_welcome") or {}).get("markdown") or ""
        except Exception:  # A display hook must not raise; the welcome text is optional.
            markdown = ""
        meta = self._metadata
        parts += [
            _display.md_esc_block(markdown)
            if markdown
            else "### Welcome to " + _display.md_esc(self.name),
            "",
        ]
        parts.append("**URL:** " + _display.md_esc(self.url) + "  ")
        if "Server Type:" not in markdown:
            parts += [
                "**Server Description:** " + _display.md_esc(meta.get("description")) + "  ",
                "**Server Type:** " + _display.md_esc(_title(meta.get("server_type"))) + "  ",
                "**Server Side Type:** "
                + _display.md_esc(_title(meta.get("server_side_type")))
                + " Side  ",
                "**Datasite Version:** " + _display.md_esc(meta.get("version")) + "  ",
            ]
        return "\n".join(parts) + "\n"

    # Accessors -----------------------------------------------------------------------------------

    @property
    def users(self):
        return UserCollection(self)

    @property
    def account(self):
        data = self._transport.call("account_get")
        self._user = dict(data or {})
        return Account(data, self)

    @property
    def me(self):
        return self.account

    @property
    def settings(self):
        return Settings(self._transport.call("settings_get"), self)

    @property
    def notifications(self):
        """The caller's notifications, oldest first (``mark_read()``, ``linked_obj.resolve``)."""
        return _notifications.NotificationCollection(self)

    def forgot_password(self, email):
        """Asks for a password reset token by mail. The answer is the same whether or not an
        account has this email."""
        data = self._transport.call(
            "auth_forgot_password", body={"email": email}, authenticated=False
        )
        return SyftSuccess((data or {}).get("message") or "Requested")

    def reset_password(self, token, new_password):
        """Sets a new password with a reset token; every session of the account ends."""
        data = self._transport.call(
            "auth_reset_password",
            body={"token": token, "new_password": new_password},
            authenticated=False,
        )
        return SyftSuccess((data or {}).get("message") or "Password updated")

    @property
    def datasets(self):
        """The server's datasets: list-like, with ``search``, ``get``, ``get_all``, ``delete``."""
        return _datasets.DatasetCollection(self)

    @property
    def code(self):
        """Your code on the server (data owners and admins: everyone's): list-like, with
        ``request_code_execution``, ``submit``, ``history``; ``client.code.NAME(...)`` runs the
        newest version of NAME.
        """
        return _code.CodeCollection(self)

    @property
    def code_history(self):
        """The versions of each function: ``client.code_history["mean_age"]``."""
        return _code.CodeHistories(self)

    @property
    def code_histories(self):
        """Every function's versions you may see (data owners and admins: everyone's), by name;
        PySyft's ``client.code_histories``; ``client.code_histories["janet@example.org"]`` is one
        user's (``.mean_age``: that function's versions).
        """
        return _code.AllCodeHistories(self)

    @property
    def api(self):
        """``client.api.services.<service>.<method>(...)``: every server operation, built from
        the server's description of its routes on first use (``client.api.refresh()`` reads it
        again).
        """
        if self._api is None:
            document = self._transport.call("openapi", authenticated=False)
            self._api = _api.SyftAPI(self, document)
        return self._api

    @property
    def custom_api(self):
        """Custom API endpoints (PySyft's ``client.custom_api``): ``add``, ``update``,
        ``delete``, ``api_endpoints``; the endpoints themselves as attributes
        (``client.custom_api.bigquery.query(...)``), as in ``client.api.services``."""
        from .api_endpoints import APIEndpointService

        return APIEndpointService(self)

    @property
    def data_subject_registry(self):
        """The server-wide data subject registry (PySyft's): ``add_data_subject``, ``get_all``."""
        from ._pysyft import DataSubjectRegistry

        return DataSubjectRegistry(self)

    def refresh(self):
        """Reads the server's metadata and its description of its routes again (PySyft's
        ``client.refresh()``), so operations the server gained since appear in ``client.api``.
        """
        self._refresh_metadata()
        if self._api is None:
            self.api
        else:
            self._api.refresh()

    @property
    def services(self):
        """PySyft's ``client.services``: the same tree as ``client.api.services``."""
        return self.api.services

    @property
    def requests(self):
        """Code requests: a data scientist's own, everyone's for data owners and admins."""
        return _requests.RequestCollection(self)

    @property
    def dp(self):
        """Differential privacy: ``client.dp.budget`` (spent and left per asset), and for data
        owners ``raise_budget`` and ``reset_budget``. Queries are on assets: ``asset.dp``."""
        from .dp import DPService

        return DPService(self)

    @property
    def grants(self):
        """Code approved for repeated use (``request.approve(repeat=sy.RateLimit(...))``): every
        grant for data owners and admins, those that name you for a data scientist; newest
        first. List-like, with ``get``, ``active``, ``revoke``."""
        return _grants.GrantCollection(self)

    @property
    def projects(self):
        """Projects you see (data owners and admins: all), oldest first: index, iterate,
        ``search(name=)``, ``get_by_uid(id)``."""
        from .projects import ProjectCollection

        return ProjectCollection(self)

    def get_project(self, name=None, uid=None):
        """One project, by ``name`` (the oldest you see of that name) or by ``uid``."""
        if (name is None) == (uid is None):
            raise ValueError("get_project needs name=... or uid=...")
        if uid is not None:
            return self.projects.get_by_uid(uid)
        return self.projects.get_by_name(name)

    @property
    def audit(self):
        """The hash-chained audit log (data owners and admins): ``page``, ``all``, ``export``,
        ``verify``, ``head``."""
        return _audit.AuditLog(self)

    @property
    def sync(self):
        """Sync with the other side of a low/high pair (admins): ``identity``, ``add_peer``,
        ``peers``, ``export(path, peer=)``, ``load(path)``; see ``datasite.syncing``."""
        from .syncing import SyncAPI

        return SyncAPI(self)

    @property
    def worker_images(self):
        """The server's Python environments (PySyft's worker images), oldest first: list-like,
        with ``get``, ``submit(worker_config=sy.PythonWorkerConfig(...))``, ``build``,
        ``remove``; see ``datasite.worker_pools``."""
        from .worker_pools import WorkerImageCollection

        return WorkerImageCollection(self)

    @property
    def images(self):
        """PySyft's other name of ``worker_images``."""
        return self.worker_images

    @property
    def worker_pools(self):
        """The server's worker pools ("default" first): list-like, with ``get_by_name``,
        ``launch``, ``scale``, ``delete``; see ``datasite.worker_pools``."""
        from .worker_pools import WorkerPoolCollection

        return WorkerPoolCollection(self)

    @property
    def jobs(self):
        """Runs of code on the server that you may see, oldest first."""
        return _jobs.JobCollection(self)

    def upload_dataset(self, dataset):
        """Uploads a ``sy.Dataset`` (data owners and admins): each asset's data and mock are
        streamed to the server, then the dataset appears in one step. Returns ``SyftSuccess``
        whose ``value`` is the uploaded dataset.
        """
        return _datasets.upload_dataset(self, dataset)

    def upload_files(self, paths):
        """Uploads files (data owners and admins; PySyft's ``client.upload_files``): a path, a
        list of paths or a folder (its files). Answers an ``ActionObject`` of a list with one
        ``BlobFile`` per file: ``[0].read()`` its bytes, ``.iter_lines()`` its lines. Only you can
        read them; the server's blob size limits apply, and blobs no dataset uses are deleted
        after 24 hours.
        """
        from ._files import upload_files

        return upload_files(self, paths)

    def welcome_show(self):
        return self.settings.welcome_show()

    # Session -------------------------------------------------------------------------------------

    def register(
        self, name, email, password, password_verify=None, institution=None, website=None
    ):
        """Registers a user with this session's token: data owners and admins may always do so."""
        return _register(
            self._transport,
            name,
            email,
            password,
            password_verify,
            institution,
            website,
            authenticated=True,
            client=self,
        )

    def login(self, email, password=None):
        """A new client for the same server logged in as another user."""
        return login(url=self.url, email=email, password=password)

    def login_as_guest(self):
        return login_as_guest(url=self.url)

    def logout(self):
        """Ends the session on the server; the token stops working."""
        data = self._transport.call("auth_logout") or {}
        self._transport.token = None
        return SyftSuccess(data.get("message") or "Logged out")


def _register(
    transport,
    name,
    email,
    password,
    password_verify,
    institution,
    website,
    authenticated,
    client=None,
):
    body = {
        "name": name,
        "email": email,
        "password": password,
        "password_verify": password if password_verify is None else password_verify,
    }
    if institution is not None:
        body["institution"] = institution
    if website is not None:
        body["website"] = website
    data = transport.call("auth_register", body=body, authenticated=authenticated) or {}
    _users.warn_about_password(data)
    user = data.get("user")
    value = User(user, client) if (user and client is not None) else user
    return SyftSuccess(
        data.get("message") or "User '{}' successfully registered!".format(name), value=value
    )


def _announce_default_password():
    # One warning, shown once and attributed to the user's line (the client's display repeats it
    # in Jupyter); no extra print, which showed it twice.
    _warn.warn(DEFAULT_PASSWORD_MESSAGE)


def _server_metadata(transport):
    """The server's metadata; ``IncompatibleServerError`` when its API version does not fit."""
    from . import __version__

    metadata = transport.call("metadata", authenticated=False)
    _api.check_server_version(metadata, transport.base_url, __version__)
    return metadata


def login(url="localhost", port=8080, email=None, password=None, verify=True):
    """Logs in and returns a ``DatasiteClient``.

    ``url`` may be "localhost", "http://host" or "http(s)://host:port". Over https the server's
    certificate and host name are checked: ``verify`` is True (the system's CA certificates, or
    ``SSL_CERT_FILE``) or the path of a PEM CA bundle to trust instead. Without ``password`` it is
    asked for with getpass when standard input is a terminal. When the root admin still has the
    default password, a ``DatasiteWarning`` is issued once, attributed to the caller's line.
    ``IncompatibleServerError`` when the server speaks another major version of the HTTP API.
    """
    if not email:
        raise ValueError("login needs email= (use sy.login_as_guest for a guest session)")
    if password is None:
        if not _stdin_is_tty():
            raise ValueError("login needs password=")
        password = getpass.getpass("Password: ")
    transport = Transport(base_url_for(url, port), verify=verify)
    metadata = _server_metadata(transport)
    data = transport.call(
        "auth_login", body={"email": email, "password": password}, authenticated=False
    )
    client = DatasiteClient(
        transport.base_url,
        data.get("token"),
        data.get("user"),
        metadata,
        default_password=data.get("default_password", False),
        transport=transport,
    )
    if client._default_password:
        _announce_default_password()
    return client


def login_as_guest(url="localhost", port=8080, verify=True):
    """A guest session: reads what guests may read (settings, metadata), nothing else. ``verify``
    as for ``login``."""
    transport = Transport(base_url_for(url, port), verify=verify)
    metadata = _server_metadata(transport)
    data = transport.call("auth_guest", body={}, authenticated=False)
    return DatasiteClient(
        transport.base_url, data.get("token"), data.get("user"), metadata, transport=transport
    )


def register(
    url="localhost",
    port=8080,
    name=None,
    email=None,
    password=None,
    password_verify=None,
    institution=None,
    website=None,
    verify=True,
):
    """Self-registration on a server with signup enabled; returns ``SyftSuccess``. ``verify`` as
    for ``login``."""
    if not (name and email and password):
        raise ValueError("register needs name=, email= and password=")
    transport = Transport(base_url_for(url, port), verify=verify)
    return _register(
        transport,
        name,
        email,
        password,
        password_verify,
        institution,
        website,
        authenticated=False,
    )
