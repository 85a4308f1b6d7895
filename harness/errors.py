"""One exception tree for the whole harness, translated at the boundaries.

Foreign errors (httpx, pjsua2, yaml, OSError) are mapped into these where they
cross into harness code, so callers catch ``HarnessError`` and get what they need:
an exit code for the CLI, whether a retry may help, and where bad input was.

Exit codes (DESIGN.md): 0 hypothesis held; 1 hypothesis broken; 2 bad input or
usage; 3 aborted by a guard; 4 rollback could not be verified.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_HYPOTHESIS_BROKEN = 1
EXIT_BAD_INPUT = 2
EXIT_ABORTED = 3
EXIT_ROLLBACK_FAILED = 4


class HarnessError(Exception):
    """Base of every error the harness raises on purpose."""

    exit_code = EXIT_BAD_INPUT
    retryable = False

    def __init__(self, message: str, *, exit_code: int | None = None):
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.message


class ConfigError(HarnessError):
    """Bad input that is not an experiment file: options, topology, ports, URIs.

    ``path``, ``line`` and ``key`` locate the problem when it comes from a file.
    """

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 key: str | None = None):
        self.path, self.line, self.key = path, line, key
        where = ""
        if path:
            where = f"{path}"
            if line is not None:
                where += f":{line}"
            where += ": "
        if key:
            where += f"{key}: "
        super().__init__(where + message)
        self.reason = message


class ExperimentError(ConfigError):
    """An experiment file is malformed or invalid (names file, line and key)."""


class PlatformError(HarnessError):
    """A platform REST call failed. ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False,
                 retry_after: float | None = None):
        super().__init__(message, exit_code=EXIT_BAD_INPUT)
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after


class AuthError(PlatformError):
    """401/403 from the platform, or credentials that could not be found."""


class SipError(HarnessError):
    """The SIP engine could not do what was asked (bind, parse a URI, place a call)."""


class GuardError(HarnessError):
    """A guard refused to go on: blast radius, injection window, WFM, guardrail."""

    exit_code = EXIT_ABORTED


class RollbackError(HarnessError):
    """Rollback could not be verified; ``remaining`` names what is still changed."""

    exit_code = EXIT_ROLLBACK_FAILED

    def __init__(self, message: str, remaining: list | None = None):
        super().__init__(message)
        self.remaining = list(remaining or [])
