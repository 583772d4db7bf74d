"""The seed session (reference/seed-datasite-server.txt) through the Python client.

The first test runs the session as written, on a free port; the others check its parts one
behaviour at a time on one shared server.
"""

import contextlib
import datetime
import io
import re
import uuid
import warnings

import pytest

import datasite as sy
from helpers import (
    PASSWORD,
    ROOT_EMAIL,
    ROOT_PASSWORD,
    Api,
    assert_error,
    port_is_closed,
    unique_email,
)

NAME = "my_special_server"
DEFAULT_PASSWORD_TEXT = (
    "SyftWarning:\nYou are using a default password. Please change the password using "
    "`[your_client].account.set_password([new_password])`."
)
SEED_DESCRIPTION = "This is the default description for a Datasite Server."
REPR = "Logged into <my_special_server: High side Datasite> as <{}>"


def launched_lines(port, name=NAME):
    return [
        "Starting {} server on 127.0.0.1:{}".format(name, port),
        "You have launched a development server at http://127.0.0.1:{}. "
        "It is intended only for local use.".format(port),
        # launch() on loopback is a development server (PySyft's tutorials register abc123).
        "Dev mode: short and common passwords are accepted here, with a warning; such accounts "
        "keep this server on loopback.",
    ]


def test_seed_session_runs_as_written(launcher, capsys):
    server = launcher.track(sy.orchestra.launch(name="my_special_server", reset=True, port="auto"))
    assert capsys.readouterr().out.splitlines() == launched_lines(server.port)
    assert server.url == "http://localhost"
    assert isinstance(server.port, int) and server.port > 0
    assert server.deployment_type == sy.DeploymentType.PYTHON
    assert repr(server.deployment_type) == "<DeploymentType.PYTHON: 'python'>"

    with pytest.warns(sy.DatasiteWarning, match="default password") as warned:
        data_owner_client = sy.login(
            url="localhost", port=server.port, email="info@example.org", password="changethis"
        )
    assert [w.filename for w in warned] == [__file__]  # once, at the caller's line
    assert "default password" not in capsys.readouterr().out  # not printed a second time
    assert repr(data_owner_client) == REPR.format("info@example.org")

    settings = data_owner_client.settings
    assert settings.name == NAME
    assert settings.admin_email == "info@example.org"
    assert settings.signup_enabled is False
    assert settings.notifications_enabled is False
    assert re.search(r"Name:\s+my_special_server", repr(settings))

    assert data_owner_client.settings.update(description="Seed session datasite.")
    assert data_owner_client.settings.description == "Seed session datasite."

    jane = data_owner_client.users.create(
        name="Jane Doe",
        email="jane@example.org",
        password=PASSWORD,
        password_verify=PASSWORD,
        role=sy.ServiceRole.DATA_SCIENTIST,
        institution="OpenMined",
        website="https://openmined.org",
    )
    assert jane.role == sy.ServiceRole.DATA_SCIENTIST
    assert "jane@example.org" in [u.email for u in data_owner_client.users]

    new_root_password = "N3w-Root-Passw0rd"
    changed = data_owner_client.account.set_password(new_root_password, old_password="changethis")
    assert isinstance(changed, sy.SyftSuccess)

    assert data_owner_client.settings.update(signup_enabled=True)
    registered = server.register(
        name="Sheldon Cooper",
        email="sheldon@example.org",
        password=PASSWORD,
        password_verify=PASSWORD,
        institution="Caltech",
        website="https://caltech.edu",
    )
    assert isinstance(registered, sy.SyftSuccess)

    sheldon = server.login(email="sheldon@example.org", password=PASSWORD)
    assert repr(sheldon) == REPR.format("sheldon@example.org")
    assert sheldon.account.role == sy.ServiceRole.DATA_SCIENTIST

    with warnings.catch_warnings():
        warnings.simplefilter("error", sy.DatasiteWarning)
        root = server.login(email="info@example.org", password=new_root_password)
    assert "SyftWarning" not in capsys.readouterr().out
    assert root.account.is_root is True

    guest = server.login_as_guest()
    assert repr(guest) == "Logged into <my_special_server: High side Datasite> as GUEST"

    launcher.land(server)
    assert capsys.readouterr().out == "Stopping my_special_server\n"
    assert port_is_closed(server.port)


