"""Errors of the rollcall package; each is one of the kinds in ``dutycall/errors.py``, which the
web layer maps to HTTP statuses (``web/auth.py``) and signalling codes in one place.

RollCallError
 ├── Forbidden          role does not allow it (a console reading the board) (403)
 ├── NotFound           no such roll-call, plan, notice or room in your scope (404)
 ├── Invalid            a field is missing or malformed; ``errors`` lists each (422)
 ├── Conflict           another change came first (a group name saved twice at once) (409)
 └── IllegalEvent       the state machine refuses the event in this phase (409, ``illegal_event``)

Each is raised with a catalogue key (``dutycall/messages.py``) and its parameters.
"""

from __future__ import annotations

from .. import errors


class RollCallError(errors.DutycallError):
    """Base of the roll-call errors."""


class Forbidden(RollCallError, errors.Forbidden):
    code = "forbidden"


class NotFound(RollCallError, errors.NotFound):
    code = "not_found"


class Invalid(RollCallError, errors.Invalid):
    code = "invalid"


class Conflict(RollCallError, errors.Conflict):
    """Another change came first (a group of that name saved at the same moment); nothing changed."""

    code = "conflict"


class IllegalEvent(RollCallError, errors.Conflict):
    """The event is not allowed in the roll-call's current state; nothing changed."""

    code = "illegal_event"
