"""Design-based survey estimation: means, proportions and ratios with Taylor-linearised SEs.

The numbers equal R's ``survey`` package for a one-stage, with-replacement design::

    des <- svydesign(ids = ~psu, strata = ~stratum, weights = ~w, data = d, nest = TRUE)
    svymean(~y, des, na.rm = TRUE);  svyby(~y, ~g, des, svymean, na.rm = TRUE)
    svyratio(~y, ~x, des, na.rm = TRUE)

* Estimate: ``R = sum(w*y) / sum(w*x)`` over the domain (``x = 1`` for a mean).
* Influence values ``z_i = w_i (y_i - R x_i) / sum(w*x)`` inside the domain and 0 outside it.
  Domains keep the FULL design (as ``svyby``/``subset`` do): rows outside the domain, or with
  a missing ``y``/``x``, stay in the design and contribute zero; they are never dropped.
* Variance: ``sum_h n_h/(n_h-1) * sum_j (z_hj - zbar_h)^2`` over the PSU totals ``z_hj`` of
  stratum ``h`` (``n_h`` = PSUs of the stratum in the whole design). PSU codes are read within
  their stratum (R's ``nest = TRUE``).
* Interval: ``estimate +/- t_{df} * se`` with the design degrees of freedom
  ``df = #PSUs - #strata`` of the whole design (R: ``confint(est, df = degf(des))``; note R's
  ``confint`` default is the normal quantile). A 0/1 column's interval is clipped to [0, 1].
* No ``psu``: every row is its own PSU; no ``strata``: one stratum; no ``weight``: weight 1.
* ``census=True``: the whole population was observed, so ``se = 0`` and the interval collapses
  onto the estimate.
* ``lonely_psu`` (a stratum with one PSU in the design): ``"fail"`` (default) raises naming the
  stratum; ``"adjust"`` centres its PSU total at the grand mean of PSU totals, which is 0 for a
  mean or ratio (R ``survey.lonely.psu = "adjust"``); ``"remove"`` lets it contribute nothing
  (R ``"remove"``/``"certainty"``). Strata lonely only inside a domain need no option (R default).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from pk2d.errors import Pk2dError

__all__ = ["SurveyError", "survey_mean", "survey_means", "survey_ratio"]

LONELY_PSU_RULES = ("fail", "adjust", "remove")
RESULT_COLUMNS = ["n", "estimate", "se", "ci_low", "ci_high", "df", "census"]


class SurveyError(Pk2dError, ValueError):
    """Invalid input to a survey estimator (also a ``ValueError``)."""


def _by_list(by: str | Sequence[str] | None) -> list[str]:
    if by is None:
        return []
    return [by] if isinstance(by, str) else list(by)


def _numeric(data: pd.DataFrame, column: str, role: str) -> np.ndarray:
    series = data[column]
    if pd.api.types.is_bool_dtype(series.dtype):
        series = series.astype("float64")
    if not pd.api.types.is_numeric_dtype(series.dtype):
        raise SurveyError(f"survey: {role} column {column!r} must be numeric, not {series.dtype}.",
                          fix="recode it to numbers (e.g. 0/1 for yes/no) before estimating")
    return series.to_numpy(dtype="float64", na_value=np.nan)


def _codes(values: pd.Series, role: str) -> tuple[np.ndarray, pd.Index]:
    codes, uniques = pd.factorize(values, sort=True)
    if (codes < 0).any():
        raise SurveyError(f"survey: {role} column {values.name!r} has missing values.",
                          fix="every row needs a design value, even rows with a missing outcome")
    return codes, pd.Index(uniques)


def _check(data: pd.DataFrame, columns: Sequence[str | None], level: float, lonely_psu: str) -> None:
    missing = [c for c in dict.fromkeys(columns) if c is not None and c not in data.columns]
    if missing:
        raise SurveyError(f"survey: column(s) {missing} not found; "
                          f"available: {list(data.columns)}.")
    if not 0 < level < 1:
        raise SurveyError(f"survey: level must be strictly between 0 and 1, got {level!r}.")
    if lonely_psu not in LONELY_PSU_RULES:
        raise SurveyError(f"survey: lonely_psu must be one of {LONELY_PSU_RULES}, "
                          f"got {lonely_psu!r}.")
    if len(data) == 0:
        raise SurveyError("survey: the data frame has no rows; there is nothing to estimate.")


def _design(data: pd.DataFrame, by_cols: list[str], weight: str | None, strata: str | None,
            psu: str | None) -> dict:
    """Everything about the design and the domains that does not depend on the outcome."""
    rows = len(data)
    w = np.ones(rows) if weight is None else _numeric(data, weight, "weight")
    if not np.isfinite(w).all() or (w < 0).any():
        raise SurveyError(f"survey: weight column {weight!r} must be finite and >= 0 on every row.")
    # Design: stratum code per row, PSU code per row (nested in stratum), stratum of each PSU.
    h_row, h_labels = (np.zeros(rows, dtype=np.int64), pd.Index(["(all)"])) if strata is None \
        else _codes(data[strata], "strata")
    if psu is None:
        p_row = np.arange(rows)
    else:
        raw, _ = _codes(data[psu], "psu")
        p_row, _ = pd.factorize(h_row * (int(raw.max(initial=0)) + 1) + raw)
    n_psu = int(p_row.max(initial=-1)) + 1
    h_of_psu = np.zeros(n_psu, dtype=np.int64)
    h_of_psu[p_row] = h_row
    n_h = np.bincount(h_of_psu, minlength=len(h_labels))
    # Domains: one per observed combination of the by columns; a row with a missing key is in
    # no domain (but stays in the design).
    if by_cols:
        groups = data.groupby(by_cols, sort=True, dropna=True, observed=True)
        g_row = groups.ngroup().fillna(-1).to_numpy(dtype=np.int64)
        out = groups.size().index.to_frame(index=False)
    else:
        g_row, out = np.zeros(rows, dtype=np.int64), pd.DataFrame(index=[0])
    return {"w": w, "h_labels": h_labels, "p_row": p_row, "n_psu": n_psu, "h_of_psu": h_of_psu,
            "n_h": n_h, "df": n_psu - len(h_labels), "g_row": g_row, "out": out}


def _estimate(d: dict, y: np.ndarray, x: np.ndarray | None, *, level: float, census: bool,
              lonely_psu: str) -> pd.DataFrame:
    """Ratio estimate, linearised SE and interval per domain for one outcome."""
    w, g_row, n_psu, h_of_psu, n_h, h_labels = (d[k] for k in ("w", "g_row", "n_psu", "h_of_psu", "n_h",
                                                                 "h_labels"))
    n_dom = len(d["out"])
    x_ = np.ones(len(y)) if x is None else x
    ok = ~np.isnan(y) & ~np.isnan(x_) & (g_row >= 0)
    g, wy, wx = g_row[ok], w[ok] * y[ok], w[ok] * x_[ok]
    n = np.bincount(g, minlength=n_dom)
    total_x = np.bincount(g, weights=wx, minlength=n_dom)
    with np.errstate(divide="ignore", invalid="ignore"):
        est = np.bincount(g, weights=wy, minlength=n_dom) / total_x
        est[n == 0] = np.nan

    if census:
        se = np.zeros(n_dom)
        se[np.isnan(est)] = np.nan
    else:
        lonely = n_h == 1
        if lonely.any() and lonely_psu == "fail":
            names = ", ".join(str(s) for s in h_labels[lonely][:10])
            which = f"stratum {names} has" if lonely.sum() == 1 else f"strata {names} have"
            raise SurveyError(
                f"survey: {which} only one PSU, so the variance is undefined.",
                fix="merge each such stratum with a similar one, "
                    "or pass lonely_psu='adjust' or 'remove'")
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (wy - est[g] * wx) / total_x[g]
            scale = np.where(lonely, 0.0 if lonely_psu == "remove" else 1.0, n_h / (n_h - 1.0))
            centre = np.where(lonely, 0.0, 1.0 / n_h)  # lonely "adjust": grand mean of z is 0
        # PSU totals per (domain, PSU); then sum_j (z_hj - zbar_h)^2 = sum_j z_hj^2 - n_h zbar_h^2.
        cell, cell_key = pd.factorize(g * n_psu + d["p_row"][ok])
        z_cell = np.bincount(cell, weights=z, minlength=len(cell_key))
        dom_cell, h_cell = cell_key // n_psu, h_of_psu[cell_key % n_psu]
        var = np.bincount(dom_cell, weights=scale[h_cell] * z_cell**2, minlength=n_dom)
        dh, dh_key = pd.factorize(dom_cell * len(h_labels) + h_cell)
        z_dh = np.bincount(dh, weights=z_cell, minlength=len(dh_key))
        h_dh = dh_key % len(h_labels)
        var -= np.bincount(dh_key // len(h_labels), weights=scale[h_dh] * centre[h_dh] * z_dh**2,
                           minlength=n_dom)
        se = np.sqrt(np.clip(var, 0.0, None))
        se[np.isnan(est)] = np.nan

    df = d["df"]
    t = stats.t.ppf(0.5 + level / 2, df) if df > 0 else np.nan
    low, high = est - t * se, est + t * se
    if census:
        low, high = est.copy(), est.copy()
    values = y[ok]
    if x is None and len(values) and np.isin(values, (0.0, 1.0)).all():
        low, high = np.clip(low, 0.0, 1.0), np.clip(high, 0.0, 1.0)
    return pd.DataFrame({"n": n, "estimate": est, "se": se, "ci_low": low, "ci_high": high,
                         "df": df, "census": census})


def _ratio(data: pd.DataFrame, numerator: str, denominator: str | None, *,
           by: str | Sequence[str] | None, weight: str | None, strata: str | None,
           psu: str | None, level: float, census: bool, lonely_psu: str) -> pd.DataFrame:
    """Engine of :func:`survey_ratio` and :func:`survey_mean` (``denominator=None`` means x = 1)."""
    by_cols = _by_list(by)
    _check(data, [numerator, denominator, weight, strata, psu, *by_cols], level, lonely_psu)
    y = _numeric(data, numerator, "outcome")
    x = None if denominator is None else _numeric(data, denominator, "denominator")
    d = _design(data, by_cols, weight, strata, psu)
    result = _estimate(d, y, x, level=level, census=census, lonely_psu=lonely_psu)
    return pd.concat([d["out"].reset_index(drop=True), result], axis=1)[by_cols + RESULT_COLUMNS]


def survey_means(data: pd.DataFrame, columns: Sequence[str], *, by: str | Sequence[str] | None = None,
                 weight: str | None = None, strata: str | None = None, psu: str | None = None,
                 level: float = 0.95, census: bool = False, lonely_psu: str = "fail") -> pd.DataFrame:
    """:func:`survey_mean` of several columns at once, in long form (a ``variable`` column first).

    The design and the domains are built once, so many outcomes cost little more than one.

    >>> d = pd.DataFrame({"a": [1.0, 2.0, 3.0, 6.0], "b": [0.0, 1.0, 1.0, 1.0]})
    >>> survey_means(d, ["a", "b"])[["variable", "estimate"]].to_dict("records")
    [{'variable': 'a', 'estimate': 3.0}, {'variable': 'b', 'estimate': 0.75}]
    """
    by_cols = _by_list(by)
    _check(data, [*columns, weight, strata, psu, *by_cols], level, lonely_psu)
    d = _design(data, by_cols, weight, strata, psu)
    keys = d["out"].reset_index(drop=True)
    parts = []
    for col in columns:
        res = _estimate(d, _numeric(data, col, "outcome"), None, level=level, census=census,
                        lonely_psu=lonely_psu)
        parts.append(pd.concat([keys, res], axis=1).assign(variable=col))
    return pd.concat(parts, ignore_index=True)[["variable", *by_cols, *RESULT_COLUMNS]]


def survey_ratio(data: pd.DataFrame, numerator: str, denominator: str, *,
                 by: str | Sequence[str] | None = None, weight: str | None = None,
                 strata: str | None = None, psu: str | None = None, level: float = 0.95,
                 census: bool = False, lonely_psu: str = "fail") -> pd.DataFrame:
    """Ratio of weighted totals ``sum(w*y) / sum(w*x)`` per domain (R's ``svyratio``).

    Returns the ``by`` columns and ``n, estimate, se, ci_low, ci_high, df, census``; see the
    module docstring for the variance, interval and ``lonely_psu`` rules. Rows where the
    numerator or denominator is missing leave the domain but stay in the design.

    >>> d = pd.DataFrame({"y": [2.0, 4.0, 6.0, 1.0], "x": [1.0, 2.0, 2.0, 1.0],
    ...                   "h": ["a", "a", "b", "b"]})
    >>> r = survey_ratio(d, "y", "x", strata="h")
    >>> round(float(r.estimate[0]), 4), round(float(r.se[0]), 4), int(r.df[0])
    (2.1667, 0.473, 2)
    """
    return _ratio(data, numerator, denominator, by=by, weight=weight, strata=strata, psu=psu,
                  level=level, census=census, lonely_psu=lonely_psu)


def survey_mean(data: pd.DataFrame, column: str, *, by: str | Sequence[str] | None = None,
                weight: str | None = None, strata: str | None = None, psu: str | None = None,
                level: float = 0.95, census: bool = False,
                lonely_psu: str = "fail") -> pd.DataFrame:
    """Weighted mean (a proportion for a 0/1 column) per domain (R's ``svymean``/``svyby``).

    ``n`` is the unweighted count of non-missing values in the domain; missing values are
    dropped as with ``na.rm = TRUE`` but the design is kept. Returns the ``by`` columns and
    ``n, estimate, se, ci_low, ci_high, df, census``; see the module docstring.

    >>> d = pd.DataFrame({"y": [1.0, 2.0, 3.0, 6.0], "g": ["p", "p", "q", "q"]})
    >>> survey_mean(d, "y")[["n", "estimate", "se"]].round(4).to_dict("records")
    [{'n': 4, 'estimate': 3.0, 'se': 1.0801}]
    >>> c = survey_mean(d, "y", by="g", census=True)
    >>> c[["g", "n", "estimate", "se", "ci_high"]].to_dict("records")  # doctest: +NORMALIZE_WHITESPACE
    [{'g': 'p', 'n': 2, 'estimate': 1.5, 'se': 0.0, 'ci_high': 1.5},
     {'g': 'q', 'n': 2, 'estimate': 4.5, 'se': 0.0, 'ci_high': 4.5}]
    """
    return _ratio(data, column, None, by=by, weight=weight, strata=strata, psu=psu,
                  level=level, census=census, lonely_psu=lonely_psu)
