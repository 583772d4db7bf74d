"""Notebook life: a kernel restart and ``launch(reset=True)``, PySyft's launch arguments,
``set_password`` asking under Jupyter, and the default-password warning shown once at the user's
line.
"""

import getpass
import io
import sys
import types
import warnings

import pytest

import datasite as sy
from helpers import ROOT_EMAIL, ROOT_PASSWORD, Api, port_is_closed, unique


def test_reset_replaces_a_server_of_that_name_that_still_runs(launcher, capsys):
    # Regression: after a kernel restart the old server still runs and launch(reset=True)
    # refused ("already running"); PySyft replaces it.
    name = unique("restart")
    old = launcher.launch(name=name)
    capsys.readouterr()
    new = launcher.track(sy.orchestra.launch(name=name, reset=True, port="auto"))
    assert "reset=True replaces it" in capsys.readouterr().out
    assert port_is_closed(old.port)
    assert Api(new.port).get("/readyz").status == 200
    launcher.handles.remove(old)


def test_without_reset_a_running_server_of_that_name_is_still_refused(launcher):
    name = unique("twice")
    server = launcher.launch(name=name)
    with pytest.raises(RuntimeError, match="already running"):
        sy.orchestra.launch(name=name, port="auto")
    assert Api(server.port).get("/readyz").status == 200


def test_pysyft_launch_arguments_are_accepted(launcher):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        server = launcher.launch(
            log_level="INFO", migrate=True, local_db=True, tail=False, n_consumers=1,
            create_producer=True, thread_workers=True, dev_mode=False,
        )
    notes = [str(w.message) for w in caught if issubclass(w.category, sy.DatasiteWarning)]
    assert len(notes) == 4, notes  # log_level, migrate, local_db, thread_workers
    assert all("has no effect here" in n for n in notes)
    assert all(w.filename != sy.orchestra.__file__ for w in caught)
    assert Api(server.port).get("/readyz").status == 200


@pytest.mark.parametrize(
    "kwargs,match", [({"db_url": "postgresql://x"}, "db_url"),
                     ({"from_state_folder": "/tmp/x"}, "from_state_folder")]
)
def test_launch_arguments_that_would_change_storage_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sy.orchestra.launch(name="never", **kwargs)


class _FakeKernelShell:
    kernel = object()


@pytest.fixture
def jupyter_kernel(monkeypatch):
    """What ipykernel looks like from inside: stdin is no terminal, IPython has a kernel, and
    getpass asks in the notebook (here: answers from a list)."""
    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: _FakeKernelShell()
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    asked = []

    def fake_getpass(prompt="Password: "):
        asked.append(prompt)
        return answers.pop(0)

    answers = []
    monkeypatch.setattr(getpass, "getpass", fake_getpass)
    return asked, answers


def test_set_password_asks_for_the_current_one_under_jupyter(server, jupyter_kernel):
    asked, answers = jupyter_kernel
    answers.append(ROOT_PASSWORD)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sy.DatasiteWarning)
        client = server.login(email=ROOT_EMAIL, password=ROOT_PASSWORD)
    assert client.me.set_password("N3w-Notebook-Pass")
    assert asked == ["Current password: "]
    assert server.login(email=ROOT_EMAIL, password="N3w-Notebook-Pass").logged_in


def test_set_password_without_a_terminal_or_kernel_says_how(server, monkeypatch):
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sy.DatasiteWarning)
        client = server.login(email=ROOT_EMAIL, password=ROOT_PASSWORD)
    with pytest.raises(ValueError, match="old_password"):
        client.account.set_password("N3w-Notebook-Pass")


def _warnings_of(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [w for w in caught if issubclass(w.category, sy.DatasiteWarning)]


def test_default_password_warning_once_at_the_callers_line(server, capsys):
    # Regression: the warning was printed as well as issued (shown twice) and, through
    # server.login, attributed to a line inside the client.
    def through_handle():
        server.login(email=ROOT_EMAIL, password=ROOT_PASSWORD)  # the line the warning names

    def directly():
        sy.login(url="localhost", port=server.port, email=ROOT_EMAIL, password=ROOT_PASSWORD)

    for call in (through_handle, directly):
        mine = _warnings_of(call)
        assert len(mine) == 1
        assert mine[0].filename == __file__
        assert mine[0].lineno == call.__code__.co_firstlineno + 1
        assert "default password" not in capsys.readouterr().out