# The parts, on one server ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seed_server(module_launcher):
    return module_launcher.launch(name=NAME, reset=True)


@pytest.fixture(scope="module")
def api(seed_server):
    return Api(seed_server.port)


@pytest.fixture(scope="module")
def root_login(seed_server):
    """The module's one root login, with what it printed and warned."""
    out = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(out):
        warnings.simplefilter("always")
        client = sy.login(
            url="localhost", port=seed_server.port, email=ROOT_EMAIL, password=ROOT_PASSWORD
        )
    return client, out.getvalue(), list(caught)


@pytest.fixture(scope="module")
def root(root_login):
    return root_login[0]


@pytest.fixture(scope="module")
def initial_settings(api, root):
    """The settings as the root admin reads them before any test changed them."""
    return api.settings(root.token)


def test_login_repr_names_server_side_type_and_email(root):
    assert repr(root) == REPR.format(ROOT_EMAIL)


def test_default_password_login_issues_datasite_warning(root_login):
    caught = [w for w in root_login[2] if issubclass(w.category, sy.DatasiteWarning)]
    assert len(caught) == 1
    assert "default password" in str(caught[0].message)
    assert issubclass(sy.DatasiteWarning, UserWarning)


def test_default_password_warning_is_not_printed_a_second_time(root_login):
    # Regression: the warning was issued and printed, so a notebook showed it twice.
    assert "default password" not in root_login[1]
    assert DEFAULT_PASSWORD_TEXT.split("\n", 1)[1] in str(root_login[2][0].message)


def test_login_with_changed_password_has_no_warning(launcher):
    server = launcher.launch()
    api = Api(server.port)
    token = api.login(ROOT_EMAIL, ROOT_PASSWORD)
    resp = api.post(
        "/api/v1/account/password",
        {"old_password": ROOT_PASSWORD, "new_password": "An0ther-Passw0rd"},
        token=token,
    )
    assert resp.status == 200, resp
    out = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(out):
        warnings.simplefilter("always")
        client = sy.login(
            url="localhost", port=server.port, email=ROOT_EMAIL, password="An0ther-Passw0rd"
        )
    assert not [w for w in caught if issubclass(w.category, sy.DatasiteWarning)]
    assert "SyftWarning" not in out.getvalue()
    assert "SyftWarning" not in client._repr_markdown_()


def test_api_url_and_url(root, seed_server):
    assert root.url == "http://localhost:{}".format(seed_server.port)
    assert root.api_url == "http://localhost:{}/api/v1".format(seed_server.port)


def test_markdown_shows_welcome_then_url_and_types(root, api, seed_server):
    welcome = api.get("/api/v1/settings/welcome", token=root.token)
    assert welcome.status == 200, welcome
    markdown = welcome.json["markdown"]
    assert isinstance(markdown, str) and markdown
    shown = root._repr_markdown_()
    assert sy._display.md_esc_block(markdown) in shown
    assert "http://localhost:{}".format(seed_server.port) in shown
    lowered = shown.lower()
    assert "**server type:** datasite" in lowered
    assert "**server side type:** high side" in lowered
    assert "default password" in shown


def test_markdown_neutralises_html_in_a_custom_welcome(root, api, seed_server):
    original = api.settings(root.token)["welcome_markdown"]
    try:
        assert root.settings.welcome_customize("# Hello <script>alert(1)</script> `<code>`")
        shown = root._repr_markdown_()
        assert "<script>" not in shown
        assert "# Hello &lt;script&gt;alert(1)&lt;/script&gt; `<code>`" in shown
        assert "**URL:** http://localhost:{}".format(seed_server.port) in shown
        assert "**Server Type:** Datasite" in shown
        assert "**Server Side Type:** High Side" in shown
    finally:
        root.settings.update(welcome_markdown=original)


def test_settings_have_every_documented_field(initial_settings):
    expected = {
        "id": str,
        "name": str,
        "organization": str,
        "description": str,
        "deployed_on": str,
        "signup_enabled": bool,
        "notifications_enabled": bool,
        "admin_email": str,
        "server_type": str,
        "server_side_type": str,
        "association_request_auto_approval": bool,
        "allow_guest_sessions": bool,
        "welcome_markdown": str,
        "version": str,
    }
    for field, kind in expected.items():
        assert field in initial_settings, "settings lack {!r}: {}".format(field, initial_settings)
        assert isinstance(initial_settings[field], kind), (field, initial_settings[field])


