"""Replicate-weight designs (R's ``svrepdesign`` / ``as.svrepdesign``).

A survey office may deliver replicate weights instead of strata and PSUs (BPS-style public
files do). The variance of any estimator is then
``scale * sum_r rscales_r * (theta_r - theta_bar)^2`` with ``theta_r`` the estimate under
replicate weight ``r`` and ``theta_bar`` the mean of the replicates (``mse=True``: the full-sample
estimate), exactly as R's ``svrVar``.

* ``JK1`` (delete one PSU, unstratified): ``scale = (n - 1) / n``, ``rscales = 1``;
* ``JKn`` (delete one PSU within its stratum): ``scale = 1``, ``rscales = (n_h - 1) / n_h``
  (times ``1 - n_h / N_h`` with population sizes);
* ``bootstrap`` (Rao-Wu rescaling: ``n_h - 1`` PSUs drawn with replacement in each stratum,
  weights times ``n_h / (n_h - 1)`` times the draw count): ``scale = 1 / (R - 1)``;
* ``other``: replicate weights with the ``scale`` and ``rscales`` the producer states.

>>> import pandas as pd
>>> d = pd.DataFrame({"y": [1.0, 2.0, 3.0, 6.0], "psu": [1, 2, 3, 4]})
>>> from pk2d.design import Design
>>> jk = Design(d, ids="psu").replicates("JK1")
>>> round(float(jk.mean("y").se[0]), 4)  # equals the linearised SE for a mean of iid rows
1.0801
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import sparse

from .design import Design, DesignError
from .estimators import RESULT_COLUMNS, _by_list, _tq
from .reliability import reliability, relative_se

__all__ = ["ReplicateDesign", "from_design", "REPLICATE_TYPES"]

REPLICATE_TYPES = ("JK1", "JKn", "bootstrap", "other")


class ReplicateDesign:
    """Full-sample weights plus R replicate weights (analysis weights, rows x R)."""

    def __init__(self, data: pd.DataFrame, *, weights: str | np.ndarray, repweights: Sequence[str] | np.ndarray,
                 type: str = "other", scale: float | None = None, rscales: Sequence[float] | None = None,
                 mse: bool = False, combined_weights: bool = True):
        if type not in REPLICATE_TYPES:
            raise DesignError(f"replicate type must be one of {REPLICATE_TYPES}, got {type!r}.")
        self.data = data
        self.n = len(data)
        if isinstance(weights, str) and weights not in data.columns:
            raise DesignError(f"weight column {weights!r} not found.", column=weights)
        try:
            self.weights = (data[weights].to_numpy(float) if isinstance(weights, str)
                            else np.asarray(weights, dtype=float))
        except (TypeError, ValueError):
            raise DesignError(f"weights {weights!r} must be numeric.", column=str(weights)) from None
        if self.weights.shape != (self.n,) or not np.isfinite(self.weights).all() or (self.weights < 0).any():
            raise DesignError("full-sample weights must be finite and >= 0, one per row.")
        if isinstance(repweights, np.ndarray):
            R = np.asarray(repweights, dtype=float)
            self.repweight_columns = None
        else:
            cols = list(repweights)
            missing = [c for c in cols if c not in data.columns]
            if missing:
                raise DesignError(f"replicate weight column(s) {missing[:5]} not found.", column=missing[0])
            R = data[cols].to_numpy(dtype=float)
            self.repweight_columns = cols
        if R.shape[0] != self.n or R.shape[1] < 2:
            raise DesignError(f"replicate weights must have one row per data row and at least 2 replicates, "
                              f"got {R.shape}.")
        if not np.isfinite(R).all() or (R < 0).any():
            raise DesignError("replicate weights must be finite and >= 0.")
        self.rep = R if combined_weights else R * self.weights[:, None]
        k = self.rep.shape[1]
        if scale is None:
            scale = {"JK1": (k - 1) / k, "bootstrap": 1 / (k - 1)}.get(type, 1.0)
        self.type, self.scale, self.mse = type, float(scale), mse
        self.rscales = np.ones(k) if rscales is None else np.asarray(rscales, dtype=float)
        if len(self.rscales) != k:
            raise DesignError(f"rscales has {len(self.rscales)} values for {k} replicates.")
        self.census = False

    def __repr__(self) -> str:
        return f"ReplicateDesign({self.n} rows; {self.rep.shape[1]} {self.type} replicates; scale {self.scale:g})"

    @property
    def settings(self) -> dict:
        return {"type": self.type, "replicates": int(self.rep.shape[1]), "scale": self.scale, "mse": self.mse,
                "repweights": self.repweight_columns}

    def degf(self, where=None) -> int:
        """Rank of the replicate weights (of the rows ``where``) minus 1 (R's ``degf``)."""
        rep = self.rep if where is None else self.rep[np.asarray(where, dtype=bool)]
        return int(np.linalg.matrix_rank(rep, tol=1e-5 * np.abs(rep).max())) - 1

    def _var(self, theta: np.ndarray, reps: np.ndarray) -> np.ndarray:
        """``reps``: domains x R."""
        use = self.rscales > 0
        centre = theta if self.mse else reps[:, use].mean(1)
        return self.scale * ((reps - centre[:, None]) ** 2 * self.rscales).sum(1)

    def _ratio(self, y: np.ndarray, x: np.ndarray | None, by, level: float, kind: str) -> pd.DataFrame:
        cols = _by_list(by)
        if not 0 < level < 1:
            raise DesignError(f"level must be strictly between 0 and 1, got {level!r}.")
        missing = [c for c in cols if c not in self.data.columns]
        if missing:
            raise DesignError(f"domain column(s) {missing} not found.", column=missing[0])
        if cols:
            groups = self.data.groupby(cols, sort=True, dropna=True, observed=True)
            g = groups.ngroup().fillna(-1).to_numpy(np.int64)
            keys = groups.size().index.to_frame(index=False)
        else:
            g, keys = np.zeros(self.n, dtype=np.int64), pd.DataFrame(index=[0])
        m = len(keys)
        xv = np.ones(self.n) if x is None else x
        ok = ~np.isnan(y) & ~np.isnan(xv) & (g >= 0)
        G = sparse.csr_matrix((np.ones(ok.sum()), (g[ok], np.flatnonzero(ok))), shape=(m, self.n))
        yy, xx = np.where(ok, y, 0.0), np.where(ok, xv, 0.0)
        num_full, num_rep = G @ (self.weights * yy), G @ (self.rep * yy[:, None])
        if kind == "total":
            theta, reps = num_full, num_rep
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                theta = num_full / (G @ (self.weights * xx))
                reps = num_rep / (G @ (self.rep * xx[:, None]))
        n = np.asarray(G.sum(1)).ravel().astype(np.int64)
        theta = np.where(n > 0, theta, np.nan)
        se = np.sqrt(self._var(theta, np.asarray(reps)))
        df = float(self.degf())
        t = _tq(level, df)
        out = keys.reset_index(drop=True).copy()
        out["n"], out["estimate"], out["se"] = n, theta, se
        out["ci_low"], out["ci_high"], out["df"] = theta - t * se, theta + t * se, df
        out["n_psu"], out["census"] = np.nan, False
        out["rse"] = relative_se(theta, se)
        out["reliability"] = reliability(theta, se).to_numpy()
        return out[cols + RESULT_COLUMNS]

    def _col(self, name: str) -> np.ndarray:
        if name not in self.data.columns:
            raise DesignError(f"column {name!r} not found.", column=name)
        if not pd.api.types.is_numeric_dtype(self.data[name].dtype):
            raise DesignError(f"column {name!r} must be numeric, not {self.data[name].dtype}.", column=name)
        return self.data[name].to_numpy(dtype=float, na_value=np.nan)

    def mean(self, y: str, *, by=None, level: float = 0.95) -> pd.DataFrame:
        return self._ratio(self._col(y), None, by, level, "mean")

    def total(self, y: str, *, by=None, level: float = 0.95) -> pd.DataFrame:
        return self._ratio(self._col(y), None, by, level, "total")

    def ratio(self, numerator: str, denominator: str, *, by=None, level: float = 0.95) -> pd.DataFrame:
        return self._ratio(self._col(numerator), self._col(denominator), by, level, "ratio")


def _first_stage(design: Design):
    st = design.stages[0]
    return st.unit, st.stratum_of_unit, st.n_h, st.f_h


def from_design(design: Design, kind: str = "JKn", *, replicates: int = 50, seed: int = 1) -> ReplicateDesign:
    """Replicate weights built from a design's first stage: JK1 and JKn as R's ``as.svrepdesign``
    (same weights, scale and rscales, with fpc); ``bootstrap`` is the Rao-Wu rescaling bootstrap
    (R's ``subbootweights``, not ``as.svrepdesign``'s Canty-Davison default), without fpc."""
    if design.calibration:
        raise DesignError("replicate weights of a calibrated design are not supported; build the replicates "
                          "first, then calibrate each replicate, or use the linearised design.")
    unit, h_of_unit, n_h, f_h = _first_stage(design)
    n_units = len(h_of_unit)
    w = design.weights
    if n_units < 2:
        raise DesignError("replicate weights need at least two PSUs.")
    if kind == "bootstrap" and replicates < 2:
        raise DesignError(f"the bootstrap needs at least 2 replicates, got {replicates}.")
    if kind == "JK1":
        if len(n_h) > 1:
            raise DesignError("JK1 is for unstratified designs.", fix="use kind='JKn' for a stratified design")
        n = n_units
        mult = np.full((n_units, n_units), n / (n - 1))
        np.fill_diagonal(mult, 0.0)
        scale, rscales = f_h[0] * (n - 1) / n, np.ones(n_units)
    elif kind == "JKn":
        if (n_h < 2).any():
            raise DesignError("JKn needs at least two PSUs in every stratum.",
                              fix="merge strata with a single PSU first")
        mult = np.ones((n_units, n_units))
        rscales = np.empty(n_units)
        for u in range(n_units):
            h = h_of_unit[u]
            same = h_of_unit == h
            mult[same, u] = n_h[h] / (n_h[h] - 1)
            mult[u, u] = 0.0
            rscales[u] = f_h[h] * (n_h[h] - 1) / n_h[h]
        scale = 1.0
    elif kind == "bootstrap":
        if (n_h < 2).any():
            raise DesignError("the bootstrap needs at least two PSUs in every stratum.")
        rng = np.random.default_rng(seed)
        mult = np.zeros((n_units, replicates))
        for h in range(len(n_h)):
            members = np.flatnonzero(h_of_unit == h)
            nh = len(members)
            for r in range(replicates):
                draw = rng.choice(members, size=nh - 1, replace=True)
                mult[:, r] += np.bincount(draw, minlength=n_units) * nh / (nh - 1)
        scale, rscales = 1 / (replicates - 1), np.ones(replicates)
    else:
        raise DesignError(f"kind must be 'JK1', 'JKn' or 'bootstrap', got {kind!r}.")
    return ReplicateDesign(design.data, weights=w, repweights=mult[unit] * w[:, None], type=kind,
                           scale=scale, rscales=rscales)
