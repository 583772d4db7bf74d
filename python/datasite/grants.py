"""Grants: code a data owner approved for repeated use, within rate limits.

``request.approve(repeat=sy.RateLimit(per_hour=10), expires_in_days=30, users=[...])`` makes a
grant: the same code (matched by its ``code_hash`` and its input bindings) may then run on private
data again without another review, by its requester and the data scientists named in ``users``,
at most so many runs per minute, hour or day each, until the grant expires or is revoked. A run
past a limit raises ``sy.RateLimitedError`` whose ``retry_after`` is the wait in seconds.
``client.grants`` lists the grants you may see (data owners: all; a data scientist: those that name
them), newest first; ``grant.revoke()`` ends one (data owners).
"""

import numbers

from . import _display
from ._listing import ListingMixin, TableList, fetch_all_pages
from .errors import SyftSuccess

# The server's bounds (docs: "Approve with a grant").
MAX_RUNS_PER_WINDOW = 1000000
MAX_EXPIRES_IN_DAYS = 3650
GRANT_STATUSES = ("active", "revoked", "expired")
_WINDOWS = (("per_minute", "minute"), ("per_hour", "hour"), ("per_day", "day"))


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


class RateLimit:
    """How often code approved for repeated use may run, per user: ``per_minute``, ``per_hour``
    and ``per_day`` (sliding windows of 60 s, 3600 s and 86400 s). At least one is needed; each is
    a whole number from 1 to 1,000,000; a window left out has no limit.
    """

    def __init__(self, per_minute=None, per_hour=None, per_day=None):
        given = {"per_minute": per_minute, "per_hour": per_hour, "per_day": per_day}
        for name, value in given.items():
            if value is None:
                continue
            if not _is_int(value):
                raise ValueError(
                    "RateLimit {} must be a whole number of runs, got {!r}".format(name, value)
                )
            if not 1 <= value <= MAX_RUNS_PER_WINDOW:
                raise ValueError(
                    "RateLimit {} must be from 1 to {}, got {}".format(
                        name, MAX_RUNS_PER_WINDOW, value
                    )
                )
        if all(value is None for value in given.values()):
            raise ValueError(
                "RateLimit needs at least one of per_minute, per_hour, per_day, "
                "e.g. sy.RateLimit(per_hour=10)"
            )
        self.per_minute = None if per_minute is None else int(per_minute)
        self.per_hour = None if per_hour is None else int(per_hour)
        self.per_day = None if per_day is None else int(per_day)

    @classmethod
    def of(cls, value):
        """A ``RateLimit`` from one, or from a dict of its fields (``{"per_hour": 10}``)."""
        if isinstance(value, RateLimit):
            return value
        if isinstance(value, dict):
            unknown = sorted(set(value) - {name for name, _ in _WINDOWS})
            if unknown:
                raise ValueError(
                    "repeat has unknown field(s) {}: use per_minute, per_hour, per_day".format(
                        ", ".join(unknown)
                    )
                )
            return cls(**value)
        raise TypeError(
            "repeat must be a sy.RateLimit (e.g. sy.RateLimit(per_hour=10)), got {!r}".format(value)
        )

    def to_wire(self):
        """The ``repeat`` object of an approval: only the windows that have a limit."""
        return {
            name: getattr(self, name) for name, _ in _WINDOWS if getattr(self, name) is not None
        }

    def describe(self):
        """``"2 runs per minute, 10 per hour"``."""
        return describe_limits(self.per_minute, self.per_hour, self.per_day)

    def __eq__(self, other):
        if isinstance(other, RateLimit):
            return self.to_wire() == other.to_wire()
        return NotImplemented

    __hash__ = None

    def __repr__(self):
        return "RateLimit({})".format(
            ", ".join("{}={}".format(k, v) for k, v in self.to_wire().items())
        )


def describe_limits(per_minute, per_hour, per_day):
    """The limits in words, e.g. ``"2 runs per minute, 10 per hour"``; "no limit" for none."""
    parts = []
    for value, window in ((per_minute, "minute"), (per_hour, "hour"), (per_day, "day")):
        if value is None:
            continue
        unit = ("run" if value == 1 else "runs") if not parts else ""
        parts.append("{} {}per {}".format(value, unit + " " if unit else "", window))
    return ", ".join(parts) or "no limit"


