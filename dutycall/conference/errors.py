"""Errors of the conference package.

ConferenceError                 every error a client request can cause
 ├── InvalidRequest             a message that is not what the protocol allows
 ├── InvalidState               a request that does not fit the current state
 ├── NotFound                   an unknown room, publication or subscription
 ├── LimitExceeded              too many of something
 └── SdpError                   malformed or unusable session description
      └── UnsupportedCodec      no codec we can forward in common

Every error carries a stable ``code`` that the signalling protocol sends to clients.
"""


class ConferenceError(Exception):
    """Base of all conference errors; ``code`` is what clients see."""

    code = "error"


class InvalidRequest(ConferenceError):
    """The message does not follow the protocol."""

    code = "invalid_request"


class InvalidState(ConferenceError):
    """The request does not fit the current state (not joined, already closed...)."""

    code = "invalid_state"


class NotFound(ConferenceError):
    """The room, publication or subscription named does not exist."""

    code = "not_found"


class LimitExceeded(ConferenceError):
    """A per-room or per-participant limit would be exceeded."""

    code = "limit_exceeded"


class SdpError(ConferenceError):
    """The session description is malformed or cannot be negotiated."""

    code = "invalid_sdp"


class UnsupportedCodec(SdpError):
    """The offer has no codec in common with what the server forwards."""

    code = "unsupported_codec"
