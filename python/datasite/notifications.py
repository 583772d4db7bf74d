"""``client.notifications``: the caller's in-app notifications, oldest first (PySyft's names)."""

from . import _display
from .errors import SyftSuccess


class LinkedObject:
    """What a notification points at: ``kind`` ("request", "job", "code", "user", "project") and
    ``id``; ``object_type`` is the client class of that kind (PySyft's ``linked_obj.object_type``);
    ``resolve`` fetches it (the server still checks who may see it)."""

    def __init__(self, kind, object_id, client):
        self.kind = kind
        self.id = object_id
        self._client = client

    @property
    def object_type(self):
        from . import code, jobs, projects, requests, users

        types = {
            "request": requests.Request,
            "job": jobs.Job,
            "code": code.UserCode,
            "user": users.User,
            "project": projects.Project,
        }
        return types.get(self.kind, type(None))

    @property
    def resolve(self):
        client = self._client
        if self.kind == "request":
            return client.requests.get(self.id)
        if self.kind == "job":
            return client.jobs.get(self.id)
        if self.kind == "user":
            if client.account.id == self.id:
                return client.account
            return client.users.get(self.id)
        if self.kind == "code":
            return client.code.get(self.id)
        if self.kind == "project":
            return client.projects.get_by_uid(self.id)
        raise ValueError("cannot resolve a linked object of kind {!r}".format(self.kind))

    def __repr__(self):
        return "<LinkedObject {} {}>".format(self.kind, self.id)


class Notification:
    """One notification: ``subject``, ``status`` ("unread" | "read"), ``created_at``,
    ``linked_obj`` (``.resolve`` fetches it); ``mark_read()`` / ``mark_unread()``."""

    def __init__(self, data, client):
        self._client = client
        self._load(data)

    def _load(self, data):
        self._data = dict(data or {})
        for key, value in self._data.items():
            if key != "linked_obj":
                setattr(self, key, value)
        link = self._data.get("linked_obj")
        self.linked_obj = LinkedObject(link["kind"], link["id"], self._client) if link else None

    @property
    def link(self):
        """The object the notification points at (``linked_obj.resolve``), or None."""
        return self.linked_obj.resolve if self.linked_obj else None

    @property
    def is_read(self):
        return self.status == "read"

    def _mark(self, route):
        self._load(self._client._transport.call(route, path_params={"id": self.id}))
        return SyftSuccess("Notification marked {}.".format(self.status), value=self)

    def mark_read(self):
        return self._mark("notification_read")

    def mark_unread(self):
        return self._mark("notification_unread")

    mark_as_read = mark_read
    mark_as_unread = mark_unread

    def to_dict(self):
        return dict(self._data)

    def __repr__(self):
        return "<Notification {!r} ({}) from {}>".format(
            self.subject, self.status, self.from_name or "the server"
        )

    def _repr_markdown_(self):
        return "**{}** ({})".format(_display.md_esc(self.subject), _display.md_esc(self.status))


class NotificationList(list):
    """A list of notifications; ``unread`` and ``read`` filter it."""

    @property
    def unread(self):
        return NotificationList(n for n in self if not n.is_read)

    @property
    def read(self):
        return NotificationList(n for n in self if n.is_read)

    def _repr_markdown_(self):
        if not self:
            return "No notifications."
        rows = ["| # | Subject | Status | From | Created |", "|---|---|---|---|---|"]
        for i, n in enumerate(self):
            rows.append(
                "| {} | {} | {} | {} | {} |".format(
                    i,
                    _display.md_esc(n.subject),
                    n.status,
                    _display.md_esc(n.from_name or ""),
                    n.created_at,
                )
            )
        return "\n".join(rows)


class NotificationCollection:
    """``client.notifications``: list-like (oldest first) with ``get_all``, ``get_all_read``,
    ``get_all_unread``, ``get``, and the caller's mail opt-out (``activate`` / ``deactivate``)."""

    def __init__(self, client):
        self._client = client

    def get_all(self):
        data = self._client._transport.call("notifications_list") or {}
        return NotificationList(Notification(item, self._client) for item in data.get("items", []))

    def get_all_unread(self):
        return self.get_all().unread

    def get_all_read(self):
        return self.get_all().read

    def get(self, uid):
        return Notification(
            self._client._transport.call("notification_get", path_params={"id": uid}),
            self._client,
        )

    get_by_uid = get

    def activate(self):
        """Receive notifications by mail (the default)."""
        self._client._transport.call("notifications_activate")
        return SyftSuccess("You will receive notifications by email.")

    def deactivate(self):
        """Receive no notifications by mail; in-app ones stay."""
        self._client._transport.call("notifications_deactivate")
        return SyftSuccess("You will not receive notifications by email.")

    def user_settings(self):
        return self._client._transport.call("notifications_user_settings") or {}

    def __iter__(self):
        return iter(self.get_all())

    def __len__(self):
        return len(self.get_all())

    def __getitem__(self, index):
        return self.get_all()[index]

    def __repr__(self):
        return repr(self.get_all())

    def _repr_markdown_(self):
        return self.get_all()._repr_markdown_()
