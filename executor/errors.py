"""Errors, defined once (the Fn agent's models/error.go is the model).

What reaches a caller is an `ExecutorError`: its HTTP status and a message that says why.
The named ones below are the answers several parts give alike (a stopping executor, a
missing image, an engine that does not answer): raised by name, never rewritten by copy.
`from_engine` is the one translation of a Docker engine failure into what a caller gets.
"""

from __future__ import annotations


class ExecutorError(Exception):
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def again(self) -> ExecutorError:
        """The same error as a new exception, for each of several waiters (one exception
        raised in many tasks would gather all their tracebacks)."""
        clone = Exception.__new__(type(self))
        Exception.__init__(clone, self.message)
        clone.__dict__.update(self.__dict__)
        return clone


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


class StoreUnavailable(ServiceUnavailable):
    """The shared store (PostgreSQL) does not answer: writes and async submits wait for it
    to come back; calls keep running from memory."""


class CallTimeout(ExecutorError):
    status = 504


# -- named answers ---------------------------------------------------------------------


class ShuttingDown(ServiceUnavailable):
    """The executor is stopping: a call not yet taken is refused, one stopped is answered."""

    def __init__(self, what: str = "call stopped") -> None:
        super().__init__(f"executor shutting down: {what}")


NOT_TAKING_CALLS = "not taking calls"


class ServerBusy(ServiceUnavailable):
    """No container (or no room for one) before the call's deadline."""

    def __init__(self, why: str) -> None:
        super().__init__(f"server too busy: {why}")


class EngineUnreachable(ServiceUnavailable):
    """The Docker engine does not answer (the driver's `EngineDown`)."""


class ImageMissing(FunctionFailed):
    def __init__(self, image: str) -> None:
        super().__init__(f"image {image!r} is not on the Docker engine")


class FunctionTimedOut(CallTimeout):
    def __init__(self, timeout: int) -> None:
        super().__init__(f"function timed out after {timeout} s")


class StartTimedOut(CallTimeout):
    """A hot container was not ready within `hot_start_timeout`."""

    def __init__(self) -> None:
        super().__init__("container initialization timed out")


class ResponseTooLarge(FunctionFailed):
    def __init__(self, limit: int) -> None:
        super().__init__(f"response too large (limit {limit} bytes)")


class EngineError(Exception):
    """The Docker engine answered with an error (status is the engine's HTTP status)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    @property
    def missing_image(self) -> bool:
        """The engine's answer when a container's image is not there (a create's 404)."""
        return self.status == 404 and "image" in self.message.lower()


class EngineDown(EngineError):
    """The engine could not be reached at all."""

    def __init__(self, message: str) -> None:
        super().__init__(503, f"Docker engine unreachable: {message}")


def from_engine(exc: EngineError, image: str) -> ExecutorError:
    """What a caller gets when the engine failed a container of `image`."""
    if isinstance(exc, EngineDown):
        return EngineUnreachable(exc.message)
    if exc.missing_image:
        return ImageMissing(image)
    message = f"container could not be started: {exc.message}"
    if "bind source path" in exc.message:
        message += " (EXECUTOR_IOFS_HOST_DIR must be the host path of EXECUTOR_IOFS_DIR)"
    return FunctionFailed(message)


class StoreLocked(Exception):
    """Another executor process holds this database."""


class BadSetting(Exception):
    """A server setting that cannot work (found at start-up)."""


class BadDatabase(BadSetting):
    """The database cannot be used as it is (not SQLite, damaged, tables missing)."""
