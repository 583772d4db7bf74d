"""``client.audit``: the server's hash-chained audit log, for data owners and admins.

``client.audit`` lists the newest entries; ``client.audit.page(after_seq=0, limit=100)`` reads one
page, oldest first; ``client.audit.all()`` walks every entry; ``client.audit.export(path)`` writes
them as JSON lines; ``client.audit.verify(head=None)`` asks the server to check the chain (and,
given a head saved earlier, that its tail was not cut).
"""

import json

_PAGE = 1000


class AuditEntry(dict):
    """One entry: ``seq``, ``at``, ``actor``, ``action``, ``target``, ``detail``, ``prev_hash``,
    ``hash`` (also readable as attributes)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __repr__(self):
        return "#{} {} {} {} {}".format(
            self.get("seq"), self.get("at"), self.get("actor"), self.get("action"), self.get("target")
        )


class AuditLog:
    """The audit log of one server, read through its admin routes."""

    def __init__(self, client):
        self._client = client

    def _lines(self, after_seq, limit):
        raw, _ = self._client._transport.call_raw(
            "audit_list", query={"after_seq": int(after_seq), "limit": int(limit)}
        )
        return [line for line in raw.decode("utf-8").splitlines() if line.strip()]

    def page(self, after_seq=0, limit=100):
        """Entries with a seq above ``after_seq``, oldest first, at most ``limit`` (1 to 1000)."""
        return [AuditEntry(json.loads(line)) for line in self._lines(after_seq, limit)]

    def all(self, after_seq=0):
        """Every entry after ``after_seq``, oldest first (read a page at a time)."""
        out = []
        while True:
            page = self.page(after_seq, _PAGE)
            out.extend(page)
            if len(page) < _PAGE:
                return out
            after_seq = page[-1]["seq"]

    def export(self, path, after_seq=0):
        """Writes the entries after ``after_seq`` to ``path`` as JSON lines, as the server sent
        them; returns how many."""
        n = 0
        with open(path, "w", encoding="utf-8") as out:
            while True:
                lines = self._lines(after_seq, _PAGE)
                for line in lines:
                    out.write(line + "\n")
                n += len(lines)
                if len(lines) < _PAGE:
                    return n
                after_seq = json.loads(lines[-1])["seq"]

    def verify(self, head=None):
        """The server's verdict on the chain: ``{"ok", "entries", "head_seq", "head",
        "checkpoint_seq"}`` and, when not ok, ``"first_bad_seq"`` and ``"reason"``."""
        return self._client._transport.call("audit_verify", query={"head": head})

    @property
    def head(self):
        """The chain's current head hash (save it elsewhere to detect a cut tail later)."""
        return self.verify()["head"]

    def __iter__(self):
        return iter(self.all())

    def __len__(self):
        return len(self.all())

    def __getitem__(self, index):
        return self.all()[index]

    def __repr__(self):
        entries = self.page(max(0, self.verify()["head_seq"] - 10), 10)
        return "\n".join(repr(e) for e in entries) or "(no audit entries)"
