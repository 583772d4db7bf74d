"""Login rate limits: 5 failures per account in 5 minutes, 60 attempts per address a minute.

Each test has a server of its own, so the counters start at zero.
"""

import pytest

import datasite as sy
from helpers import PASSWORD, ROOT_EMAIL, ROOT_PASSWORD, Api, assert_error, unique_email

LOGIN = "/api/v1/auth/login"


def fail_login(api, email, times):
    for attempt in range(times):
        resp = api.post(LOGIN, {"email": email, "password": "Wr0ng-Passw0rd"})
        assert_error(resp, 401, "UNAUTHENTICATED")


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
