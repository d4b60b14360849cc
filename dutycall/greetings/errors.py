"""Errors of the greetings package; each is one of the kinds in ``dutycall/errors.py``.

GreetingError
 ├── Forbidden          the role may not start or end greetings; a console reading reports (403)
 ├── NotFound           no such greeting, room, unit or leader in your scope (404)
 ├── Invalid            a field is missing or malformed; ``errors`` lists each (422)
 └── Conflict           not in this state (ending a greeting that never started) (409)
"""

from __future__ import annotations

from .. import errors
from . import messages  # noqa: F401  (registers the package's messages)


class GreetingError(errors.DutycallError):
    """Base of the greeting errors."""


class Forbidden(GreetingError, errors.Forbidden):
    code = "forbidden"


class NotFound(GreetingError, errors.NotFound):
    code = "not_found"


class Invalid(GreetingError, errors.Invalid):
    code = "invalid"


class Conflict(GreetingError, errors.Conflict):
    code = "greeting_state"
