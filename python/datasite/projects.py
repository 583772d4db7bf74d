"""Projects (PySyft's ``sy.Project``): a named piece of work on one datasite, holding its code
requests and messages as events, oldest first.

    project = sy.Project(name="...", description="...", members=[ds_client])
    project.create_code_request(my_function, ds_client)
    project = project.send()               # the server's project
    project.events                         # requests, messages and decisions, in order
    owner_client.projects[0].requests[0].approve()

A project spans one datasite: its members are users of that datasite (a data scientist's project
has them as its only member). Projects across datasites come with the gateway.
"""

from . import _display, errors
from ._api import UID
from ._listing import ListingMixin, TableList, fetch_all_pages
from .errors import SyftSuccess


def _client_of(member):
    from .client import DatasiteClient

    if not isinstance(member, DatasiteClient):
        raise TypeError(
            "a project's members are clients logged in to the datasite (members=[client]), "
            "got {!r}".format(type(member).__name__)
        )
    return member


def _submitted_code(client, code):
    """The code on the server for a decorated function (submitted now unless it was before and
    has no request yet); a ``UserCode`` is taken as it is."""
    from .code import UserCode

    if isinstance(code, UserCode):
        return code
    collection = client.code
    try:
        return collection._submit(code)
    except errors.AlreadyExistsError as err:
        existing = collection._existing(code)
        if existing is None or existing.request_info:
            raise collection._already_exists(err, existing) from None
        return existing


# Events -------------------------------------------------------------------------------------


class ProjectEvent:
    """One event of a project: ``kind`` is "message", "request" or "decision"."""

    def __init__(self, data, project):
        data = dict(data or {})
        self._data = data
        self._project = project
        self.id = UID(data["id"]) if data.get("id") else None
        self.seq_no = data.get("seq")
        self.kind = data.get("kind")
        self.created_by = data.get("created_by")
        self.timestamp = data.get("at")
        self.text = data.get("text") or ""

    @property
    def project_id(self):
        return self._project.id

    def _rows(self):
        return [
            ("Kind", self.kind),
            ("By", _display.person(self.created_by)),
            ("At", self.timestamp),
            ("Text", self.text),
        ]

    def __repr__(self):
        return _display.text_fields(type(self).__name__, self._rows())

    def _repr_html_(self):
        return _display.html_fields(type(self).__name__, self._rows())


class ProjectMessage(ProjectEvent):
    """A message posted to the project (``project.send_message``)."""

    @property
    def message(self):
        return self.text


class ProjectRequest(ProjectEvent):
    """A code request made in the project; ``request`` reads it from the server."""

    def __init__(self, data, project):
        super().__init__(data, project)
        self.request_id = data.get("request_id")

    @property
    def request(self):
        return self._project._client.requests.get(self.request_id)

    def approve(self):
        return self.request.approve()

    def deny(self, reason):
        return self.request.deny(reason)

    def status(self, project=None):
        return self.request.status

    def _rows(self):
        return super()._rows() + [("Request", self.request_id)]


class ProjectRequestResponse(ProjectEvent):
    """A data owner's decision on one of the project's requests: ``response`` is True for an
    approval, False for a denial (``reason`` then says why)."""

    def __init__(self, data, project):
        super().__init__(data, project)
        self.request_id = data.get("request_id")
        self.decision = data.get("status")
        self.response = self.decision == "approved"
        self.reason = self.text or None

    def _rows(self):
        return [
            ("Decision", self.decision),
            ("Request", self.request_id),
            ("By", _display.person(self.created_by)),
            ("At", self.timestamp),
            ("Reason", self.reason),
        ]


# Events asked for at once (the server answers at most 1000 a page, and fewer past 1 MiB of text).
_EVENTS_PAGE = 1000

_EVENT_KINDS = {
    "message": ProjectMessage,
    "request": ProjectRequest,
    "decision": ProjectRequestResponse,
}


def _event(data, project):
    return _EVENT_KINDS.get((data or {}).get("kind"), ProjectEvent)(data, project)


# The project ---------------------------------------------------------------------------------


