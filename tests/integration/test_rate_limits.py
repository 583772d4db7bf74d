"""Rate limits: 5 login failures per (address, account) in 5 minutes, 60 attempts per address a
minute, guest sessions per address and in all, wrong old passwords in password changes.

Each test has a server of its own, so the counters start at zero. All tests come from 127.0.0.1:
different client addresses are made with X-Forwarded-For through a server that trusts 127.0.0.1 as
a proxy (``--trusted-proxy``).
"""

import http.client
import json

import pytest

import datasite as sy
from helpers import (
    PASSWORD,
    ROOT_EMAIL,
    ROOT_PASSWORD,
    Api,
    DetachedServer,
    assert_error,
    unique_email,
)

LOGIN = "/api/v1/auth/login"
GUEST = "/api/v1/auth/guest"
PASSWORD_ROUTE = "/api/v1/account/password"


def fail_login(api, email, times, headers=None):
    for attempt in range(times):
        resp = api.post(LOGIN, {"email": email, "password": "Wr0ng-Passw0rd"}, headers=headers)
        assert_error(resp, 401, "UNAUTHENTICATED")


def from_address(address):
    return {"X-Forwarded-For": address}


@pytest.fixture
def detached(binary, tmp_path):
    """Starts servers with launch flags the client does not pass; stops them at the end."""
    started = []

    def start(*flags):
        server = DetachedServer(binary, tmp_path / "data{}".format(len(started)), *flags)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


def assert_rate_limited(resp, max_wait):
    assert_error(resp, 429, "RESOURCE_EXHAUSTED")
    assert "retry-after" in resp.headers, resp.headers
    wait = int(resp.headers["retry-after"])
    assert 0 < wait <= max_wait, wait


def test_sixth_failure_for_an_account_is_rate_limited(server):
    api = Api(server.port)
    fail_login(api, ROOT_EMAIL, 5)
    resp = api.post(LOGIN, {"email": ROOT_EMAIL, "password": "Wr0ng-Passw0rd"})
    assert_rate_limited(resp, 300)


def test_locked_account_refuses_the_right_password_too(server):
    api = Api(server.port)
    fail_login(api, ROOT_EMAIL, 5)
    resp = api.post(LOGIN, {"email": ROOT_EMAIL, "password": ROOT_PASSWORD})
    assert_rate_limited(resp, 300)


def test_account_lock_leaves_other_accounts_alone(server):
    api = Api(server.port)
    root = api.login(ROOT_EMAIL, ROOT_PASSWORD)
    user = api.create_user(root, email=unique_email("locked"))
    fail_login(api, user["email"], 5)
    assert_rate_limited(api.post(LOGIN, {"email": user["email"], "password": PASSWORD}), 300)
    api.login(ROOT_EMAIL, ROOT_PASSWORD)


def test_client_raises_rate_limited_error_with_retry_after(server):
    api = Api(server.port)
    fail_login(api, ROOT_EMAIL, 5)
    with pytest.raises(sy.RateLimitedError) as err:
        sy.login(url="localhost", port=server.port, email=ROOT_EMAIL, password=ROOT_PASSWORD)
    assert (err.value.status, err.value.code) == (429, "RESOURCE_EXHAUSTED")
    assert isinstance(err.value.retry_after, int) and 0 < err.value.retry_after <= 300


def test_sixty_first_attempt_from_one_address_is_rate_limited(server):
    api = Api(server.port)
    for n in range(60):
        # Distinct unknown accounts, so only the per-address limit can apply.
        resp = api.post(
            LOGIN, {"email": unique_email("probe{}".format(n)), "password": "Wr0ng-Passw0rd"}
        )
        assert_error(resp, 401, "UNAUTHENTICATED")
    resp = api.post(LOGIN, {"email": unique_email("probe"), "password": "Wr0ng-Passw0rd"})
    assert_rate_limited(resp, 60)


def test_address_limit_counts_successful_logins(server):
    api = Api(server.port)
    for _ in range(60):
        api.login(ROOT_EMAIL, ROOT_PASSWORD)
    assert_rate_limited(api.post(LOGIN, {"email": ROOT_EMAIL, "password": ROOT_PASSWORD}), 60)