def test_settings_values_after_first_launch(initial_settings):
    s = initial_settings
    assert uuid.UUID(s["id"]).hex and s["id"] == s["id"].lower()
    assert s["name"] == NAME
    assert s["admin_email"] == ROOT_EMAIL
    assert s["signup_enabled"] is False
    assert s["notifications_enabled"] is False
    assert s["server_type"] == "datasite"
    assert s["server_side_type"] == "high"
    assert s["association_request_auto_approval"] is False
    assert s["allow_guest_sessions"] is True
    today = datetime.datetime.now(datetime.timezone.utc).date()
    assert s["deployed_on"] in (
        today.isoformat(),
        (today - datetime.timedelta(days=1)).isoformat(),
    )


def test_settings_defaults_match_seed_text(initial_settings):
    assert initial_settings["organization"] == "OpenMined"
    assert initial_settings["description"] == SEED_DESCRIPTION


def test_client_settings_object_exposes_fields(root, initial_settings):
    settings = root.settings
    for field in (
        "id",
        "name",
        "organization",
        "deployed_on",
        "signup_enabled",
        "notifications_enabled",
        "admin_email",
        "server_type",
        "server_side_type",
    ):
        assert getattr(settings, field) == initial_settings[field]


def test_settings_print_as_a_table(root):
    text = repr(root.settings)
    assert text.splitlines()[0] == "Settings"
    for pattern in (
        r"Id:\s+[0-9a-f-]{32,36}",
        r"Name:\s+my_special_server",
        r"Organization:\s+\S",
        r"Deployed on:\s+\d{4}-\d\d-\d\d",
        r"Signup enabled:\s+(True|False)",
        r"Notifications enabled:\s+(Enabled|Disabled)",
        r"Admin email:\s+\S+@",
    ):
        assert re.search(pattern, text), (pattern, text)


def test_settings_update_returns_success_and_changes_server(root, api):
    result = root.settings.update(description="Changed by the client.")
    assert isinstance(result, sy.SyftSuccess)
    assert bool(result) is True
    assert repr(result).startswith("SyftSuccess: ")
    assert api.settings(root.token)["description"] == "Changed by the client."
    assert root.settings.description == "Changed by the client."


def test_settings_update_of_unknown_field_raises_invalid_argument(root, api):
    before = api.settings(root.token)
    with pytest.raises(sy.InvalidArgumentError) as err:
        root.settings.update(no_such_field=1)
    assert err.value.status == 400
    assert err.value.code == "INVALID_ARGUMENT"
    assert "no_such_field" in str(err.value)
    assert api.settings(root.token) == before


def test_settings_html_and_markdown_escape_server_text(root):
    root.settings.update(description="<script>alert(1)</script> & more")
    settings = root.settings
    html = settings._repr_html_()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html
    assert "<script>" not in settings._repr_markdown_()


def test_users_create_returns_the_new_user(root):
    email = unique_email("jane")
    user = root.users.create(
        name="Jane Doe",
        email=email,
        password=PASSWORD,
        password_verify=PASSWORD,
        role=sy.ServiceRole.DATA_SCIENTIST,
        institution="OpenMined",
        website="https://openmined.org",
    )
    assert isinstance(user, sy.User)
    assert uuid.UUID(user.id)
    assert (user.email, user.name, user.role) == (email, "Jane Doe", sy.ServiceRole.DATA_SCIENTIST)
    assert (user.institution, user.website) == ("OpenMined", "https://openmined.org")
    assert user.is_root is False


def test_users_collection_is_list_like(root):
    root.users.create(name="Listed", email=unique_email("listed"), password=PASSWORD)
    users = root.users
    count = len(users)
    assert count >= 2
    emails = [u.email for u in users]
    assert len(emails) == count
    assert ROOT_EMAIL in emails
    assert users[0].email in emails
    assert users[-1].email in emails


