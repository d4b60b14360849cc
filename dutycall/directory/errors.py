"""Errors of the directory package; each is one of the kinds in ``dutycall/errors.py``, which the
web layer maps to an HTTP status in one place (``web/auth.py``).

DirectoryError
 ├── NotSignedIn        no valid session or credential (401)
 ├── AccountLocked      too many failed sign-ins (423)
 ├── Forbidden          role or scope does not allow it (403)
 ├── NotFound           no such thing, or not in your scope (404)
 ├── Conflict           duplicate code or username, a cycle in the tree (409)
 ├── Invalid            a field is missing or malformed; ``errors`` lists each (422)
 ├── TooManyAttempts    this client failed to sign in too often; wait (429)
 └── Busy               too much work queued (password checks); try again soon (503)

Each is raised with a catalogue key (``dutycall/messages.py``) and its parameters.
"""

from __future__ import annotations

from .. import errors


class DirectoryError(errors.DutycallError):
    """Base of the directory's errors."""


class NotSignedIn(DirectoryError, errors.NotSignedIn):
    code = "not_signed_in"


class AccountLocked(DirectoryError, errors.Locked):
    code = "account_locked"


class Forbidden(DirectoryError, errors.Forbidden):
    code = "forbidden"


class NotFound(DirectoryError, errors.NotFound):
    code = "not_found"


class Conflict(DirectoryError, errors.Conflict):
    code = "conflict"


class Invalid(DirectoryError, errors.Invalid):
    code = "invalid"


class TooManyAttempts(DirectoryError, errors.TooMany):
    code = "too_many_attempts"


class Busy(DirectoryError, errors.Busy):
    code = "busy"
