"""Estimators on a :class:`pk2d.design.Design`: the verbs of R's ``survey`` package.

Every estimator returns one row per domain (``by`` columns first) with ``n`` (rows with a
value), ``estimate, se, ci_low, ci_high, df`` (the domain's degrees of freedom, see
:mod:`pk2d.design`), ``n_psu`` (first-stage units with data), ``census``, ``rse`` and
``reliability`` (:mod:`pk2d.reliability`). Intervals use Student's t with ``df``; a domain with
``df < 1`` (all of its rows in one PSU, say) has no standard error the design can measure: it is
not printed as 0, ``se`` is NaN, there is no interval and the reliability is ``no_se``. In a census (``Design(..., census=True)``) ``se = 0`` and the interval is the
estimate.

* :func:`mean`, :func:`total`, :func:`ratio` - Taylor linearisation, as ``svymean``,
  ``svytotal``, ``svyratio`` (``deff=True``: design effect against simple random sampling
  without replacement of the same size, ``deff="replace"``: with replacement, as R).
* :func:`proportion` - ``svyciprop``: methods ``logit`` (default; also ``xlogit``, the same
  interval), ``mean``, ``asin``, ``beta`` (Korn-Graubard). A share of exactly 0 or 1 gets the
  Clopper-Pearson bound of its ``n`` rows (the design effect cannot be estimated there).
* :func:`quantile` - ``svyquantile`` with ``qrule = "math"`` (or ``"school"``) and the Woodruff
  interval (``interval.type = "mean"``), SE = interval width / (2 t).
* :func:`regress` - ``svyglm`` (gaussian): weighted least squares, sandwich variance of the
  estimating functions through the full design, residual df = design df + 1 - coefficients.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import sparse, stats

from .design import Design, DesignError
from .reliability import reliability, relative_se

__all__ = ["mean", "means", "total", "ratio", "proportion", "quantile", "regress", "RESULT_COLUMNS"]

RESULT_COLUMNS = ["n", "estimate", "se", "ci_low", "ci_high", "df", "n_psu", "census", "rse", "reliability"]
PROPORTION_METHODS = ("logit", "xlogit", "mean", "asin", "beta")


def _by_list(by) -> list[str]:
    if by is None:
        return []
    return [by] if isinstance(by, str) else list(by)


def _numeric(design: Design, column: str, role: str) -> np.ndarray:
    if column not in design.data.columns:
        raise DesignError(f"{role} column {column!r} not found; available: {list(design.data.columns)}.",
                          column=column)
    series = design.data[column]
    if pd.api.types.is_bool_dtype(series.dtype):
        series = series.astype("float64")
    if not pd.api.types.is_numeric_dtype(series.dtype):
        raise DesignError(f"{role} column {column!r} must be numeric, not {series.dtype}.", column=column,
                          fix="recode it to numbers (e.g. 0/1 for yes/no) before estimating")
    return series.to_numpy(dtype="float64", na_value=np.nan)


def _domains(design: Design, by) -> tuple[np.ndarray, pd.DataFrame, list[str]]:
    cols = _by_list(by)
    missing = [c for c in cols if c not in design.data.columns]
    if missing:
        raise DesignError(f"domain column(s) {missing} not found.", column=missing[0])
    if not cols:
        return np.zeros(design.n, dtype=np.int64), pd.DataFrame(index=[0]), cols
    groups = design.data.groupby(cols, sort=True, dropna=True, observed=True)
    g = groups.ngroup().fillna(-1).to_numpy(dtype=np.int64)
    keys = groups.size().index.to_frame(index=False)
    return g, keys, cols


def _setup(design: Design, y: str, by, level: float):
    """What every one-outcome estimator starts from: values, domains and the rows with a value."""
    _check_level(level)
    yv = _numeric(design, y, "outcome")
    g, keys, cols = _domains(design, by)
    ok = ~np.isnan(yv) & (g >= 0)
    return yv, g, keys, cols, len(keys), design.weights, ok


def _sparse(values: np.ndarray, g: np.ndarray, ok: np.ndarray, m: int) -> sparse.csc_matrix:
    rows = np.flatnonzero(ok)
    return sparse.csc_matrix((values[rows], (rows, g[rows])), shape=(len(g), m))


def _tq(level: float, df) -> np.ndarray:
    df = np.asarray(df, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.where(df >= 1, stats.t.ppf(0.5 + level / 2, np.maximum(df, 1)), np.nan)


def _finish(design: Design, keys: pd.DataFrame, cols: list[str], n, est, var, present, level,
            extra: dict | None = None, *, centred: bool = True) -> pd.DataFrame:
    """Shared tail: se, df, interval, n_psu, reliability.

    ``centred``: the influence values sum to 0 inside each domain (means, ratios), so a domain
    with ``df < 1`` has no measurable SE. A total's SE stays (the units outside the domain count
    as zeros, as in R) but it gets no interval when ``df < 1``.
    """
    se = np.sqrt(var)
    census = design.census
    if census:  # no sampling error: degrees of freedom and PSUs do not enter
        df = n_psu = np.full(len(est), np.nan)
    else:
        df = design.domain_df(present)
        n_psu = design.n_psu(present)
    if not census and centred:  # fewer than two units behind the domain (beyond its strata)
        se = np.where(df >= 1, se, np.nan)
    se = np.where(np.isnan(est), np.nan, se)
    t = _tq(level, df)
    low, high = (est.copy(), est.copy()) if census else (est - t * se, est + t * se)
    out = keys.reset_index(drop=True).copy()
    out["n"] = np.asarray(n, dtype=np.int64)
    out["estimate"], out["se"], out["ci_low"], out["ci_high"] = est, se, low, high
    out["df"], out["n_psu"], out["census"] = df, n_psu, census
    out["rse"] = relative_se(est, se)
    out["reliability"] = reliability(est, se, n_psu=n_psu if centred else None, census=census).to_numpy()
    for k, v in (extra or {}).items():
        out[k] = v
    return out[cols + RESULT_COLUMNS + list(extra or {})]


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise DesignError(f"level must be strictly between 0 and 1, got {level!r}.")


def _svyvar(w, y, g, ok, m, est):
    """R's ``svyvar`` per domain: weighted variance with the n/(n-1) correction."""
    n = np.bincount(g[ok], weights=(w[ok] != 0).astype(float), minlength=m)
    sw = np.bincount(g[ok], weights=w[ok], minlength=m)
    with np.errstate(divide="ignore", invalid="ignore"):
        s2 = np.bincount(g[ok], weights=w[ok] * (y[ok] - est[g[ok]]) ** 2, minlength=m) / sw
        return s2 * n / (n - 1), n, sw