def _user_ref(user):
    """An entry of ``users``: an email or user id as given, or a ``User``'s id."""
    if isinstance(user, str) and user.strip():
        return user.strip()
    ident = getattr(user, "id", None) or getattr(user, "email", None)
    if isinstance(ident, str) and ident:
        return ident
    raise TypeError("users takes emails, user ids or User objects, got {!r}".format(user))


def approval_body(repeat=None, expires_in_days=None, users=None):
    """The JSON body of ``POST /api/v1/requests/{id}/approve``: ``{}`` for a plain approval;
    ``repeat``, ``expires_in_days`` and ``users`` only when given. Refuses here what the server
    would refuse for its form alone (ValueError, TypeError); who the users are, the server checks.
    """
    body = {}
    if repeat is None:
        if expires_in_days is not None or users is not None:
            raise ValueError(
                "expires_in_days and users are for a repeated-use approval: give repeat too, "
                "e.g. approve(repeat=sy.RateLimit(per_hour=10), expires_in_days=30)"
            )
        return body
    body["repeat"] = RateLimit.of(repeat).to_wire()
    if expires_in_days is not None:
        if isinstance(expires_in_days, bool) or not isinstance(expires_in_days, numbers.Real):
            raise ValueError(
                "expires_in_days must be a number of days, got {!r}".format(expires_in_days)
            )
        if not 0 < expires_in_days <= MAX_EXPIRES_IN_DAYS:
            raise ValueError(
                "expires_in_days must be more than 0 and at most {}, got {}".format(
                    MAX_EXPIRES_IN_DAYS, expires_in_days
                )
            )
        body["expires_in_days"] = expires_in_days
    if users is not None:
        if isinstance(users, str) or not hasattr(users, "__iter__"):
            users = [users]
        body["users"] = [_user_ref(user) for user in users]
    return body


def _emails(users):
    return ", ".join(
        _display.show((u or {}).get("email") or (u or {}).get("id")) for u in users or ()
    )