class Project:
    """``sy.Project(name=..., description=..., members=[client])``: a project to send; after
    ``send()``, the server's project (``id`` set), read anew from the server on each use of
    ``events`` and ``requests``.
    """

    def __init__(self, name=None, description=None, members=None, **kwargs):
        if kwargs:
            raise TypeError(
                "Project got unexpected arguments: {}".format(", ".join(sorted(kwargs)))
            )
        if not isinstance(name, str) or not name.strip():
            raise ValueError("a project needs a name: sy.Project(name='...', ...)")
        if description is not None and not isinstance(description, str):
            raise TypeError("description must be text")
        self.id = None
        self.name = name
        self.description = description or ""
        self._members = [_client_of(m) for m in (members or [])]
        self._client = self._members[0] if self._members else None
        self._pending = []  # [(code_id, request_id)]: requests made, joining the project at send()
        self.created_by = None
        self.created_at = None
        self.members = []

    @classmethod
    def _from_server(cls, data, client):
        self = cls.__new__(cls)
        self._client = client
        self._members = [client]
        self._pending = []
        self._load(data)
        return self

    def _load(self, data):
        data = dict(data or {})
        self._data = data
        self.id = UID(data["id"])
        self.name = data.get("name")
        self.description = data.get("description") or ""
        self.created_by = data.get("created_by")
        self.created_at = data.get("created_at")
        self.members = list(data.get("members") or [])

    @property
    def sent(self):
        return self.id is not None

    @property
    def username(self):
        return (self.created_by or {}).get("name")

    def _call(self, route, **kwargs):
        return self._client._transport.call(route, path_params={"id": str(self.id)}, **kwargs)

    def _check_client(self, client):
        client = _client_of(client) if client is not None else self._client
        if client is None:
            raise ValueError("name the client the project is made with: members=[client]")
        if self._client is None:
            self._client = client
            self._members.append(client)
        elif client.url != self._client.url:
            raise ValueError(
                "a project spans one datasite ({}); projects across datasites come with the "
                "gateway".format(self._client.url)
            )
        return client

    # Requests and messages ---------------------------------------------------------------------

    def create_code_request(self, obj, client=None, reason=None):
        """Submits the decorated function (if it is not on the server yet) and asks, inside this
        project, that it may run on private data. Before ``send()`` the request goes with the
        project; after, it is added to the project on the server. The same code twice is refused
        (``AlreadyExistsError``)."""
        client = self._check_client(client)
        if reason is not None and not isinstance(reason, str):
            raise TypeError("reason must be text")
        code = _submitted_code(client, obj)
        from .requests import Request

        if not self.sent:
            if any(code_id == code.id for code_id, _ in self._pending):
                raise errors.AlreadyExistsError(
                    "ALREADY_EXISTS",
                    "{} is already asked for in this project".format(code.name),
                    None,
                )
            # As PySyft: the request is made now (data owners see it at once); send() makes the
            # project with it.
            if reason is None:
                reason = "Code Request for Project: {}".format(self.name)
            body = {"code_id": code.id}
            if reason:
                body["reason"] = reason
            request = Request(client._transport.call("requests_create", body=body), client)
            self._pending.append((code.id, str(request.id)))
            return SyftSuccess(
                "Code request for '{}' added to project '{}'; it joins the project when you "
                "send() it.".format(code.name, self.name),
                value=request,
            )

        body = {"code_id": code.id}
        if reason:
            body["reason"] = reason
        request = Request(self._call("project_add_request", body=body), self._client)
        return SyftSuccess(
            "Code request for '{}' added to project '{}'.".format(code.name, self.name),
            value=request,
        )

    def add_request(self, request, client=None):
        """Adds a request to the project: a ``Request`` of yours made outside any project, or a
        decorated function (as ``create_code_request``)."""
        from .requests import Request

        if not isinstance(request, Request):
            return self.create_code_request(request, client)
        if not self.sent:
            raise ValueError("send() the project before adding an existing request to it")
        added = Request(
            self._call("project_add_request", body={"request_id": str(request.id)}), self._client
        )
        return SyftSuccess(
            "Request {} added to project '{}'.".format(added.id, self.name), value=added
        )

    def send_message(self, message):
        """Posts a message to the project (members only)."""
        if not self.sent:
            raise ValueError("send() the project before posting messages to it")
        if not isinstance(message, str) or not message:
            raise ValueError("a message is non-empty text")
        event = _event(self._call("project_send_message", body={"message": message}), self)
        return SyftSuccess("Message sent to project '{}'.".format(self.name), value=event)

    def reply_message(self, reply, message=None):
        """PySyft's reply to a message: here a new message of the project."""
        return self.send_message(reply)

    def approve_request(self, request):
        """Approves one of the project's requests (data owners and admins)."""
        if isinstance(request, ProjectRequest):
            request = request.request
        return request.approve()

    # Reading ----------------------------------------------------------------------------------

    def send(self, return_all_projects=False):
        """Creates the project on the datasite, with the code requests made so far, all in one
        step; returns the server's ``Project``."""
        if self.sent:
            raise ValueError("this project was sent already (id {})".format(self.id))
        client = self._check_client(None)
        for member in self._members:
            self._check_client(member)
        members = []
        for member in self._members:
            uid = member._user.get("id")
            if uid is None:
                raise ValueError("a project's members are logged-in users (not guests)")
            if uid not in members:
                members.append(uid)
        body = {"name": self.name, "description": self.description, "members": members}
        if self._pending:
            body["requests"] = [{"request_id": request_id} for _, request_id in self._pending]
        data = client._transport.call("projects_create", body=body)
        project = Project._from_server(data, client)
        return [project] if return_all_projects else project

    start = send

    def refresh(self):
        if self.sent:
            self._load(self._call("project_get"))
        return self

    sync = refresh

    @property
    def events(self):
        """Requests, messages and decisions, oldest first (read anew from the server)."""
        if not self.sent:
            return []
        # The server answers a page at a time (events after a seq), saying whether more follow.
        items, after_seq = [], 0
        while True:
            data = self._call(
                "project_events", query={"after_seq": after_seq, "limit": _EVENTS_PAGE}
            ) or {}
            page = data.get("items") or []
            items.extend(page)
            if not page or not data.get("more"):
                break
            after_seq = data["next_after_seq"]
        return [_event(item, self) for item in items]

    def get_events(self, types=None):
        events = self.events
        if types is None:
            return events
        types = tuple(types) if isinstance(types, (list, tuple)) else (types,)
        return [e for e in events if isinstance(e, types)]

    def get_messages(self):
        return self.get_events(ProjectMessage)

    @property
    def messages(self):
        return "\n".join(
            "{}: {}".format(_display.person(m.created_by), m.message) for m in self.get_messages()
        )

    @property
    def requests(self):
        """The project's requests, oldest first (a data scientist: their own)."""
        from .requests import Request, RequestList

        if not self.sent:
            return RequestList()
        items = fetch_all_pages(
            self._client._transport, "requests_list", {"project": str(self.id)}
        )
        return RequestList(Request(item, self._client) for item in items)

    @property
    def pending_requests(self):
        from .enums import RequestStatus

        return sum(1 for r in self.requests if r.status == RequestStatus.PENDING)

    # Display ----------------------------------------------------------------------------------

    def _rows(self):
        rows = [("Id", self.id), ("Name", self.name), ("Description", self.description)]
        if self.sent:
            rows += [
                ("Created by", _display.person(self.created_by)),
                ("Created at", self.created_at),
                ("Members", ", ".join(_display.person(m) for m in self.members)),
            ]
        else:
            rows.append(("Code requests to send", len(self._pending)))
        return rows

    def __repr__(self):
        return _display.text_fields("Project", self._rows())

    def _repr_html_(self):
        return _display.html_fields("Project", self._rows())

    def _repr_markdown_(self):
        return _display.md_fields("Project", self._rows())


