"""The trend charts are drawn in Chinese (the WenQuanYi font the PDFs use), with their values and
axis labels on them: a printed chart has no tooltip."""

from __future__ import annotations

import datetime as dt
import warnings
from collections import Counter

import pytest
from matplotlib.figure import Figure
from matplotlib.text import Annotation

from dutycall.incidents.statistics import render_trend as incident_trend
from dutycall.rollcall.statistics import render_trend as rollcall_trend


@pytest.fixture
def drawn(monkeypatch):
    """The figures that were saved, to read their texts back."""
    figures: list[Figure] = []
    save = Figure.savefig

    def keep(self, *args, **kwargs):
        figures.append(self)
        return save(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    return figures


def _texts(figure: Figure) -> list[str]:
    return [t.get_text() for t in figure.findobj(lambda o: hasattr(o, "get_text")) if t.get_text()]


def _assert_cjk_drawn(caught: list[warnings.WarningMessage]) -> None:
    missing = [str(w.message) for w in caught if "missing from" in str(w.message) or "Glyph" in str(w.message)]
    assert not missing, missing


def test_the_roll_call_trend_has_chinese_captions_values_and_axes(drawn):
    daily = {day: Counter({"on_time": 8, "late": 1, "absent": day % 3}) for day in range(0, 30, 3)}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        png = rollcall_trend(dt.datetime(2026, 11, 1), 30, daily)
        empty = rollcall_trend(dt.datetime(2026, 11, 1), 30, {})
    _assert_cjk_drawn(caught)
    assert png[:4] == b"\x89PNG" and empty[:4] == b"\x89PNG"
    axes = drawn[0].axes[0]
    assert axes.get_title().startswith("2026年11月 每日到岗率")
    assert axes.get_xlabel() == "日期（日）" and axes.get_ylabel() == "到岗率"
    values = [a.get_text() for a in axes.texts if isinstance(a, Annotation)]
    assert len(values) == len(daily) and all(v.endswith("%") for v in values)
    assert "本月暂无点名记录" in _texts(drawn[1])


def test_the_incident_trend_has_chinese_captions_values_and_axes(drawn):
    trend = [{"month": f"2026-{m:02d}", "incidents": m % 4, "rate": None if m % 4 == 0 else 0.5 + m / 30}
             for m in range(1, 13)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        incident_trend(trend)
    _assert_cjk_drawn(caught)
    bars, rates = drawn[0].axes
    assert bars.get_title() == "近12个月突发事件起数与报送及时率"
    assert bars.get_xlabel() == "月份（年/月）" and bars.get_ylabel() == "事件起数（起）"
    assert rates.get_ylabel() == "报送及时率"
    counts = [t.get_text() for t in bars.texts if t.get_text()]
    assert sorted(counts) == sorted(str(t["incidents"]) for t in trend if t["incidents"])
    assert len([a for a in rates.texts if isinstance(a, Annotation)]) == sum(1 for t in trend if t["rate"] is not None)
