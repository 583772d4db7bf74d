"""The HTTP transport: JSON requests to one server; error answers raise ``DatasiteError``."""

import http.client
import json
import os
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

from . import errors
from ._routes import ROUTES

DEFAULT_TIMEOUT = 30.0
_LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1", "0.0.0.0")

_CHANGES = ("POST", "PUT", "PATCH", "DELETE")
# Routes whose changes the server does not commit with their key (they wait for a job): sent without
# one, and so sent again only when nothing was sent (docs/API.md, "Idempotency keys").
_NOT_KEYED = ("job_kill",)
# A request that got no answer, or a proxy's "no server could answer" (502, 504), is sent again
# for this long: long enough for a proxy to move past a server that died (or a supervisor to
# restart it), short enough to surface a real outage. Only once the server has answered this
# transport (a wrong address fails at once). Changes are sent again only with their
# Idempotency-Key (the server applies each key once), or, without one, only when the connection
# was refused (nothing was sent).
RETRY_SECONDS = 20.0
_RETRY_FIRST_PAUSE = 0.05
_RETRY_MAX_PAUSE = 1.0


def base_url_for(url="localhost", port=None):
    """``scheme://host:port`` for a url given as "localhost", "http://host" or "http://host:port".

    A port inside ``url`` wins over ``port``; without either the port is 8080.
    """
    if not isinstance(url, str) or not url.strip():
        raise ValueError("url must be a host name or an http(s) URL, got {!r}".format(url))
    url = url.strip()
    if "://" not in url:
        url = "http://" + url
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError("url must use http or https, got {!r}".format(url))
    host = parts.hostname
    if not host:
        raise ValueError("url has no host: {!r}".format(url))
    try:
        url_port = parts.port
    except ValueError:
        raise ValueError("url has an invalid port: {!r}".format(url)) from None
    final_port = url_port or port or 8080
    if ":" in host:
        host = "[" + host + "]"
    return "{}://{}:{}".format(parts.scheme, host, int(final_port))


def tls_context(verify=True):
    """The ``ssl.SSLContext`` that checks a server's certificate and host name.

    ``verify``: True (or None) trusts the system's certificate authorities, or the bundle named by
    ``SSL_CERT_FILE`` or ``REQUESTS_CA_BUNDLE``; a path trusts the CA certificates in that PEM file
    (a bundle) instead. Turning verification off is not offered: a certificate that cannot be
    verified means the server may not be the one named.
    """
    if verify is None or verify is True:
        cafile = os.environ.get("SSL_CERT_FILE") or os.environ.get("REQUESTS_CA_BUNDLE") or None
    elif isinstance(verify, (str, os.PathLike)):
        cafile = os.fspath(verify)
    else:
        raise ValueError("verify must be True or the path of a CA bundle, got {!r}".format(verify))
    try:
        return ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as err:
        raise ValueError("cannot read the CA bundle {}: {}".format(cafile, err)) from None


def connect_url(base_url):
    """``base_url`` with the host "localhost" replaced by 127.0.0.1, for connecting over http.

    An https URL stays as it is: its certificate is checked against the name in the URL, and
    ``https_connection`` connects to 127.0.0.1 for "localhost" itself.
    """
    parts = urllib.parse.urlsplit(base_url)
    if parts.hostname != "localhost" or parts.scheme == "https":
        return base_url
    return urllib.parse.urlunsplit(parts._replace(netloc="127.0.0.1:{}".format(parts.port)))


def _create_loopback_connection(address, *args, **kwargs):
    host, port = address
    return socket.create_connection(
        ("127.0.0.1" if host == "localhost" else host, port), *args, **kwargs
    )


def https_connection(host, port=None, **kwargs):
    """An ``http.client.HTTPSConnection`` (same arguments) that checks the certificate against
    ``host`` but, for "localhost", connects to 127.0.0.1: "localhost" always means this machine
    (RFC 6761), even where /etc/hosts lacks it, and a certificate for DNS:localhost alone is
    accepted."""
    conn = http.client.HTTPSConnection(host, port, **kwargs)
    conn._create_connection = _create_loopback_connection
    return conn


