"""PySyft's notebook helpers: ``sy.requires``, ``sy.raises``, ``sy.DataSubject``."""

import html
import re

# The PySyft API this client mirrors; ``sy.requires`` checks a notebook's syft version spec
# against it.
PYSYFT_API_VERSION = "0.9.2"

_CLAUSE = re.compile(r"^\s*(===|==|!=|~=|>=|<=|>|<)?\s*v?([0-9]+(?:\.[0-9]+)*)(\.\*)?\s*$")


def _version_tuple(text):
    return tuple(int(p) for p in re.findall(r"\d+", text.split("-")[0].split("b")[0])[:3])


def _pad(t, n=3):
    return tuple(t) + (0,) * (n - len(t))


def _clause_holds(op, wanted, wildcard, have):
    if wildcard:  # ==0.9.* / !=0.9.*
        prefix = have[: len(wanted)] == wanted
        return prefix if op in ("==", "===", None) else not prefix
    a, b = _pad(have), _pad(wanted)
    if op == "~=":  # compatible release: >= wanted, same up to the last given part
        return a >= b and have[: len(wanted) - 1] == wanted[:-1]
    return {
        None: a == b,
        "==": a == b,
        "===": a == b,
        "!=": a != b,
        ">=": a >= b,
        "<=": a <= b,
        ">": a > b,
        "<": a < b,
    }[op]


def requires(version_string, silent=False):
    """PySyft's version check: ``sy.requires(">=0.9,<1.0.0")``. Installs nothing.

    The spec is checked against the PySyft API version this client mirrors (``0.9.2``). As in
    PySyft it only tells: unless ``silent`` it prints whether the spec holds (and, when it does
    not, that the notebook may use calls that work differently here); it returns whether it holds.
    A spec it cannot read raises ValueError.
    """
    if not isinstance(version_string, str) or not version_string.strip():
        raise TypeError("requires takes a version spec such as '>=0.9,<1.0.0'")
    have = _version_tuple(PYSYFT_API_VERSION)
    failed = []
    for clause in version_string.split(","):
        match = _CLAUSE.match(clause)
        if not match:
            raise ValueError("cannot read the version spec {!r}".format(version_string))
        op, number, wildcard = match.groups()
        if not _clause_holds(op, tuple(int(p) for p in number.split(".")), wildcard, have):
            failed.append(clause.strip())
    if failed:
        if not silent:
            print(
                "this notebook asks for syft{} ({} does not hold), and datasite mirrors PySyft "
                "{}'s API: the notebook may use calls that work differently here".format(
                    version_string.strip(), ", ".join(failed), PYSYFT_API_VERSION
                )
            )
        return False
    if not silent:
        print(
            "datasite mirrors PySyft {}'s API, which matches syft{}".format(
                PYSYFT_API_VERSION, version_string.strip()
            )
        )
    return True


class raises:
    """``with sy.raises(sy.SyftException, show=True): ...``: the block must raise the given
    exception type (or one like the given instance, whose message must then appear in the raised
    one); it is then swallowed, and with ``show=True`` printed. Anything else fails with
    AssertionError.
    """

    def __init__(self, expected_exception, show=False):
        self.expected_exception = expected_exception
        self.show = show
        self.exception = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        expected = self.expected_exception
        message = None
        if not isinstance(expected, (type, tuple)):
            message = str(getattr(expected, "message", None) or expected) or None
            expected = type(expected)
        if exc_type is None:
            raise AssertionError(
                "expected {} to be raised, but nothing was raised".format(_names(expected))
            )
        if not issubclass(exc_type, expected):
            return False  # not ours: let it propagate unchanged
        if message and message not in str(exc_value):
            raise AssertionError(
                "expected {} containing {!r}, got: {}".format(_names(expected), message, exc_value)
            )
        self.exception = exc_value
        if self.show:
            print("with sy.raises successfully caught the following exception:")
            print("{}: {}".format(exc_type.__name__, exc_value))
        return True


