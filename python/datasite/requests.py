"""Code requests: ``client.requests``, ``request.approve()``, ``request.deny(reason)``.

A data scientist asks for the right to run a piece of code on private data
(``client.code.request_code_execution``); a data owner reads the request (the code, its inputs and
policies, who asks and why), may run it on the private data to review it (``request.code.run()``),
and approves or denies it.
"""

import warnings

from . import _display, errors
from .enums import RequestStatus, status_from_server
from .errors import DatasiteWarning, SyftSuccess
from .grants import Grant, approval_body
from ._listing import ListingMixin, TableList, fetch_all_pages


class RequestChange:
    """The one change a request asks for: that its code may run on the private data it names."""

    def __init__(self, request):
        self.id = "{}:code".format(request.id)
        self.code = request.code
        self.applied = request.status == RequestStatus.APPROVED

    def __repr__(self):
        name = self.code.name if self.code else "code"
        return "RequestChange({} may run on private data; applied={})".format(name, self.applied)


class Request:
    """One request to run code on private data, as the server last described it.

    ``status`` is a ``sy.RequestStatus``; ``code`` the ``UserCode`` asked for.
    """

    def __init__(self, data, client):
        self._client = client
        # The grant of the last approval for repeated use (see approve), else None.
        self.grant = None
        self._load(data)

    def _load(self, data):
        from .code import UserCode  # code.py makes requests too

        data = dict(data or {})
        self._data = data
        if isinstance(data.get("grant"), dict):
            self.grant = Grant(data["grant"], self._client)
        self.id = data.get("id")
        self.status = status_from_server(RequestStatus, data.get("status"))
        self.reason = data.get("reason")
        self.deny_reason = data.get("deny_reason")
        self.requested_by = data.get("requested_by")
        self.reviewed_by = data.get("reviewed_by")
        self.created_at = data.get("created_at")
        self.updated_at = data.get("updated_at")
        # Every decision, oldest first: [{"status", "reason", "reviewed_by", "at"}, ...].
        self.history = list(data.get("history") or [])
        code = data.get("code")
        if isinstance(code, dict) and code.get("source_omitted") and code.get("id"):
            # A listing's page carries a few MiB of code; a row past them is read whole here.
            code = self._client._transport.call("code_get", path_params={"id": code["id"]})
        self.code = UserCode(code, self._client) if isinstance(code, dict) else None
        # The pool the code runs in once approved (worker pools; None from older servers).
        self.worker_pool_name = data.get("worker_pool_name") or (
            self.code.worker_pool_name if self.code is not None else None
        )

    def to_dict(self):
        return dict(self._data)

    # PySyft's names.
    @property
    def requesting_user_name(self):
        return (self.requested_by or {}).get("name")

    @property
    def requesting_user_email(self):
        return (self.requested_by or {}).get("email")

    @property
    def request_time(self):
        return self.created_at

    @property
    def changes(self):
        """PySyft's list of what approving changes: here always one, the code's permission to run
        on private data."""
        return [RequestChange(self)]

    @property
    def current_change_state(self):
        """PySyft's ``{change id: applied}``: applied once the request is approved."""
        return {RequestChange(self).id: self.status == RequestStatus.APPROVED}

    def _call(self, route, **kwargs):
        return self._client._transport.call(route, path_params={"id": self.id}, **kwargs)

    def refresh(self):
        """Reads the request anew from the server; returns it."""
        self._load(self._call("request_get"))
        return self

    def approve(self, approve_nested=False, repeat=None, expires_in_days=None, users=None):
        """Approves the request (data owners and admins): its author may then run the code on the
        private data, as often as the output policy allows. A denied request may be approved;
        every decision stays in ``history``.

        ``repeat=sy.RateLimit(per_hour=10)`` approves it for repeated use: a grant (``grant``)
        lets the code run again without another review, within those limits per user and
        whatever its output policy says, until ``expires_in_days`` (default 30; a fraction is
        allowed) or a revocation. ``users`` names further data scientists (emails, ids or
        ``User`` objects) whose own code with the same source and inputs may run under it too.
        An approved request may be approved again with ``repeat``: that adds a grant. It may also be
        approved again once its code's worker pool runs another environment than the approval
        bound (its runs then fail asking for a new review): that binds the one it runs now.
        """
        if approve_nested:
            raise ValueError("approve_nested: datasite code does not start nested jobs")
        body = approval_body(repeat, expires_in_days, users)
        data = self._call("request_approve", body=body) or {}
        self._load(data)
        name = self.code.name if self.code else "the code"
        if repeat is None or not isinstance(data.get("grant"), dict):
            if repeat is not None:
                warnings.warn(
                    DatasiteWarning(
                        "the server approved request {} but made no grant for repeated use "
                        "(a server from before grants?)".format(self.id)
                    ),
                    stacklevel=2,
                )
            text = "Request {} approved: {} may now run {} on private data.".format(
                self.id, _display.person(self.requested_by), name
            )
            return SyftSuccess(text, value=self)
        grant = self.grant
        others = [
            _display.person(u)
            for u in grant.users or ()
            if u.get("id") != (self.requested_by or {}).get("id")
        ]
        text = (
            "Request {} approved for repeated use: {}{} may run {} on private data up to {}, "
            "until {} (grant {}).".format(
                self.id,
                _display.person(self.requested_by),
                " and " + ", ".join(others) if others else "",
                name,
                grant._limits_text(),
                _display.show(grant.expires_at),
                grant.id,
            )
        )
        return SyftSuccess(text, value=self)

    def deny(self, reason):
        """Denies the request with a reason the data scientist will read. An approved request may
        be denied while none of its results was released to its author (a run's result they
        could read, or a deposited one); its runs still going are then stopped and held. After a
        release the server refuses (``FailedPreconditionError``).
        """
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError("deny needs a reason the data scientist will read, e.g. deny('...')")
        self._load(self._call("request_deny", body={"reason": reason}))
        return SyftSuccess(
            "Request {} denied. Reason: {}".format(self.id, self.deny_reason or reason),
            value=self,
        )

    def deposit_result(self, result, log_stdout="", log_stderr="", approve=None, **kwargs):
        """Deposits ``result`` as this request's result (data owners and admins), as when you ran
        the code yourself: it becomes a completed run of the request's code, which its author
        reads once the request is approved (``approve=True`` approves it now). It counts as a run
        of the output policy, and is a released result: the approval can't be withdrawn after.
        ``log_stdout`` is shown to the author with it; ``log_stderr`` to data owners only.
        Returns the ``Job``.
        """
        from .jobs import Job, encode_result

        if kwargs:
            raise TypeError(
                "deposit_result got unexpected arguments: {}".format(", ".join(sorted(kwargs)))
            )
        fmt, data, meta = encode_result(result)
        body = {"format": fmt, "data": data}
        if meta is not None:
            body["meta"] = meta
        if log_stdout:
            body["stdout"] = str(log_stdout)
        if log_stderr:
            body["stderr"] = str(log_stderr)
        job = Job(self._call("request_deposit", body=body), self._client)
        if approve:
            self.approve()
        else:
            self.refresh()
        return job

    def get_results(self):
        """PySyft's ``request.get_results()``: the value of the latest run of this request's code
        you may read (completed, not held for output review; a review run is not one). On a low
        side that is the run synced from the high side. FailedPreconditionError when there is
        none yet, saying why.
        """
        from .jobs import JobStatus

        if self.code is None:
            self.refresh()
        readable = [
            job
            for job in self._client.jobs.get_all(code_id=self.code.id, status=JobStatus.COMPLETED)
            if job.kind == "private" and not job.held
        ]
        if not readable:
            status = self.refresh().status
            raise errors.FailedPreconditionError(
                message="request {} ({}) has no result you may read yet".format(
                    self.id, status.value if hasattr(status, "value") else status
                )
            )
        return readable[-1].get()

    # Display --------------------------------------------------------------------------------

    def _rows(self):
        code = self.code
        rows = [
            ("Id", self.id),
            ("Status", self.status),
            ("Requested by", _display.person(self.requested_by)),
            ("Reason", self.reason),
        ]
        if self.worker_pool_name:
            rows.append(("Worker pool", self.worker_pool_name))
        if self.deny_reason:
            rows.append(("Deny reason", self.deny_reason))
        if self.reviewed_by:
            rows.append(("Reviewed by", _display.person(self.reviewed_by)))
        rows += [("Created at", self.created_at), ("Updated at", self.updated_at)]
        if self.grant is not None:
            rows.append(
                (
                    "Grant",
                    "{} ({}, {} until {})".format(
                        self.grant.id,
                        self.grant.status,
                        self.grant._limits_text(),
                        _display.show(self.grant.expires_at),
                    ),
                )
            )
        if code is not None:
            rows += [
                ("Code", "{} v{} ({})".format(code.name, code.version, code.id)),
                ("Output policy", code.output_policy.describe() if code.output_policy else ""),
            ]
        return rows

    def __repr__(self):
        text = _display.text_fields("Request", self._rows())
        if self.code is not None:
            text += "\n\n" + self.code._inputs_text() + "\n\nCode:\n" + self.code.source_text()
            if self.code.policy_source is not None:
                text += "\n\nCustom policies (run with the code):\n" + _display.reveal_code(
                    self.code.policy_source
                )
        return text

    def _repr_html_(self):
        out = [_display.html_fields("Request", self._rows())]
        if self.code is not None:
            out.append(self.code._inputs_html())
            out.append(self.code._source_html())
        return "".join(out)

    def _repr_markdown_(self):
        out = _display.md_fields("Request", self._rows())
        if self.code is not None:
            out += "\n" + self.code._inputs_markdown() + "\n" + self.code._source_markdown()
        return out