class _HTTPSHandler(urllib.request.HTTPSHandler):
    """urllib's HTTPS handler, with its connections made by ``https_connection``."""

    def https_open(self, req):
        return self.do_open(https_connection, req, context=self._context)


class Transport:
    """Sends JSON requests to one server. Not thread-safe (``token`` is a plain attribute)."""

    def __init__(self, base_url, token=None, timeout=DEFAULT_TIMEOUT, verify=True):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        parts = urllib.parse.urlsplit(self.base_url)
        host = parts.hostname
        handlers = []
        if host in _LOOPBACK_HOSTS:
            # A proxy from the environment must never see requests to this machine.
            handlers.append(urllib.request.ProxyHandler({}))
        # For https: checks the certificate and host name (see tls_context); _transfer's own
        # connections use it too.
        self.ssl_context = tls_context(verify) if parts.scheme == "https" else None
        if self.ssl_context is not None:
            handlers.append(_HTTPSHandler(context=self.ssl_context))
        self._opener = urllib.request.build_opener(*handlers)
        # "localhost" always means this machine (RFC 6761), even where /etc/hosts lacks it (https:
        # see https_connection).
        self._connect_url = connect_url(self.base_url)
        # When a request was last given up after RETRY_SECONDS of trying: until one gets an answer
        # again, the requests that follow (a call's clean-up, the next calls) are tried once, so
        # that a server that is down costs one wait, not one per request.
        self._gave_up_at = None
        self._answered = False  # whether the server ever answered: retries are for one that did

    def call(
        self, route, path_params=None, query=None, body=None, authenticated=True, timeout=None
    ):
        """Calls a route of ``ROUTES``; returns the decoded JSON answer (None for no body).

        ``timeout`` (seconds) replaces the transport's for this call, e.g. for a call the server
        answers only once a job has ended. Raises a ``DatasiteError`` subclass for an error answer
        and ``ServerConnectionError`` when there is no answer at all.
        """
        method, path = route_path(route, path_params, query)
        keyed = route not in _NOT_KEYED and not (
            route == "code_run" and (body or {}).get("blocking", True) is not False
        )
        raw, _ = self._exchange(
            method, path, body, "application/json", authenticated, timeout, keyed_changes=keyed
        )
        return _decode(raw)

    def call_raw(self, route, path_params=None, query=None, timeout=None):
        """Calls a route that answers bytes; returns ``(bytes, headers)`` (headers lower-cased).

        For answers small enough to hold in memory (job results); streamed downloads of assets go
        through ``_transfer``.
        """
        method, path = route_path(route, path_params, query)
        return self._exchange(method, path, None, "*/*", True, timeout)

    def send(self, method, path, body=None, timeout=None):
        """Any request (path with query) with an optional JSON body; returns ``(bytes, headers)``
        (headers lower-cased). For ``client.api.services``, whose answers may be JSON or bytes.
        """
        # Any route: the server may not commit a change with its key (a blocking run, a kill), so
        # a change is sent once; reads are sent again.
        return self._exchange(method, path, body, "*/*", True, timeout, keyed_changes=False)

    def _unreachable(self, err):
        reason = getattr(err, "reason", err)
        if isinstance(reason, ssl.SSLCertVerificationError):
            return errors.ServerConnectionError(
                None,
                "the certificate of {} is not trusted ({}): give sy.login the CA bundle that "
                "signed it with verify=PATH (or set SSL_CERT_FILE)".format(
                    self.base_url, reason.verify_message or reason
                ),
                None,
            )
        return errors.ServerConnectionError(
            None, "cannot reach the server at {}: {}".format(self.base_url, reason), None
        )

    def request(self, method, path, body=None, authenticated=True, timeout=None):
        raw, _ = self._exchange(method, path, body, "application/json", authenticated, timeout)
        return _decode(raw)

    def _exchange(self, method, path, body, accept, authenticated, timeout, keyed_changes=True):
        """Sends the request, again while it may safely be sent again (see RETRY_SECONDS);
        returns ``(bytes, headers)`` of the answer."""
        headers = {"Accept": accept}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        logged_in = authenticated and self.token
        if logged_in:
            headers["Authorization"] = "Bearer " + self.token
        change = method in _CHANGES
        if change and logged_in and keyed_changes:
            headers["Idempotency-Key"] = uuid.uuid4().hex
        keyed = "Idempotency-Key" in headers
        unsafe = change and not keyed  # sent again only when nothing was sent
        patient = self._answered and (
            self._gave_up_at is None or time.monotonic() - self._gave_up_at > RETRY_SECONDS
        )
        deadline = None
        pause = _RETRY_FIRST_PAUSE
        while True:
            req = urllib.request.Request(
                self._connect_url + path, data=data, headers=headers, method=method
            )
            try:
                with self._opener.open(req, timeout=timeout or self.timeout) as resp:
                    answer = resp.read(), {k.lower(): v for k, v in resp.headers.items()}
                self._gave_up_at = None
                self._answered = True
                return answer
            except urllib.error.HTTPError as err:
                raw = err.read()
                error = _error_from_http(err.code, raw, err.headers)
                # A server busy for now (503 with Retry-After: its memory for request bodies and
                # unread answers is taken) is asked again after the wait it names.
                busy = _retry_after(err.code, err.headers)
                again = not unsafe and (err.code in (502, 504) or busy is not None)
                if not again:  # an answer from the server itself, if an error one
                    self._gave_up_at = None
                    self._answered = True
                failure = error
            except (urllib.error.URLError, socket.timeout, ConnectionError,
                    http.client.HTTPException) as err:
                busy = None
                reason = getattr(err, "reason", err)
                refused = isinstance(reason, ConnectionRefusedError)
                # An untrusted certificate does not get trusted by asking again.
                again = (not unsafe or refused) and not isinstance(
                    reason, ssl.SSLCertVerificationError)
                failure = self._unreachable(err)
            if deadline is None:
                deadline = time.monotonic() + RETRY_SECONDS
            left = deadline - time.monotonic()
            if not again:
                raise failure from None
            if left <= 0 or not patient:
                self._gave_up_at = time.monotonic()
                raise failure from None
            if busy is not None and busy > left:
                raise failure from None  # the server asks for a longer wait than is left
            # At least the back-off's pause: a "Retry-After: 0" must not make a tight loop.
            time.sleep(min(max(pause, busy or 0), left))
            pause = min(pause * 2, _RETRY_MAX_PAUSE)


