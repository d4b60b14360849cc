"""Errors of the directory package; the web layer maps each to an HTTP status in one place.

DirectoryError
 ├── NotSignedIn        no valid session or credential (401)
 ├── AccountLocked      too many failed sign-ins (423)
 ├── Forbidden          role or scope does not allow it (403)
 ├── NotFound           no such thing, or not in your scope (404)
 ├── Conflict           duplicate code or username, a cycle in the tree (409)
 ├── Invalid            a field is missing or malformed; ``errors`` lists each (422)
 ├── TooManyAttempts    this client failed to sign in too often; wait (429)
 └── Busy               too much work queued (password checks); try again soon (503)
"""

from __future__ import annotations

from typing import Any


class DirectoryError(Exception):
    code = "error"

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


class NotSignedIn(DirectoryError):
    code = "not_signed_in"


class AccountLocked(DirectoryError):
    code = "account_locked"


class Forbidden(DirectoryError):
    code = "forbidden"


class NotFound(DirectoryError):
    code = "not_found"


class Conflict(DirectoryError):
    code = "conflict"


class Invalid(DirectoryError):
    code = "invalid"


class TooManyAttempts(DirectoryError):
    code = "too_many_attempts"


class Busy(DirectoryError):
    code = "busy"
