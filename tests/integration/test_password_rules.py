"""Password rules after NIST SP 800-63B (issue 12): at least 8 characters, at most 128, not a common
password (the list python3-zxcvbn ships, built into the server), no composition rules. A
development server (``--dev-mode`` / ``dev_mode=True``) on loopback accepts short and common
passwords, as PySyft's tutorials use them, with a warning; a server that other machines can reach
never does, and refuses to start while such passwords exist.

Regression: "verysecurepassword" was refused for lacking an upper-case letter and a digit, and
"password123" was refused only for its letter case, not for being common.
"""

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

USERS = "/api/v1/users"
STRONG_ROOT_PASSWORD = "Root-" + PASSWORD


def new_user(password, email=None):
    return {
        "name": "P",
        "email": email or unique_email("pw"),
        "password": password,
        "password_verify": password,
        "role": "data_scientist",
    }


# A standard server --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def admin(module_server, api):
    return api.login(ROOT_EMAIL, ROOT_PASSWORD)


@pytest.mark.parametrize("password", ["verysecurepassword", "abcdefgz", "correct horse battery"])
def test_a_long_uncommon_password_needs_no_digit_or_capital(api, admin, password):
    body = new_user(password)
    resp = api.post(USERS, body, token=admin)
    assert resp.status == 201, resp
    assert "warning" not in resp.json
    assert api.login(body["email"], password)


@pytest.mark.parametrize("password", ["password123", "qwertyuiop", "Password123", "iloveyou1"])
def test_a_common_password_is_refused_with_a_clear_message(api, admin, password):
    resp = api.post(USERS, new_user(password), token=admin)
    assert_error(resp, 400, "INVALID_ARGUMENT")
    assert "most common passwords" in resp.error["message"], resp


@pytest.mark.parametrize(
    "password, fragment",
    [
        ("abc123", "at least 8"),
        ("pw", "at least 8"),
        ("123", "at least 8"),
        ("", "must not be empty"),
        ("x" * 129, "at most 128"),
        ("mmmmmmmmmmmm", "repeated"),
    ],
)
def test_short_long_and_repeated_passwords_are_refused(api, admin, password, fragment):
    resp = api.post(USERS, new_user(password), token=admin)
    assert_error(resp, 400, "INVALID_ARGUMENT")
    assert fragment in resp.error["message"], resp


def test_every_way_of_setting_a_password_follows_the_rules(module_server, api, admin):
    email = unique_email("pw")
    created = api.post(USERS, new_user("verysecurepassword", email), token=admin)
    assert created.status == 201, created
    token = api.login(email, "verysecurepassword")
    changed = api.post(
        "/api/v1/account/password",
        {"old_password": "verysecurepassword", "new_password": "qwertyuiop"},
        token=token,
    )
    assert_error(changed, 400, "INVALID_ARGUMENT")
    patched = api.patch(USERS + "/" + created.json["id"], {"password": "abc123"}, token=admin)
    assert_error(patched, 400, "INVALID_ARGUMENT")
    client = sy.login(url="localhost", port=module_server.port, email=email,
                      password="verysecurepassword")
    with pytest.raises(sy.InvalidArgumentError, match="most common"):
        client.account.set_password("password123", old_password="verysecurepassword")
    assert client.account.set_password("another long phrase", old_password="verysecurepassword")


# A development server ------------------------------------------------------------------------------


@pytest.fixture
def dev_server(launcher):
    return launcher.launch(dev_mode=True)


@pytest.mark.filterwarnings("ignore:You are using a default password")
def test_a_loopback_dev_server_accepts_tutorial_passwords_with_a_warning(dev_server, capsys):
    api = Api(dev_server.port)
    admin = api.login(ROOT_EMAIL, ROOT_PASSWORD)
    for password in ("abc123", "pw", "123", "password123"):
        body = new_user(password)
        resp = api.post(USERS, body, token=admin)
        assert resp.status == 201, resp
        assert "development server" in resp.json["warning"], resp
        assert api.login(body["email"], password)
    good = api.post(USERS, new_user("verysecurepassword"), token=admin)
    assert good.status == 201 and "warning" not in good.json, good
    # Still refused in dev mode: empty, too long, the email itself.
    for body in (new_user(""), new_user("x" * 129)):
        assert_error(api.post(USERS, body, token=admin), 400, "INVALID_ARGUMENT")
    email = unique_email("same")
    assert_error(api.post(USERS, new_user(email, email), token=admin), 400, "INVALID_ARGUMENT")

    # The client shows the warning, as PySyft's tutorials register and log in with "abc123".
    client = sy.login(url="localhost", port=dev_server.port, email=ROOT_EMAIL,  # default: warns
                      password=ROOT_PASSWORD)
    capsys.readouterr()
    email = unique_email("tutorial")
    with pytest.warns(sy.DatasiteWarning, match="Weak password"):
        client.users.create(name="T", email=email, password="abc123", role="data_scientist")
    assert "weak password" in capsys.readouterr().out
    scientist = sy.login(url="localhost", port=dev_server.port, email=email, password="abc123")
    with pytest.warns(sy.DatasiteWarning, match="Weak password"):
        scientist.account.set_password("123", old_password="abc123")


