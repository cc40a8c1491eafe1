"""A survey design declared once (R's ``svydesign``), validated once, then asked for estimates.

>>> import pandas as pd
>>> d = pd.DataFrame({"desa": ["a", "a", "b", "b", "c", "c"], "rt": [1, 2, 1, 2, 1, 2],
...                   "y": [3.0, 5.0, 4.0, 6.0, 8.0, 2.0], "w": [10.0] * 6,
...                   "N1": [30] * 6, "N2": [4] * 6})
>>> des = Design(d, ids=["desa", "rt"], weights="w", fpc=["N1", "N2"])
>>> des
Design(6 rows; 2 stages: desa (3 units), rt (6 units); weights w; fpc N1, N2; lonely_psu fail)
>>> r = des.mean("y")
>>> round(float(r.estimate[0]), 3), round(float(r.se[0]), 6), int(r.df[0])
(4.667, 0.401386, 2)

What a design holds (all checked when it is made):

* ``ids``: one column per sampling stage (PSU, then SSU, ...; ``None``, or ``None`` as the last
  stage: every row is its own unit). Stage ``s`` units are read within the units of stage ``s - 1`` (and within the stratum
  when ``nest=True``, the default), as R does with ``nest = TRUE``.
* ``strata``: the first-stage strata (a column), or a list with one column per stage. Later
  stages are stratified by the unit above them, as in R.
* ``weights``: sampling weights; without them and with ``fpc``, the product of
  ``N_s / n_s`` over the stages (R's behaviour); with neither, 1.
* ``fpc``: one column per stage with the population size of the stage's stratum (numbers
  > 1) or the sampling fraction (numbers <= 1), as in R. Without ``fpc`` only the first stage
  enters the variance (with-replacement, "ultimate cluster"); with it every stage does, each
  multiplied by the sampling fractions above it (R's ``svyrecvar``).
* ``lonely_psu``: what a stratum with a single unit does (R's ``survey.lonely.psu``):
  ``"fail"`` (an error naming the stratum), ``"remove"`` and ``"certainty"`` (contributes
  nothing), ``"adjust"`` (its unit total is centred at 0, not at the stratum mean),
  ``"average"`` (the variance of the other strata, scaled up by all strata / strata with a
  variance).
* ``conditional_domains``: ``False`` (R's numbers): a domain's variance averages over samples; ``True``:
  a domain that lies inside one sampled unit (a village that is a PSU) gets its variance given
  that unit (the pipeline's choice for area estimates: a village profile is about the village
  that was surveyed).

Domains (``by=``) always use the full design: rows outside a domain stay in it with zero
influence (R's ``svyby``/``subset``); the degrees of freedom of a domain are its units minus its
strata at the first stage with at least two units in it (R's ``degf`` of the subset).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from .errors import Pk2dError

__all__ = ["Design", "DesignError", "DESIGN_COLUMNS", "LONELY_PSU_RULES", "design_from_scores"]

LONELY_PSU_RULES = ("fail", "remove", "adjust", "average", "certainty")
#: the design columns of the raw contract (``pk2d/contract.yaml``), by role
DESIGN_COLUMNS = {"weights": "bobot", "strata": "strata", "ids": ("psu", "ssu"),
                  "fpc": ("populasi_psu", "populasi_ssu", "populasi_keluarga")}


class DesignError(Pk2dError, ValueError):
    """A survey design that cannot be used as declared (also a ``ValueError``)."""

    def __init__(self, problem: str, *, fix: str | None = None, column: str | None = None,
                 stage: int | None = None):
        self.column = column
        self.stage = stage
        super().__init__(f"survey design: {problem}", fix=fix)


def _as_list(value) -> list:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _indicator(codes: np.ndarray, n: int) -> sparse.csr_matrix:
    """Sparse (n x rows) matrix with a 1 in row ``codes[i]`` of column ``i``."""
    rows = len(codes)
    return sparse.csr_matrix((np.ones(rows), (codes, np.arange(rows))), shape=(n, rows))


@dataclass(frozen=True)
class _Stage:
    unit: np.ndarray          # unit code per row (0..n_units-1), unique in the whole design
    stratum: np.ndarray       # stratum code per row at this stage
    stratum_of_unit: np.ndarray
    parent_of_stratum: np.ndarray  # unit code of the stage above (0 for the first stage)
    n_h: np.ndarray           # sampled units per stratum (the whole design)
    f_h: np.ndarray           # (N_h - n_h) / N_h, or 1 without fpc
    frac_h: np.ndarray        # n_h / N_h (the multiplier of the stages below), or nan
    pi_h: np.ndarray          # product of the sampling fractions of the units above the stratum
    U: sparse.csr_matrix      # units x rows
    H: sparse.csr_matrix      # strata x units
    n_units: int
    n_strata: int
    stratum_labels: list


class Design:
    """A survey design: see the module docstring. Immutable; calibration returns a new one."""

    def __init__(self, data: pd.DataFrame, *, ids: str | Sequence[str] | None = None,
                 strata: str | Sequence[str] | None = None, weights: str | None = None,
                 fpc: str | Sequence[str] | None = None, nest: bool = True,
                 lonely_psu: str = "fail", census: bool = False, conditional_domains: bool = False):
        if not isinstance(data, pd.DataFrame) or len(data) == 0:
            raise DesignError("the data have no rows; there is nothing to estimate.")
        if lonely_psu not in LONELY_PSU_RULES:
            raise DesignError(f"lonely_psu must be one of {LONELY_PSU_RULES}, got {lonely_psu!r}.")
        ids_l, strata_l, fpc_l = _as_list(ids), _as_list(strata), _as_list(fpc)
        missing = [c for c in dict.fromkeys([*ids_l, *strata_l, *fpc_l, *_as_list(weights)])
                   if c is not None and c not in data.columns]
        if missing:
            raise DesignError(f"column(s) {missing} not found; available: {list(data.columns)}.",
                              column=missing[0])
        if fpc_l and len(fpc_l) != max(len(ids_l), 1):
            raise DesignError(f"fpc names {len(fpc_l)} column(s) for {max(len(ids_l), 1)} stage(s).",
                              fix="give one population size (or sampling fraction) column per stage, "
                                  "or none")
        if len(strata_l) > max(len(ids_l), 1):
            raise DesignError("more strata columns than stages.")
        self.data = data
        self.columns = {"ids": ids_l, "strata": strata_l, "weights": weights, "fpc": fpc_l}
        self.nest, self.lonely_psu, self.census = nest, lonely_psu, census
        self.conditional_domains = conditional_domains
        self.n = len(data)
        self.stages = self._build_stages(ids_l, strata_l, fpc_l)
        self.weights = self._weights(weights)
        self.calibration: tuple = ()
        self.old_weights = None

    # --- building -------------------------------------------------------------------------
    def _codes(self, column: str, role: str) -> np.ndarray:
        values = self.data[column]
        if values.isna().any():
            row = int(np.flatnonzero(values.isna().to_numpy())[0])
            raise DesignError(f"{role} column {column!r} has missing values (first at row {self.data.index[row]!s}).",
                              column=column, fix="every row needs its design values, even rows with a "
                                                 "missing outcome")
        return pd.factorize(values, sort=True)[0].astype(np.int64)

    def _build_stages(self, ids, strata, fpc) -> list[_Stage]:
        n = self.n
        n_stages = max(len(ids), 1)
        unit_cols = ids or [None]
        h_first = self._codes(strata[0], "strata") if strata else np.zeros(n, dtype=np.int64)
        if not self.nest and strata and ids:
            u = self._codes(ids[0], "ids")
            per_unit = pd.Series(h_first).groupby(u).nunique()
            if (per_unit > 1).any():
                bad = self.data[ids[0]].iloc[int(np.flatnonzero(u == per_unit.index[per_unit > 1][0])[0])]
                raise DesignError(f"PSU {bad!r} of {ids[0]!r} lies in more than one stratum of "
                                  f"{strata[0]!r}.", column=ids[0], stage=1,
                                  fix="give PSUs unique codes within their stratum and use nest=True, "
                                      "or correct the stratum of that PSU")
        stages: list[_Stage] = []
        parent_frac = np.ones(1)
        prev_unit = np.zeros(n, dtype=np.int64)
        for s in range(n_stages):
            col = unit_cols[s]
            raw = np.arange(n, dtype=np.int64) if col is None else self._codes(col, "ids")
            if s == 0:
                h_raw = h_first
            elif s < len(strata):
                h_raw = self._codes(strata[s], "strata")
            else:
                h_raw = np.zeros(n, dtype=np.int64)
            # stratum at stage s: (given stratum, unit above); unit: (stratum if nested, unit above, id)
            stratum = pd.factorize(pd.MultiIndex.from_arrays([h_raw, prev_unit]) if s else h_raw,
                                   sort=True)[0]
            if s:
                key = [prev_unit, h_raw, raw] if self.nest else [prev_unit, raw]
            else:
                key = [h_raw, raw] if self.nest else [raw]
            unit = pd.factorize(pd.MultiIndex.from_arrays(key) if len(key) > 1 else key[0], sort=True)[0]
            spans = pd.Series(stratum).groupby(unit).nunique()
            if (spans > 1).any():
                row = int(np.flatnonzero(unit == spans.index[spans > 1][0])[0])
                label = col if col is not None else "(row)"
                raise DesignError(f"a unit of {label!r} (stage {s + 1}, first at row {self.data.index[row]!s}) lies in more than one "
                                  "stratum of its stage.", column=col, stage=s + 1,
                                  fix="give units unique codes within their stratum (nest=True reads them so) or "
                                      "correct the stratum of that unit")
            n_units = int(unit.max()) + 1
            n_strata = int(stratum.max()) + 1
            stratum_of_unit = np.zeros(n_units, dtype=np.int64)
            stratum_of_unit[unit] = stratum
            n_h = np.bincount(stratum_of_unit, minlength=n_strata).astype(float)
            parent_of_stratum = np.zeros(n_strata, dtype=np.int64)
            parent_of_stratum[stratum] = prev_unit if s else 0
            labels = self._stratum_labels(strata, s, stratum, h_raw, prev_unit)
            if fpc:
                pop = self.data[fpc[s]].to_numpy(dtype="float64", na_value=np.nan)
                if np.isnan(pop).any() or (pop <= 0).any():
                    raise DesignError(f"fpc column {fpc[s]!r} (stage {s + 1}) has missing or non-positive "
                                      "values.", column=fpc[s], stage=s + 1,
                                      fix="give the population size (or sampling fraction) on every row")
                per = pd.Series(pop).groupby(stratum).agg(["min", "max"])
                if (per["max"] - per["min"] > 1e-9 * per["max"]).any():
                    h = int(per.index[(per["max"] - per["min"]) > 1e-9 * per["max"]][0])
                    raise DesignError(f"fpc column {fpc[s]!r} (stage {s + 1}) varies within stratum "
                                      f"{labels[h]}.", column=fpc[s], stage=s + 1,
                                      fix="one population size per stratum and stage")
                pop_h = per["max"].to_numpy()
                fractions = (pop <= 1).all()
                if not fractions and (pop < 1).any():
                    raise DesignError(f"fpc column {fpc[s]!r} mixes sampling fractions (<= 1) and population "
                                      "sizes (> 1).", column=fpc[s], stage=s + 1,
                                      fix="give all population sizes or all sampling fractions")
                N_h = n_h / pop_h if fractions else pop_h
                if (N_h < n_h - 1e-9).any():
                    h = int(np.flatnonzero(N_h < n_h - 1e-9)[0])
                    raise DesignError(f"stratum {labels[h]} at stage {s + 1} has {int(n_h[h])} sampled units "
                                      f"but a population size of {N_h[h]:g} ({fpc[s]!r}).", column=fpc[s],
                                      stage=s + 1, fix="the population size must be at least the number of "
                                                       "units sampled; check the fpc column")
                f_h = (N_h - n_h) / N_h
                frac_h = n_h / N_h
            else:
                N_h = None
                f_h = np.ones(n_strata)
                frac_h = np.full(n_strata, np.nan)
            pi_h = parent_frac[parent_of_stratum] if s else np.ones(n_strata)
            U = _indicator(unit, n_units)
            H = _indicator(stratum_of_unit, n_strata)
            stages.append(_Stage(unit, stratum, stratum_of_unit, parent_of_stratum, n_h, f_h, frac_h, pi_h,
                                 U, H, n_units, n_strata, labels))
            if not fpc:
                break  # without population sizes only the first stage enters the variance
            # the multiplier of the stage below: the fractions of every unit above it
            parent_frac = pi_h[stratum_of_unit] * frac_h[stratum_of_unit]
            prev_unit = unit
        return stages

    def _stratum_labels(self, strata, s, stratum, h_raw, prev_unit) -> list:
        first = pd.Series(np.arange(self.n)).groupby(stratum).first().to_numpy()
        if s == 0:
            if not strata:
                return ["(all)"]
            return [str(v) for v in self.data[strata[0]].to_numpy()[first]]
        ids = self.columns["ids"]
        return [f"{ids[s - 1]}={self.data[ids[s - 1]].iloc[i]!s}" for i in first]

    def _weights(self, weights: str | None) -> np.ndarray:
        if weights is not None:
            if not pd.api.types.is_numeric_dtype(self.data[weights].dtype):
                raise DesignError(f"weight column {weights!r} must be numeric, not {self.data[weights].dtype}.",
                                  column=weights, fix="give sampling weights as numbers")
            w = self.data[weights].to_numpy(dtype="float64", na_value=np.nan)
            if not np.isfinite(w).all() or (w < 0).any():
                row = int(np.flatnonzero(~np.isfinite(w) | (w < 0))[0])
                raise DesignError(f"weight column {weights!r} must be finite and >= 0 on every row "
                                  f"(first bad value at row {self.data.index[row]!s}).", column=weights,
                                  fix="give every row its sampling weight (inverse inclusion probability)")
            return w
        if self.columns["fpc"]:
            w = np.ones(self.n)
            for st in self.stages:
                w = w / st.frac_h[st.stratum]
            return w
        return np.ones(self.n)

    # --- description ----------------------------------------------------------------------
    def __repr__(self) -> str:
        ids = self.columns["ids"]
        stages = ", ".join(f"{ids[i] if ids and ids[i] is not None else '(row)'} ({st.n_units} units)"
                           for i, st in enumerate(self.stages))
        parts = [f"{self.n} rows", f"{len(self.stages)} stage{'s' if len(self.stages) > 1 else ''}: {stages}"]
        if self.columns["strata"]:
            parts.append(f"strata {', '.join(self.columns['strata'])}")
        parts.append(f"weights {self.columns['weights']}" if self.columns["weights"] else "weights 1")
        if self.columns["fpc"]:
            parts.append(f"fpc {', '.join(self.columns['fpc'])}")
        if self.calibration:
            parts.append(f"calibrated ({', '.join(c['kind'] for c in self.calibration)})")
        if self.census:
            parts.append("census")
        parts.append(f"lonely_psu {self.lonely_psu}")
        return f"Design({'; '.join(parts)})"

    @property
    def settings(self) -> dict[str, Any]:
        """What the run record keeps of this design (no data)."""
        return {**{k: v for k, v in self.columns.items()}, "nest": self.nest, "lonely_psu": self.lonely_psu,
                "census": self.census, "conditional_domains": self.conditional_domains, "stages": len(self.stages),
                "units": [int(st.n_units) for st in self.stages],
                "calibration": [{k: v for k, v in c.items() if k in ("kind", "columns", "population")}
                                for c in self.calibration]}

    def degf(self, where=None) -> int:
        """First-stage units minus strata of the design, or of the rows ``where`` (a boolean mask):
        R's ``degf(design)`` and ``degf(subset(design, ...))``."""
        st = self.stages[0]
        inset = self.weights > 0
        if where is not None:
            inset = inset & np.asarray(where, dtype=bool)
        return int(len(np.unique(st.unit[inset])) - len(np.unique(st.stratum[inset])))

    def with_data(self, data: pd.DataFrame) -> Design:
        """The same design over another frame of the same rows (new outcome columns)."""
        if len(data) != self.n:
            raise DesignError(f"with_data needs the design's {self.n} rows, got {len(data)}.")
        return self._replace(data=data)

    # --- the variance engine --------------------------------------------------------------
    def _replace(self, **changes) -> Design:
        new = object.__new__(Design)
        new.__dict__.update(self.__dict__)
        new.__dict__.update(changes)
        return new

    def variance(self, Z, present=None, *, full: bool = False) -> np.ndarray:
        """Design variance of the totals of the influence columns ``Z`` (rows x k), R's ``svyrecvar``.

        ``Z``: dense array or sparse matrix; ``present`` (rows x k, bool, optional): the rows that
        belong to each column's subset (for the lonely-PSU rules ``fail`` and ``average``; default:
        the rows where ``Z`` is not 0). Returns the k variances, or the k x k matrix if ``full``.
        """
        if self.census:
            k = Z.shape[1]
            return np.zeros((k, k)) if full else np.zeros(k)
        Z = self._calibrate_z(Z)
        is_sparse = sparse.issparse(Z)
        k = Z.shape[1]
        if present is None:
            present = (Z != 0) if is_sparse else sparse.csr_matrix(Z != 0)
        elif not sparse.issparse(present):
            present = sparse.csr_matrix(present)
        if self.calibration:  # calibrated designs keep every row in every subset (as R does)
            present = sparse.csr_matrix(np.ones((self.n, k), dtype=bool))
        total = np.zeros((k, k)) if full else np.zeros(k)
        cond = self._conditioning(present) if self.conditional_domains else None
        if cond is not None and full:  # a regression: every column has the same rows
            cond = (np.full(k, cond[0][0]), [np.full(k, d[0]) for d in cond[1]])
        for s, st in enumerate(self.stages):
            X = st.U @ Z                                  # units x k
            S1 = st.H @ X                                 # strata x k (sparse when Z is)
            lonely = st.n_h == 1
            centre = np.where(lonely & (self.lonely_psu == "adjust"), 0.0, 1.0)
            scale = np.where(lonely, st.f_h, st.f_h * st.n_h / np.maximum(st.n_h - 1.0, 1.0))
            scale = np.where(st.f_h < 1e-7, 0.0, scale)   # self-representing stratum
            a = scale * st.pi_h                            # per stratum
            live_lonely = lonely & (st.f_h >= 1e-7)
            average = self.lonely_psu == "average" and bool(live_lonely.any())
            pres_h = None
            if live_lonely.any() and self.lonely_psu in ("fail", "average"):  # which strata hold each column
                pres_h = ((st.H @ (st.U @ present.astype(float))) > 0)
                pres_h = pres_h.toarray() if sparse.issparse(pres_h) else np.asarray(pres_h)
            if live_lonely.any() and self.lonely_psu == "fail":
                hit = np.flatnonzero(live_lonely[:, None] & pres_h)
                if len(hit):
                    h = int(hit[0] // k)
                    raise DesignError(f"stratum {st.stratum_labels[h]} has only one PSU at stage {s + 1}, so "
                                      "the variance is undefined.", stage=s + 1,
                                      fix="merge the stratum with a similar one, or declare the design with "
                                          "lonely_psu='adjust', 'average', 'remove' or 'certainty'")
            if full:
                S1 = S1.toarray() if sparse.issparse(S1) else np.asarray(S1)
                Xd = X.toarray() if sparse.issparse(X) else np.asarray(X)
                Xc = Xd - (centre / st.n_h)[st.stratum_of_unit, None] * S1[st.stratum_of_unit]
                au = a[st.stratum_of_unit]
                if self.lonely_psu == "average":
                    au = np.where(live_lonely[st.stratum_of_unit], 0.0, au)
                v = Xc.T @ (Xc * au[:, None])
                if average:
                    v = v * self._average_factor(st, live_lonely, pres_h[:, :1])[0]
                if cond is not None:
                    depth, divisor = cond
                    v = np.zeros_like(v) if s < depth[0] else v / divisor[min(s, len(divisor) - 1)][0]
                total = total + v
            elif sparse.issparse(X) and not average:  # sum_h a_h (S2_h - c_h S1_h^2 / n_h), kept sparse
                S2 = st.H @ X.multiply(X)
                v = np.asarray(S2.T @ a).ravel() - np.asarray(S1.multiply(S1).T @ (a * centre / st.n_h)).ravel()
                if cond is not None:
                    depth, divisor = cond
                    v = np.where(s < depth, 0.0, v / divisor[min(s, len(divisor) - 1)])
                total = total + v
            else:
                S1 = S1.toarray() if sparse.issparse(S1) else np.asarray(S1)
                X2 = X.multiply(X) if sparse.issparse(X) else np.asarray(X) ** 2
                S2 = st.H @ X2
                S2 = S2.toarray() if sparse.issparse(S2) else np.asarray(S2)
                v_h = a[:, None] * (S2 - (centre / st.n_h)[:, None] * S1 ** 2)
                if average:
                    v_h = np.where(live_lonely[:, None], 0.0, v_h)
                    # per parent unit and column: strata present / strata with a variance
                    G = _indicator(st.parent_of_stratum, int(st.parent_of_stratum.max()) + 1)
                    n_all = G @ pres_h.astype(float)
                    n_ok = G @ (pres_h & ~live_lonely[:, None]).astype(float)
                    contrib = np.asarray(G @ v_h)
                    with np.errstate(divide="ignore", invalid="ignore"):
                        scaled = contrib * n_all / n_ok
                    # no stratum with a variance under a parent: undefined (NaN, as R's 0 * k / 0)
                    scaled = np.where(n_all == 0, 0.0, np.where(n_ok == 0, np.nan, scaled))
                    v = scaled.sum(0)
                    if cond is not None:
                        depth, divisor = cond
                        v = np.where(s < depth, 0.0, v / divisor[min(s, len(divisor) - 1)])
                    total = total + v
                else:
                    v = v_h.sum(0)
                    if cond is not None:  # given the units that hold the whole domain
                        depth, divisor = cond
                        v = np.where(s < depth, 0.0, v / divisor[min(s, len(divisor) - 1)])
                    total = total + v
        return np.maximum(total, 0.0) if not full else total

    def _conditioning(self, present) -> tuple[np.ndarray, list[np.ndarray]]:
        """Per column: how many leading stages hold the column's rows in ONE unit (``depth``), and
        for each stage s the product of the sampling fractions of those units above s.

        With ``conditional_domains=True`` a domain inside one sampled unit (a village that is a
        PSU) gets its variance given that unit: the stages above contribute nothing and the
        stages below lose the unit's sampling fraction that R's ``svyrecvar`` applies when it
        averages over samples that may not hold the unit.
        """
        k = present.shape[1]
        depth = np.zeros(k, dtype=int)
        still = np.ones(k, dtype=bool)
        divisors = [np.ones(k)]
        running = np.ones(k)
        for st in self.stages:
            pu = self._units_of(st, present)
            one = still & (np.asarray(pu.sum(0)).ravel() == 1)
            unit = np.asarray(pu.argmax(axis=0)).ravel()
            frac = np.nan_to_num(st.frac_h[st.stratum_of_unit[unit]], nan=1.0)
            running = np.where(one, running * frac, running)
            depth = depth + one
            still = one
            divisors.append(running.copy())
        return depth, divisors

    @staticmethod
    def _average_factor(st, live_lonely, pres):
        n_all = pres[:, 0].sum()
        n_ok = (pres[:, 0] & ~live_lonely).sum()
        return [n_all / n_ok if n_ok else np.nan]

    def _calibrate_z(self, Z):
        """Residuals of the influence values on the calibration (:func:`pk2d.calibration.residuals`)."""
        if not self.calibration:
            return Z
        from .calibration import residuals
        return residuals(self, Z)

    @staticmethod
    def _units_of(st: _Stage, present: sparse.spmatrix) -> sparse.csr_matrix:
        """Units x columns, True where the unit holds rows of the column (kept sparse)."""
        return (st.U @ present.astype(float) > 0).astype(float).tocsr()

    def domain_df(self, present: np.ndarray | sparse.spmatrix) -> np.ndarray:
        """Degrees of freedom per column of ``present`` (rows x k): units minus strata of the first
        stage with at least two units holding rows of the column beyond its strata. At the first
        stage this is R's ``degf`` of the subset; pk2d goes down the stages when the first gives
        less than 1 (a domain inside one PSU whose variance rests on the later stages)."""
        if not sparse.issparse(present):
            present = sparse.csr_matrix(present)
        k = present.shape[1]
        df = np.full(k, np.nan)
        d0 = None
        for st in self.stages:
            pu = self._units_of(st, present)
            units = np.asarray(pu.sum(0)).ravel()
            strata = np.asarray(((st.H @ pu) > 0).sum(0)).ravel()
            d = (units - strata).astype(float)
            if d0 is None:
                d0 = d
            take = np.isnan(df) & (d >= 1)
            df[take] = d[take]
            if not np.isnan(df).any():
                break
        return np.where(np.isnan(df), d0, df)

    def n_psu(self, present) -> np.ndarray:
        """First-stage units holding rows of each column of ``present``."""
        if not sparse.issparse(present):
            present = sparse.csr_matrix(present)
        return np.asarray(self._units_of(self.stages[0], present).sum(0)).ravel()

    # --- calibration (pk2d.calibration) -------------------------------------------------
    def poststratify(self, column: str, population) -> Design:
        """Post-stratified design (R's ``postStratify``): weights scaled so that each category of
        ``column`` sums to its control total in ``population`` (a mapping category -> total).

        >>> import pandas as pd
        >>> d = pd.DataFrame({"g": ["a", "a", "b"], "y": [1.0, 3.0, 5.0], "w": [1.0, 1.0, 2.0]})
        >>> Design(d, weights="w").poststratify("g", {"a": 10, "b": 30}).weights.tolist()
        [5.0, 5.0, 30.0]
        """
        from . import calibration
        return calibration.poststratify(self, column, population)

    def rake(self, margins: dict[str, Any], *, maxit: int = 10, epsilon: float = 1.0) -> Design:
        """Raked design (R's ``rake``): see :func:`pk2d.calibration.rake`."""
        from . import calibration
        return calibration.rake(self, margins, maxit=maxit, epsilon=epsilon)

    def calibrate(self, terms: Sequence[str], totals: dict[str, float], *, intercept: bool = True) -> Design:
        """Linear (GREG) calibration (R's ``calibrate``): see :func:`pk2d.calibration.calibrate`.

        >>> import pandas as pd
        >>> d = pd.DataFrame({"g": ["a", "a", "b", "b"], "x": [1.0, 2.0, 3.0, 4.0]})
        >>> Design(d).calibrate(["g"], {"(Intercept)": 8, "gb": 6}).weights.tolist()
        [1.0, 1.0, 3.0, 3.0]
        """
        from . import calibration
        return calibration.calibrate(self, terms, totals, intercept=intercept)

    # --- estimators (pk2d.estimators) -----------------------------------------------------
    def mean(self, y, *, by=None, level: float = 0.95, deff: bool | str = False) -> pd.DataFrame:
        """Weighted means per domain (R's ``svymean``/``svyby``): see :func:`pk2d.estimators.mean`."""
        from . import estimators
        return estimators.mean(self, y, by=by, level=level, deff=deff)

    def total(self, y, *, by=None, level: float = 0.95, deff: bool | str = False) -> pd.DataFrame:
        """Weighted totals per domain (R's ``svytotal``): see :func:`pk2d.estimators.total`."""
        from . import estimators
        return estimators.total(self, y, by=by, level=level, deff=deff)

    def ratio(self, numerator: str, denominator: str, *, by=None, level: float = 0.95) -> pd.DataFrame:
        """Ratios of weighted totals (R's ``svyratio``): see :func:`pk2d.estimators.ratio`."""
        from . import estimators
        return estimators.ratio(self, numerator, denominator, by=by, level=level)

    def proportion(self, y: str, *, by=None, level: float = 0.95, method: str = "logit",
                   df: float | None = None) -> pd.DataFrame:
        """Proportions with an interval that stays in [0, 1] (R's ``svyciprop``)."""
        from . import estimators
        return estimators.proportion(self, y, by=by, level=level, method=method, df=df)

    def quantile(self, y: str, probs=(0.5,), *, by=None, level: float = 0.95,
                 rule: str = "math") -> pd.DataFrame:
        """Quantiles with Woodruff intervals (R's ``svyquantile``)."""
        from . import estimators
        return estimators.quantile(self, y, probs, by=by, level=level, rule=rule)

    def regress(self, y: str, x: Sequence[str], *, level: float = 0.95, intercept: bool = True) -> pd.DataFrame:
        """Weighted least squares with design-based SEs (R's ``svyglm``, gaussian)."""
        from . import estimators
        return estimators.regress(self, y, x, level=level, intercept=intercept)

    def replicates(self, kind: str = "JKn", *, replicates: int = 50, seed: int = 1):
        """A replicate-weight version of this design (JK1, JKn or Rao-Wu bootstrap)."""
        from .replicate import from_design
        return from_design(self, kind, replicates=replicates, seed=seed)


def _has(frame: pd.DataFrame, column: str) -> bool:
    return column in frame.columns and bool(frame[column].notna().any())


def design_from_scores(frame: pd.DataFrame, design: str = "auto", *, lonely_psu: str = "fail") -> Design:
    """The design of one round of family data from the contract's design columns.

    ``design``: ``"auto"`` (a census when no family has a weight ``bobot``), ``"census"`` or
    ``"sample"``. A sample uses ``bobot`` (weights), ``strata``, ``psu`` then ``ssu`` (stages) and
    ``populasi_psu`` / ``populasi_ssu`` (population sizes or sampling fractions per stage);
    ``populasi_keluarga`` (families of the last unit's population) adds the families as the last
    stage. PSU
    codes are unique across strata (the contract's rule): a PSU in two strata is an error.

    >>> import pandas as pd
    >>> f = pd.DataFrame({"bobot": [2.0, 2.0, 3.0, 3.0], "psu": ["a", "b", "c", "d"]})
    >>> design_from_scores(f)
    Design(4 rows; 1 stage: psu (4 units); weights bobot; lonely_psu fail)
    >>> design_from_scores(f.drop(columns="bobot")).census
    True
    """
    if design not in ("auto", "census", "sample"):
        raise DesignError(f"design must be 'auto', 'census' or 'sample', got {design!r}.")
    has_w = _has(frame, DESIGN_COLUMNS["weights"])
    if design == "census" or (design == "auto" and not has_w):
        return Design(frame, census=True)
    if not has_w:
        raise DesignError("design='sample' needs the weight column 'bobot' with values.", column="bobot",
                          fix="add the sampling weights to the family file, or use design='census' for a "
                              "full count of the village")
    psu, ssu = DESIGN_COLUMNS["ids"]
    pops = DESIGN_COLUMNS["fpc"]
    if _has(frame, ssu) and not _has(frame, psu):
        raise DesignError("the family file has 'ssu' (second-stage units) but no 'psu'.", column=ssu,
                          fix="give the primary sampling unit of every family in 'psu'")
    if _has(frame, pops[1]) and not _has(frame, ssu):
        raise DesignError("the family file has 'populasi_ssu' but no 'ssu'.", column=pops[1],
                          fix="give the second-stage unit of every family in 'ssu', or drop 'populasi_ssu' "
                              "('populasi_keluarga' holds the families of the last unit)")
    ids: list = [c for c in (psu, ssu) if _has(frame, c)]
    fpc = [pop for unit, pop in zip((psu, ssu), pops[:2]) if unit in ids and _has(frame, pop)]
    if ids and _has(frame, pops[2]):  # families sampled within the last unit: one more stage
        ids.append(None)
        fpc.append(pops[2])
    if fpc and len(fpc) != max(len(ids), 1):
        raise DesignError(f"the design has {max(len(ids), 1)} stage(s) but population sizes for {len(fpc)} "
                          f"({', '.join(fpc)}).", column=fpc[0],
                          fix="give 'populasi_psu' (and 'populasi_ssu' with 'ssu', 'populasi_keluarga' for the "
                              "families of the last unit) on every row, or none of them")
    strata = DESIGN_COLUMNS["strata"] if _has(frame, DESIGN_COLUMNS["strata"]) else None
    return Design(frame, ids=ids or None, strata=strata, weights=DESIGN_COLUMNS["weights"], fpc=fpc or None,
                  lonely_psu=lonely_psu, nest=False, conditional_domains=True)