def _mean_parts(design: Design, y: np.ndarray, g: np.ndarray, m: int):
    w = design.weights
    ok = ~np.isnan(y) & (g >= 0)
    n = np.bincount(g[ok], minlength=m)
    sw = np.bincount(g[ok], weights=w[ok], minlength=m)
    with np.errstate(divide="ignore", invalid="ignore"):
        est = np.bincount(g[ok], weights=w[ok] * y[ok], minlength=m) / sw
        z = np.where(ok, w * (np.nan_to_num(y) - est[np.maximum(g, 0)]) / sw[np.maximum(g, 0)], 0.0)
    if design.census:
        return ok, n, sw, est, np.zeros(m), None
    present = _sparse(np.ones(len(g)), g, ok & (design.weights > 0), m)
    var = design.variance(_sparse(z, g, ok, m), present)
    return ok, n, sw, est, var, present


def mean(design: Design, y: str, *, by=None, level: float = 0.95, deff: bool | str = False) -> pd.DataFrame:
    """Weighted mean per domain; rows with a missing ``y`` leave the domain, not the design.

    >>> import pandas as pd
    >>> d = pd.DataFrame({"y": [1.0, 2.0, 3.0, 6.0], "g": ["p", "p", "q", "q"]})
    >>> mean(Design(d), "y")[["n", "estimate", "se", "df"]].round(4).to_dict("records")
    [{'n': 4, 'estimate': 3.0, 'se': 1.0801, 'df': 3.0}]
    """
    _check_level(level)
    yv = _numeric(design, y, "outcome")
    g, keys, cols = _domains(design, by)
    m = len(keys)
    ok, n, sw, est, var, present = _mean_parts(design, yv, g, m)
    extra = None
    if deff:
        s2, nobs, psum = _svyvar(design.weights, yv, g, ok, m, est)
        with np.errstate(divide="ignore", invalid="ignore"):
            vsrs = s2 / nobs if deff == "replace" else s2 * (psum - nobs) / (psum * nobs)
            extra = {"deff": var / vsrs}
    return _finish(design, keys, cols, n, est, var, present, level, extra)


