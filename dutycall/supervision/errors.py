"""Errors of the supervision package; each is one of the kinds in ``dutycall/errors.py``.

SupervisionError
 ├── Forbidden          not the notified unit (respond) or not the issuing side (close) (403)
 ├── NotFound           no such notice in your scope (404)
 └── Invalid            a response that is empty, too long or unsafe; a step out of order (422)
"""

from __future__ import annotations

from .. import errors
from . import messages  # noqa: F401  (registers the package's messages)


class SupervisionError(errors.DutycallError):
    """Base of the supervision errors."""


class Forbidden(SupervisionError, errors.Forbidden):
    code = "forbidden"


class NotFound(SupervisionError, errors.NotFound):
    code = "not_found"


class Invalid(SupervisionError, errors.Invalid):
    code = "invalid"
