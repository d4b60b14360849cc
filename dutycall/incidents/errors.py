"""Errors of the incidents package; each is one of the kinds in ``dutycall/errors.py``, which the
web layer maps to HTTP statuses in one place.

IncidentError
 ├── Forbidden          the role does not allow it (403)
 ├── NotFound           no such incident, report or instruction in your scope (404)
 ├── Invalid            an element is missing or malformed; ``errors`` lists each by name (422)
 └── WrongStage         the incident's stage does not allow it: a report after the final one,
                        closing before it, acting on a merged incident (409, ``wrong_stage``)

Each is raised with a catalogue key (``incidents/messages.py``) and its parameters.
"""

from __future__ import annotations

from .. import errors
from . import messages  # noqa: F401  (registers the package's messages)


class IncidentError(errors.DutycallError):
    """Base of the incident errors."""


class Forbidden(IncidentError, errors.Forbidden):
    code = "forbidden"


class NotFound(IncidentError, errors.NotFound):
    code = "not_found"


class Invalid(IncidentError, errors.Invalid):
    code = "invalid"


class WrongStage(IncidentError, errors.Conflict):
    code = "wrong_stage"