# Regression: five anonymous wrong passwords locked the root admin out for 300 s, from anywhere.
def test_strangers_failures_do_not_lock_root_out_of_another_address(detached):
    api = detached("--trusted-proxy", "127.0.0.1")
    stranger, owner = from_address("203.0.113.9"), from_address("198.51.100.20")
    fail_login(api, ROOT_EMAIL, 5, headers=stranger)
    resp = api.post(LOGIN, {"email": ROOT_EMAIL, "password": ROOT_PASSWORD}, headers=stranger)
    assert_rate_limited(resp, 300)
    resp = api.post(LOGIN, {"email": ROOT_EMAIL, "password": ROOT_PASSWORD}, headers=owner)
    assert resp.status == 200, resp


def test_forwarded_for_from_an_untrusted_peer_is_ignored(server):
    # No --trusted-proxy: the header is the client's say-so, so 127.0.0.1 is the address.
    api = Api(server.port)
    fail_login(api, ROOT_EMAIL, 5, headers=from_address("203.0.113.9"))
    resp = api.post(
        LOGIN,
        {"email": ROOT_EMAIL, "password": ROOT_PASSWORD},
        headers=from_address("198.51.100.20"),
    )
    assert_rate_limited(resp, 300)


def test_spraying_from_one_forwarded_address_is_limited_across_accounts(detached):
    api = detached("--trusted-proxy", "127.0.0.1", "--login-attempts-per-minute", "5")
    sprayer = from_address("203.0.113.9")
    for n in range(5):
        email = unique_email("spray{}".format(n))
        resp = api.post(LOGIN, {"email": email, "password": "Wr0ng-Passw0rd"}, headers=sprayer)
        assert_error(resp, 401, "UNAUTHENTICATED")
    resp = api.post(LOGIN, {"email": ROOT_EMAIL, "password": ROOT_PASSWORD}, headers=sprayer)
    assert_rate_limited(resp, 60)
    resp = api.post(
        LOGIN, {"email": ROOT_EMAIL, "password": ROOT_PASSWORD}, headers=from_address("192.0.2.1")
    )
    assert resp.status == 200, resp


# ipv6_login_bruteforce: the login throttle counted each address of an IPv6 /64 apart, so one host
# got 5 guesses per account from each of its 2^64 addresses.
def test_wrong_passwords_from_one_ipv6_slash64_are_counted_together(detached):
    api = detached("--trusted-proxy", "127.0.0.1")
    for n in range(5):
        resp = api.post(LOGIN, {"email": ROOT_EMAIL, "password": "Wr0ng-Passw0rd"},
                        headers=from_address("2001:db8:1:2::%x" % (0x1000 + n)))
        assert_error(resp, 401, "UNAUTHENTICATED")
    resp = api.post(LOGIN, {"email": ROOT_EMAIL, "password": ROOT_PASSWORD},
                    headers=from_address("2001:db8:1:2:ffff::1"))
    assert_rate_limited(resp, 300)
    resp = api.post(LOGIN, {"email": ROOT_EMAIL, "password": ROOT_PASSWORD},
                    headers=from_address("2001:db8:1:3::1"))
    assert resp.status == 200, resp


def test_guest_sessions_of_one_ipv6_slash64_are_counted_together(detached):
    api = detached("--trusted-proxy", "127.0.0.1", "--guest-sessions-per-minute", "2")
    for n in range(2):
        assert api.post(GUEST, {}, headers=from_address("2001:db8::%d" % (n + 1))).status == 200
    assert_rate_limited(api.post(GUEST, {}, headers=from_address("2001:db8::abcd")), 60)
    assert api.post(GUEST, {}, headers=from_address("2001:db8:0:1::1")).status == 200


def test_launch_refuses_a_trusted_proxy_that_is_not_an_address(binary, tmp_path):
    server = DetachedServer(binary, tmp_path / "data", "--trusted-proxy", "proxy.example.org")
    try:
        code, out, err = server.try_start()
        assert code != 0
        assert "--trusted-proxy" in out + err
    finally:
        server.stop()


# Regression: anonymous guest sessions had no rate limit (7,484 session rows in 10 s).
def test_guest_sessions_per_address_are_rate_limited(detached):
    api = detached("--guest-sessions-per-minute", "3")
    for _ in range(3):
        assert api.post(GUEST, {}).status == 200
    assert_rate_limited(api.post(GUEST, {}), 60)


