"""Family scores: indicators (1/0/not applicable), dimensions and the composite.

Pure, vectorised functions of DataFrames. Scoring is row-independent, so the
same code runs partition by partition (e.g. ``dask.dataframe.map_partitions``)
once the member features are joined to their families.

>>> import pandas as pd
>>> from pk2d.catalogue import load_catalogue
>>> rule = {"column": "x", "op": "ge", "value": 2}
>>> evaluate_rule(rule, pd.DataFrame({"x": [1, 2, None]})).tolist()
[False, True, <NA>]
"""
from __future__ import annotations

import operator
from typing import Any, Mapping

import numpy as np
import pandas as pd

from .catalogue import Catalogue, Category, load_catalogue
from .features import family_features

#: Family columns carried into the scores table (when present).
ID_COLUMNS = [
    "id_keluarga", "putaran", "tahun", "kode_provinsi", "nama_provinsi", "kode_kabupaten",
    "nama_kabupaten", "kode_kecamatan", "nama_kecamatan", "kode_desa", "nama_desa", "dusun",
    "rt", "kode_rt", "jenis_kelamin_kepala", "bobot", "strata", "psu", "ssu", "populasi_psu",
    "populasi_ssu", "populasi_keluarga",
]
GEOMETRIC_FLOOR = 1.0  # points; a zero dimension would otherwise zero the geometric mean

_CMP = {"ge": operator.ge, "gt": operator.gt, "le": operator.le, "lt": operator.lt}


def _value(v: Any, params: Mapping[str, Any]) -> Any:
    if isinstance(v, str) and v.startswith("$"):
        return params[v[1:]]
    return v


def evaluate_rule(rule: Mapping[str, Any], data: pd.DataFrame, params: Mapping[str, Any] | None = None) -> pd.Series:
    """Evaluate a catalogue rule over every row at once (Kleene three-valued logic).

    Missing values give ``<NA>``; ``all``/``any``/``not`` combine with pandas'
    nullable boolean logic (``False & <NA>`` is ``False``).
    """
    params = params or {}
    if "all" in rule or "any" in rule:
        key = "all" if "all" in rule else "any"
        parts = [evaluate_rule(r, data, params) for r in rule[key]]
        out = parts[0]
        for p in parts[1:]:
            out = (out & p) if key == "all" else (out | p)
        return out
    if "not" in rule:
        return ~evaluate_rule(rule["not"], data, params)
    col, op, value = rule["column"], rule["op"], _value(rule["value"], params)
    s = data[col]
    if op in ("in", "not_in"):
        if pd.api.types.is_numeric_dtype(s) and all(isinstance(v, (int, float)) for v in value):
            res = pd.to_numeric(s).isin(value).astype("boolean")
        else:
            res = s.astype("string").isin([str(v) for v in value]).astype("boolean")
        res[s.isna()] = pd.NA
        return ~res if op == "not_in" else res
    if isinstance(value, bool):
        s = s.astype("boolean")
        res = s if value else ~s
    elif isinstance(value, (int, float)):
        num = pd.to_numeric(s, errors="coerce").astype("Float64")
        res = (num == value) if op == "eq" else (num != value) if op == "ne" else _CMP[op](num, value)
    else:
        st = s.astype("string")
        res = (st == str(value)) if op == "eq" else (st != str(value))
    if op == "ne" and isinstance(value, bool):
        res = ~res
    return res.astype("boolean")


