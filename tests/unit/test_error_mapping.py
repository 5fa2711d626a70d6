"""Errors mapped to HTTP once: the API's table for domain errors and runtime kinds, the client's classes."""

from __future__ import annotations

import pytest

from dockyard import errors
from dockyard.api.errors import STATUS_OF_ERROR, STATUS_OF_RUNTIME_KIND, error_message, http_status
from dockyard.client import api_client
from dockyard.images.reference import ReferenceError_
from dockyard.runtime.errors import KINDS, OCIRuntimeError
from dockyard.storage.tarsafe import UnsafeArchive


@pytest.mark.parametrize(("exc", "status"), [
    (errors.InvalidParameter("x"), 400),
    (errors.Unauthorized("x"), 401),
    (errors.Forbidden("x"), 403),
    (errors.NotFound("x"), 404),
    (errors.Conflict("x"), 409),
    (errors.NotModified("x"), 304),
    (errors.NotImplementedByEngine("x"), 501),
    (errors.Unavailable("x"), 503),
    (errors.SystemError_("x"), 500),
    (ReferenceError_("x"), 400),  # subclasses answer with their base's status
    (UnsafeArchive("x"), 400),
    (OCIRuntimeError("exec: \"nope\": executable file not found in $PATH", "not_found"), 400),
    (OCIRuntimeError("container x is not running", "state"), 409),
    (OCIRuntimeError("container x does not exist", "not_exist"), 404),
    (OCIRuntimeError("boom"), 500),
])
def test_each_error_has_its_status(exc: BaseException, status: int) -> None:
    assert http_status(exc) == status


def test_every_domain_class_and_runtime_kind_is_in_the_table() -> None:
    domain = {c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.DockyardError)}
    assert domain == set(STATUS_OF_ERROR)
    assert set(STATUS_OF_RUNTIME_KIND) == KINDS


def test_domain_errors_carry_no_http_status() -> None:
    for cls in STATUS_OF_ERROR:
        assert "status" not in vars(cls), cls


def test_non_domain_errors_are_not_mapped_and_304_has_no_message() -> None:
    assert http_status(ValueError("bug")) is None
    assert http_status(KeyError("bug")) is None
    assert error_message(errors.NotModified("already started")) == ""
    assert error_message(errors.NotFound("No such container: x")) == "No such container: x"


@pytest.mark.parametrize(("status", "cls"), [
    (400, api_client.BadRequest),
    (401, api_client.Unauthorized),
    (403, api_client.Forbidden),
    (404, api_client.NotFound),
    (409, api_client.Conflict),
    (500, api_client.ServerError),
    (501, api_client.NotImplementedByDaemon),
    (502, api_client.ServerError),
    (503, api_client.Unavailable),
    (418, api_client.APIError),
])
def test_client_error_class_per_status(status: int, cls: type[api_client.APIError]) -> None:
    e = api_client.error_for(status, "msg")
    assert type(e) is cls and isinstance(e, api_client.APIError)
    assert (e.status, e.message, str(e)) == (status, "msg", "msg")


def test_plain_api_error_still_constructs() -> None:
    e = api_client.APIError(404, "No such image: x")
    assert (e.status, e.message) == (404, "No such image: x")
    assert not isinstance(e, api_client.NotFound)
