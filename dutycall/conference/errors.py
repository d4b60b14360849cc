"""Errors of the conference package.

ConferenceError                 every error a client request can cause
 ├── InvalidRequest             a message that is not what the protocol allows
 ├── InvalidState               a request that does not fit the current state
 ├── NotFound                   an unknown room, publication or subscription
 ├── LimitExceeded              too many of something
 └── SdpError                   malformed or unusable session description
      └── UnsupportedCodec      no codec we can forward in common

Every error carries a stable ``code`` that the signalling protocol sends to clients, and a
catalogue message (``dutycall/messages.py``: a key and named parameters) that the signalling
peer renders in the language of the page that opened the socket. Each is also one of the kinds
of ``dutycall/errors.py`` (invalid, conflict, not found, too many).
"""

from __future__ import annotations

from .. import errors


class ConferenceError(errors.DutycallError):
    """Base of all conference errors; ``code`` is what clients see."""

    code = "error"


class InvalidRequest(ConferenceError, errors.Invalid):
    """The message does not follow the protocol."""

    code = "invalid_request"


class InvalidState(ConferenceError, errors.Conflict):
    """The request does not fit the current state (not joined, already closed...)."""

    code = "invalid_state"


class NotFound(ConferenceError, errors.NotFound):
    """The room, publication or subscription named does not exist."""

    code = "not_found"


class LimitExceeded(ConferenceError, errors.TooMany):
    """A per-room or per-participant limit would be exceeded."""

    code = "limit_exceeded"


class SdpError(ConferenceError, errors.Invalid):
    """The session description is malformed or cannot be negotiated."""

    code = "invalid_sdp"


class UnsupportedCodec(SdpError):
    """The offer has no codec in common with what the server forwards."""

    code = "unsupported_codec"
