"""The client's own logic, without a server: URLs, roles, results, errors, escaping."""

import http.server
import threading

import pytest

import datasite as sy
from datasite import _display
from datasite._http import Transport, _error_from_http, base_url_for
from datasite._routes import ROUTES


@pytest.mark.parametrize(
    "url,port,expected",
    [
        ("localhost", 8093, "http://localhost:8093"),
        ("http://localhost", 8093, "http://localhost:8093"),
        ("http://example.org:9000", 8093, "http://example.org:9000"),
        ("https://example.org", 443, "https://example.org:443"),
        ("127.0.0.1", None, "http://127.0.0.1:8080"),
        ("http://[::1]:8001", None, "http://[::1]:8001"),
    ],
)
def test_login_url_forms(url, port, expected):
    assert base_url_for(url, port) == expected


@pytest.mark.parametrize("url", ["", "ftp://example.org", "http://", "http://host:port"])
def test_bad_login_urls_raise_value_error(url):
    with pytest.raises(ValueError):
        base_url_for(url, 8080)


def test_roles_are_ordered():
    order = [
        sy.ServiceRole.GUEST,
        sy.ServiceRole.DATA_SCIENTIST,
        sy.ServiceRole.DATA_OWNER,
        sy.ServiceRole.ADMIN,
    ]
    assert sorted(reversed(order)) == order
    assert sy.ServiceRole.DATA_OWNER >= sy.ServiceRole.DATA_SCIENTIST
    assert not sy.ServiceRole.GUEST > sy.ServiceRole.DATA_SCIENTIST


@pytest.mark.parametrize(
    "role,text",
    [
        (sy.ServiceRole.GUEST, "guest"),
        (sy.ServiceRole.DATA_SCIENTIST, "data_scientist"),
        (sy.ServiceRole.DATA_OWNER, "data_owner"),
        (sy.ServiceRole.ADMIN, "admin"),
    ],
)
def test_roles_map_to_server_strings(role, text):
    assert role.server_value == text
    assert sy.ServiceRole(text) is role
    assert sy.ServiceRole.from_server(text) is role


def test_unknown_role_string_raises_value_error():
    with pytest.raises(ValueError):
        sy.ServiceRole("superuser")


def test_syft_success_is_truthy_and_error_falsy():
    ok = sy.SyftSuccess("done")
    assert ok and repr(ok) == "SyftSuccess: done" and str(ok) == "done"
    err = sy.SyftError("nope")
    assert not err and repr(err) == "SyftError: nope"
    assert "&lt;b&gt;" in sy.SyftSuccess("<b>")._repr_html_()


@pytest.mark.parametrize(
    "status,code,cls",
    [
        (400, "INVALID_ARGUMENT", sy.InvalidArgumentError),
        (401, "UNAUTHENTICATED", sy.AuthenticationError),
        (403, "PERMISSION_DENIED", sy.PermissionDeniedError),
        (404, "NOT_FOUND", sy.NotFoundError),
        (405, "METHOD_NOT_ALLOWED", sy.MethodNotAllowedError),
        (409, "ALREADY_EXISTS", sy.AlreadyExistsError),
        (409, "FAILED_PRECONDITION", sy.FailedPreconditionError),
        (413, "PAYLOAD_TOO_LARGE", sy.PayloadTooLargeError),
        (429, "RESOURCE_EXHAUSTED", sy.RateLimitedError),
        (500, "INTERNAL", sy.InternalServerError),
        (503, "UNAVAILABLE", sy.UnavailableError),
    ],
)
def test_error_answers_become_typed_exceptions(status, code, cls):
    body = '{{"error": {{"code": "{}", "message": "server says no"}}}}'.format(code).encode()
    err = _error_from_http(status, body, {"Retry-After": "7"})
    assert type(err) is cls and isinstance(err, sy.DatasiteError)
    assert (err.code, err.message, err.status, str(err)) == (
        code,
        "server says no",
        status,
        "server says no",
    )
    if cls is sy.RateLimitedError:
        assert err.retry_after == 7


def test_error_without_json_body_keeps_status():
    err = _error_from_http(502, b"<html>bad gateway</html>", {})
    assert err.status == 502 and "bad gateway" in err.message


