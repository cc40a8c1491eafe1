"""Number and date formatting for reports: Bahasa Indonesia first (decimal comma).

>>> number(73.98, 2), number(1234567, 0), number(73.98, 2, "en")
('73,98', '1.234.567', '73.98')
>>> date_text(__import__("datetime").date(2024, 7, 10))
'10 Juli 2024'
"""
from __future__ import annotations

import datetime as dt
import math

MONTHS_ID = ["Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus", "September",
             "Oktober", "November", "Desember"]


def number(value, digits: int = 2, lang: str = "id") -> str:
    """Format a number with the language's decimal and thousands separators ('-' for missing)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    text = f"{value:,.{digits}f}"
    if lang == "en":
        return text
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def date_text(d: dt.date, lang: str = "id") -> str:
    """'10 Juli 2024' (id) or '10 July 2024' (en)."""
    if lang == "en":
        return d.strftime("%-d %B %Y")
    return f"{d.day} {MONTHS_ID[d.month - 1]} {d.year}"


def interval(low, high, digits: int = 2, lang: str = "id") -> str:
    """'71,20–76,40'."""
    return f"{number(low, digits, lang)}–{number(high, digits, lang)}"