def test_dev_mode_beyond_loopback_keeps_the_standard_rules(binary, tmp_path):
    server = DetachedServer(binary, tmp_path / "data", "--host", "0.0.0.0", "--dev-mode",
                            "--root-password", STRONG_ROOT_PASSWORD)
    try:
        api = server.start()
        admin = api.login(ROOT_EMAIL, STRONG_ROOT_PASSWORD)
        for password in ("abc123", "password123"):
            assert_error(api.post(USERS, new_user(password), token=admin), 400,
                         "INVALID_ARGUMENT")
    finally:
        server.stop()


@pytest.mark.parametrize("reachable", [("--allowed-host", "datasite.example.org"),
                                       ("--trusted-proxy", "127.0.0.1")])
def test_dev_mode_behind_a_host_name_or_proxy_keeps_the_standard_rules(binary, tmp_path,
                                                                       reachable):
    """On loopback but reached by others through a host name or a proxy: not a development
    server's leniency (a cold attack registered '123' from 203.0.113.9 through a proxy)."""
    server = DetachedServer(binary, tmp_path / "data", "--dev-mode", "--signup", *reachable)
    try:
        api = server.start()
        admin = api.login(ROOT_EMAIL, ROOT_PASSWORD)
        for password in ("123", "abc123", "password123"):
            assert_error(api.post(USERS, new_user(password), token=admin), 400,
                         "INVALID_ARGUMENT")
    finally:
        server.stop()


def test_accounts_with_dev_passwords_keep_a_server_behind_a_proxy_off(binary, tmp_path):
    data_dir = tmp_path / "data"
    dev = DetachedServer(binary, data_dir, "--dev-mode")
    proxied = DetachedServer(binary, data_dir, "--trusted-proxy", "127.0.0.1", name=dev.name)
    try:
        api = dev.start()
        admin = api.login(ROOT_EMAIL, ROOT_PASSWORD)
        weak = api.post(USERS, new_user("abc123"), token=admin)
        assert weak.status == 201, weak
        assert dev.land()[0] == 0
        code, _, err = proxied.try_start()
        assert code != 0 and weak.json["email"] in err, err
    finally:
        proxied.stop()
        dev.stop()


def test_accounts_with_dev_passwords_keep_a_server_on_loopback(binary, tmp_path):
    data_dir = tmp_path / "data"
    dev = DetachedServer(binary, data_dir, "--dev-mode")
    opened = DetachedServer(binary, data_dir, "--host", "0.0.0.0", name=dev.name)
    plain = DetachedServer(binary, data_dir, name=dev.name)
    try:
        api = dev.start()
        admin = api.login(ROOT_EMAIL, ROOT_PASSWORD)
        weak = api.post(USERS, new_user("abc123"), token=admin)
        assert weak.status == 201, weak
        changed = api.post(
            "/api/v1/account/password",
            {"old_password": ROOT_PASSWORD, "new_password": STRONG_ROOT_PASSWORD},
            token=admin,
        )
        assert changed.status == 200, changed
        assert dev.land()[0] == 0

        code, _, err = opened.try_start()
        assert code != 0, err
        assert "refusing to listen on 0.0.0.0" in err and weak.json["email"] in err, err

        # Once the weak password is replaced (on loopback, standard rules), the server may open.
        api = plain.start()
        admin = api.login(ROOT_EMAIL, STRONG_ROOT_PASSWORD)
        fixed = api.patch(USERS + "/" + weak.json["id"], {"password": "a much longer one"},
                          token=admin)
        assert fixed.status == 200 and "warning" not in fixed.json, fixed
        assert plain.land()[0] == 0
        code, out, err = opened.try_start()
        assert code == 0, err
    finally:
        opened.stop()
        plain.stop()
        dev.stop()


def test_launch_on_loopback_is_a_development_server_unless_told_not_to(binary, launcher):
    """PySyft's tutorials launch without dev_mode and register abc123: launch() on loopback makes
    a development server (a warning says so), and dev_mode=False holds it to the standard rules."""
    import warnings

    dev = launcher.launch(dev_mode=None)
    root = dev.login(email="info@example.org", password="changethis")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        root.register(name="Jane", email="jane@example.org", password="abc123",
                      password_verify="abc123")
    assert any("password" in str(w.message).lower() for w in caught)
    strict = launcher.launch(dev_mode=False)
    root = strict.login(email="info@example.org", password="changethis")
    with pytest.raises(sy.InvalidArgumentError, match="at least 8"):
        root.register(name="Jane", email="jane@example.org", password="abc123",
                      password_verify="abc123")
