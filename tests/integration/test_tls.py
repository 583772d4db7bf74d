"""HTTPS: a server started with --tls-cert/--tls-key, a CA and certificates made here with the
openssl command. The Python client and the CLI verify the certificate (with the CA given, refused
without it); uploads (the 100-continue path) and downloads work over TLS; plain HTTP, TLS 1.1 and
weak TLS 1.2 ciphers are refused; a key file others may read is refused at start; SIGHUP reloads
the certificate, and a bad new one leaves the old one in place.
"""

import hashlib
import http.client
import os
import shutil
import signal
import ssl
import subprocess
import time

import pytest

import datasite as sy
from helpers import ROOT_EMAIL, ROOT_PASSWORD, DetachedServer, unique

OPENSSL = shutil.which("openssl")
pytestmark = [
    pytest.mark.skipif(OPENSSL is None, reason="needs the openssl command"),
    # The root admin keeps its default password here.
    pytest.mark.filterwarnings("ignore:You are using a default password"),
]


def openssl(*args, cwd):
    subprocess.run([OPENSSL, *args], cwd=cwd, check=True, capture_output=True, timeout=60)


class Pki:
    """A CA and server certificates it signs, all in one directory."""

    def __init__(self, directory):
        self.dir = directory
        self.ca = str(directory / "ca.pem")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
                "-subj", "/CN=datasite test CA", cwd=directory)

    def server_cert(self, name, names="IP:127.0.0.1,DNS:localhost"):
        """(certificate path, key path) of a new server certificate for ``names`` (its
        subjectAltName); the key is readable by its owner only."""
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=localhost",
                cwd=self.dir)
        (self.dir / (name + ".ext")).write_text(
            "subjectAltName={}\nextendedKeyUsage=serverAuth\n".format(names))
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-extfile", name + ".ext", "-out", name + ".pem",
                cwd=self.dir)
        key = self.dir / (name + ".key")
        os.chmod(key, 0o600)
        return str(self.dir / (name + ".pem")), str(key)


def der_of(pem_path):
    with open(pem_path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def served_der(port):
    """The certificate a new connection gets (not verified: only compared)."""
    return ssl.PEM_cert_to_DER_cert(ssl.get_server_certificate(("127.0.0.1", port)))


def start_tls_server(binary, directory, cert, key, *flags):
    server = DetachedServer(binary, directory / unique("data"), "--tls-cert", cert, "--tls-key",
                            key, *flags)
    server.start()
    return server


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_server(binary, pki, tmp_path_factory):
    cert, key = pki.server_cert("server")
    server = start_tls_server(binary, tmp_path_factory.mktemp("tls"), cert, key)
    yield server
    server.stop()


@pytest.fixture
def no_ca_env(monkeypatch):
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "DATASITE_CA_FILE"):
        monkeypatch.delenv(name, raising=False)


def url_of(server):
    return "https://127.0.0.1:{}".format(server.port)


def test_client_with_the_ca_logs_in_uploads_lists_and_downloads(tls_server, pki, no_ca_env):
    client = sy.login(url=url_of(tls_server), email=ROOT_EMAIL, password=ROOT_PASSWORD,
                      verify=pki.ca)
    assert client.url.startswith("https://")
    # Large enough for many TLS records and several upload buffers.
    data = hashlib.sha256(b"tls").digest() * (3 << 16)
    ds = sy.Dataset(name=unique("tls"), summary="over https")
    ds.add_asset(sy.Asset(name="blob", data=data, mock=b"mock"))
    result = client.upload_dataset(ds)
    assert isinstance(result, sy.SyftSuccess), result
    assert ds.name in [d.name for d in client.datasets]
    asset = client.datasets[ds.name].assets["blob"]
    assert asset.data == data
    assert asset.mock == b"mock"


def test_client_checks_a_localhost_url_against_the_name_localhost(binary, pki, tmp_path,
                                                                  no_ca_env):
    """Regression (a cold attack): the client connected to https://localhost as 127.0.0.1 and
    checked the certificate against that address, so a certificate naming DNS:localhost alone (what
    `openssl req -subj /CN=localhost -addext subjectAltName=DNS:localhost` makes) was refused."""
    cert, key = pki.server_cert("localhost_only", names="DNS:localhost")
    server = start_tls_server(binary, tmp_path, cert, key)
    try:
        client = sy.login(url="https://localhost", port=server.port, email=ROOT_EMAIL,
                          password=ROOT_PASSWORD, verify=pki.ca)
        # Uploads and downloads make their own connections.
        data = hashlib.sha256(b"localhost").digest() * 4096
        ds = sy.Dataset(name=unique("tls_localhost"), summary="over https to localhost")
        ds.add_asset(sy.Asset(name="blob", data=data, mock=b"mock"))
        assert isinstance(client.upload_dataset(ds), sy.SyftSuccess)
        assert client.datasets[ds.name].assets["blob"].data == data
        # The name is still checked: this certificate does not name 127.0.0.1.
        with pytest.raises(sy.errors.ServerConnectionError) as err:
            sy.login(url="https://127.0.0.1", port=server.port, email=ROOT_EMAIL,
                     password=ROOT_PASSWORD, verify=pki.ca)
        assert "not trusted" in str(err.value)
    finally:
        server.stop()


def test_client_without_the_ca_is_refused_clearly(tls_server, no_ca_env):
    with pytest.raises(sy.errors.ServerConnectionError) as err:
        sy.login(url=url_of(tls_server), email=ROOT_EMAIL, password=ROOT_PASSWORD)
    assert "certificate" in str(err.value) and "not trusted" in str(err.value)
    assert "verify=" in str(err.value)


