"""Custom API endpoints, the client's own logic without a server: a side's source, signature and
params; the bodies of add and update; a call's answer decoded and its prints printed; the
``client.api.services.<a>.<b>`` tree; an endpoint as an input binding of code.
"""

import base64
import io
import json

import numpy as np
import pandas as pd
import pytest

import datasite as sy
from datasite.api_endpoints import (
    APIEndpointService,
    CustomEndpoint,
    EndpointView,
    call_endpoint,
    check_path,
)
from datasite.errors import NotFoundError
from datasite.jobs import encode_result
from datasite.policies import Binding, ExactMatch


def some_decorator(func):
    return func


@sy.api_endpoint_method(settings={"key": "value"})
@some_decorator
def mock_query(context, sql: str, limit: int = 10) -> "Any":  # noqa: F821
    """Fake rows."""
    return [{"sql": sql, "limit": limit}]


@sy.api_endpoint_method(settings={"key": "secret"}, helper_functions=[some_decorator])
def private_query(context, sql: str, limit: int = 10):
    return context.code.some_decorator(sql)


@sy.api_endpoint(path="warehouse.rows", description="Rows", endpoint_timeout=5)
def one_function(context, n):
    return n


# One side -----------------------------------------------------------------------------------------


def test_a_side_is_its_source_without_decorators_and_its_signature_without_context():
    wire = mock_query.to_wire()
    assert wire == {
        "name": "mock_query",
        "source": 'def mock_query(context, sql: str, limit: int = 10) -> "Any":  # noqa: F821\n'
        '    """Fake rows."""\n'
        '    return [{"sql": sql, "limit": limit}]\n',
        "settings": {"key": "value"},
        "helpers": {},
        "signature": "(sql: str, limit: int = 10) -> 'Any'",
        "params": ["sql", "limit"],
        "assets": {},
    }
    assert isinstance(mock_query, sy.Endpoint)
    assert private_query.to_wire()["helpers"] == {
        "some_decorator": "def some_decorator(func):\n    return func\n"
    }


def test_a_side_defined_indented_is_dedented():
    class Holder:
        @sy.api_endpoint_method()
        def inner(context, *, x=1):
            return x

    side = Holder.inner
    assert side.source == "def inner(context, *, x=1):\n    return x\n"
    assert (side.to_wire()["signature"], side.params, side.settings) == ("(*, x=1)", ["x"], {})


def test_a_side_needs_context_first_and_json_settings():
    def no_context(x):
        return x

    def positional_only(context, x, /):
        return x

    with pytest.raises(TypeError, match="context"):
        sy.api_endpoint_method()(no_context)
    with pytest.raises(TypeError, match="by name"):
        sy.api_endpoint_method()(positional_only)
    with pytest.raises(TypeError, match="JSON"):
        sy.api_endpoint_method(settings={"f": object()})(mock_query.func)
    with pytest.raises(TypeError, match="parentheses"):
        sy.api_endpoint_method(no_context)
    with pytest.raises(TypeError, match="call it there"):
        mock_query(None, "x")


@pytest.mark.parametrize("path", ["a.b", "_x.y_1", "a" * 63 + "." + "b" * 64])
def test_paths_of_two_identifiers_are_taken(path):
    assert check_path(path) == path


@pytest.mark.parametrize(
    "path",
    ["", "a", "a.", ".a", "a..b", "a.b.c", "1a.b", "a-b.c", "a.class", "a b.c", "a" * 64 + "." + "b" * 64,
     "é.x"],
)
def test_other_paths_are_refused(path):
    with pytest.raises(ValueError, match="identifiers"):
        check_path(path)


# Both sides ---------------------------------------------------------------------------------------


def test_the_add_body_of_one_function_has_no_private_side():
    assert isinstance(one_function, sy.TwinAPIEndpoint)
    body = one_function.to_wire()
    assert body["mock"]["source"] == "def one_function(context, n):\n    return n\n"
    assert {k: v for k, v in body.items() if k != "mock"} == {
        "path": "warehouse.rows",
        "description": "Rows",
        "private": None,
        "timeout_seconds": 5,
        "worker_pool_name": None,
        "hide_mock_definition": False,
        "output_checks": None,
    }


def test_the_add_body_of_a_twin_has_both_sides_and_output_checks():
    twin = sy.TwinAPIEndpoint(
        path="warehouse.query",
        mock_function=mock_query,
        private_function=private_query,
        description="Lore ipsulum",
        hide_mock_definition=True,
    )
    body = twin.to_wire(output_checks=sy.OutputChecks(min_cell_count=10))
    assert body["mock"] == mock_query.to_wire() and body["private"] == private_query.to_wire()
    assert body["timeout_seconds"] == 60 and body["hide_mock_definition"] is True
    assert body["output_checks"] == {"min_cell_count": 10, "small_cells": "suppress"}
    assert twin.to_wire(output_checks=sy.OutputChecks())["output_checks"] is None


