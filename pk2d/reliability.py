"""Reliability of an estimate: the BPS relative-standard-error rule, and estimates without an SE.

Every published estimate carries one of these codes (texts in ``templates/text.yaml``, group
``reliability``):

* ``census``: the whole population was counted; no sampling error (``se = 0`` by design);
* ``no_se``: a sample estimate whose standard error cannot be estimated (fewer than two PSUs
  behind it, or an estimate of 0 with no spread); it is printed without an interval;
* ``ok``: relative standard error ``RSE = se / |estimate|`` at most 25 %;
* ``care``: RSE above 25 % and at most 50 % (use with care);
* ``unreliable``: RSE above 50 % (not reliable).

The 25 % / 50 % cut-offs are the BPS convention for Susenas-type tables (configurable here).

>>> reliability([70.0, 10.0, 4.0, 2.0, 5.0], [1.0, 3.0, 2.5, 0.0, 0.0],
...             n_psu=[20, 20, 20, 1, 30], census=[False, False, False, False, True]).tolist()
['ok', 'care', 'unreliable', 'no_se', 'census']
>>> relative_se([50.0, 0.0], [5.0, 1.0]).round(3).tolist()
[0.1, nan]
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["CODES", "RSE_CARE", "RSE_UNRELIABLE", "relative_se", "reliability"]

#: RSE above this is "use with care"
RSE_CARE = 0.25
#: RSE above this is "not reliable"
RSE_UNRELIABLE = 0.50
CODES = ("census", "no_se", "ok", "care", "unreliable")


def relative_se(estimate, se) -> np.ndarray:
    """``se / |estimate|`` (NaN where the estimate is 0 or missing)."""
    est = np.asarray(estimate, dtype="float64")
    s = np.asarray(se, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.abs(est) > 0, s / np.abs(est), np.nan)


def reliability(estimate, se, *, n_psu=None, census=False) -> pd.Series:
    """One code of :data:`CODES` per estimate (see the module docstring).

    ``n_psu``: PSUs with data behind each estimate (``None``: not known, only the SE decides);
    ``census``: a bool or one per estimate.
    """
    est = np.asarray(estimate, dtype="float64")
    s = np.asarray(se, dtype="float64")
    cen = np.broadcast_to(np.asarray(census, dtype=bool), est.shape)
    psu = np.full(est.shape, np.inf) if n_psu is None else np.asarray(n_psu, dtype="float64")
    rse = relative_se(est, s)
    code = np.where(rse > RSE_UNRELIABLE, "unreliable", np.where(rse > RSE_CARE, "care", "ok"))
    no_se = (psu < 2) | np.isnan(s) | (np.isnan(rse) & ~(s > 0))
    code = np.where(np.isnan(rse) & (s > 0), "unreliable", code)
    code = np.where(no_se, "no_se", code)
    code = np.where(cen, "census", code)
    code = np.where(np.isnan(est), None, code)
    return pd.Series(code, dtype="object")