def test_client_guest_login_raises_rate_limited_error(detached):
    api = detached("--guest-sessions-per-minute", "1")
    assert api.post(GUEST, {}).status == 200
    with pytest.raises(sy.RateLimitedError) as err:
        sy.login_as_guest(url="localhost", port=api.port)
    assert 0 < err.value.retry_after <= 60


def test_live_guest_sessions_are_capped(detached):
    api = detached("--trusted-proxy", "127.0.0.1", "--max-guest-sessions", "2")
    # Each from a network of its own: at this cap one network may hold one (a thirty-second, at least one).
    for n in range(2):
        assert api.post(GUEST, {}, headers=from_address("192.0.{}.1".format(n))).status == 200
    resp = api.post(GUEST, {}, headers=from_address("192.0.99.1"))
    assert_rate_limited(resp, 3600)
    api.login(ROOT_EMAIL, ROOT_PASSWORD)  # users still log in


# Regression: a password change had no limit on wrong old passwords.
def test_wrong_old_passwords_are_rate_limited(server):
    api = Api(server.port)
    root = api.login(ROOT_EMAIL, ROOT_PASSWORD)
    user = api.create_user(root, email=unique_email("pwd"))
    token = api.login(user["email"], PASSWORD)
    wrong = {"old_password": "Wr0ng-Passw0rd", "new_password": "N3w-Passw0rd-Here"}
    for _ in range(5):
        assert_error(api.post(PASSWORD_ROUTE, wrong, token=token), 409, "FAILED_PRECONDITION")
    right = {"old_password": PASSWORD, "new_password": "N3w-Passw0rd-Here"}
    assert_rate_limited(api.post(PASSWORD_ROUTE, right, token=token), 300)
    api.login(user["email"], PASSWORD)  # the password did not change


def test_guest_sessions_are_rate_limited_by_default(server):
    api = Api(server.port)
    for _ in range(30):
        assert api.post(GUEST, {}).status == 200
    assert_rate_limited(api.post(GUEST, {}), 60)


def post_from(source, port, path, body):
    """POSTs from the loopback address ``source`` (all of 127.0.0.0/8 reaches the server)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    try:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


# The same regression without X-Forwarded-For: the stranger is a different TCP peer.
def test_strangers_failures_from_another_peer_do_not_lock_root_out(server):
    wrong = {"email": ROOT_EMAIL, "password": "Wr0ng-Passw0rd"}
    for _ in range(5):
        assert post_from("127.0.0.2", server.port, LOGIN, wrong)[0] == 401
    assert post_from("127.0.0.2", server.port, LOGIN, wrong)[0] == 429
    Api(server.port).login(ROOT_EMAIL, ROOT_PASSWORD)


# Behind a Kubernetes ingress the proxies' pod addresses change: --trusted-proxy takes networks.
def test_a_trusted_proxy_network_names_the_client(detached):
    api = detached("--trusted-proxy", "127.0.0.0/8")
    stranger, owner = from_address("203.0.113.9"), from_address("198.51.100.20")
    fail_login(api, ROOT_EMAIL, 5, headers=stranger)
    assert_rate_limited(
        api.post(LOGIN, {"email": ROOT_EMAIL, "password": ROOT_PASSWORD}, headers=stranger), 300)
    resp = api.post(LOGIN, {"email": ROOT_EMAIL, "password": ROOT_PASSWORD}, headers=owner)
    assert resp.status == 200, resp


@pytest.mark.parametrize("network,why", [
    ("0.0.0.0/0", "every address"),
    ("::/0", "every address"),
    ("127.0.0.1/8", "host bits set: the network is 127.0.0.0/8"),
    ("10.0.0.0/33", "prefix must be 1 to 32"),
    ("proxy.example/8", "not an IP address"),
])
def test_a_trusted_proxy_that_is_no_network_or_trusts_everyone_is_refused(
        binary, tmp_path, network, why):
    server = DetachedServer(binary, tmp_path / "data", "--trusted-proxy", network)
    code, out, err = server.try_start()
    if code == 0:
        server.stop()
    assert code != 0 and why in err, (code, out, err)