def means(design: Design, columns: Sequence[str], *, by=None, level: float = 0.95) -> pd.DataFrame:
    """:func:`mean` of several columns in long form (``variable`` first); domains are formed once.

    >>> import pandas as pd
    >>> d = pd.DataFrame({"a": [1.0, 2.0, 3.0, 6.0], "b": [0.0, 1.0, 1.0, 1.0]})
    >>> means(Design(d), ["a", "b"])[["variable", "estimate"]].to_dict("records")
    [{'variable': 'a', 'estimate': 3.0}, {'variable': 'b', 'estimate': 0.75}]
    """
    _check_level(level)
    g, keys, cols = _domains(design, by)
    m = len(keys)
    parts = {k: [] for k in ("n", "estimate", "var", "df", "n_psu")}
    for col in columns:
        ok, n, _, est, var, present = _mean_parts(design, _numeric(design, col, "outcome"), g, m)
        if design.census:
            df = n_psu = np.full(m, np.nan)
        else:
            df, n_psu = design.domain_df(present), design.n_psu(present)
        for k, v in zip(parts, (n, est, var, df, n_psu)):
            parts[k].append(np.asarray(v, dtype=float))
    n, est, var, df, n_psu = (np.concatenate(parts[k]) for k in parts)
    se = np.sqrt(var)
    if not design.census:
        se = np.where(df >= 1, se, np.nan)
    se = np.where(np.isnan(est), np.nan, se)
    t = _tq(level, df)
    low, high = (est.copy(), est.copy()) if design.census else (est - t * se, est + t * se)
    out = pd.concat([keys.reset_index(drop=True)] * len(columns), ignore_index=True) if cols else \
        pd.DataFrame(index=range(len(columns)))
    data = {"variable": np.repeat(np.asarray(columns, dtype=object), m), **{c: out[c].to_numpy() for c in cols},
            "n": n.astype(np.int64), "estimate": est, "se": se, "ci_low": low, "ci_high": high, "df": df,
            "n_psu": n_psu, "census": design.census, "rse": relative_se(est, se),
            "reliability": reliability(est, se, n_psu=n_psu, census=design.census).to_numpy()}
    return pd.DataFrame(data)[["variable", *cols, *RESULT_COLUMNS]]


def total(design: Design, y: str, *, by=None, level: float = 0.95, deff: bool | str = False) -> pd.DataFrame:
    """Weighted total per domain (R's ``svytotal``; missing values count as absent).

    >>> import pandas as pd
    >>> d = pd.DataFrame({"y": [1.0, 2.0, 3.0, 6.0], "w": [2.0, 2.0, 2.0, 2.0]})
    >>> total(Design(d, weights="w"), "y")[["estimate", "se"]].round(4).to_dict("records")
    [{'estimate': 24.0, 'se': 8.641}]
    """
    yv, g, keys, cols, m, w, ok = _setup(design, y, by, level)
    n = np.bincount(g[ok], minlength=m)
    est = np.bincount(g[ok], weights=w[ok] * yv[ok], minlength=m)
    present = _sparse(np.ones(len(g)), g, ok & (design.weights > 0), m)
    var = design.variance(_sparse(np.where(ok, w * np.nan_to_num(yv), 0.0), g, ok, m), present)
    est = np.where(n > 0, est, np.nan)
    extra = None
    if deff:
        with np.errstate(divide="ignore", invalid="ignore"):
            mean_ = np.bincount(g[ok], weights=w[ok] * yv[ok], minlength=m) / np.bincount(
                g[ok], weights=w[ok], minlength=m)
        s2, nobs, psum = _svyvar(w, yv, g, ok, m, mean_)
        with np.errstate(divide="ignore", invalid="ignore"):
            vsrs = s2 * psum ** 2 / nobs if deff == "replace" else s2 * psum ** 2 * (psum - nobs) / (psum * nobs)
            extra = {"deff": var / vsrs}
    return _finish(design, keys, cols, n, est, var, present, level, extra, centred=False)