def test_a_twin_whose_sides_take_other_parameters_is_refused_as_a_syft_exception():
    @sy.api_endpoint_method()
    def other(context, query):
        return query

    with sy.raises(sy.SyftException):
        sy.TwinAPIEndpoint(path="a.b", mock_function=mock_query, private_function=other)
    with pytest.raises(ValueError, match="identifiers"):
        sy.TwinAPIEndpoint(path="a.b-c", mock_function=mock_query)
    with pytest.raises(ValueError, match="endpoint_timeout"):
        sy.TwinAPIEndpoint(path="a.b", mock_function=mock_query, endpoint_timeout=0)


# A client with a fake server ----------------------------------------------------------------------


class FakeTransport:
    """Records calls; answers from ``answers`` (route -> JSON, or an exception to raise)."""

    base_url = "http://fake:1"
    timeout = 30

    def __init__(self, answers=None):
        self.token = "t"
        self.calls = []
        self.answers = dict(answers or {})

    def call(self, route, path_params=None, query=None, body=None, **kw):
        self.calls.append((route, path_params, body))
        answer = self.answers.get(route)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def send(self, method, path, body=None, timeout=None):
        self.calls.append((method, path, body))
        answer = self.answers.get("send")
        if isinstance(answer, Exception):
            raise answer
        return json.dumps(answer).encode(), {"content-type": "application/json"}


ENDPOINT = {"path": "warehouse.query", "signature": "(sql: str, limit: int = 10)",
            "params": ["sql", "limit"], "has_private": True, "timeout_seconds": 60,
            "description": "d", "mock": {"name": "mock_query", "source": "def ..."}}


def fake_client(answers=None):
    answers = dict({"api_endpoints_list": {"items": [ENDPOINT]}, "openapi": {"paths": {}}},
                   **(answers or {}))
    transport = FakeTransport(answers)
    client = sy.DatasiteClient(transport.base_url, "t", {"role": "data_owner"}, {},
                               transport=transport)
    return client, transport


def test_update_sends_only_what_is_given():
    client, transport = fake_client({"api_endpoint_update": ENDPOINT})
    done = APIEndpointService(client).update(endpoint_path="warehouse.query",
                                             private_function=private_query, endpoint_timeout=9)
    assert isinstance(done, sy.SyftSuccess) and done.value.path == "warehouse.query"
    assert transport.calls == [("api_endpoint_update", {"path": "warehouse.query"},
                                {"private": private_query.to_wire(), "timeout_seconds": 9})]
    service = APIEndpointService(client)
    service.update("warehouse.query", hide_mock_definition=False, description="new")
    assert transport.calls[-1][2] == {"hide_mock_definition": False, "description": "new"}
    # Nothing given is the server's to refuse (400): the body is empty.
    service.update(endpoint_path="warehouse.query")
    assert transport.calls[-1][2] == {}


def test_add_and_delete_send_their_bodies_and_refresh_the_tree():
    client, transport = fake_client({"api_endpoints_create": ENDPOINT,
                                     "api_endpoint_delete": {"deleted": "warehouse.query"}})
    client.api._endpoints()
    assert client.api._endpoint_views is not None
    added = client.api.services.api.add(endpoint=one_function)
    assert isinstance(added, sy.SyftSuccess) and isinstance(added.value, EndpointView)
    assert ("api_endpoints_create", None, one_function.to_wire()) in transport.calls
    assert client.api._endpoint_views is None  # read again on next use
    with pytest.raises(TypeError, match="TwinAPIEndpoint"):
        client.custom_api.add(endpoint=mock_query)
    deleted = client.custom_api.delete(endpoint_path="warehouse.query")
    assert "warehouse.query" in deleted.message


def test_services_reach_endpoints_by_path_and_look_up_again_on_a_miss():
    client, transport = fake_client()
    services = client.api.services
    query = services.warehouse.query
    assert isinstance(query, CustomEndpoint) and query.path == "warehouse.query"
    assert query.signature == "(sql: str, limit: int = 10)"
    assert "warehouse" in dir(services) and "query" in dir(services.warehouse)
    assert client.custom_api.warehouse.query == query
    lists = sum(1 for c in transport.calls if c[0] == "api_endpoints_list")
    with pytest.raises(AttributeError, match="no service or API endpoint 'other'"):
        services.other
    assert sum(1 for c in transport.calls if c[0] == "api_endpoints_list") == lists + 1
    transport.answers["api_endpoints_list"] = {"items": [ENDPOINT, dict(ENDPOINT, path="other")]}
    assert services.other.path == "other"  # added meanwhile by another client
    with pytest.raises(AttributeError, match="no API endpoint warehouse.nope"):
        services.warehouse.nope
    assert callable(services.api.add) and callable(services.api.api_endpoints)


def test_services_without_the_endpoint_list_still_build():
    client, _ = fake_client({"api_endpoints_list": NotFoundError(None, "no such route", 404)})
    assert client.api._endpoints() == {}
    with pytest.raises(AttributeError):
        client.api.services.warehouse


