"""Results and errors: ``SyftSuccess``, ``SyftError``, ``DatasiteError`` and its subclasses.

PySyft returns ``SyftSuccess``/``SyftError`` objects; this client returns ``SyftSuccess`` on
success and raises a ``DatasiteError`` subclass when the server refuses, carrying the server's
code, message and HTTP status.
"""

import html


class DatasiteWarning(UserWarning):
    """A warning from the client, the counterpart of PySyft's ``SyftWarning``."""


class SyftSuccess:
    """A successful result: truthy; ``value`` may carry the changed object."""

    def __init__(self, message, value=None):
        self.message = message
        self.value = value

    def __bool__(self):
        return True

    def __eq__(self, other):
        if isinstance(other, SyftSuccess):
            return self.message == other.message
        return NotImplemented

    __hash__ = None

    def __str__(self):
        return self.message

    def __repr__(self):
        return "SyftSuccess: " + self.message

    def _repr_html_(self):
        return (
            '<div class="alert-success"><strong>SyftSuccess:</strong> <pre>'
            + html.escape(self.message)
            + "</pre></div>"
        )


class SyftError:
    """A failure reported as a value, not raised (falsy); kept for code written for PySyft."""

    def __init__(self, message):
        self.message = message

    def __bool__(self):
        return False

    def __str__(self):
        return self.message

    def __repr__(self):
        return "SyftError: " + self.message

    def _repr_html_(self):
        return (
            '<div class="alert-danger"><strong>SyftError:</strong> <pre>'
            + html.escape(self.message)
            + "</pre></div>"
        )


class DatasiteError(Exception):
    """The server refused a request. ``str(error)`` is the server's message."""

    default_code = "UNKNOWN"
    # The server's whole error envelope (a dict) when the error is an answer of the server.
    body = None

    def __init__(self, code=None, message="", status=None):
        self.code = code or self.default_code
        self.message = message
        self.status = status
        super().__init__(message)

    def __str__(self):
        return self.message

    def __repr__(self):
        return "{}(code={!r}, message={!r}, status={!r})".format(
            type(self).__name__, self.code, self.message, self.status
        )


class InvalidArgumentError(DatasiteError, ValueError):
    default_code = "INVALID_ARGUMENT"


class AuthenticationError(DatasiteError):
    default_code = "UNAUTHENTICATED"


class PermissionDeniedError(DatasiteError, PermissionError):
    default_code = "PERMISSION_DENIED"


class NotFoundError(DatasiteError, LookupError):
    default_code = "NOT_FOUND"


class MethodNotAllowedError(DatasiteError):
    default_code = "METHOD_NOT_ALLOWED"


class AlreadyExistsError(DatasiteError):
    default_code = "ALREADY_EXISTS"


class FailedPreconditionError(DatasiteError):
    default_code = "FAILED_PRECONDITION"


class PayloadTooLargeError(DatasiteError):
    default_code = "PAYLOAD_TOO_LARGE"


class RateLimitedError(DatasiteError):
    """Too many attempts; ``retry_after`` is the wait in seconds the server asked for."""

    default_code = "RESOURCE_EXHAUSTED"

    def __init__(self, code=None, message="", status=None, retry_after=None):
        super().__init__(code, message, status)
        self.retry_after = retry_after


class InternalServerError(DatasiteError):
    default_code = "INTERNAL"


class UnavailableError(DatasiteError):
    default_code = "UNAVAILABLE"


class IntegrityError(DatasiteError):
    """Downloaded bytes do not match the checksum the server sent (``X-Content-SHA256``)."""

    default_code = "INTEGRITY"


class ServerConnectionError(DatasiteError, ConnectionError):
    """The server could not be reached at all (no HTTP answer)."""

    default_code = "CONNECTION_FAILED"


class JobFailedError(DatasiteError):
    """A job ended without a result: the user code raised, timed out, was killed or interrupted.

    ``str(error)`` says which job and why (the job's ``error`` text, e.g. ``ZeroDivisionError:
    division by zero``); ``job`` is the ``Job``, so ``error.job.logs()`` shows its output.
    """

    default_code = "JOB_FAILED"

    def __init__(self, code=None, message="", status=None, job=None):
        super().__init__(code, message, status)
        self.job = job


class JobTimeoutError(DatasiteError, TimeoutError):
    """``job.wait(timeout=...)`` gave up before the job ended (the job goes on)."""

    default_code = "DEADLINE_EXCEEDED"


_BY_CODE = {
    cls.default_code: cls
    for cls in (
        InvalidArgumentError,
        AuthenticationError,
        PermissionDeniedError,
        NotFoundError,
        MethodNotAllowedError,
        AlreadyExistsError,
        FailedPreconditionError,
        PayloadTooLargeError,
        RateLimitedError,
        InternalServerError,
        UnavailableError,
    )
}

_BY_STATUS = {
    400: InvalidArgumentError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    405: MethodNotAllowedError,
    413: PayloadTooLargeError,
    429: RateLimitedError,
    500: InternalServerError,
    503: UnavailableError,
}


def error_for(status, code, message, retry_after=None):
    """Builds the exception for an error answer of the server."""
    cls = _BY_CODE.get(code) or _BY_STATUS.get(status) or DatasiteError
    if cls is RateLimitedError:
        return cls(code, message, status, retry_after=retry_after)
    return cls(code, message, status)
