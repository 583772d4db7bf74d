"""``client.users`` and ``client.account``: user objects and the calls that manage them."""

import getpass
import sys
import warnings

from . import _display
from .enums import ServiceRole, role_from_server, role_to_server
from .errors import DatasiteWarning, SyftSuccess


def warn_about_password(answer):
    """Shows the server's warning about a weak password it accepted (a development server's
    leniency), as a ``DatasiteWarning`` and on stdout; returns ``answer``.
    """
    warning = (answer or {}).get("warning") if isinstance(answer, dict) else None
    if warning:
        warnings.warn(DatasiteWarning("Weak password: " + warning), stacklevel=3)
        print("SyftWarning: weak password: " + warning)
        sys.stdout.flush()
    return answer

_COLUMNS = ("id", "email", "name", "role", "institution", "website")
_FIELDS = (
    "id",
    "email",
    "name",
    "role",
    "institution",
    "website",
    "is_root",
    "created_at",
    "updated_at",
)


def _role_label(role):
    return role.name if isinstance(role, ServiceRole) else role


class User:
    """One user as the server last described it. ``update``/``delete`` act on the server."""

    def __init__(self, data, client):
        self._client = client
        self._load(data)

    def _load(self, data):
        data = dict(data or {})
        self._data = data
        for key in _FIELDS:
            value = data.get(key)
            if key == "role" and value is not None:
                value = role_from_server(value)
            setattr(self, key, value)

    def to_dict(self):
        return dict(self._data)

    def __eq__(self, other):
        if isinstance(other, User):
            return self.id is not None and self.id == other.id
        return NotImplemented

    def __hash__(self):
        return hash(self.id)

    def update(self, **fields):
        """Changes this user's fields (name, email, institution, website, role, password) on the
        server.
        """
        if self.id is None:
            raise ValueError("this user has no id (a guest session); nothing to update")
        data = self._client.users._update_raw(self.id, fields)
        self._load(data)
        return SyftSuccess("User details successfully updated.", value=self)

    def set_password(self, new_password, confirm=True):
        """Sets another user's password (admins only). For your own, use
        ``client.account.set_password``. ``confirm`` is PySyft's (it asks you to type the password
        again); an admin setting it here gives it as an argument, so nothing is asked.
        """
        return self.update(password=new_password)

    def set_email(self, email):
        """Changes this user's email (admins, or the user themself as the server allows)."""
        return self.update(email=email)

    def set_name(self, name):
        return self.update(name=name)

    def set_institution(self, institution):
        return self.update(institution=institution)

    def set_website(self, website):
        return self.update(website=website)

    def delete(self):
        """Deletes this user on the server."""
        return self._client.users.delete(self.id)

    def _rows(self):
        return [
            (
                key.replace("_", " ").capitalize() if key != "id" else "Id",
                _role_label(getattr(self, key)) if key == "role" else getattr(self, key),
            )
            for key in _FIELDS
        ]

    def __repr__(self):
        return _display.text_fields("User", self._rows())

    def _repr_html_(self):
        return _display.html_fields("User", self._rows())

    def _repr_markdown_(self):
        return _display.md_fields("User", self._rows())