def test_a_call_sends_side_and_kwargs_and_returns_the_value(capsys):
    client, transport = fake_client({"send": {"path": "warehouse.query", "side": "mock",
                                              "format": "json", "result": [1, 2],
                                              "stdout": "printed there\n"}})
    query = client.api.services.warehouse.query
    assert query("SELECT 1", limit=3) == [1, 2]
    assert transport.calls[-1] == ("POST", "/api/v1/api_endpoints/warehouse.query/call",
                                   {"side": "auto", "kwargs": {"sql": "SELECT 1", "limit": 3}})
    assert capsys.readouterr().out == "printed there\n"
    query.mock(sql="x")
    assert transport.calls[-1][2] == {"side": "mock", "kwargs": {"sql": "x"}}
    query.private()
    assert transport.calls[-1][2] == {"side": "private", "kwargs": {}}
    with pytest.raises(TypeError, match="by name"):
        query(1, 2, 3)
    with pytest.raises(TypeError, match="twice"):
        query(1, sql=2)


def call_answer(fmt, raw=None, meta=None, result=None):
    data = {"path": "a.b", "side": "mock", "format": fmt, "stdout": "", "meta": meta}
    if fmt == "json":
        data["result"] = result
    else:
        data["data_base64"] = base64.b64encode(raw).decode()
    return data


def test_csv_npy_and_bytes_results_are_decoded_as_job_results_are():
    frame = pd.DataFrame({"region": ["north", "south"], "n": [3, 4], "mean": [1.5, None]})
    _, text, meta = encode_result(frame)
    array = np.arange(6).reshape(2, 3)
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    for answer, check in (
        (call_answer("csv", text.encode(), meta),
         lambda v: pd.testing.assert_frame_equal(v, frame)),
        (call_answer("npy", buffer.getvalue()), lambda v: np.testing.assert_array_equal(v, array)),
        (call_answer("bytes", b"\x00\xff"), lambda v: v == b"\x00\xff" or pytest.fail(v)),
        (call_answer("json", result={"a": None}), lambda v: v == {"a": None} or pytest.fail(v)),
    ):
        client, _ = fake_client({"send": answer})
        check(call_endpoint(client, "a.b", "auto", (), {}))


def test_a_failed_call_raises_a_syft_exception_and_prints_what_the_function_printed(capsys):
    from datasite._http import _error_from_http

    body = {"error": {"code": "ENDPOINT_FAILED", "message": "ZeroDivisionError: division by zero",
                      "stdout": "before the error\n"}}
    error = _error_from_http(422, json.dumps(body).encode(), {})
    client, _ = fake_client({"send": error})
    with pytest.raises(sy.SyftException, match="ZeroDivisionError") as raised:
        client.api.services.warehouse.query(sql="x")
    assert raised.value.status == 422 and raised.value.body == body
    assert capsys.readouterr().out == "before the error\n"
    with sy.raises(sy.SyftException):
        call_endpoint(client, "a.b", "sideways", (), {})


# An endpoint as an input of code ------------------------------------------------------------------


def test_an_endpoint_binds_an_argument_by_its_path():
    client, _ = fake_client()
    query = client.api.services.warehouse.query
    binding = Binding.of("endpoint", query)
    assert binding.to_wire() == {"endpoint": "warehouse.query"} and not binding.is_asset
    assert binding.describe() == "API endpoint warehouse.query"
    back = Binding._from_server({"endpoint": "warehouse.query"})
    assert back.is_endpoint and back.to_wire() == {"endpoint": "warehouse.query"}
    assert ExactMatch(endpoint=query, n=3).to_wire() == {
        "endpoint": {"endpoint": "warehouse.query"}, "n": {"value": 3}}

    @sy.syft_function_single_use(endpoint=query)
    def uses_endpoint(endpoint):
        return endpoint(sql="SELECT 1")

    assert uses_endpoint.to_wire()["inputs"] == {"endpoint": {"endpoint": "warehouse.query"}}
    code = sy.UserCode({"id": "c1", "name": "uses_endpoint", "source": "def ...",
                        "inputs": {"endpoint": {"endpoint": "warehouse.query"}}}, client)
    assert code.inputs == {"endpoint": {"endpoint": "warehouse.query"}}
    assert "API endpoint warehouse.query" in repr(code)
    assert code._run_inputs({"endpoint": query}) == {"endpoint": {"endpoint": "warehouse.query"}}


def test_a_local_run_calls_the_endpoint_on_the_server():
    client, transport = fake_client({"send": call_answer("json", result=[{"n": 1}])})
    query = client.api.services.warehouse.query

    @sy.syft_function_single_use(endpoint=query)
    def uses_endpoint(endpoint):
        return endpoint(sql="SELECT 1")

    assert uses_endpoint().get() == [{"n": 1}]
    assert transport.calls[-1][2] == {"side": "auto", "kwargs": {"sql": "SELECT 1"}}


def test_the_view_list_indexes_by_path():
    from datasite.api_endpoints import EndpointViewList

    items = EndpointViewList([EndpointView(ENDPOINT), EndpointView(dict(ENDPOINT, path="b"))])
    assert items["b"].path == "b" and len(items) == 2
    assert "warehouse.query" in repr(items)
    assert "def ..." in repr(items[0]) and "warehouse.query" in items[0]._repr_html_()
