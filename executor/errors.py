"""Errors that reach a caller: each carries its HTTP status and a message that says why."""

from __future__ import annotations


class ExecutorError(Exception):
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(ExecutorError):
    status = 400


class Unauthorized(ExecutorError):
    status = 401


class NotFound(ExecutorError):
    status = 404


class RequestTimeout(ExecutorError):
    """The caller's request body did not arrive in time (the call's deadline, or the API's
    body timeout)."""

    status = 408


class Conflict(ExecutorError):
    status = 409


class PayloadTooLarge(ExecutorError):
    status = 413


class TooManyRequests(ExecutorError):
    """A bound on queued async calls is reached: the caller should retry later."""

    status = 429

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class FunctionFailed(ExecutorError):
    """The function ran and failed: non-zero exit, crash, oversize output, out of memory."""

    status = 502


class ServiceUnavailable(ExecutorError):
    """No container could be assigned in time, or the Docker engine does not answer."""

    status = 503


class CallTimeout(ExecutorError):
    status = 504


class StoreLocked(Exception):
    """Another executor process holds this database."""


class BadSetting(Exception):
    """A server setting that cannot work (found at start-up)."""


class BadDatabase(BadSetting):
    """The database cannot be used as it is (not SQLite, damaged, tables missing)."""