def test_markdown_escaping_keeps_code_and_neutralises_html():
    text = "Hi <img src=x> `<code>` & bye\n```\n<pre>\n```"
    assert (
        _display.md_esc_block(text) == "Hi &lt;img src=x&gt; `<code>` &amp; bye\n```\n<pre>\n```"
    )


@pytest.mark.parametrize(
    "text",
    [
        "\\`<img src=x onerror=alert(1)>`",  # an escaped backtick opens no code span
        "`<img src=x onerror=alert(1)>``",  # a run of two does not close a run of one
        "``<img src=x onerror=alert(1)>`",
    ],
)
def test_markdown_escaping_does_not_take_a_non_code_span_for_code(text):
    assert "<img" not in _display.md_esc_block(text)


def test_route_table_uses_api_prefix_and_known_methods():
    for method, path in ROUTES.values():
        assert method in ("GET", "POST", "PATCH", "DELETE", "PUT")
        assert path.startswith("/api/v1/")


def test_version_is_exposed():
    assert sy.__version__ == "0.1.0"


# Issue 11: the review display shows what a reader would miss.


def test_the_review_display_shows_names_python_reads_as_others():
    source = ("def mean_age(df):\n    return 1\n\n"
              "def \U0001d5c6\U0001d5be\U0001d5ba\U0001d5c7_age(df):  # \U0001d5c6 in a comment\n"
              "    \u3164 = '\U0001d5c6'\n    return \u3164\n")
    shown = _display.reveal_code(source)
    assert "def \\U0001d5c6\\U0001d5be\\U0001d5ba\\U0001d5c7_age(df):" in shown
    assert "# \U0001d5c6 in a comment" in shown
    assert "\\u3164 = '\U0001d5c6'" in shown
    assert "\u3164" not in shown
    from datasite.code import CodeText

    assert repr(CodeText(source)) == shown
    from datasite.code import UserCode

    code = UserCode.__new__(UserCode)
    code.source = source
    assert [label for label, _ in code._hidden_rows()] == ["Warning"]
    code.source = "def f():\n    return 'x'\n"
    assert code._hidden_rows() == []


@pytest.mark.parametrize("hidden", ["\u3164", "\u115f", "\u1160", "\uffa0", "\u00ad", "\ufe0f",
                                    "\U000e0041", "\u2028"])
def test_hidden_characters_are_revealed(hidden):
    assert hidden not in _display.reveal("a" + hidden + "b")


# A server busy for now ---------------------------------------------------------------------------

class _BusyHandler(http.server.BaseHTTPRequestHandler):
    """Answers 503 + Retry-After: 1 to the first `busy` requests, then 200 with {"ok": true}."""

    busy = 1
    seen = []

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        type(self).seen.append((self.command, self.headers.get("Idempotency-Key")))
        if len(type(self).seen) <= type(self).busy:
            body = b'{"error": {"code": "UNAVAILABLE", "message": "busy"}}'
            self.send_response(503)
            self.send_header("Retry-After", "1")
        else:
            body = b'{"ok": true}'
            self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def busy_server():
    _BusyHandler.seen = []
    server = http.server.HTTPServer(("127.0.0.1", 0), _BusyHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


# The server answers 503 + Retry-After to a GET past a client's share of its memory for unread
# answers (one NAT address shares one): the client waits as asked and reads again.
def test_a_read_answered_503_with_retry_after_is_asked_again(busy_server):
    transport = Transport("http://127.0.0.1:{}".format(busy_server.server_port), token="t")
    transport._answered = True  # as after a login
    assert transport.request("GET", "/api/v1/datasets") == {"ok": True}
    assert [m for m, _ in _BusyHandler.seen] == ["GET", "GET"]


def test_a_change_without_a_key_answered_503_is_not_sent_again(busy_server):
    transport = Transport("http://127.0.0.1:{}".format(busy_server.server_port), token="t")
    transport._answered = True
    with pytest.raises(sy.UnavailableError):
        transport.send("POST", "/api/v1/anything", {"a": 1})
    assert [m for m, _ in _BusyHandler.seen] == ["POST"]