class Quota:
    """Your own use of the server (``client.account.quota``): the bytes your jobs' results and logs,
    your submitted code and your projects and project messages keep (``used_bytes`` is their sum),
    your queued or running jobs, your code versions, projects and project messages, and their
    limits (``None``: not limited, for data owners and admins). Mock runs past your newest
    ``mock_results_kept`` lose their result and logs; submitted code, projects and messages are
    kept. Only the outputs you may read are counted here: held results and owner-only logs count
    against ``quota_bytes`` without being shown.
    """

    _FIELDS = (
        "results_bytes",
        "logs_bytes",
        "code_bytes",
        "project_bytes",
        "used_bytes",
        "quota_bytes",
        "queued_jobs",
        "max_queued_jobs",
        "code_versions",
        "max_code_versions",
        "projects",
        "max_projects",
        "project_messages",
        "max_project_messages",
        "mock_results_kept",
    )

    def __init__(self, data):
        data = dict(data or {})
        self._data = data
        for key in self._FIELDS:
            setattr(self, key, data.get(key))

    def to_dict(self):
        return dict(self._data)

    def _rows(self):
        def limit(value):
            return "unlimited" if value is None else value

        return [
            ("Results bytes", self.results_bytes),
            ("Logs bytes", self.logs_bytes),
            ("Code bytes", self.code_bytes),
            ("Project bytes", self.project_bytes),
            ("Used bytes", "{} of {}".format(self.used_bytes, limit(self.quota_bytes))),
            ("Queued jobs", "{} of {}".format(self.queued_jobs, limit(self.max_queued_jobs))),
            ("Code versions", "{} of {}".format(self.code_versions, limit(self.max_code_versions))),
            ("Projects", "{} of {}".format(self.projects, limit(self.max_projects))),
            (
                "Project messages",
                "{} of {}".format(self.project_messages, limit(self.max_project_messages)),
            ),
            ("Mock results kept", self.mock_results_kept),
        ]

    def __repr__(self):
        return _display.text_fields("Quota", self._rows())

    def _repr_html_(self):
        return _display.html_fields("Quota", self._rows())

    def _repr_markdown_(self):
        return _display.md_fields("Quota", self._rows())


class Account(User):
    """The logged-in user (``client.account``)."""

    @property
    def quota(self):
        """Your results, logs and queued jobs against this server's limits (a ``Quota``)."""
        return Quota(self._client._transport.call("account_quota"))

    def update(self, **fields):
        """Changes your own name, institution or website (and email, for data owners and admins:
        data scientists ask one of them, so that no answer tells whether an address is taken)."""
        data = self._client._transport.call("account_update", body=fields)
        self._load(data)
        return SyftSuccess("User details successfully updated.", value=self)

    def set_password(self, new_password=None, old_password=None, confirm=True, old=None):
        """Changes your password. The server needs the current one too.

        Without ``old_password`` it is asked for with getpass when standard input is a terminal
        or in a Jupyter kernel;
        otherwise a ValueError says how to pass it. Without ``new_password`` it is asked for the
        same way (twice when ``confirm``). Your other sessions are logged out by the server.
        """
        if old_password is None:
            old_password = old
        interactive = _stdin_is_tty()
        if new_password is None:
            if not interactive:
                raise ValueError(
                    "set_password needs the new password: "
                    "client.account.set_password(new_password, old_password=...)"
                )
            new_password = getpass.getpass("New password: ")
            if confirm and getpass.getpass("Confirm new password: ") != new_password:
                raise ValueError("the two new passwords differ; nothing was changed")
        if old_password is None:
            if not interactive:
                raise ValueError(
                    "the server needs your current password to change it: "
                    "client.account.set_password(new_password, old_password=...)"
                )
            old_password = getpass.getpass("Current password: ")
        warn_about_password(
            self._client._transport.call(
                "account_password",
                body={"old_password": old_password, "new_password": new_password},
            )
        )
        self._client._default_password = False
        return SyftSuccess(
            "Successfully updated password for user {} with email {}.".format(
                self.name, self.email
            )
        )

    def __repr__(self):
        return _display.text_fields("Account", self._rows())


