"""``client.settings``: the server's settings, readable by every session, changeable by admins."""

from . import _display
from .errors import SyftSuccess

# (attribute, label) in display order; other fields the server sends are still readable as
# attributes.
_FIELDS = (
    ("id", "Id"),
    ("name", "Name"),
    ("organization", "Organization"),
    ("description", "Description"),
    ("deployed_on", "Deployed on"),
    ("signup_enabled", "Signup enabled"),
    ("notifications_enabled", "Notifications enabled"),
    ("admin_email", "Admin email"),
    ("server_type", "Server type"),
    ("server_side_type", "Server side type"),
    ("association_request_auto_approval", "Association request auto approval"),
    ("allow_guest_sessions", "Allow guest sessions"),
    ("output_review", "Output review"),
    ("version", "Version"),
)

# What PATCH /settings changes (settings.update's fields).
_WRITABLE = frozenset((
    "name", "organization", "description", "signup_enabled", "notifications_enabled",
    "admin_email", "association_request_auto_approval", "allow_guest_sessions",
    "welcome_markdown", "output_review",
))


class Markdown(str):
    """A Markdown string that notebooks render (HTML inside it is shown as text)."""

    def _repr_markdown_(self):
        return _display.md_esc_block(self)


def _welcome_text(markdown, html, what):
    if html is not None:
        raise ValueError(
            "{} takes markdown=...: the welcome message is Markdown, and HTML from the server "
            "is never run in your notebook".format(what)
        )
    if not isinstance(markdown, str):
        raise TypeError("{} needs markdown text, e.g. {}(markdown='# Hi')".format(what, what))
    return markdown


class Settings:
    """A snapshot of the server settings; ``update`` changes them on the server and refreshes the
    snapshot.
    """

    def __init__(self, data, client):
        object.__setattr__(self, "_data", dict(data or {}))
        object.__setattr__(self, "_client", client)

    def __getattr__(self, name):
        data = object.__getattribute__(self, "_data")
        if name in data:
            return data[name]
        if name in dict(_FIELDS):
            return None
        raise AttributeError("{!r} object has no attribute {!r}".format(type(self).__name__, name))

    def __setattr__(self, name, value):
        raise AttributeError(
            "settings are read-only here: use settings.update({}=...)".format(name)
        )

    def __dir__(self):
        return sorted(set(object.__dir__(self)) | set(self._data))

    def to_dict(self):
        return dict(self._data)

    def update(self, **fields):
        """Changes settings on the server (admins only), e.g. ``update(signup_enabled=True)``."""
        if not fields:
            raise ValueError("settings.update needs at least one field, e.g. description=...")
        data = self._client._transport.call("settings_update", body=fields)
        object.__setattr__(self, "_data", dict(data or {}))
        self._client._refresh_metadata()
        return SyftSuccess("Settings updated successfully.", value=self)

    def allow_guest_signup(self, enable):
        """PySyft's name for ``update(signup_enabled=enable)``."""
        return self.update(signup_enabled=bool(enable))

    def set_output_review(self, enable):
        """Turns output review on or off (admins): while on, results of approved runs on private
        data are held until a data owner releases them (``job.release()``).
        """
        if not isinstance(enable, bool):
            raise TypeError("set_output_review takes True or False, got {!r}".format(enable))
        return self.update(output_review=enable)

    def set(self, settings):
        """Makes the server's settings those of ``settings`` (a ``Settings`` as ``get()`` answers
        it, or a dict; admins), as PySyft's ``settings.set``: the fields that differ from the
        server's now are changed in one update. Fields the server does not let you change
        (its id, type, side, version, ...) must be as they are.
        """
        if isinstance(settings, Settings):
            wanted = settings.to_dict()
        elif isinstance(settings, dict):
            wanted = dict(settings)
        else:
            raise TypeError(
                "settings.set takes a Settings (from settings.get()) or a dict, got {!r}".format(
                    settings
                )
            )
        current = self._client._transport.call("settings_get") or {}
        changed = {k: v for k, v in wanted.items() if current.get(k) != v}
        fixed = sorted(k for k in changed if k not in _WRITABLE)
        if fixed:
            raise ValueError(
                "settings.set can't change {}: the server sets them".format(", ".join(fixed))
            )
        if not changed:
            object.__setattr__(self, "_data", dict(current))
            return SyftSuccess("Settings unchanged.", value=self)
        return self.update(**changed)

    def enable_notifications(
        self,
        email_username=None,
        email_password=None,
        email_sender=None,
        email_server=None,
        email_port=587,
        email_security="starttls",
        base_url=None,
    ):
        """Sets up mail over SMTP and turns notifications by mail on (admins).

        ``email_security``: "starttls" (default), "tls" (SMTPS) or "none" (only for a relay on
        this machine). ``base_url``: this server's public address, used in the links of mails.
        The password is kept as a secret: no answer ever returns it.
        """
        body = {"email_server": email_server, "email_sender": email_sender, "email_port": email_port,
                "email_security": email_security}
        if email_username is not None:
            body["email_username"] = email_username
        if email_password is not None:
            body["email_password"] = email_password
        if base_url is not None:
            body["base_url"] = base_url
        self._client._transport.call("settings_notifications_enable", body=body)
        object.__setattr__(self, "_data", dict(self._client._transport.call("settings_get") or {}))
        return SyftSuccess("Notifications enabled successfully.")

    def disable_notifications(self):
        """Turns notifications by mail off (admins); the mail settings are kept."""
        self._client._transport.call("settings_notifications_disable")
        object.__setattr__(self, "_data", dict(self._client._transport.call("settings_get") or {}))
        return SyftSuccess("Notifications disabled successfully.")

    def notification_settings(self):
        """The mail settings (admins), never the password."""
        return self._client._transport.call("settings_notifications_get")

    def send_test_email(self, to=None):
        """Queues a test mail to ``to`` (default: you); it goes out within seconds."""
        body = {"to": to} if to else {}
        data = self._client._transport.call("settings_notifications_test", body=body)
        return SyftSuccess((data or {}).get("message") or "Test mail queued")

    def get(self):
        """The settings as the server has them now (PySyft's ``settings.get()``)."""
        return Settings(self._client._transport.call("settings_get"), self._client)

    def welcome_preview(self, markdown=None, html=None):
        """How ``markdown`` would show as the welcome message; changes nothing. The welcome is
        Markdown (HTML in it shows as text), so ``html=`` is refused.
        """
        return Markdown(_welcome_text(markdown, html, "welcome_preview"))

    def welcome_customize(self, markdown=None, html=None):
        """Sets the welcome message shown on login (Markdown; admins)."""
        return self.update(welcome_markdown=_welcome_text(markdown, html, "welcome_customize"))

    def welcome_show(self):
        """The welcome message as Markdown."""
        data = self._client._transport.call("settings_welcome")
        return Markdown((data or {}).get("markdown", ""))

    def _rows(self):
        rows = []
        for key, label in _FIELDS:
            if key not in self._data:
                continue  # e.g. the admin-only fields, for other roles
            value = self._data[key]
            if key == "notifications_enabled" and isinstance(value, bool):
                value = "Enabled" if value else "Disabled"
            rows.append((label, value))
        return rows

    def __repr__(self):
        return _display.text_fields("Settings", self._rows())

    def _repr_html_(self):
        return _display.html_fields("Settings", self._rows())

    def _repr_markdown_(self):
        return _display.md_fields("Settings", self._rows())
