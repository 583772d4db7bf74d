"""``datasite users list|create|set-role|delete`` and ``datasite settings show|set`` against a server
launched with the CLI: what the HTTP API allows each caller, and nothing more.
"""

import json
import os
import subprocess

from helpers import ROOT_EMAIL, unique, unique_email

# A server and CLI users of this module's own (fixtures shared with test_cli_requests).
from test_cli_requests import owner, scientist, site  # noqa: F401


def admin(site, group, command, *args):
    return site.run(group, command, "--server", site.name, "--token", site.admin_token, *args)


def rows(result):
    return [line.split() for line in result.stdout.splitlines()[1:] if line.strip()]


def test_users_list_is_oldest_first_and_searchable(site, owner, scientist):
    listed = admin(site, "users", "list")
    assert listed.returncode == 0, listed
    assert listed.stdout.splitlines()[0].split() == ["ID", "EMAIL", "NAME", "ROLE", "CREATED"]
    emails = [row[1] for row in rows(listed)]
    assert emails[0] == ROOT_EMAIL
    assert emails.index(owner.email) < emails.index(scientist.email)
    found = admin(site, "users", "list", "--search", scientist.email, "--json")
    assert [u["email"] for u in json.loads(found.stdout)["items"]] == [scientist.email]


def test_users_create_set_role_and_delete(site):
    email = unique_email("cli")
    created = admin(site, "users", "create", email, "--name", "Cli User",
                    "--user-password", "a long cli password")
    assert created.returncode == 0, created
    assert "Created user" in created.stdout and "data_scientist" in created.stdout
    assert site.api.login(email, "a long cli password")

    promoted = admin(site, "users", "set-role", email, "data_owner")
    assert promoted.returncode == 0, promoted
    assert "is now data_owner" in promoted.stdout
    listed = admin(site, "users", "list", "--search", email, "--json")
    [user] = json.loads(listed.stdout)["items"]
    assert user["role"] == "data_owner"

    deleted = admin(site, "users", "delete", user["id"])
    assert deleted.returncode == 0, deleted
    assert "Deleted user " + user["id"] in deleted.stdout
    again = admin(site, "users", "delete", email)
    assert again.returncode == 1 and "no user with the email" in again.stderr, again


def test_users_create_reads_the_password_from_stdin(site):
    email = unique_email("stdin")
    created = subprocess.run(
        [site.binary, "users", "create", email, "--name", "S", "--user-password-stdin",
         "--server", site.name, "--token", site.admin_token],
        input="a password from stdin\n", capture_output=True, text=True, timeout=60,
        env=dict(os.environ, **site.env),
    )
    assert created.returncode == 0, created
    assert site.api.login(email, "a password from stdin")


def test_users_create_refuses_a_common_password_and_a_missing_one(site):
    common = admin(site, "users", "create", unique_email("c"), "--name", "C",
                   "--user-password", "qwertyuiop")
    assert common.returncode == 1 and "most common passwords" in common.stderr, common
    missing = admin(site, "users", "create", unique_email("m"), "--name", "M")
    assert missing.returncode == 2 and "--user-password" in missing.stderr, missing
    bad_role = admin(site, "users", "create", unique_email("r"), "--name", "R",
                     "--user-password", "a long cli password", "--role", "root")
    assert bad_role.returncode == 2, bad_role


def test_users_commands_follow_the_role_rules(site, owner, scientist):
    refused = scientist.cli("users", "list")
    assert refused.returncode == 1 and refused.stderr.startswith("error: "), refused
    # A data owner may not make anyone an admin, nor touch another data owner.
    made_admin = owner.cli("users", "set-role", scientist.email, "admin")
    assert made_admin.returncode == 1 and made_admin.stderr.startswith("error: "), made_admin
    other_owner = site.api.create_user(site.admin_token, role="data_owner")
    gone = owner.cli("users", "delete", other_owner["id"])
    assert gone.returncode == 1 and gone.stderr.startswith("error: "), gone
    root = admin(site, "users", "delete", ROOT_EMAIL)
    assert root.returncode == 1 and root.stderr.startswith("error: "), root


def test_settings_show_and_set(site, scientist):
    shown = admin(site, "settings", "show")
    assert shown.returncode == 0, shown
    fields = {row[0] for row in rows(shown)}
    assert {"name", "signup_enabled", "admin_email"} <= fields, shown

    name = unique("renamed")
    renamed = admin(site, "settings", "set", "name", name)
    assert renamed.returncode == 0 and "name = " + name in renamed.stdout, renamed
    assert json.loads(admin(site, "settings", "show", "--json").stdout)["name"] == name

    enabled = admin(site, "settings", "set", "signup_enabled", "true")
    assert enabled.returncode == 0 and "signup_enabled = true" in enabled.stdout, enabled
    assert json.loads(admin(site, "settings", "show", "--json").stdout)["signup_enabled"] is True
    disabled = admin(site, "settings", "set", "signup_enabled", "no")
    assert disabled.returncode == 0, disabled
    assert json.loads(admin(site, "settings", "show", "--json").stdout)["signup_enabled"] is False

    not_bool = admin(site, "settings", "set", "signup_enabled", "maybe")
    assert not_bool.returncode == 1 and "true or false" in not_bool.stderr, not_bool
    unknown = admin(site, "settings", "set", "no_such_field", "x")
    assert unknown.returncode == 1 and unknown.stderr.startswith("error: "), unknown

    # A data scientist may read the settings but not change them.
    assert scientist.cli("settings", "show").returncode == 0
    refused = scientist.cli("settings", "set", "name", "mine")
    assert refused.returncode == 1 and refused.stderr.startswith("error: "), refused
    assert json.loads(admin(site, "settings", "show", "--json").stdout)["name"] == name


def test_admin_commands_need_an_account(site):
    result = site.run("users", "list", "--server", site.name)
    assert result.returncode == 2, result
    result = site.run("settings", "show", "--server", site.name)
    assert result.returncode == 2, result
