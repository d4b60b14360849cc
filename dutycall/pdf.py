"""PDF documents with Chinese text (reportlab), shared by the roster handbook and roll-call sheets.

reportlab's built-in fonts have no CJK glyphs, so a TrueType font is registered once:
``DUTYCALL_PDF_FONT`` if set, else Debian's ``fonts-wqy-microhei`` (installed by the
README's commands).
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from typing import Any

from .text import pdf_markup, strip_unsafe

FONT_NAME = "DutyCJK"
FONT_CANDIDATES = [
    os.environ.get("DUTYCALL_PDF_FONT", ""),
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
]


def cjk_font_path() -> str:
    """The TrueType file with Chinese glyphs (also used for charts)."""
    for path in FONT_CANDIDATES:
        if path and os.path.exists(path):
            return path
    raise RuntimeError("no Chinese font: install fonts-wqy-microhei or set DUTYCALL_PDF_FONT")


def cjk_font() -> str:
    """Register (once) and return the name of a font that renders Chinese."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    if FONT_NAME in pdfmetrics.getRegisteredFontNames():
        return FONT_NAME
    for path in FONT_CANDIDATES:
        if path and os.path.exists(path):
            kwargs = {"subfontIndex": 0} if path.endswith(".ttc") else {}
            pdfmetrics.registerFont(TTFont(FONT_NAME, path, **kwargs))
            return FONT_NAME
    raise RuntimeError("no Chinese font for PDF documents: install fonts-wqy-microhei or set DUTYCALL_PDF_FONT")


class Document:
    """An A4 document: a centred heading, then paragraphs and grid tables, in order.

    Every text given to it is plain text, never markup: reportlab's ``Paragraph`` reads
    ``<img src=...>`` (a server file or URL), ``<font>`` and unbalanced tags (an exception), so
    each text is escaped here, in the one place every PDF goes through.
    """

    def __init__(self, title: str, landscape: bool = False) -> None:
        from reportlab.lib.pagesizes import A4
        from reportlab.lib.pagesizes import landscape as turn
        from reportlab.lib.styles import ParagraphStyle
        from reportlab.lib.units import mm
        from reportlab.platypus import Paragraph, Spacer

        font = cjk_font()
        self.title = strip_unsafe(title)  # the file's metadata: plain text, but no control characters
        self.pagesize = turn(A4) if landscape else A4
        self.mm = mm
        self.heading = ParagraphStyle("h", fontName=font, fontSize=18, leading=24, alignment=1)
        self.text = ParagraphStyle("t", fontName=font, fontSize=12, leading=16, spaceBefore=6)
        self.cell = ParagraphStyle("c", fontName=font, fontSize=9, leading=12)
        self.story: list[Any] = [Paragraph(pdf_markup(title), self.heading), Spacer(1, 4 * mm)]

    def paragraph(self, text: str) -> None:
        from reportlab.platypus import Paragraph

        self.story.append(Paragraph(pdf_markup(text), self.text))

    def table(self, rows: Sequence[Sequence[Any]], widths_mm: Sequence[float]) -> None:
        """A grid with a shaded, repeated header row. A cell is text, or a flowable (an image)."""
        from reportlab.lib import colors
        from reportlab.platypus import Flowable, Paragraph, Spacer, Table, TableStyle

        cells = [[c if isinstance(c, Flowable) else Paragraph(pdf_markup(c), self.cell) for c in row]
                 for row in rows]
        table = Table(cells, colWidths=[w * self.mm for w in widths_mm], repeatRows=1)
        table.setStyle(TableStyle([
            ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#DDEBF7")),
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ]))
        self.story += [table, Spacer(1, 3 * self.mm)]

    def image(self, jpeg: bytes, width_mm: float) -> Any:
        """A JPEG scaled to ``width_mm``, for a table cell."""
        from reportlab.lib.utils import ImageReader
        from reportlab.platypus import Image

        w, h = ImageReader(io.BytesIO(jpeg)).getSize()
        return Image(io.BytesIO(jpeg), width=width_mm * self.mm, height=width_mm * self.mm * h / w)

    def render(self) -> bytes:
        from reportlab.platypus import SimpleDocTemplate

        out = io.BytesIO()
        margin = 15 * self.mm
        SimpleDocTemplate(out, pagesize=self.pagesize, leftMargin=margin, rightMargin=margin,
                          topMargin=margin, bottomMargin=margin, title=self.title).build(self.story)
        return out.getvalue()

