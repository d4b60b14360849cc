"""Errors of the media package (footage, ingest, the archive); each is one of the kinds in
``dutycall/errors.py``, which the web layer maps to HTTP statuses in one place.

MediaError
 ├── Forbidden          the role does not allow it (403)
 ├── NotFound           no such incident, token or session in your scope (404)
 ├── Invalid            a malformed request (422)
 ├── BadToken           an ingest token that is wrong, expired or revoked (401)
 ├── TooMany            too many ingest sessions at once (429)
 └── NoSpace            the recordings disk is below its configured free space (503)

Each is raised with a catalogue key (``media/messages.py``) and its parameters.
"""

from __future__ import annotations

from .. import errors
from . import messages  # noqa: F401  (registers the package's messages)


class MediaError(errors.DutycallError):
    """Base of the media errors."""


class Forbidden(MediaError, errors.Forbidden):
    code = "forbidden"


class NotFound(MediaError, errors.NotFound):
    code = "not_found"


class Invalid(MediaError, errors.Invalid):
    code = "invalid"


class BadToken(MediaError, errors.NotSignedIn):
    code = "bad_token"


class TooMany(MediaError, errors.TooMany):
    code = "too_many_sessions"


class NoSpace(MediaError, errors.Busy):
    code = "no_space"