class Grant:
    """One grant as the server last described it: ``id``, ``request_id``, ``code_id``,
    ``code_name``, ``code_hash``, ``created_by``, ``created_at``, ``expires_at``, ``per_minute``,
    ``per_hour``, ``per_day``, ``status`` ("active", "revoked" or "expired"), ``revoked_at``.

    For data owners: ``users`` (who may run the code, ``[{"id", "email", "name"}]``) and ``runs``
    (runs under the grant, all users). For a data scientist: ``runs_left`` (``{"minute", "hour",
    "day"}``, None where there is no limit) and ``next_run_at`` (when the next run is allowed, if
    none is left now); these are None in the other role's view.
    """

    def __init__(self, data, client):
        self._client = client
        self._load(data)

    def _load(self, data):
        data = dict(data or {})
        self._data = data
        self.id = data.get("id")
        self.request_id = data.get("request_id")
        self.code_id = data.get("code_id")
        self.code_name = data.get("code_name")
        self.code_hash = data.get("code_hash")
        self.created_by = data.get("created_by")
        self.created_at = data.get("created_at")
        self.expires_at = data.get("expires_at")
        self.per_minute = data.get("per_minute")
        self.per_hour = data.get("per_hour")
        self.per_day = data.get("per_day")
        self.status = data.get("status")
        self.revoked_at = data.get("revoked_at")
        users = data.get("users")
        self.users = [dict(u) for u in users] if isinstance(users, list) else None
        self.runs = data.get("runs")
        runs_left = data.get("runs_left")
        self.runs_left = dict(runs_left) if isinstance(runs_left, dict) else None
        self.next_run_at = data.get("next_run_at")

    def to_dict(self):
        return dict(self._data)

    @property
    def is_active(self):
        return self.status == "active"

    @property
    def limits(self):
        """The grant's limits as a ``sy.RateLimit`` (None if the server named none)."""
        try:
            return RateLimit(self.per_minute, self.per_hour, self.per_day)
        except ValueError:
            return None

    def _call(self, route, **kwargs):
        return self._client._transport.call(route, path_params={"id": self.id}, **kwargs)

    def refresh(self):
        """Reads the grant anew from the server; returns it."""
        self._load(self._call("grant_get"))
        return self

    def revoke(self):
        """Ends the grant now (data owners): the code no longer runs under it, and its jobs still
        queued or running are stopped. ``FailedPreconditionError`` when it was already revoked.
        """
        self._load(self._call("grant_revoke", body={}))
        return SyftSuccess(
            "Grant {} revoked: {} no longer runs on private data under it.".format(
                self.id, self.code_name or "the code"
            ),
            value=self,
        )

    # Display --------------------------------------------------------------------------------

    def _limits_text(self):
        return describe_limits(self.per_minute, self.per_hour, self.per_day)

    def _runs_left_text(self):
        if self.runs_left is None:
            return None
        parts = [
            "{} this {}".format(self.runs_left.get(window), window)
            for _, window in _WINDOWS
            if self.runs_left.get(window) is not None
        ]
        return ", ".join(parts) or "no limit"

    def _rows(self):
        rows = [
            ("Id", self.id),
            ("Status", self.status),
            ("Code", "{} ({})".format(self.code_name, self.code_id)),
            ("Code hash", self.code_hash),
            ("Request", self.request_id),
            ("Limits", self._limits_text()),
            ("Created by", self.created_by),
            ("Created at", self.created_at),
            ("Expires at", self.expires_at),
        ]
        if self.revoked_at:
            rows.append(("Revoked at", self.revoked_at))
        if self.users is not None:
            rows.append(("Users", _emails(self.users)))
        if self.runs is not None:
            rows.append(("Runs", self.runs))
        if self.runs_left is not None:
            rows.append(("Runs left", self._runs_left_text()))
            rows.append(("Next run at", self.next_run_at or "now"))
        return rows

    def __repr__(self):
        return _display.text_fields("Grant", self._rows())

    def _repr_html_(self):
        return _display.html_fields("Grant", self._rows())

    def _repr_markdown_(self):
        return _display.md_fields("Grant", self._rows())


_GRANT_COLUMNS = ("id", "code", "limits", "status", "expires_at", "runs", "runs_left")


class GrantList(TableList):
    """Grants that render as a table; index by position or by id."""

    _noun = "grant"
    _title = "Grants"
    _columns = _GRANT_COLUMNS

    def _row(self, g):
        return [
            g.id,
            g.code_name,
            g._limits_text(),
            g.status,
            g.expires_at,
            g.runs,
            g._runs_left_text(),
        ]


class GrantCollection(ListingMixin):
    """``client.grants``: the grants you may see (data owners and admins: all; a data scientist:
    those that name them), newest first, fetched anew on each use. List-like; ``get``,
    ``get_all(status=)``, ``active``, ``revoked``, ``expired``, ``revoke(grant_id)``.
    """

    def get_all(self, status=None):
        """Grants, newest first; optionally only those in ``status`` ("active", "revoked",
        "expired")."""
        if status is not None and status not in GRANT_STATUSES:
            raise ValueError(
                "status must be one of {}, got {!r}".format(", ".join(GRANT_STATUSES), status)
            )
        items = fetch_all_pages(self._client._transport, "grants_list", {"status": status})
        return GrantList(Grant(item, self._client) for item in items)

    def filter(self, status=None):
        return self.get_all(status=status)

    @property
    def active(self):
        return self.get_all("active")

    @property
    def revoked(self):
        return self.get_all("revoked")

    @property
    def expired(self):
        return self.get_all("expired")

    def get(self, grant_id):
        """One grant by id; NotFoundError when there is none you may see."""
        grant_id = getattr(grant_id, "id", grant_id)
        data = self._client._transport.call("grant_get", path_params={"id": grant_id})
        return Grant(data, self._client)

    get_by_uid = get

    def revoke(self, grant_id):
        """Revokes a grant by id (or a ``Grant``); see ``Grant.revoke``."""
        grant_id = getattr(grant_id, "id", grant_id)
        return Grant({"id": grant_id}, self._client).revoke()