def test_client_honours_ssl_cert_file(tls_server, pki, no_ca_env, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", pki.ca)
    client = sy.login(url=url_of(tls_server), email=ROOT_EMAIL, password=ROOT_PASSWORD)
    assert client.url.startswith("https://")


def test_cli_verifies_with_its_ca_file(binary, tls_server, pki, no_ca_env):
    base = [binary, "users", "list", "--url", url_of(tls_server), "--email", ROOT_EMAIL,
            "--password", ROOT_PASSWORD]
    ok = subprocess.run(base + ["--ca-file", pki.ca], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert ROOT_EMAIL in ok.stdout
    refused = subprocess.run(base, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0
    assert "TLS" in refused.stderr or "certificate" in refused.stderr, refused.stderr


def test_plain_http_to_the_tls_port_gets_no_answer(tls_server):
    conn = http.client.HTTPConnection("127.0.0.1", tls_server.port, timeout=10)
    try:
        with pytest.raises((http.client.HTTPException, OSError)):
            conn.request("GET", "/api/v1/metadata")
            conn.getresponse().read()
    finally:
        conn.close()


def s_client(port, *args):
    return subprocess.run(
        [OPENSSL, "s_client", "-connect", "127.0.0.1:{}".format(port), *args],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)


def test_tls_1_1_is_refused_and_1_2_accepted(tls_server):
    # SECLEVEL=0: this client would speak TLS 1.1; the server must be the one refusing.
    old = s_client(tls_server.port, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
    assert old.returncode != 0
    assert "protocol version" in old.stdout + old.stderr, old.stdout + old.stderr
    new = s_client(tls_server.port, "-tls1_2")
    assert new.returncode == 0, new.stderr
    assert "ECDHE-ECDSA-AES128-GCM-SHA256" in new.stdout or "GCM" in new.stdout, new.stdout


def test_tls_1_2_cbc_cipher_is_refused(tls_server):
    weak = s_client(tls_server.port, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA")
    assert weak.returncode != 0
    assert "handshake failure" in weak.stdout + weak.stderr, weak.stdout + weak.stderr


def test_keep_alive_answers_two_requests_on_one_connection(tls_server, pki):
    context = ssl.create_default_context(cafile=pki.ca)
    conn = http.client.HTTPSConnection("127.0.0.1", tls_server.port, timeout=10, context=context)
    try:
        conn.request("GET", "/api/v1/metadata")
        first = conn.getresponse()
        first.read()
        sock = conn.sock
        assert first.status == 200 and not first.will_close
        conn.request("GET", "/api/v1/metadata")
        second = conn.getresponse()
        second.read()
        assert second.status == 200
        assert conn.sock is sock  # no new connection was opened
    finally:
        conn.close()


def test_key_readable_by_group_is_refused_at_start(binary, pki, tmp_path):
    cert, key = pki.server_cert("loose")
    os.chmod(key, 0o640)
    server = DetachedServer(binary, tmp_path / "data", "--tls-cert", cert, "--tls-key", key)
    try:
        code, out, err = server.try_start()
        assert code != 0
        assert "0640" in err and "chmod 600" in err, err
    finally:
        server.stop()


def wait_for(predicate, what, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.05)


def test_sighup_reloads_the_certificate_and_keeps_it_on_a_bad_one(binary, pki, tmp_path):
    first_cert, first_key = pki.server_cert("first")
    second_cert, second_key = pki.server_cert("second")
    cert, key = str(tmp_path / "live.pem"), str(tmp_path / "live.key")
    shutil.copy(first_cert, cert)
    shutil.copy(first_key, key)
    os.chmod(key, 0o600)
    server = start_tls_server(binary, tmp_path, cert, key)
    try:
        assert served_der(server.port) == der_of(first_cert)
        shutil.copy(second_cert, cert)
        shutil.copy(second_key, key)
        os.kill(server.pid, signal.SIGHUP)
        wait_for(lambda: served_der(server.port) == der_of(second_cert), "the new certificate")
        assert server.alive()

        with open(cert, "w") as f:
            f.write("not a certificate\n")
        os.kill(server.pid, signal.SIGHUP)
        log = server.data_dir / "server.log"
        wait_for(lambda: "not reloaded" in log.read_text(), "the reload error in the log")
        assert served_der(server.port) == der_of(second_cert)
        client = sy.login(url=url_of(server), email=ROOT_EMAIL, password=ROOT_PASSWORD,
                          verify=pki.ca)
        assert client.url.startswith("https://")
    finally:
        server.stop()


def test_upload_refused_before_its_body_is_answered_over_tls(binary, pki, tmp_path, no_ca_env):
    # The refusal comes instead of "100 Continue": the client has read part of it while looking for
    # the interim answer, and must still hand the whole answer to its caller.
    cert, key = pki.server_cert("limited")
    server = start_tls_server(binary, tmp_path, cert, key, "--max-blob-bytes", "1000")
    try:
        client = sy.login(url=url_of(server), email=ROOT_EMAIL, password=ROOT_PASSWORD,
                          verify=pki.ca)
        ds = sy.Dataset(name=unique("big"), summary="too large")
        ds.add_asset(sy.Asset(name="a", data=b"\x02" * (4 << 20), mock=b"small"))
        started = time.monotonic()
        with pytest.raises(sy.PayloadTooLargeError) as info:
            client.upload_dataset(ds)
        assert info.value.status == 413 and info.value.message
        assert time.monotonic() - started < 10
    finally:
        server.stop()
