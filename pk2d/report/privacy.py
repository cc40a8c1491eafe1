"""What may be published: small cells are suppressed, never shown.

A cell (an RT, a count of families) with fewer than :data:`pk2d.defaults.MIN_CELL`
families is written with the suppression mark of the text catalogue (``report.suppressed``,
``"<5"``) in every published table, and when exactly one cell of a table is hidden, the next
smallest is hidden too (secondary suppression), so that the hidden value cannot be recovered
from the total (the rule: :func:`pk2d.report.disclosure.small_cells`). The counts and shares
of sensitive indicators (catalogue ``sensitive: true``) are hidden where the report tables say
so (:mod:`pk2d.report.disclosure`, decided once per run for all villages), with :func:`hide`.
Reports read aggregated tables only: the family ids for cadres (``intervention_families``)
never reach a report.

>>> suppress_small(pd.DataFrame({"rt": ["1", "2", "3"], "n": [3, 40, 41], "v": [1.0, 2.0, 3.0]}), "n", ["v"])["v"].tolist()
['<5', '<5', 3.0]
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..defaults import MIN_CELL
from .disclosure import small_cells


def mark(lang: str = "id", *, min_n: int = MIN_CELL) -> str:
    """The suppression mark (``report.suppressed`` of the text catalogue).

    >>> mark(), mark("en", min_n=10)
    ('<5', '<10')
    """
    from ..text import t

    return t("report.suppressed", lang, min=min_n)


def hide(frame: pd.DataFrame, mask, columns: Sequence[str], *, lang: str = "id", min_n: int = MIN_CELL) -> pd.DataFrame:
    """``frame`` with the suppression mark in ``columns`` of the rows where ``mask`` is true (object columns).

    >>> hide(pd.DataFrame({"a": [1, 2], "b": [3, 4]}), [False, True], ["b"]).to_dict("list")
    {'a': [1, 2], 'b': [3, '<5']}
    """
    columns = [c for c in columns if c in frame.columns]
    out = frame.copy().astype({c: object for c in columns})
    m = np.asarray(mask, dtype=bool)
    if m.any():
        idx = out.index[m]
        for c in columns:
            out.loc[idx, c] = mark(lang, min_n=min_n)
    return out


def suppress_small(frame: pd.DataFrame, n_col: str, value_cols: Sequence[str], *, min_n: int = MIN_CELL,
                   secondary: bool = True, lang: str = "id") -> pd.DataFrame:
    """Replace ``n_col`` and ``value_cols`` by the suppression mark in rows with fewer than ``min_n`` families.

    ``secondary``: when exactly one row is suppressed and others remain, the next smallest row is
    suppressed too. The returned frame has object columns.

    >>> f = pd.DataFrame({"rt": ["1", "2"], "n": [4, 5], "v": [10.0, 20.0]})
    >>> suppress_small(f, "n", ["v"], secondary=False).to_dict("list")
    {'rt': ['1', '2'], 'n': ['<5', 5], 'v': ['<5', 20.0]}
    """
    return hide(frame, small_cells(frame[n_col], min_n=min_n, secondary=secondary), [n_col, *value_cols],
                lang=lang, min_n=min_n)