def route_path(route, path_params=None, query=None):
    """``(method, path with query)`` of a route of ``ROUTES``; path parameters are quoted."""
    method, template = ROUTES[route]
    params = {k: urllib.parse.quote(str(v), safe="") for k, v in (path_params or {}).items()}
    path = template.format(**params)
    if query:
        pairs = [(k, v) for k, v in query.items() if v is not None]
        if pairs:
            path += "?" + urllib.parse.urlencode(pairs)
    return method, path


def _retry_after(status, headers):
    """The seconds a 503 answer asks to wait, or None."""
    if status != 503 or headers is None:
        return None
    try:
        return max(int(str(headers.get("Retry-After", "")).strip()), 0)
    except ValueError:
        return None


def _decode(raw):
    if not raw:
        return None
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise errors.DatasiteError(
            "BAD_RESPONSE",
            "the server answered with something that is not JSON: "
            + raw[:200].decode("utf-8", "replace"),
            None,
        ) from None


def _error_from_http(status, raw, headers):
    code, message = None, ""
    try:
        body = json.loads(raw.decode("utf-8")) if raw else None
    except (UnicodeDecodeError, ValueError):
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = body["error"].get("code")
        message = body["error"].get("message") or ""
    if not message:
        text = raw.decode("utf-8", "replace").strip() if raw else ""
        message = text[:500] or "HTTP {}".format(status)
    retry_after = None
    value = headers.get("Retry-After") if headers is not None else None
    if value is not None:
        try:
            retry_after = int(value.strip())
        except ValueError:
            retry_after = None
    error = errors.error_for(status, code, message, retry_after=retry_after)
    # The whole envelope: some answers carry more than code and message (an endpoint call's
    # "stdout").
    error.body = body if isinstance(body, dict) else None
    return error