def ratio(design: Design, numerator: str, denominator: str, *, by=None, level: float = 0.95) -> pd.DataFrame:
    """``sum(w y) / sum(w x)`` per domain over the rows where both are present (R's ``svyratio``).

    >>> import pandas as pd
    >>> d = pd.DataFrame({"y": [2.0, 4.0, 6.0, 1.0], "x": [1.0, 2.0, 2.0, 1.0], "h": ["a", "a", "b", "b"]})
    >>> r = ratio(Design(d, strata="h"), "y", "x")
    >>> round(float(r.estimate[0]), 4), round(float(r.se[0]), 4), int(r.df[0])
    (2.1667, 0.473, 2)
    """
    _check_level(level)
    yv, xv = _numeric(design, numerator, "numerator"), _numeric(design, denominator, "denominator")
    g, keys, cols = _domains(design, by)
    m = len(keys)
    w = design.weights
    ok = ~np.isnan(yv) & ~np.isnan(xv) & (g >= 0)
    gi = np.maximum(g, 0)
    n = np.bincount(g[ok], minlength=m)
    sx = np.bincount(g[ok], weights=w[ok] * xv[ok], minlength=m)
    with np.errstate(divide="ignore", invalid="ignore"):
        est = np.bincount(g[ok], weights=w[ok] * yv[ok], minlength=m) / sx
        z = np.where(ok, w * (np.nan_to_num(yv) - est[gi] * np.nan_to_num(xv)) / sx[gi], 0.0)
    est = np.where(n > 0, est, np.nan)
    present = _sparse(np.ones(len(g)), g, ok & (design.weights > 0), m)
    var = design.variance(_sparse(z, g, ok, m), present)
    return _finish(design, keys, cols, n, est, var, present, level)