def indicator_table(frame: pd.DataFrame, catalogue: Catalogue) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(values, applies): indicator values as Int8 1/0/<NA> and applicability masks.

    ``frame`` holds the family columns plus the member features. A value is
    ``<NA>`` when the indicator does not apply or the answer is missing;
    ``applies`` tells the two apart.
    """
    values, applies = {}, {}
    for ind in catalogue.indicators:
        met = evaluate_rule(ind.rule, frame, catalogue.parameters)
        if ind.direction == "negative":
            met = ~met
        app = (evaluate_rule(ind.applies, frame, catalogue.parameters).fillna(False)
               if ind.applies else pd.Series(True, index=frame.index, dtype="boolean"))
        app = app.to_numpy(dtype=bool)
        values[ind.id] = met.astype("Int8").where(app, pd.NA)
        applies[ind.id] = app
    return pd.DataFrame(values, index=frame.index), pd.DataFrame(applies, index=frame.index)


def effective_values(values: pd.DataFrame, applies: pd.DataFrame, not_applicable: str) -> np.ndarray:
    """Float matrix used for aggregation: NaN = left out (re-weighted).

    Missing answers are always left out; not-applicable ones are left out
    (``reweight``), scored 0 (``zero``) or scored 1 (``full``).
    """
    x = values.astype("float64").to_numpy(na_value=np.nan)
    if not_applicable != "reweight":
        x = np.where(applies.to_numpy(dtype=bool), x, 0.0 if not_applicable == "zero" else 1.0)
    return x


def aggregate(x: np.ndarray, catalogue: Catalogue) -> tuple[np.ndarray, np.ndarray]:
    """Dimension scores (n x D) and composite (n), both 0-100, from indicator values.

    Within a dimension: weighted mean over the indicators present. Across
    dimensions: weighted arithmetic or geometric mean over dimensions present.
    A family with no indicator present in any dimension gets NaN.
    """
    dims = catalogue.dimensions
    w = np.array([ind.weight for ind in catalogue.indicators])
    present = ~np.isnan(x)
    xv, pf = np.where(present, x, 0.0), present.astype(float)
    num, den = np.empty((len(x), len(dims))), np.empty((len(x), len(dims)))
    for j, d in enumerate(dims):  # numpy sums, not a BLAS product: the same bits in every process
        cols = np.array([ind.dimension == d.id for ind in catalogue.indicators])
        num[:, j] = (xv[:, cols] * w[cols]).sum(axis=1)
        den[:, j] = (pf[:, cols] * w[cols]).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        dim = 100 * num / den
    dim[den == 0] = np.nan
    W = np.array([d.weight for d in dims])
    has = ~np.isnan(dim)
    Wp = np.where(has, W, 0.0)
    tot = Wp.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        if catalogue.settings["aggregation_method"] == "geometric":
            logs = np.log(np.maximum(np.where(has, dim, 1.0), GEOMETRIC_FLOOR))
            comp = np.exp((logs * Wp).sum(axis=1) / tot)
        else:
            comp = (np.where(has, dim, 0.0) * Wp).sum(axis=1) / tot
    comp[tot == 0] = np.nan
    return dim, comp


def categorize(values, categories: tuple[Category, ...]) -> np.ndarray:
    """Vectorised category codes (0 for NaN) under the catalogue cut-offs."""
    v = np.asarray(values, dtype=float)
    code = np.full(v.shape, categories[0].code)
    for cat in categories[1:]:
        code = np.where((v > cat.lower) | ((v == cat.lower) & cat.lower_inclusive), cat.code, code)
    return np.where(np.isnan(v), 0, code)


def label_codes(codes, categories: tuple[Category, ...], lang: str = "id") -> pd.Series:
    labels = {c.code: c.label(lang) for c in categories}
    return pd.Series(codes).map(labels).astype("string")


def columns_for(cat: Catalogue, catalogues, columns) -> list[str]:
    """The ``columns`` of a scores table of several ``catalogues`` that ``cat``'s rows use: all but the
    indicator, ``berlaku_`` and dimension columns only the others fill (empty on ``cat``'s rows).

    >>> ikk, ib = load_catalogue("ikk"), load_catalogue("ibangga")
    >>> cols = columns_for(ikk, [ikk, ib], ["id_keluarga", "L1", "T1", "dim_fisik", "dim_kemandirian", "indeks"])
    >>> cols
    ['id_keluarga', 'L1', 'dim_fisik', 'indeks']
    """
    def filled(c):
        return ({i.id for i in c.indicators} | {f"berlaku_{i.id}" for i in c.indicators}
                | {f"dim_{d.id}" for d in c.dimensions})

    foreign = set().union(*(filled(c) for c in catalogues)) - filled(cat)
    return [c for c in columns if c not in foreign]


def score_families(families: pd.DataFrame, members: pd.DataFrame, catalogue: Catalogue | str = "ikk", *,
                   features: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per family and round: indicators, dimensions, ``indeks`` and category.

    ``features``: :func:`pk2d.features.family_features` of the same families and members when already
    computed (they are the same for every catalogue).

    Columns: the family identifiers and area codes, one Int8 column per
    indicator (1 met / 0 not met / <NA> not applicable or unanswered), one
    boolean ``berlaku_<id>`` per indicator (the indicator applies),
    ``dim_<dimension>`` (0-100), ``indeks`` (0-100), ``kategori`` (code) and
    ``kategori_label``, plus ``n_jawaban_kosong`` (applicable indicators
    left unanswered).
    """
    cat = load_catalogue(catalogue)
    feats = family_features(families, members) if features is None else features
    frame = pd.concat([families.drop(columns=[c for c in feats.columns if c in families.columns]), feats], axis=1)
    cat.check_columns(frame.columns)
    values, applies = indicator_table(frame, cat)
    x = effective_values(values, applies, cat.settings["not_applicable"])
    dim, comp = aggregate(x, cat)
    out = families[[c for c in ID_COLUMNS if c in families.columns]].copy()
    out = pd.concat([out, values, applies.add_prefix("berlaku_")], axis=1)
    for j, d in enumerate(cat.dimensions):
        out[f"dim_{d.id}"] = dim[:, j]
    out["indeks"] = comp
    codes = categorize(comp, cat.categories["family"])
    out["kategori"] = pd.array(codes, dtype="Int8")
    out["kategori_label"] = label_codes(codes, cat.categories["family"]).to_numpy()
    out["n_jawaban_kosong"] = (values.isna().to_numpy() & applies.to_numpy()).sum(axis=1).astype("int16")
    out.attrs["catalogue"] = {"id": cat.id, "sha256": cat.sha256, "settings": dict(cat.settings)}
    return out
