"""The exception hierarchy of driftmon.

    DriftmonError
    ├── UsageError                  bad input from the user: exit code 2
    │   ├── ConfigError             config file: names file, key, line and the problem
    │   │   └── ConfigProblems      several located problems found together, one per line
    │   └── ProbeFileError          probe set file or schema: names file, key, line, problem
    ├── ProbeFileBusyError          another edit of the probe file holds its lock: exit code 1
    ├── ProviderError               a provider call failed; carries an ErrorClass
    │   ├── TransientProviderError  worth retrying: timeout, connect, 429, 5xx
    │   └── PermanentProviderError  not worth retrying: auth, bad request, protocol
    ├── StorageError                the database cannot be used as asked
    │   ├── DatabaseTooNewError     the database was migrated by a newer driftmon: exit code 2
    │   └── StorageSetupError       cannot be opened or written as configured: exit code 2
    └── NotificationError           an alert could not be delivered
        ├── TransientNotificationError
        └── PermanentNotificationError

Model output that fails its schema or checks is never an exception: it is a judgement
(`monitor.validation.Judgement`). Provider errors are caught by the provider base class and
stored as error results, so an outage can never look like a failed validation.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum


class DriftmonError(Exception):
    """Base of every error driftmon raises on purpose."""

    exit_code = 1


class UsageError(DriftmonError):
    """Bad usage, configuration or probe files: the user must fix something."""

    exit_code = 2


class LocatedError(UsageError):
    """An error in a file, located as precisely as we know: file, key path and line."""

    def __init__(
        self,
        problem: str,
        *,
        file: str | None = None,
        key: str | None = None,
        line: int | None = None,
    ) -> None:
        self.problem = problem
        self.file = file
        self.key = key
        self.line = line
        super().__init__(self.render())

    def render(self) -> str:
        where = self.file or ""
        if self.line is not None:
            where += f":{self.line}"
        if self.key:
            where += f": {self.key}" if where else self.key
        return f"{where}: {self.problem}" if where else self.problem


class ConfigError(LocatedError):
    """The config file is missing, unreadable or invalid."""

    @staticmethod
    def of(errors: Sequence[LocatedError]) -> ConfigError:
        """One error to raise for the problems found together: the problem itself when there
        is one, else all of them (a user fixing a file wants every problem, not a round trip
        per problem)."""
        if len(errors) == 1 and isinstance(errors[0], ConfigError):
            return errors[0]
        return ConfigProblems(errors)


class ConfigProblems(ConfigError):
    """Several problems found together, rendered one per line. `problem`, `file`, `key` and
    `line` are the first one's, so code that looks at one problem sees the first."""

    def __init__(self, errors: Sequence[LocatedError]) -> None:
        self.errors = list(errors)
        first = self.errors[0]
        super().__init__(first.problem, file=first.file, key=first.key, line=first.line)

    def render(self) -> str:
        lines = [f"{len(self.errors)} problems:"] if len(self.errors) > 1 else []
        lines += [("  " if len(self.errors) > 1 else "") + e.render() for e in self.errors]
        return "\n".join(lines)


class ProbeFileError(LocatedError):
    """A probe set file, or a schema it uses, is invalid."""


class ProbeFileBusyError(DriftmonError):
    """Another process kept the edit lock of a probe file for too long.

    Not a UsageError: nothing is wrong with the file or the command, and trying again later
    can succeed, so the exit code is 1 like other runtime failures (a locked database)."""

    def __init__(self, problem: str, *, file: str) -> None:
        self.problem = problem
        self.file = file
        super().__init__(f"{file}: {problem}")


class ErrorClass(StrEnum):
    """Why a provider call failed. Stored with every error result."""

    TIMEOUT = "timeout"
    CONNECT = "connect"
    RATE_LIMIT = "rate_limit"
    SERVER = "server"
    PROTOCOL = "protocol"
    AUTH = "auth"
    BAD_REQUEST = "bad_request"

    @property
    def transient(self) -> bool:
        return self in {
            ErrorClass.TIMEOUT,
            ErrorClass.CONNECT,
            ErrorClass.RATE_LIMIT,
            ErrorClass.SERVER,
        }


class ProviderError(DriftmonError):
    """A provider call failed. `retry_after` is the server's hint in seconds, if any;
    `error_param` is the driftmon param the provider named as the problem, if it named one."""

    def __init__(
        self,
        error_class: ErrorClass,
        message: str,
        *,
        http_status: int | None = None,
        retry_after: float | None = None,
        request_id: str | None = None,
        error_param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.error_class = error_class
        self.http_status = http_status
        self.retry_after = retry_after
        self.request_id = request_id
        self.error_param = error_param


class TransientProviderError(ProviderError):
    """Timeouts, connection failures, 429 and 5xx: retried within the budget."""


class PermanentProviderError(ProviderError):
    """Auth failures, rejected requests, unparseable responses: not retried."""


class StorageError(DriftmonError):
    """The database cannot be used as asked."""


class DatabaseTooNewError(StorageError):
    """The database schema is newer than this driftmon knows; refuse to touch it.

    Exit code 2 like a usage error: retrying cannot help (systemd does not restart on 2)."""

    exit_code = 2


class StorageSetupError(StorageError):
    """The database cannot be opened or written as configured: a missing or read-only folder
    or file, a PostgreSQL role or database that does not exist, a refused password.

    Exit code 2 like a usage error: the configuration must change, retrying cannot help (a
    refused connection stays a plain StorageError or driver error, exit 1: systemd restarts)."""

    exit_code = 2


class NotificationError(DriftmonError):
    """An alert could not be delivered."""


class TransientNotificationError(NotificationError):
    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentNotificationError(NotificationError):
    """Invalid token, channel not found, ...: retrying cannot help."""