def _names(expected):
    if isinstance(expected, tuple):
        return " or ".join(e.__name__ for e in expected)
    return expected.__name__


class DataSubject:
    """Who or what the data is about (PySyft's ``sy.DataSubject``): a name, a description and
    member subjects. Kept on an asset as metadata (``Asset(data_subjects=[...])``); datasite does
    no differential-privacy accounting with it.
    """

    def __init__(self, name, description=None, aliases=None, members=None):
        if not isinstance(name, str) or not name.strip():
            raise ValueError("a data subject needs a name")
        self.name = name
        self.description = description
        self.aliases = list(aliases or [])
        self.members = {}
        for member in members or []:
            self.add_member(member)

    def add_member(self, data_subject):
        """Adds a member subject (e.g. a country to a continent)."""
        if not isinstance(data_subject, DataSubject):
            raise TypeError("add_member takes a sy.DataSubject")
        self.members[data_subject.name] = data_subject
        return data_subject

    @property
    def member_names(self):
        return list(self.members)

    def to_dict(self):
        out = {"name": self.name}
        if self.description is not None:
            out["description"] = self.description
        if self.aliases:
            out["aliases"] = list(self.aliases)
        if self.members:
            out["members"] = [m.to_dict() for m in self.members.values()]
        return out

    @classmethod
    def of(cls, value):
        if isinstance(value, DataSubject):
            return value
        if isinstance(value, dict):
            return cls(
                value.get("name"),
                value.get("description"),
                value.get("aliases"),
                [cls.of(m) for m in value.get("members") or []],
            )
        if isinstance(value, str):
            return cls(value)
        raise TypeError("a data subject is a sy.DataSubject, a dict or a name, got {!r}".format(
            value))

    def __eq__(self, other):
        if isinstance(other, DataSubject):
            return self.to_dict() == other.to_dict()
        return NotImplemented

    __hash__ = None

    def __repr__(self):
        return "<DataSubject: {}>".format(self.name)


class DataSubjectRegistry:
    """``client.data_subject_registry``: the server-wide registry of data subjects (PySyft's).
    Data owners and admins ``add_data_subject``; everyone logged in reads ``get_all()``.
    """

    def __init__(self, client):
        self._client = client

    def add_data_subject(self, data_subject):
        """Registers ``data_subject`` (a ``sy.DataSubject``) and its members. A subject without
        members whose name is registered already is refused; members registered already are
        linked as they are.
        """
        from .errors import SyftSuccess

        subject = DataSubject.of(data_subject)
        answer = self._client._transport.call("data_subjects_add", body=subject.to_dict()) or {}
        added = answer.get("added", 0)
        return SyftSuccess(
            "{} Data Subject{} Registered".format(added, "" if added == 1 else "s"), value=added
        )

    def get_all(self):
        """Every registered data subject, oldest first; a subject's ``members`` are subjects."""
        rows = self._client._transport.call("data_subjects_list") or []
        subjects = {}
        for row in rows:
            subjects[row["name"]] = DataSubject(
                row["name"], row.get("description") or None, row.get("aliases")
            )
        for row in rows:
            for member in row.get("members") or []:
                if member in subjects:
                    subjects[row["name"]].members[member] = subjects[member]
        return list(subjects.values())

    def get_by_name(self, name):
        """The registered data subject ``name``; NotFoundError when there is none."""
        from .errors import NotFoundError

        for subject in self.get_all():
            if subject.name == name:
                return subject
        raise NotFoundError(None, "no data subject named {!r} is registered".format(name), None)

    def members_for(self, data_subject_name):
        """The members of the registered data subject ``data_subject_name``."""
        return list(self.get_by_name(data_subject_name).members.values())

    def __repr__(self):
        return "DataSubjectRegistry({})".format(", ".join(s.name for s in self.get_all()))

    def _repr_html_(self):
        return "<strong>DataSubject:</strong> " + html.escape(self.name)
