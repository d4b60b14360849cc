"""The base of every package's errors, and the kinds the edges map to statuses and codes.

Each package has its own tree (``directory/errors.py``, ``rollcall/errors.py``,
``conference/errors.py``); each of its classes is also one of the kinds below, so the web
edge maps every package's errors to HTTP statuses in one table (``web/auth.py`` ``STATUS``)
and a test or caller may catch a kind across packages::

    DutycallError                 key + params of a catalogue message (messages.py), a stable code
     ├── NotSignedIn              no valid session or credential          401
     ├── Forbidden                role or scope does not allow it         403
     ├── NotFound                 no such thing, or not in your scope     404
     ├── Conflict                 does not fit the current state          409
     ├── Invalid                  a field is missing or malformed         422
     ├── Locked                   too many failed sign-ins                423
     ├── TooMany                  too many attempts or of something       429
     └── Busy                     too much work queued; try again soon    503

An error never holds finished text: it holds a :class:`~dutycall.messages.Msg` (a catalogue
key and named parameters), rendered in the reader's language where it is answered. ``errors``
lists field- or row-level problems, dicts whose ``message`` is a ``Msg`` too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from .messages import DEFAULT_LANGUAGE, EN, Msg, localise


class DutycallError(Exception):
    """An error a user may see: a catalogue message, a stable ``code``, field-level ``errors``."""

    code: ClassVar[str] = "error"
    #: Seconds after which trying again may succeed; the web edge sends it as ``Retry-After``.
    retry_after: int | None = None

    def __init__(self, key: str | Msg, /, *, errors: Iterable[dict[str, Any]] | None = None,
                 field: str | None = None, **params: Any) -> None:
        """``key`` names a catalogue message (or is a ready :class:`Msg`); ``params`` fill it in.
        ``field`` is shorthand for one field-level error with the same message (and fills a
        ``{field}`` parameter, should the message have one)."""
        if field is not None and not isinstance(key, Msg):
            params.setdefault("field", field)
        self.msg = key if isinstance(key, Msg) else Msg(key, **params)
        self.errors: list[dict[str, Any]] = list(errors or [])
        if field is not None:
            self.errors.append({"field": field, "message": self.msg})
        super().__init__(self.msg.key)

    def message(self, lang: str = DEFAULT_LANGUAGE) -> str:
        return self.msg.render(lang)

    def error_list(self, lang: str = DEFAULT_LANGUAGE) -> list[dict[str, Any]]:
        """``errors`` with every message rendered in ``lang``."""
        return [localise(item, lang) for item in self.errors]

    def __str__(self) -> str:
        # Logs and tracebacks are read by engineers: English.
        return self.msg.render(EN)


class NotSignedIn(DutycallError):
    code = "not_signed_in"


class Forbidden(DutycallError):
    code = "forbidden"


class NotFound(DutycallError):
    code = "not_found"


class Conflict(DutycallError):
    code = "conflict"


class Invalid(DutycallError):
    code = "invalid"


class Locked(DutycallError):
    code = "locked"


class TooMany(DutycallError):
    code = "too_many"


class Busy(DutycallError):
    code = "busy"


#: The kinds, most specific first as the edges look them up.
KINDS: tuple[type[DutycallError], ...] = (NotSignedIn, Forbidden, NotFound, Conflict, Invalid, Locked, TooMany, Busy)


def kind_of(exc: DutycallError) -> type[DutycallError] | None:
    """The kind ``exc`` is one of, or None for a bare DutycallError."""
    for cls in type(exc).__mro__:
        if cls in KINDS:
            return cls
    return None
