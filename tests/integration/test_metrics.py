"""Observability: Prometheus metrics on their own listener (--metrics-address), request ids on
every response and in the log lines, JSON logs (--log-format json); and Debian's Prometheus
scraping a launched server."""

import json
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from helpers import ROOT_EMAIL, ROOT_PASSWORD, Api, DetachedServer, unique_email


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def observed(binary, tmp_path_factory):
    """A server with metrics on 127.0.0.1:<port> and JSON logs, in dev mode (whose weak-password
    warning is a log line written while a request is handled)."""
    metrics_port = free_port()
    server = DetachedServer(
        binary,
        tmp_path_factory.mktemp("metrics") / "data",
        "--workers", "0",
        "--dev-mode",
        "--log-format", "json",
        "--metrics-address", "127.0.0.1:{}".format(metrics_port),
    )
    api = server.start()
    try:
        yield server, api, metrics_port
    finally:
        server.stop()


def scrape(port):
    with urllib.request.urlopen("http://127.0.0.1:{}/metrics".format(port), timeout=10) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return resp.read().decode()


def sample(text, name, **labels):
    """The value of the sample `name{labels}` (labels in any order, all of them), or None."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$", line)
        assert m, "not an exposition line: {!r}".format(line)
        if m.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        if found == {k: str(v) for k, v in labels.items()}:
            return float(m.group(4))
    return None


def test_requests_are_counted_by_route_pattern(observed):
    server, api, metrics_port = observed
    token = api.login(ROOT_EMAIL, ROOT_PASSWORD)
    for _ in range(3):
        assert api.get("/readyz").status == 200
    missing = "00000000-0000-4000-8000-{:012d}".format(int(time.time()))
    assert api.get("/api/v1/users/" + missing, token=token).status == 404
    assert api.get("/no/such/path/" + missing).status == 404
    text = scrape(metrics_port)
    assert sample(text, "datasite_http_requests_total", method="GET", route="/readyz",
                  status="200") >= 3
    assert sample(text, "datasite_http_requests_total", method="GET",
                  route="/api/v1/users/{id}", status="404") >= 1
    # The paths clients send never become labels.
    assert missing not in text
    assert sample(text, "datasite_http_requests_total", method="", route="", status="404") >= 1
    assert sample(text, "datasite_http_request_duration_seconds_count", method="GET",
                  route="/readyz") >= 3
    assert sample(text, "datasite_http_request_duration_seconds_bucket", method="GET",
                  route="/readyz", le="+Inf") >= 3
    assert sample(text, "datasite_logins_total", result="ok") >= 1
    assert sample(text, "datasite_jobs", state="queued") == 0
    assert sample(text, "datasite_job_queue_depth") == 0
    assert sample(text, "datasite_sandbox_slots_busy") == 0
    assert re.search(r'^datasite_build_info\{version="[^"]+",commit="[^"]+"\} 1$', text, re.M), text


def test_upload_bytes_are_counted(observed):
    _, api, metrics_port = observed
    token = api.login(ROOT_EMAIL, ROOT_PASSWORD)
    before = sample(scrape(metrics_port), "datasite_upload_bytes_total",
                    route="/api/v1/blobs") or 0
    body = b"x" * 300_000
    resp = api("POST", "/api/v1/blobs?format=raw", raw=body, token=token,
               headers={"Content-Type": "application/octet-stream"})
    assert resp.status == 201, resp
    after = sample(scrape(metrics_port), "datasite_upload_bytes_total", route="/api/v1/blobs")
    assert after == before + len(body)


def test_failed_logins_are_counted(observed):
    _, api, metrics_port = observed
    before = sample(scrape(metrics_port), "datasite_logins_total", result="failed") or 0
    resp = api.post("/api/v1/auth/login", {"email": ROOT_EMAIL, "password": "wrong-password"})
    assert resp.status == 401, resp
    assert sample(scrape(metrics_port), "datasite_logins_total", result="failed") == before + 1


def test_metrics_are_not_on_the_api_port(observed):
    # Refused on the API's own port, to admins too: only the metrics listener serves them.
    _, api, _ = observed
    token = api.login(ROOT_EMAIL, ROOT_PASSWORD)
    assert api.get("/metrics").status == 404
    assert api.get("/metrics", token=token).status == 404


def test_metrics_listener_refuses_unknown_host_names(observed):
    # As the API's port: a web page that had its own name resolve to 127.0.0.1 reads nothing.
    _, _, metrics_port = observed
    resp = Api(metrics_port).get("/metrics", headers={"Host": "rebound.example:%d" % metrics_port})
    assert resp.status == 421, resp
    resp = Api(metrics_port).get("/metrics", headers={"Host": "localhost:%d" % metrics_port})
    assert resp.status == 200, resp


def test_metrics_listener_answers_the_allowed_host_names(binary, tmp_path):
    metrics_port = free_port()
    server = DetachedServer(binary, tmp_path / "data", "--workers", "0", "--allowed-host",
                            "metrics.example", "--metrics-address",
                            "127.0.0.1:{}".format(metrics_port))
    try:
        server.start()
        resp = Api(metrics_port).get("/metrics",
                                     headers={"Host": "metrics.example:%d" % metrics_port})
        assert resp.status == 200, resp
        assert "datasite_build_info" in resp.text
    finally:
        server.stop()


def test_a_safe_request_id_from_a_trusted_proxy_is_echoed(binary, tmp_path):
    server = DetachedServer(binary, tmp_path / "data", "--workers", "0", "--trusted-proxy",
                            "127.0.0.1")
    try:
        api = server.start()
        resp = api.get("/readyz", headers={"X-Request-Id": "trace.Abc-1_2"})
        assert resp.headers.get("x-request-id") == "trace.Abc-1_2"
    finally:
        server.stop()


def test_a_request_id_from_another_peer_is_replaced(observed):
    # Anyone could otherwise make their log lines pass for another request's.
    _, api, _ = observed
    got = api.get("/readyz", headers={"X-Request-Id": "trace.Abc-1_2"}).headers.get("x-request-id")
    assert got and got != "trace.Abc-1_2" and re.fullmatch(r"[0-9a-f]{16}", got), got


def test_a_request_id_is_made_when_none_is_sent(observed):
    _, api, _ = observed
    first = api.get("/readyz").headers.get("x-request-id")
    second = api.get("/readyz").headers.get("x-request-id")
    assert first and re.fullmatch(r"[0-9a-f]{16}", first), first
    assert first != second


@pytest.mark.parametrize("sent", ["has space", "x" * 65, "quote\"d", "semi;colon"])
def test_an_unsafe_request_id_is_replaced(observed, sent):
    _, api, _ = observed
    got = api.get("/readyz", headers={"X-Request-Id": sent}).headers.get("x-request-id")
    assert got and got != sent and re.fullmatch(r"[0-9a-f]{16}", got), got


def test_errors_carry_the_request_id(observed):
    _, api, _ = observed
    resp = api.get("/no/such/route")
    assert resp.status == 404
    assert re.fullmatch(r"[0-9a-f]{16}", resp.headers.get("x-request-id", "")), resp.headers
    resp = api.post("/api/v1/auth/login", raw="{not json")
    assert resp.status == 400
    assert re.fullmatch(r"[0-9a-f]{16}", resp.headers.get("x-request-id", "")), resp.headers


def test_json_log_lines_parse_and_carry_the_request_id(observed):
    server, api, _ = observed
    token = api.login(ROOT_EMAIL, ROOT_PASSWORD)
    email = unique_email("weak")
    body = {"name": "Weak", "email": email, "password": "abc", "password_verify": "abc",
            "role": "data_scientist"}
    resp = api.post("/api/v1/users", body, token=token)
    assert resp.status == 201, resp
    request_id = resp.headers.get("x-request-id")
    deadline = time.time() + 10
    while True:
        lines = [l for l in (server.data_dir / "server.log").read_text().splitlines() if l]
        entries = [json.loads(l) for l in lines]  # every line is one JSON object
        mine = [e for e in entries if email in e["msg"]]
        if mine or time.time() > deadline:
            break
        time.sleep(0.1)
    assert mine, lines[-5:]
    assert request_id and mine[0]["request_id"] == request_id
    assert mine[0]["level"] == "warning"
    for e in entries:
        assert set(e) <= {"time", "level", "msg", "request_id"}, e
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", e["time"]), e


@pytest.mark.skipif(shutil.which("prometheus") is None,
                    reason="Debian's prometheus is not installed (scripts/deps.sh installs it)")
def test_prometheus_scrapes_the_server(observed, tmp_path):
    _, api, metrics_port = observed
    api.get("/healthz")
    prom_port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "scrape_configs:\n"
        "  - job_name: datasite\n"
        "    static_configs:\n"
        "      - targets: ['127.0.0.1:{}']\n".format(metrics_port)
    )
    log = (tmp_path / "prometheus.log").open("w")
    prom = subprocess.Popen(
        ["prometheus", "--config.file", str(config), "--storage.tsdb.path", str(tmp_path / "tsdb"),
         "--web.listen-address", "127.0.0.1:{}".format(prom_port)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    try:
        query = urllib.parse.quote('datasite_http_requests_total{route="/healthz",status="200"}')
        url = "http://127.0.0.1:{}/api/v1/query?query={}".format(prom_port, query)
        deadline = time.time() + 60
        result = []
        while time.time() < deadline and not result:
            assert prom.poll() is None, (tmp_path / "prometheus.log").read_text()[-2000:]
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    answer = json.loads(resp.read())
                assert answer["status"] == "success", answer
                result = answer["data"]["result"]
            except OSError:
                pass
            if not result:
                time.sleep(0.5)
        assert result, "no sample after 60 s: " + (tmp_path / "prometheus.log").read_text()[-2000:]
        assert result[0]["metric"]["method"] == "GET"
        assert float(result[0]["value"][1]) >= 1
    finally:
        prom.terminate()
        try:
            prom.wait(timeout=20)
        except subprocess.TimeoutExpired:
            prom.kill()
            prom.wait()
        log.close()