_REQUEST_COLUMNS = ("id", "status", "code", "requested_by", "reason", "created_at")


class RequestList(TableList):
    """Requests that render as a table; index by position or by id."""

    _noun = "request"
    _title = "Requests"
    _columns = _REQUEST_COLUMNS

    def _row(self, r):
        return [
            r.id,
            r.status,
            "{} v{}".format(r.code.name, r.code.version) if r.code else "",
            _display.person(r.requested_by),
            r.reason,
            r.created_at,
        ]


class RequestCollection(ListingMixin):
    """``client.requests``: your requests (data owners and admins: everyone's), oldest first,
    fetched anew on each use. List-like; ``pending``, ``approved``, ``denied``, ``filter``,
    ``get``.
    """

    def get_all(self, status=None):
        """Requests, oldest first; optionally only those in ``status``."""
        value = None
        if status is not None:
            value = RequestStatus(status).value
        items = fetch_all_pages(self._client._transport, "requests_list", {"status": value})
        return RequestList(Request(item, self._client) for item in items)

    def filter(self, status=None):
        return self.get_all(status=status)

    @property
    def pending(self):
        return self.get_all(RequestStatus.PENDING)

    @property
    def approved(self):
        return self.get_all(RequestStatus.APPROVED)

    @property
    def denied(self):
        return self.get_all(RequestStatus.DENIED)

    rejected = denied

    def get_all_pending(self):
        """PySyft's name for ``pending``."""
        return self.get_all(RequestStatus.PENDING)

    def get_all_approved(self):
        """PySyft's name for ``approved``."""
        return self.get_all(RequestStatus.APPROVED)

    def get_all_rejected(self):
        """PySyft's name for ``denied``."""
        return self.get_all(RequestStatus.REJECTED)

    def get(self, request_id):
        """One request by id; NotFoundError when there is none you may see."""
        data = self._client._transport.call("request_get", path_params={"id": request_id})
        return Request(data, self._client)

    get_by_uid = get
