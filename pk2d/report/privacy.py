"""What may be published: small cells are suppressed, never shown.

A cell (an RT, a count of families) with fewer than :data:`pk2d.defaults.MIN_CELL`
families is written ``"<5"`` in every published table, and when exactly one
cell of a table is hidden, the next smallest is hidden too (secondary
suppression), so that the hidden value cannot be recovered from the total.
Reports read aggregated tables only: the family ids for cadres
(``intervention_families``) never reach a report.

>>> suppress_small(pd.DataFrame({"rt": ["1", "2", "3"], "n": [3, 40, 41], "v": [1.0, 2.0, 3.0]}), "n", ["v"])["v"].tolist()
['<5', '<5', 3.0]
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..defaults import MIN_CELL


def suppress_small(frame: pd.DataFrame, n_col: str, value_cols: Sequence[str], *, min_n: int = MIN_CELL,
                   secondary: bool = True) -> pd.DataFrame:
    """Replace ``n_col`` and ``value_cols`` by ``"<min_n"`` in rows with fewer than ``min_n`` families.

    ``secondary``: when exactly one row is suppressed and others remain, the next smallest row is
    suppressed too. The returned frame has object columns.

    >>> f = pd.DataFrame({"rt": ["1", "2"], "n": [4, 5], "v": [10.0, 20.0]})
    >>> suppress_small(f, "n", ["v"], secondary=False).to_dict("list")
    {'rt': ['1', '2'], 'n': ['<5', 5], 'v': ['<5', 20.0]}
    """
    out = frame.copy().astype({c: object for c in [n_col, *value_cols]})
    n = pd.to_numeric(frame[n_col], errors="coerce").to_numpy(float)
    hide = n < min_n
    if secondary and hide.sum() == 1 and (~hide).sum() >= 1:
        rest = np.where(~hide, n, np.inf)
        hide[int(np.argmin(rest))] = True
    if hide.any():
        idx = out.index[hide]
        for c in [n_col, *value_cols]:
            out.loc[idx, c] = f"<{min_n}"
    return out
