"""User text is hostile in every output: checks on input and neutralisers per output format.

Every text a user types (names, titles, excuses, responses, officers) is checked on input with
:func:`unsafe_reason` and, whatever got stored before the check existed, neutralised again on
the way out: :func:`sheet_cell` for CSV and XLSX cells, :func:`pdf_markup` for reportlab
paragraphs, :func:`for_log` for log lines.
"""

from __future__ import annotations

import re
from typing import Any

#: C0 and C1 controls, DEL, lone surrogates (JSON "\\ud800" decodes to one), the non-characters
#: U+FFFE/U+FFFF, and the bidirectional overrides that make a file name or cell read backwards.
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff\u202a-\u202e\u2066-\u2069]")
#: Tab and line breaks are allowed in multi-line texts (a notice's written response).
_LINE_BREAKS = re.compile("[\t\n\r]")
#: A spreadsheet takes a cell that starts with one of these as a formula (OWASP: CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def unsafe_reason(value: str, multiline: bool = False) -> str | None:
    """Why a user text cannot be stored (in Chinese, shown to the user), or None when it can."""
    if _UNSAFE.search(value) or (not multiline and _LINE_BREAKS.search(value)):
        return "含有不允许的控制字符或无效字符"
    return None


def strip_unsafe(value: str) -> str:
    """The text without control and invalid characters (for output of rows stored earlier)."""
    return _UNSAFE.sub("", value)


def sheet_cell(value: Any) -> Any:
    """A CSV/XLSX cell value that a spreadsheet shows as text and never evaluates.

    Numbers, dates and None pass as they are; a text starting like a formula gets a leading
    apostrophe (what spreadsheet users type to force text), and characters XML cannot hold
    (openpyxl raises on them) are removed.
    """
    if not isinstance(value, str):
        return value
    value = strip_unsafe(value)
    if value.startswith(_FORMULA_START):
        return "'" + value
    return value


def pdf_markup(value: Any) -> str:
    """Text for a reportlab ``Paragraph``, whose input is markup (``<img src=...>`` reads files)."""
    text = strip_unsafe(str(value))
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def for_log(value: Any, limit: int = 200) -> str:
    """A user text for a log line: one line, escaped, bounded."""
    text = repr(str(value))[1:-1]
    return text if len(text) <= limit else text[:limit] + "…"
