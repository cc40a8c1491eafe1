"""Shortcuts: one call declares the design and estimates (the design object is :class:`pk2d.design.Design`).

``survey_mean(df, y, by=..., weight=..., strata=..., psu=[stage1, stage2], fpc=[N1, N2])`` is
``Design(df, ids=psu, strata=strata, weights=weight, fpc=fpc).mean(y, by=by)``; the numbers are
those of R's ``survey``::

    des <- svydesign(ids = ~psu1 + psu2, strata = ~stratum, weights = ~w, fpc = ~N1 + N2,
                     data = d, nest = TRUE)
    svymean(~y, des, na.rm = TRUE);  svyby(~y, ~g, des, svymean, na.rm = TRUE)
    svyratio(~y, ~x, des, na.rm = TRUE)

* Estimate: ``R = sum(w*y) / sum(w*x)`` over the domain (``x = 1`` for a mean); influence values
  ``z_i = w_i (y_i - R x_i) / sum(w*x)`` inside the domain and 0 outside it: domains keep the FULL
  design (rows outside the domain, or with a missing ``y``/``x``, contribute zero).
* Variance (first stage): ``sum_h f_h n_h/(n_h-1) * sum_j (z_hj - zbar_h)^2`` over the PSU totals
  of stratum ``h`` (``f_h = 1 - n_h/N_h`` with ``fpc``, else 1); with ``fpc`` every later stage adds
  its own term times the sampling fractions above it (R's ``svyrecvar``).
* Interval: ``estimate +/- t_{df} * se``, ``df`` = PSUs minus strata of the domain (R's ``degf``
  of the subset). A 0/1 column's interval from :func:`survey_mean` is clipped to [0, 1]; for an
  interval that respects the bounds use :meth:`pk2d.design.Design.proportion` (logit, as
  ``svyciprop``).
* ``census=True``: the whole population was observed, so ``se = 0`` and the interval collapses
  onto the estimate.
* ``lonely_psu``: ``fail`` (default), ``remove``, ``adjust``, ``average``, ``certainty``, as R's
  ``survey.lonely.psu`` (see :mod:`pk2d.design`).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .design import Design, DesignError

__all__ = ["SurveyError", "survey_mean", "survey_means", "survey_ratio"]

SurveyError = DesignError  # the name pk2d used before the design object existed


def _design(data, weight, strata, psu, fpc, census, lonely_psu) -> Design:
    return Design(data, ids=psu, strata=strata, weights=weight, fpc=fpc, lonely_psu=lonely_psu,
                  census=census)


def _clip01(data: pd.DataFrame, column: str, result: pd.DataFrame) -> pd.DataFrame:
    values = pd.to_numeric(data[column], errors="coerce").dropna().to_numpy()
    if len(values) and np.isin(values, (0.0, 1.0)).all():
        result = result.assign(ci_low=result["ci_low"].clip(0.0, 1.0), ci_high=result["ci_high"].clip(0.0, 1.0))
    return result


def survey_mean(data: pd.DataFrame, column: str, *, by: str | Sequence[str] | None = None,
                weight: str | None = None, strata: str | None = None, psu: str | Sequence[str] | None = None,
                fpc: str | Sequence[str] | None = None, level: float = 0.95, census: bool = False,
                lonely_psu: str = "fail") -> pd.DataFrame:
    """Weighted mean (a proportion for a 0/1 column) per domain (R's ``svymean``/``svyby``).

    ``n`` is the unweighted count of non-missing values in the domain. Returns the ``by`` columns and
    ``n, estimate, se, ci_low, ci_high, df, n_psu, census, rse, reliability``.

    >>> d = pd.DataFrame({"y": [1.0, 2.0, 3.0, 6.0], "g": ["p", "p", "q", "q"]})
    >>> survey_mean(d, "y")[["n", "estimate", "se"]].round(4).to_dict("records")
    [{'n': 4, 'estimate': 3.0, 'se': 1.0801}]
    >>> c = survey_mean(d, "y", by="g", census=True)
    >>> c[["g", "n", "estimate", "se", "ci_high"]].to_dict("records")  # doctest: +NORMALIZE_WHITESPACE
    [{'g': 'p', 'n': 2, 'estimate': 1.5, 'se': 0.0, 'ci_high': 1.5},
     {'g': 'q', 'n': 2, 'estimate': 4.5, 'se': 0.0, 'ci_high': 4.5}]
    """
    des = _design(data, weight, strata, psu, fpc, census, lonely_psu)
    return _clip01(data, column, des.mean(column, by=by, level=level))


def survey_means(data: pd.DataFrame, columns: Sequence[str], *, by: str | Sequence[str] | None = None,
                 weight: str | None = None, strata: str | None = None, psu: str | Sequence[str] | None = None,
                 fpc: str | Sequence[str] | None = None, level: float = 0.95, census: bool = False,
                 lonely_psu: str = "fail") -> pd.DataFrame:
    """:func:`survey_mean` of several columns at once, in long form (a ``variable`` column first).

    The design is declared and validated once.

    >>> d = pd.DataFrame({"a": [1.0, 2.0, 3.0, 6.0], "b": [0.0, 1.0, 1.0, 1.0]})
    >>> survey_means(d, ["a", "b"])[["variable", "estimate"]].to_dict("records")
    [{'variable': 'a', 'estimate': 3.0}, {'variable': 'b', 'estimate': 0.75}]
    """
    from .estimators import means

    return means(_design(data, weight, strata, psu, fpc, census, lonely_psu), list(columns), by=by, level=level)


def survey_ratio(data: pd.DataFrame, numerator: str, denominator: str, *,
                 by: str | Sequence[str] | None = None, weight: str | None = None,
                 strata: str | None = None, psu: str | Sequence[str] | None = None,
                 fpc: str | Sequence[str] | None = None, level: float = 0.95,
                 census: bool = False, lonely_psu: str = "fail") -> pd.DataFrame:
    """Ratio of weighted totals ``sum(w*y) / sum(w*x)`` per domain (R's ``svyratio``).

    Rows where the numerator or denominator is missing leave the domain but stay in the design.

    >>> d = pd.DataFrame({"y": [2.0, 4.0, 6.0, 1.0], "x": [1.0, 2.0, 2.0, 1.0],
    ...                   "h": ["a", "a", "b", "b"]})
    >>> r = survey_ratio(d, "y", "x", strata="h")
    >>> round(float(r.estimate[0]), 4), round(float(r.se[0]), 4), int(r.df[0])
    (2.1667, 0.473, 2)
    """
    des = _design(data, weight, strata, psu, fpc, census, lonely_psu)
    return des.ratio(numerator, denominator, by=by, level=level)
