"""Numbers, percentages, intervals and dates for reports: Bahasa Indonesia first (decimal comma).

Every function accepts missing values (None, NaN, pd.NA), shown as ``-``.

>>> number(73.98, 2), number(1234567, 0), number(73.98, 2, "en")
('73,98', '1.234.567', '73.98')
>>> date_text(__import__("datetime").date(2024, 7, 10))
'10 Juli 2024'
>>> pct(62.04), signed(-1.5, 1), count(1234.0)
('62,0%', '-1,5', '1.234')
>>> span(71.2, 76.4), span(-1.2, 4.21), span(1.2, 4.21, lang="en", signs=True)
('71,20–76,40', '-1,20 s.d. +4,21', '+1.20 to +4.21')
"""
from __future__ import annotations

import datetime as dt
import math

MONTHS_ID = ["Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus", "September",
             "Oktober", "November", "Desember"]
MONTHS_EN = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
             "October", "November", "December"]
TO = {"id": "s.d.", "en": "to"}


def missing(v) -> bool:
    """True for None, NaN, pd.NA and NaT."""
    if v is None:
        return True
    try:
        import pandas as pd

        if v is pd.NA or v is pd.NaT:
            return True
    except ImportError:  # pragma: no cover
        pass
    try:
        return isinstance(v, float) and math.isnan(v) or (hasattr(v, "dtype") and bool(v != v))
    except (TypeError, ValueError):
        return False


def _lang(lang: str) -> str:
    return "en" if lang == "en" else "id"


def number(value, digits: int = 2, lang: str = "id") -> str:
    """A number with the language's decimal and thousands separators ('-' for missing)."""
    if missing(value):
        return "-"
    text = f"{float(value):,.{digits}f}"
    if _lang(lang) == "en":
        return text
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def count(value, lang: str = "id") -> str:
    """A whole number: '1.234'."""
    return "-" if missing(value) else number(int(value), 0, lang)


def pct(value, digits: int = 1, lang: str = "id") -> str:
    """A percentage: '62,0%'."""
    return "-" if missing(value) else f"{number(value, digits, lang)}%"


def signed(value, digits: int = 2, lang: str = "id") -> str:
    """A difference with its sign: '+4,50', '-1,20'."""
    if missing(value):
        return "-"
    return ("+" if float(value) > 0 else "") + number(value, digits, lang)


def interval(low, high, digits: int = 2, lang: str = "id") -> str:
    """'71,20–76,40'."""
    return f"{number(low, digits, lang)}–{number(high, digits, lang)}"


def span(low, high, digits: int = 2, lang: str = "id", *, signs: bool = False) -> str:
    """An interval; for differences (``signs``) or a negative bound '-1,20 s.d. +4,21'."""
    if missing(low) or missing(high):
        return "-"
    if signs or float(low) < 0 or float(high) < 0:
        return f"{signed(low, digits, lang)} {TO[_lang(lang)]} {signed(high, digits, lang)}"
    return interval(low, high, digits, lang)


def date_text(d: dt.date, lang: str = "id") -> str:
    """'10 Juli 2024' (id) or '10 July 2024' (en)."""
    months = MONTHS_EN if _lang(lang) == "en" else MONTHS_ID
    return f"{d.day} {months[d.month - 1]} {d.year}"


def period_text(start, end, lang: str = "id") -> str:
    """'3 Juni 2024 – 15 Juni 2024', one date when both are the same day, '-' when unknown."""
    if missing(start) or missing(end):
        return "-"
    import pandas as pd

    a, b = pd.Timestamp(start).date(), pd.Timestamp(end).date()
    return date_text(a, lang) if a == b else f"{date_text(a, lang)} – {date_text(b, lang)}"


def datetime_text(t: dt.datetime, lang: str = "id") -> str:
    """'27 November 2026 pukul 06.32 WITA' (Indonesian: a period between hours and minutes).

    >>> datetime_text(dt.datetime(2024, 7, 10, 9, 5, tzinfo=dt.timezone(dt.timedelta(hours=8))))
    '10 Juli 2024 pukul 09.05 WITA'
    """
    zone = "WITA" if t.utcoffset() == dt.timedelta(hours=8) else (t.tzname() or "")
    if _lang(lang) == "en":
        return f"{date_text(t.date(), 'en')} at {t:%H:%M} {zone}".rstrip()
    return f"{date_text(t.date())} pukul {t:%H.%M} {zone}".rstrip()


def printable(text: str, width: int | None = None) -> str:
    r"""Untrusted text made safe for a terminal line (no control characters, optionally cut).

    >>> printable("Desa\nX\x00", 5)
    'Desa…'
    """
    text = "".join(ch if ch.isprintable() else " " for ch in str(text))
    if width is not None and len(text) > width:
        text = text[: max(width - 1, 0)] + "…"
    return text