def proportion(design: Design, y: str, *, by=None, level: float = 0.95, method: str = "logit",
               df: float | None = None) -> pd.DataFrame:
    """Share of rows with ``y == 1`` per domain and an interval inside [0, 1] (R's ``svyciprop``).

    ``df``: degrees of freedom for the interval (default: each domain's, as R's default).

    >>> import pandas as pd
    >>> d = pd.DataFrame({"y": [1, 0, 0, 0, 1, 0, 0, 0], "psu": [1, 1, 2, 2, 3, 3, 4, 4]})
    >>> p = proportion(Design(d, ids="psu"), "y")
    >>> float(p.estimate[0]), bool(p.ci_low[0] > 0), bool(p.ci_high[0] < 1)
    (0.25, True, True)
    """
    if method not in PROPORTION_METHODS:
        raise DesignError(f"proportion method must be one of {PROPORTION_METHODS}, got {method!r}.")
    _check_level(level)
    yv = _numeric(design, y, "outcome")
    values = yv[~np.isnan(yv)]
    if not np.isin(values, (0.0, 1.0)).all():
        raise DesignError(f"proportion: column {y!r} must hold only 0 and 1 (and missing values).", column=y)
    out = mean(design, y, by=by, level=level)
    domain_df = out["df"].to_numpy(float)  # the beta interval always uses it (as R's svyciprop)
    if df is not None:  # e.g. the whole design's df for every domain (R: svyciprop(..., df = degf(des)))
        out = out.assign(df=float(df))
    p, se, df = out["estimate"].to_numpy(), out["se"].to_numpy(), out["df"].to_numpy(float)
    t = _tq(level, df)
    with np.errstate(divide="ignore", invalid="ignore"):
        if method in ("logit", "xlogit"):
            lg, sl = np.log(p / (1 - p)), se / (p * (1 - p))
            low, high = 1 / (1 + np.exp(-(lg - t * sl))), 1 / (1 + np.exp(-(lg + t * sl)))
        elif method == "mean":
            low, high = p - t * se, p + t * se
        elif method == "asin":
            a, sa = np.arcsin(np.sqrt(p)), se / (2 * np.sqrt(p * (1 - p)))
            low, high = np.sin(a - t * sa) ** 2, np.sin(a + t * sa) ** 2
        else:  # beta: Korn & Graubard, effective sample size
            g, _, _ = _domains(design, by)
            rows = np.bincount(g[(g >= 0) & ~np.isnan(yv)], minlength=len(out))
            alpha = 1 - level
            n_eff = p * (1 - p) / se ** 2 * (stats.t.ppf(alpha / 2, rows - 1) / stats.t.ppf(alpha / 2, domain_df)) ** 2
            low = stats.beta.ppf(alpha / 2, n_eff * p, n_eff * (1 - p) + 1)
            high = stats.beta.ppf(1 - alpha / 2, n_eff * p + 1, n_eff * (1 - p))
    n = out["n"].to_numpy(float)
    edge = (not design.census) & ((p == 0) | (p == 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        cp = 1 - ((1 - level) / 2) ** (1 / n)  # Clopper-Pearson bound for 0 of n (or n of n)
    low = np.where(edge, np.where(p == 0, 0.0, 1 - cp), low)
    high = np.where(edge, np.where(p == 0, cp, 1.0), high)
    if design.census:
        low, high = p.copy(), p.copy()
    return out.assign(ci_low=low, ci_high=high, method=method)


def _qrule(x: np.ndarray, w: np.ndarray, p: float, rule: str) -> float:
    """R's ``qrule_math`` / ``qrule_school`` on the rows with positive weight."""
    keep = w != 0
    x, w = x[keep], w[keep]
    order = np.argsort(x, kind="stable")
    x, cumw = x[order], np.cumsum(w[order])
    total_w = cumw[-1]
    below = np.flatnonzero(cumw <= p * total_w)
    if len(below) == 0:
        return float(x[0])
    pos = below[-1]
    nxt = min(pos + 1, len(x) - 1)
    if p - cumw[pos] / total_w == 0:
        return float(x[pos]) if rule == "math" else float((x[pos] + x[nxt]) / 2)
    return float(x[nxt])


def quantile(design: Design, y: str, probs: Sequence[float] = (0.5,), *, by=None, level: float = 0.95,
             rule: str = "math") -> pd.DataFrame:
    """Quantiles per domain with the Woodruff interval (R's ``svyquantile``, interval "mean").

    >>> import pandas as pd
    >>> d = pd.DataFrame({"y": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]})
    >>> float(quantile(Design(d), "y", [0.5]).estimate[0])
    4.0
    """
    if rule not in ("math", "school"):
        raise DesignError(f"quantile rule must be 'math' or 'school', got {rule!r}.")
    probs = [probs] if np.isscalar(probs) else list(probs)
    yv, g, keys, cols, m, w, ok = _setup(design, y, by, level)
    order = np.flatnonzero(ok)[np.argsort(g[ok], kind="stable")]
    cuts = np.flatnonzero(np.diff(g[order])) + 1
    groups = {int(g[idx[0]]): idx for idx in np.split(order, cuts) if len(idx)}
    parts = []
    for p in probs:
        if not 0 <= p <= 1:
            raise DesignError(f"quantile probabilities must lie in [0, 1], got {p!r}.")
        q = np.full(m, np.nan)
        for j, rows in groups.items():
            q[j] = _qrule(yv[rows], w[rows], p, rule)
        below = np.where(ok, (yv <= q[np.maximum(g, 0)]).astype(float), np.nan)
        ind = design.data.assign(**{"__below": below})
        cdf = mean(design._replace(data=ind), "__below", by=by, level=level)
        t = _tq(level, cdf["df"].to_numpy(float))
        p_hat, se_p = cdf["estimate"].to_numpy(), np.nan_to_num(cdf["se"].to_numpy())
        lo_p, hi_p = p_hat - t * se_p, p_hat + t * se_p
        low, high = np.full(m, np.nan), np.full(m, np.nan)
        for j, rows in groups.items():
            if np.isfinite(lo_p[j]) and lo_p[j] >= 0:
                low[j] = _qrule(yv[rows], w[rows], lo_p[j], rule)
            if np.isfinite(hi_p[j]) and hi_p[j] <= 1:
                high[j] = _qrule(yv[rows], w[rows], hi_p[j], rule)
        out = cdf[cols + ["n", "df", "n_psu", "census"]].copy()
        out.insert(len(cols), "quantile", p)
        se = (high - low) / (2 * t)
        out["estimate"], out["se"], out["ci_low"], out["ci_high"] = q, se, low, high
        if design.census:
            out["se"], out["ci_low"], out["ci_high"] = 0.0, q, q
        out["rse"] = relative_se(q, out["se"])
        out["reliability"] = reliability(q, out["se"], n_psu=out["n_psu"], census=design.census).to_numpy()
        parts.append(out)
    return pd.concat(parts, ignore_index=True)[cols + ["quantile"] + RESULT_COLUMNS]


def regress(design: Design, y: str, x: Sequence[str], *, level: float = 0.95,
            intercept: bool = True) -> pd.DataFrame:
    """``y ~ 1 + x`` by weighted least squares with R ``svyglm``'s design-based variance.

    Rows with a missing value in ``y`` or ``x`` leave the fit, not the design. Returns one row per
    coefficient: ``term, estimate, se, ci_low, ci_high, df, t, p_value, n``; the coefficients'
    covariance matrix is in ``result.attrs["vcov"]``.

    >>> import pandas as pd
    >>> d = pd.DataFrame({"y": [1.0, 2.0, 4.0, 5.0], "x": [0.0, 0.0, 1.0, 1.0], "c": [1, 2, 3, 4]})
    >>> regress(Design(d, ids="c"), "y", ["x"])[["term", "estimate"]].to_dict("records")
    [{'term': '(Intercept)', 'estimate': 1.5}, {'term': 'x', 'estimate': 3.0}]
    """
    _check_level(level)
    yv = _numeric(design, y, "outcome")
    xs = np.column_stack(([np.ones(design.n)] if intercept else []) + [_numeric(design, c, "regressor") for c in x])
    ok = ~np.isnan(yv) & ~np.isnan(xs).any(1)
    w = np.where(ok, design.weights, 0.0)
    X, Y = np.where(ok[:, None], xs, 0.0), np.where(ok, yv, 0.0)
    A = X.T @ (X * w[:, None])
    if np.linalg.matrix_rank(A) < A.shape[0]:
        raise DesignError(f"regression of {y!r} on {list(x)}: the regressors are collinear (or constant) in "
                          "the rows with values.", fix="drop a regressor or check the data")
    Ainv = np.linalg.inv(A)
    beta = Ainv @ (X.T @ (w * Y))
    resid = np.where(ok, Y - X @ beta, 0.0)
    Z = (X * (w * resid)[:, None]) @ Ainv
    inset = ok & (design.weights > 0)
    V = design.variance(Z, present=np.repeat(inset[:, None], len(beta), 1), full=True)
    se = np.sqrt(np.clip(np.diag(V), 0, None))
    df = float(design.domain_df(inset[:, None])[0]) + 1 - len(beta)
    t = _tq(level, df)
    with np.errstate(divide="ignore", invalid="ignore"):
        tval = beta / se
        pval = 2 * stats.t.sf(np.abs(tval), df) if df >= 1 else np.full(len(beta), np.nan)
    out = pd.DataFrame({"term": (["(Intercept)"] if intercept else []) + list(x), "estimate": beta, "se": se,
                        "ci_low": beta - t * se, "ci_high": beta + t * se, "df": df, "t": tval, "p_value": pval,
                        "n": int(ok.sum())})
    out.attrs["vcov"] = V
    return out