def test_users_search_finds_by_email(root):
    email = unique_email("searched")
    root.users.create(name="Searched", email=email, password=PASSWORD)
    found = root.users.search(email=email)
    assert [u.email for u in found] == [email]
    assert root.users.search(email=unique_email("nobody")) == []


def test_users_get_returns_user_by_id(root):
    user = root.users.create(name="Got", email=unique_email("got"), password=PASSWORD)
    assert root.users.get(user.id).email == user.email


def test_user_update_changes_fields_on_server(root):
    user = root.users.create(name="Before", email=unique_email("upd"), password=PASSWORD)
    result = user.update(name="After", role=sy.ServiceRole.DATA_OWNER)
    assert isinstance(result, sy.SyftSuccess)
    assert (user.name, user.role) == ("After", sy.ServiceRole.DATA_OWNER)
    fresh = root.users.get(user.id)
    assert (fresh.name, fresh.role) == ("After", sy.ServiceRole.DATA_OWNER)


def test_user_delete_removes_user(root):
    user = root.users.create(name="Doomed", email=unique_email("doomed"), password=PASSWORD)
    assert isinstance(user.delete(), sy.SyftSuccess)
    with pytest.raises(sy.NotFoundError):
        root.users.get(user.id)


def test_users_delete_by_id_removes_user(root):
    user = root.users.create(name="Doomed", email=unique_email("doomed"), password=PASSWORD)
    assert root.users.delete(user.id)
    assert root.users.search(email=user.email) == []


def test_users_create_with_taken_email_raises_already_exists(root):
    email = unique_email("taken")
    root.users.create(name="First", email=email, password=PASSWORD)
    with pytest.raises(sy.AlreadyExistsError) as err:
        root.users.create(name="Second", email=email, password=PASSWORD)
    assert err.value.status == 409


def test_user_list_html_escapes_server_text(root):
    root.users.create(
        name="<img src=x onerror=alert(1)>", email=unique_email("xss"), password=PASSWORD
    )
    html = root.users._repr_html_()
    assert "<img" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_user_html_escapes_server_text(root):
    user = root.users.create(name="<b>bold</b>", email=unique_email("xss"), password=PASSWORD)
    assert "<b>bold" not in user._repr_html_()
    assert "&lt;b&gt;bold&lt;/b&gt;" in user._repr_html_()


def test_account_is_the_logged_in_user(root):
    account = root.account
    assert (account.email, account.role, account.is_root) == (
        ROOT_EMAIL,
        sy.ServiceRole.ADMIN,
        True,
    )


def test_account_update_changes_own_name(root):
    result = root.account.update(name="Root Admin")
    assert isinstance(result, sy.SyftSuccess)
    assert root.account.name == "Root Admin"


def test_set_password_without_old_password_outside_a_terminal_raises(root, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO())
    with pytest.raises(ValueError, match="old_password"):
        root.account.set_password("N3w-Passw0rd-Unused")


def test_register_through_handle_refused_while_signup_disabled(seed_server, root):
    assert root.settings.signup_enabled is False
    with pytest.raises(sy.PermissionDeniedError) as err:
        seed_server.register(
            name="Nobody",
            email=unique_email("nobody"),
            password=PASSWORD,
            password_verify=PASSWORD,
        )
    assert err.value.status == 403


def test_handle_client_is_a_guest(seed_server):
    guest = seed_server.client
    assert repr(guest) == "Logged into <my_special_server: High side Datasite> as GUEST"
    assert guest.settings.name == NAME
    with pytest.raises(sy.PermissionDeniedError):
        len(guest.users)


def test_login_as_guest_function(seed_server):
    guest = sy.login_as_guest(url="http://localhost", port=seed_server.port)
    account = guest.account
    assert account.role == sy.ServiceRole.GUEST
    assert account.id is None and account.email is None


def test_client_logout_ends_the_session(seed_server, root, api):
    email = unique_email("leaver")
    root.users.create(name="Leaver", email=email, password=PASSWORD)
    client = sy.login(url="localhost", port=seed_server.port, email=email, password=PASSWORD)
    token = client.token
    assert isinstance(client.logout(), sy.SyftSuccess)
    assert_error(api.get("/api/v1/account", token=token), 401, "UNAUTHENTICATED")
    with pytest.raises(sy.AuthenticationError):
        client.account