ProjectSubmit = Project


class ProjectList(TableList):
    """Projects that render as a table; index by position or by id."""

    _noun = "project"
    _title = "Projects"
    _columns = ("id", "name", "description", "created_by", "created_at")

    def _row(self, p):
        return [str(p.id), p.name, p.description, _display.person(p.created_by), p.created_at]

    def __getitem__(self, key):
        if isinstance(key, str):
            want = str(UID(key)) if _is_uid(key) else key
            for item in self:
                if str(item.id) == want or item.name == key:
                    return item
            raise KeyError("no project with id or name {!r}".format(key))
        return super().__getitem__(key)


def _is_uid(text):
    try:
        UID(text)
        return True
    except (TypeError, ValueError):
        return False


class ProjectCollection(ListingMixin):
    """``client.projects``: the projects you see (data owners and admins: all), oldest first,
    read anew on each use. List-like; ``search(name=)``, ``get_by_uid``, ``get_by_name``."""

    def get_all(self, name=None):
        query = {"name": name} if name is not None else None
        items = fetch_all_pages(self._client._transport, "projects_list", query)
        return ProjectList(Project._from_server(item, self._client) for item in items)

    def __getitem__(self, key):
        """By position, id or name."""
        return self.get_all()[key]

    def search(self, name):
        """Projects named exactly ``name``."""
        return self.get_all(name=name)

    def get(self, uid):
        data = self._client._transport.call("project_get", path_params={"id": str(UID(uid))})
        return Project._from_server(data, self._client)

    get_by_uid = get

    def get_by_name(self, name):
        """The oldest project of this name you see; ``NotFoundError`` when there is none."""
        found = self.get_all(name=name)
        if not found:
            raise errors.NotFoundError("NOT_FOUND", "no project named {!r}".format(name), None)
        return found[0]
