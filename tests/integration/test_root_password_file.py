"""`--root-password-file` (DATASITE_ROOT_PASSWORD_FILE): the first admin's password from a file, a
container's secret, read by the server itself so that it is in no process's environment or command
line (the container's entrypoint once exported it into the server's environment, readable in
/proc/PID/environ for the server's whole life)."""

import os
import pathlib

from helpers import DetachedServer, ROOT_EMAIL, unique


def environ(pid):
    return pathlib.Path("/proc/{}/environ".format(pid)).read_bytes()


def test_the_password_comes_from_the_file_and_stays_out_of_the_environment(binary, tmp_path,
                                                                           monkeypatch):
    password = "Pf-" + unique("pw")
    secret = tmp_path / "root_password"
    secret.write_text(password + "\n")  # as `echo` writes it: the newline is not the password's
    secret.chmod(0o400)
    monkeypatch.delenv("DATASITE_ROOT_PASSWORD", raising=False)
    monkeypatch.setenv("DATASITE_ROOT_PASSWORD_FILE", str(secret))
    server = DetachedServer(binary, tmp_path / "data")
    try:
        api = server.start()
        assert api.login(ROOT_EMAIL, password)
        assert password.encode() not in environ(server.pid)
        assert password.encode() not in pathlib.Path(
            "/proc/{}/cmdline".format(server.pid)).read_bytes()
    finally:
        server.stop()


def test_the_file_and_the_password_together_are_refused(binary, tmp_path, monkeypatch):
    secret = tmp_path / "root_password"
    secret.write_text("Pf-" + unique("pw"))
    monkeypatch.setenv("DATASITE_ROOT_PASSWORD_FILE", str(secret))
    monkeypatch.setenv("DATASITE_ROOT_PASSWORD", "Other-" + unique("pw"))
    code, out, err = DetachedServer(binary, tmp_path / "data").try_start()
    assert code == 2 and "both given: give one" in out + err, (code, out, err)


def test_an_unreadable_or_empty_file_is_refused(binary, tmp_path, monkeypatch):
    monkeypatch.delenv("DATASITE_ROOT_PASSWORD", raising=False)
    monkeypatch.setenv("DATASITE_ROOT_PASSWORD_FILE", str(tmp_path / "missing"))
    code, out, err = DetachedServer(binary, tmp_path / "data").try_start()
    assert code == 2 and "can't be read" in out + err, (code, out, err)
    empty = tmp_path / "empty"
    empty.write_text("\n")
    monkeypatch.setenv("DATASITE_ROOT_PASSWORD_FILE", str(empty))
    code, out, err = DetachedServer(binary, tmp_path / "data2").try_start()
    assert code == 2 and "is empty" in out + err, (code, out, err)
    assert os.environ["DATASITE_ROOT_PASSWORD_FILE"] == str(empty)


def test_what_is_not_a_small_regular_file_is_refused_not_read(binary, tmp_path, monkeypatch):
    """A directory crashed the server (an uncaught stream exception); /dev/zero or a FIFO was read
    without end."""
    monkeypatch.delenv("DATASITE_ROOT_PASSWORD", raising=False)
    monkeypatch.delenv("DATASITE_ROOT_PASSWORD_FILE", raising=False)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    big = tmp_path / "big"
    big.write_text("x" * 5000)
    for i, path in enumerate((tmp_path, "/dev/zero", fifo, big)):
        server = DetachedServer(binary, tmp_path / "d{}".format(i), "--root-password-file", path)
        try:
            code, out, err = server.try_start()
        finally:
            server.stop()
        assert code == 2 and "must be a regular file of at most 4096 bytes" in out + err, (
            path, code, out, err)


def test_an_empty_file_name_is_refused_not_taken_for_none(binary, tmp_path, monkeypatch):
    """`--root-password-file ""` started the server with the published default password."""
    monkeypatch.delenv("DATASITE_ROOT_PASSWORD", raising=False)
    monkeypatch.delenv("DATASITE_ROOT_PASSWORD_FILE", raising=False)
    server = DetachedServer(binary, tmp_path / "data", "--root-password-file", "")
    try:
        code, out, err = server.try_start()
    finally:
        server.stop()  # one that started after all must not outlive the test
    assert code == 2 and "--root-password-file (DATASITE_ROOT_PASSWORD_FILE) is empty" in out + err, (
        code, out, err)