def _in_jupyter_kernel():
    """True inside a Jupyter (IPython) kernel, whose stdin is no terminal but whose getpass asks
    in the notebook."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:  # an IPython too old or half-imported: no kernel to ask through
        return False
    return shell is not None and getattr(shell, "kernel", None) is not None


def _stdin_is_tty():
    """Whether getpass can ask the user: a terminal on stdin, or a Jupyter kernel."""
    try:
        if sys.stdin is not None and sys.stdin.isatty():
            return True
    except (AttributeError, ValueError):
        pass
    return _in_jupyter_kernel()


class UserList(list):
    """A list of users that renders as a table."""

    def _table_rows(self):
        return [
            [_role_label(getattr(u, c)) if c == "role" else getattr(u, c) for c in _COLUMNS]
            for u in self
        ]

    def __repr__(self):
        return _display.text_table(_COLUMNS, self._table_rows())

    def _repr_html_(self):
        return _display.html_list("User List", _COLUMNS, self._table_rows())


class UserCollection:
    """``client.users``: the server's users (data owners and admins), fetched anew on each use.

    Behaves like a list (``len``, indexing, iteration) and has PySyft's methods ``create``,
    ``search``, ``get``/``view``, ``update`` and ``delete``.
    """

    _PAGE_SIZE = 100

    def __init__(self, client):
        self._client = client

    def _call(self, route, **kwargs):
        return self._client._transport.call(route, **kwargs)

    def get_all(self, page_size=None, page_index=None):
        """Every user; with ``page_size`` one page of that many, the ``page_index``-th (from 0),
        as PySyft pages.
        """
        if page_size is None and page_index is None:
            return self._fetch(None)
        for name, value, low in (("page_size", page_size, 1), ("page_index", page_index, 0)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < low
            ):
                raise ValueError("{} must be an int >= {}, got {!r}".format(name, low, value))
        data = (
            self._call(
                "users_list",
                query={"page_size": page_size or self._PAGE_SIZE, "page_index": page_index or 0},
            )
            or {}
        )
        return UserList(User(item, self._client) for item in data.get("items") or [])

    def _fetch(self, search):
        items, page = [], 1
        while True:
            data = (
                self._call(
                    "users_list",
                    query={"page": page, "page_size": self._PAGE_SIZE, "search": search},
                )
                or {}
            )
            batch = data.get("items") or []
            items.extend(batch)
            total = data.get("total")
            if not batch or total is None or len(items) >= total:
                break
            page += 1
        return UserList(User(item, self._client) for item in items)

    def search(self, email=None, name=None, **other):
        """Users whose email (case-insensitive) and/or name equal the given ones."""
        if other:
            raise TypeError(
                "search takes email= and/or name=, got {}".format(", ".join(sorted(other)))
            )
        needle = email if email is not None else name
        found = self._fetch(needle)
        if email is not None:
            found = UserList(u for u in found if (u.email or "").lower() == email.strip().lower())
        if name is not None:
            found = UserList(u for u in found if u.name == name)
        return found

    def get(self, uid):
        """One user by id."""
        return User(self._call("user_get", path_params={"id": uid}), self._client)

    view = get

    def request_password_reset(self, uid):
        """Admins: a one-time password reset token for the user, returned here (as PySyft does)
        and mailed to the user when the server sends mail. Give it to the user by a channel you
        trust; it expires and works once."""
        uid = getattr(uid, "id", uid)
        data = self._call("user_password_reset", path_params={"id": uid})
        return data["token"]

    def pending_password_resets(self):
        """Admins: password resets not used and not expired (never their tokens)."""
        return (self._call("password_resets_list") or {}).get("items", [])

    def create(
        self,
        name,
        email,
        password,
        password_verify=None,
        role=None,
        institution=None,
        website=None,
    ):
        """Creates a user (data owners and admins); the role defaults to data scientist on the
        server.
        """
        body = {"name": name, "email": email, "password": password}
        if password_verify is not None:
            body["password_verify"] = password_verify
        if role is not None:
            body["role"] = role_to_server(role)
        if institution is not None:
            body["institution"] = institution
        if website is not None:
            body["website"] = website
        return User(warn_about_password(self._call("users_create", body=body)), self._client)

    def _update_raw(self, uid, fields):
        if not fields:
            raise ValueError("update needs at least one field, e.g. name=...")
        body = dict(fields)
        if "role" in body and body["role"] is not None:
            body["role"] = role_to_server(body["role"])
        return warn_about_password(self._call("user_update", path_params={"id": uid}, body=body))

    def update(self, uid, **fields):
        """Changes a user's fields and returns the updated user."""
        return User(self._update_raw(uid, fields), self._client)

    def delete(self, uid):
        """Deletes a user by id."""
        if isinstance(uid, User):
            uid = uid.id
        data = self._call("user_delete", path_params={"id": uid}) or {}
        return SyftSuccess(data.get("message") or "User {} deleted.".format(uid))

    def __len__(self):
        return len(self.get_all())

    def __iter__(self):
        return iter(self.get_all())

    def __getitem__(self, index):
        return self.get_all()[index]

    def __repr__(self):
        return repr(self.get_all())

    def _repr_html_(self):
        return self.get_all()._repr_html_()
