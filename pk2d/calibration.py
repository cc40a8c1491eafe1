"""Calibration of a design's weights to known totals (R's ``postStratify``, ``rake``, ``calibrate``).

Each returns a new :class:`pk2d.design.Design` whose weights meet the control totals and which
remembers the calibration, so that its variances are those of the residuals on the calibration
model (:func:`residuals`, R's ``svyrecvar`` with ``postStrata``). Called as methods of the design:
``des.poststratify(...)``, ``des.rake(...)``, ``des.calibrate(...)``.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import sparse

if TYPE_CHECKING:
    from .design import Design

__all__ = ["poststratify", "rake", "calibrate", "residuals"]


def _error(*args, **kwargs):
    from .design import DesignError
    return DesignError(*args, **kwargs)


def _indicator(codes, n):
    from .design import _indicator as ind
    return ind(codes, n)


def check_margin(column: str, pop: np.ndarray, sample: np.ndarray) -> None:
    if not np.isfinite(pop).all() or (pop < 0).any():
        raise _error(f"control totals of {column!r} must be numbers >= 0.", column=column)
    if ((sample <= 0) & (pop > 0)).any():
        raise _error(f"a category of {column!r} has a control total but no sampled weight.", column=column,
                     fix="merge that category with another or drop it from the totals")


def margin_codes(design: Design, column: str, population) -> tuple[np.ndarray, np.ndarray]:
    pop = pd.Series(population, dtype="float64")
    values = design.data[column]
    if values.isna().any():
        raise _error(f"calibration column {column!r} has missing values.", column=column)
    keys = values.astype(str)
    pop.index = pop.index.astype(str)
    unknown = sorted(set(keys) - set(pop.index))
    if unknown:
        raise _error(f"calibration column {column!r} has categories {unknown[:5]} that are not in the "
                          "control totals.", column=column, fix="give a population total for every category")
    absent = [k for k in pop.index if k not in set(keys) and pop[k] > 0]
    if absent:
        raise _error(f"control totals of {column!r} name categories {absent[:5]} that have no sampled "
                          "row.", column=column, fix="merge those categories or drop them from the totals")
    order = list(pop.index)
    codes = pd.Categorical(keys, categories=order).codes.astype(np.int64)
    return codes, pop.to_numpy()


def poststratify(design: Design, column: str, population) -> Design:
    """Post-stratified design (R's ``postStratify``): weights scaled so that each category of
    ``column`` sums to its control total in ``population`` (a mapping category -> total).

    >>> import pandas as pd
    >>> from pk2d.design import Design
    >>> d = pd.DataFrame({"g": ["a", "a", "b"], "y": [1.0, 3.0, 5.0], "w": [1.0, 1.0, 2.0]})
    >>> ps = Design(d, weights="w").poststratify("g", {"a": 10, "b": 30})
    >>> ps.weights.tolist()
    [5.0, 5.0, 30.0]
    """
    codes, pop = margin_codes(design, column, population)
    sample = np.bincount(codes, weights=design.weights, minlength=len(pop))
    check_margin(column, pop, sample)
    new_w = design.weights * (pop / sample)[codes]
    cal = {"kind": "poststratify", "columns": [column], "population": {str(k): float(v) for k, v in
                                                                       pd.Series(population).items()},
           "codes": codes, "weights": new_w, "old_weights": design.weights}
    return design._replace(weights=new_w, calibration=(*design.calibration, cal), old_weights=design.weights)


def rake(design: Design, margins: dict[str, Any], *, maxit: int = 10, epsilon: float = 1.0) -> Design:
    """Raked design (R's ``rake``): post-stratify to each margin in turn until the weighted
    cross-table moves by less than ``epsilon`` (R's defaults ``maxit = 10, epsilon = 1``; an
    ``epsilon`` below 1 is relative to the sum of the weights, as in R).

    ``margins``: column -> control totals per category. Raises if it does not converge.
    """
    cols = list(margins)
    coded = [margin_codes(design, c, margins[c]) for c in cols]
    for c, (codes, pop) in zip(cols, coded):
        check_margin(c, pop, np.bincount(codes, weights=design.weights, minlength=len(pop)))
    cell = pd.factorize(pd.MultiIndex.from_arrays([c for c, _ in coded]), sort=True)[0]
    w = design.weights.copy()
    if epsilon < 1:  # as R: a relative tolerance, times the sum of the weights
        epsilon = epsilon * w.sum()
    old_table = np.bincount(cell, weights=w)
    converged, steps = False, []
    for _ in range(maxit):
        steps = []
        for codes, pop in coded:
            sample = np.bincount(codes, weights=w, minlength=len(pop))
            w = w * (pop / sample)[codes]
            steps.append(w.copy())
        table = np.bincount(cell, weights=w)
        if np.max(np.abs(old_table - table)) < epsilon:
            converged = True
            break
        old_table = table
    if not converged:
        raise _error(f"raking on {cols} did not converge in {maxit} iterations.",
                          fix="check that the control totals of the margins agree (same grand total), "
                              "or allow more iterations (maxit=)")
    cal = {"kind": "rake", "columns": cols,
           "population": {c: {str(k): float(v) for k, v in pd.Series(margins[c]).items()} for c in cols},
           "codes": [c for c, _ in coded], "weights": steps}
    return design._replace(weights=w, calibration=(*design.calibration, cal), old_weights=design.weights)


def calibrate(design: Design, terms: Sequence[str], totals: dict[str, float], *, intercept: bool = True) -> Design:
    """Linear (GREG) calibration (R's ``calibrate(design, ~terms, population)``, ``calfun =
    "linear"``): weights ``w g`` with ``g = 1 + x' (X'WX)^-1 (T - X'w)`` so that the weighted totals
    of the model matrix equal ``totals``.

    The model matrix is R's: ``(Intercept)``, numeric terms as they are, and for a text term one
    0/1 column per category after the first (named term + category, e.g. ``stypeH``).

    >>> import pandas as pd
    >>> from pk2d.design import Design
    >>> d = pd.DataFrame({"g": ["a", "a", "b", "b"], "x": [1.0, 2.0, 3.0, 4.0]})
    >>> c = Design(d).calibrate(["g"], {"(Intercept)": 8, "gb": 6})
    >>> c.weights.tolist()
    [1.0, 1.0, 3.0, 3.0]
    """
    cols, names = ([np.ones(design.n)], ["(Intercept)"]) if intercept else ([], [])
    for term in terms:
        if term not in design.data.columns:
            raise _error(f"calibration term {term!r} not found.", column=term)
        v = design.data[term]
        if pd.api.types.is_numeric_dtype(v.dtype) and not pd.api.types.is_bool_dtype(v.dtype):
            cols.append(v.to_numpy(float))
            names.append(term)
        else:
            levels = sorted(v.astype(str).unique())
            for lev in levels[1:]:
                cols.append((v.astype(str) == lev).to_numpy(float))
                names.append(f"{term}{lev}")
    missing = [n for n in names if n not in totals]
    if missing:
        raise _error(f"calibration totals are missing for {missing}.",
                          fix=f"give a population total for each of {names}")
    X = np.column_stack(cols)
    if np.isnan(X).any():
        raise _error("calibration variables have missing values.", fix="fill them or calibrate on others")
    try:
        pop = np.array([float(totals[n]) for n in names])
    except (TypeError, ValueError):
        raise _error(f"calibration totals must be numbers: {dict(totals)}.") from None
    w = design.weights
    A = X * np.sqrt(w)[:, None]
    try:
        g = 1 + X @ np.linalg.solve(A.T @ A, pop - X.T @ w)
    except np.linalg.LinAlgError:
        raise _error(f"calibration variables {names} are collinear or constant in the sample.",
                          fix="drop a variable or merge categories") from None
    new_w = w * g
    cal = {"kind": "linear", "columns": list(terms), "population": {n: float(totals[n]) for n in names},
           "A": A, "scale": g * np.sqrt(w)}
    return design._replace(weights=new_w, calibration=(*design.calibration, cal), old_weights=design.weights)


def residuals(design: Design, Z):
    """Residuals of the influence values on the calibration (R's ``svyrecvar`` post-strata): the
    variance of a calibrated design is that of these residuals."""
    if not design.calibration:
        return Z
    Z = Z.toarray() if sparse.issparse(Z) else np.array(Z, dtype=float)
    for cal in design.calibration:
        if cal["kind"] == "linear":  # residuals of a weighted regression on the calibration model
            A, sc = cal["A"], cal["scale"]
            with np.errstate(divide="ignore", invalid="ignore"):
                b = np.where(sc[:, None] != 0, Z / sc[:, None], 0.0)  # rows of weight 0 carry nothing
            Z = (b - A @ np.linalg.lstsq(A, b, rcond=None)[0]) * sc[:, None]
        elif cal["kind"] == "poststratify":
            g, psw, oldw = cal["codes"], cal["weights"], cal["old_weights"]
            psw = np.where((psw == 0) & (oldw == 0), 1.0, psw)
            P = _indicator(g, int(g.max()) + 1)
            means = (P @ (Z * (oldw / psw)[:, None])) / np.asarray(P @ oldw)[:, None]
            Z = Z - means[g] * psw[:, None]
        else:  # raking: ten sweeps over the margins, unweighted means within categories
            for _ in range(10):
                for g, psw in zip(cal["codes"], cal["weights"]):
                    P = _indicator(g, int(g.max()) + 1)
                    counts = np.asarray(P.sum(1)).ravel()
                    means = (P @ (Z / psw[:, None])) / counts[:, None]
                    Z = Z - psw[:, None] * means[g]
    return Z
