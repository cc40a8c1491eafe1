"""Area estimates (RT, desa, kecamatan, kabupaten, provinsi) with honest uncertainty.

Two survey situations:

* **census** (the usual desa lokus: every family surveyed, no weights): the
  figure is a count over the whole population, ``se = 0``, the interval
  collapses onto the estimate and the output says ``census = True``;
* **sample** (weights, strata, PSU): design-based estimates by Taylor
  linearisation with a with-replacement first stage, every area a domain of
  the full design (:func:`pk2d.survey.survey_mean`).

Two aggregation orders (catalogue setting ``aggregation_order``):

* ``family_first``: area index = weighted mean of the family indices;
* ``indicator_first``: per area the (weighted) share of applicable families
  meeting each indicator, then dimensions, then the composite. Its standard
  error linearises the composite: with indicator shares ``R_k = S_k / A_k`` and
  composite ``C = sum_k c_k R_k``, the pseudo-value
  ``e_i = N * sum_k c_k a_ik (x_ik - R_k) / A_k`` has domain mean 0 and the
  influence function of ``C``, so ``survey_mean(e)`` gives ``se(C)``.
  (Geometric aggregation uses ``c_k = C W_d / D_d * w_k``, the derivative.)

>>> from pk2d.areas import LEVELS
>>> LEVELS
('rt', 'desa', 'kecamatan', 'kabupaten', 'provinsi')
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .catalogue import Catalogue, load_catalogue
from .score import categorize, effective_values, label_codes
from . import estimators
from .design import Design, design_from_scores
from .reliability import relative_se, reliability

LEVELS = ("rt", "desa", "kecamatan", "kabupaten", "provinsi")
#: level -> (code column, name column, parent code column)
LEVEL_COLUMNS = {
    "rt": ("kode_rt", "rt", "kode_desa"),
    "desa": ("kode_desa", "nama_desa", "kode_kecamatan"),
    "kecamatan": ("kode_kecamatan", "nama_kecamatan", "kode_kabupaten"),
    "kabupaten": ("kode_kabupaten", "nama_kabupaten", "kode_provinsi"),
    "provinsi": ("kode_provinsi", "nama_provinsi", None),
}
AREA_COLUMNS = ["catalogue", "round", "level", "code", "name", "parent_code", "n_families", "index", "se",
                "ci_low", "ci_high", "census", "df", "n_psu", "rse", "reliability", "category", "category_label",
                "category_label_en"]
COMPONENT_COLUMNS = ["catalogue", "round", "level", "code", "component_type", "component_id", "name",
                     "estimate", "se", "ci_low", "ci_high", "n_applicable", "census", "df", "n_psu", "rse",
                     "reliability"]


@dataclass(frozen=True)
class AreaEstimates:
    """Result of :func:`estimate_areas`: ``areas`` (wide) and ``components`` (long)."""

    areas: pd.DataFrame
    components: pd.DataFrame
    settings: dict[str, Any] = field(default_factory=dict)


def _means_by(des: Design, frame, columns, code_col, level) -> pd.DataFrame:
    """Long table (variable, code, n, estimate, se, ci_low, ci_high, df, n_psu, census, rse, reliability)."""
    res = estimators.means(des.with_data(frame), list(columns), by=code_col, level=level)
    return res.rename(columns={code_col: "code"})


def _ratio_parts(x: np.ndarray, w: np.ndarray, g: np.ndarray, n_groups: int):
    """Per group and indicator: A = sum w over present rows, R = weighted share."""
    present = ~np.isnan(x)
    xv = np.where(present, x, 0.0)
    A = np.stack([np.bincount(g, weights=w * present[:, k], minlength=n_groups) for k in range(x.shape[1])], 1)
    S = np.stack([np.bincount(g, weights=w * xv[:, k], minlength=n_groups) for k in range(x.shape[1])], 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        R = S / A
    return present, xv, A, R


def composite_from_shares(cat: Catalogue, A: np.ndarray, R: np.ndarray, only: str | None = None):
    """Indicator-first composite (or one dimension), 0-1 scale, and its coefficients c_gk.

    ``A`` (groups x indicators): weighted number of families with a value;
    ``R``: weighted share meeting the indicator. Indicators with ``A == 0``
    are left out and their dimension re-weighted.
    """
    inds = cat.indicators
    dims = [d for d in cat.dimensions if only is None or d.id == only]
    w = np.array([i.weight for i in inds])
    avail = A > 0
    est = np.zeros(A.shape[0])
    dvals, coefs = [], []
    for d in dims:
        in_d = np.array([i.dimension == d.id for i in inds])
        wd = np.where(avail & in_d, w, 0.0)
        tot = wd.sum(1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            c = wd / tot
        c[np.broadcast_to(tot == 0, c.shape)] = 0.0
        D = np.nansum(c * np.where(avail, R, 0.0), 1)
        D[tot[:, 0] == 0] = np.nan
        dvals.append(D)
        coefs.append(c)
    Dm = np.stack(dvals, 1)
    Wd = np.array([d.weight for d in dims])
    has = ~np.isnan(Dm)
    Wp = np.where(has, Wd, 0.0)
    Wp = Wp / Wp.sum(1, keepdims=True)
    geometric = cat.settings["aggregation_method"] == "geometric" and only is None
    if geometric:
        floor = 0.01  # the 1-point floor of pk2d.score, on the 0-1 scale
        Dc = np.maximum(np.where(has, Dm, 1.0), floor)
        est = np.exp((np.log(Dc) * Wp).sum(1))
        scale = np.where(np.where(has, Dm, 1.0) > floor, est[:, None] * Wp / Dc, 0.0)  # flat below the floor
    else:
        est = (np.where(has, Dm, 0.0) * Wp).sum(1)
        scale = Wp
    C = sum(scale[:, [j]] * coefs[j] for j in range(len(dims)))
    est[~has.any(1)] = np.nan
    return est, C


def _linearised(frame, x, cat, code_col, des: Design, level) -> pd.DataFrame:
    """Indicator-first composite and dimensions per area with linearised se (long table)."""
    codes, uniques = pd.factorize(frame[code_col])
    w = des.weights
    present, xv, A, R = _ratio_parts(x, w, codes, len(uniques))
    N = np.bincount(codes, weights=w, minlength=len(uniques))
    with np.errstate(invalid="ignore", divide="ignore"):
        dev = np.where(present, (xv - R[codes]) / A[codes], 0.0)
    tmp = frame[[code_col] + [c for c in ("bobot", "strata", "psu") if c in frame]].copy()
    targets = [("indeks", None)] + [(f"dim_{d.id}", d.id) for d in cat.dimensions]
    estimates = {}
    for name, only in targets:
        est, C = composite_from_shares(cat, A, R, only)
        estimates[name] = est
        tmp[name] = N[codes] * np.nansum(dev * C[codes], 1)  # pseudo-values, domain mean 0
    res = _means_by(des, tmp, [t for t, _ in targets], code_col, level)
    pos = pd.Index(uniques).get_indexer(res["code"])
    est = np.concatenate([estimates[v][pos[res["variable"] == v]] for v in dict.fromkeys(res["variable"])])
    res = res.assign(se=res["se"] * 100, estimate=est * 100)
    with np.errstate(invalid="ignore"):
        t = np.where(res["df"] >= 1, stats.t.ppf((1 + level) / 2, np.maximum(res["df"], 1)), np.nan)
    half = np.where(res["census"], 0.0, t * res["se"])
    return res.assign(ci_low=res["estimate"] - half, ci_high=res["estimate"] + half,
                      rse=relative_se(res["estimate"], res["se"]),
                      reliability=reliability(res["estimate"], res["se"], n_psu=res["n_psu"],
                                              census=res["census"]).to_numpy())


def _names(cat: Catalogue) -> dict[str, str]:
    return {"indeks": cat.name_id, **{f"dim_{d.id}": d.name_id for d in cat.dimensions},
            **{i.id: i.name_id for i in cat.indicators}}


def _assemble(res: pd.DataFrame, info: pd.DataFrame, cat: Catalogue, rnd: int, lvl: str, census: bool):
    """One level's areas (wide) and components (long) from the long estimates ``res`` (variable, code,
    n, estimate, se, ...) and ``info`` (code, name, n_families, parent_code) of its areas."""
    parent_col = LEVEL_COLUMNS[lvl][2]
    res = res.assign(catalogue=cat.id, round=rnd, level=lvl, census=census)
    idx = res[res["variable"] == "indeks"]
    a = info.merge(idx[["code", "estimate", "se", "ci_low", "ci_high", "df", "n_psu", "rse", "reliability"]].rename(
        columns={"estimate": "index"}), on="code", how="left")
    if lvl == "rt":
        a["name"] = "RT " + a["name"].astype("Int64").astype("string").str.zfill(3)
    if parent_col is None:
        a["parent_code"] = pd.NA
    codes = categorize(a["index"].to_numpy(float), cat.categories["area"])
    a["category"] = codes
    a["category_label"] = label_codes(codes, cat.categories["area"], "id").to_numpy()
    a["category_label_en"] = label_codes(codes, cat.categories["area"], "en").to_numpy()
    a["catalogue"], a["round"], a["level"], a["census"] = cat.id, rnd, lvl, census
    comp = res[res["variable"] != "indeks"].copy()
    comp["component_type"] = np.where(comp["variable"].str.startswith("dim_"), "dimension", "indicator")
    comp["component_id"] = comp["variable"].str.removeprefix("dim_")
    comp["name"] = comp["variable"].map(_names(cat))
    return a[AREA_COLUMNS], comp.rename(columns={"n": "n_applicable"})


def estimate_areas(scores: pd.DataFrame, catalogue: Catalogue | str = "ikk", *, levels=LEVELS,
                   design: str = "auto", level: float = 0.95, lonely_psu: str = "fail") -> AreaEstimates:
    """Index, dimensions and indicators per area and round, with se and interval.

    ``scores`` is the output of :func:`pk2d.score.score_families` for the same
    catalogue. ``design``: ``"auto"`` (census when no weights), ``"census"`` or
    ``"sample"`` (:func:`pk2d.design.design_from_scores`; ``lonely_psu`` as R's
    ``survey.lonely.psu``). Indicator estimates are percentages of the families the
    indicator applies to (``n_applicable``). Every estimate carries ``df``, ``n_psu``, ``rse`` and
    its ``reliability`` flag (:mod:`pk2d.reliability`).
    """
    cat = load_catalogue(catalogue)
    order = cat.settings["aggregation_order"]
    ind_ids = [i.id for i in cat.indicators]
    dim_cols = [f"dim_{d.id}" for d in cat.dimensions]
    areas, comps, designs = [], [], {}
    for rnd, frame in scores.groupby("putaran", sort=True):
        frame = frame.reset_index(drop=True)
        des = design_from_scores(frame, design, lonely_psu=lonely_psu)
        designs[str(int(rnd))] = des.settings
        applies = frame[[f"berlaku_{i}" for i in ind_ids]].set_axis(ind_ids, axis=1)
        x = effective_values(frame[ind_ids], applies, cat.settings["not_applicable"])
        keep = [c for c in dict.fromkeys([*(v[0] for v in LEVEL_COLUMNS.values()), "bobot", "strata", "psu"])
                if c in frame]
        # indicator shares are always over the families the indicator applies to (raw 1/0 values)
        shares = frame[ind_ids].astype("float64") * 100
        data = pd.concat([frame[keep + ["indeks"] + dim_cols], shares], axis=1)
        for lvl in levels:
            code_col, name_col, parent_col = LEVEL_COLUMNS[lvl]
            if order == "family_first":
                res = _means_by(des, data, ["indeks", *dim_cols, *ind_ids], code_col, level)
            else:
                res = pd.concat([_linearised(frame, x, cat, code_col, des, level),
                                 _means_by(des, data, ind_ids, code_col, level)], ignore_index=True)
            info = frame.groupby(code_col, sort=False).agg(
                name=(name_col, "first"), n_families=("id_keluarga", "size"),
                **({"parent_code": (parent_col, "first")} if parent_col else {})).reset_index()
            a, comp = _assemble(res, info.rename(columns={code_col: "code"}), cat, int(rnd), lvl, des.census)
            areas.append(a)
            comps.append(comp)
    areas_df = pd.concat(areas, ignore_index=True)
    comp_df = pd.concat(comps, ignore_index=True)[COMPONENT_COLUMNS]
    return AreaEstimates(areas_df, comp_df, estimation_settings(cat, levels, design, designs, level))


def estimation_settings(cat: Catalogue, levels, design: str, designs: dict, level: float) -> dict:
    """What an :class:`AreaEstimates` records of how it was made (``designs``: round -> the design's
    settings)."""
    return {"catalogue": cat.id, "catalogue_sha256": cat.sha256, "levels": list(levels), "design": design,
            "designs": designs, "confidence_level": level, **dict(cat.settings)}


#: what a partition's census totals keep of each RT (its place in every level above it)
RT_INFO = ("rt", "kode_desa", "nama_desa", "kode_kecamatan", "nama_kecamatan", "kode_kabupaten", "nama_kabupaten",
           "kode_provinsi", "nama_provinsi")


def census_sums(scores: pd.DataFrame, catalogue: Catalogue | str = "ikk") -> pd.DataFrame:
    """Additive totals of one partition of a catalogue's family scores, one row per round and RT.

    Per (``putaran``, ``kode_rt``): the RT's place (:data:`RT_INFO`), ``n_families``, ``n_weighted``
    (families with a weight ``bobot``: a round with any is a sample under ``design="auto"``) and,
    for the index, each dimension and each indicator (in %, over the families it applies to), the
    count ``n:<col>`` and sum ``s:<col>`` of the values present; with ``aggregation_order:
    indicator_first`` also the count ``a:<id>`` and sum ``e:<id>`` of each indicator's effective values
    (after the not-applicable rule). Totals of disjoint partitions (kabupaten) add up, and
    :func:`areas_from_census_sums` turns them into exactly what :func:`estimate_areas` gives for a
    census (a test checks both ways agree). The order is the families' order of first appearance.
    """
    cat = load_catalogue(catalogue)
    ind_ids = [i.id for i in cat.indicators]
    rnd = pd.factorize(scores["putaran"])[0].astype(np.int64)
    rt, rts = pd.factorize(scores["kode_rt"])
    g = pd.factorize(rnd * max(len(rts), 1) + rt)[0]  # (round, RT) in the order of first appearance
    m = int(g.max()) + 1 if len(g) else 0
    first = np.unique(g, return_index=True)[1]
    place = scores[["putaran", "kode_rt", *RT_INFO]].iloc[first].reset_index(drop=True)  # dtypes kept
    out = {}
    count = lambda mask: np.bincount(g, weights=mask.astype(float), minlength=m).astype(np.int64)  # noqa: E731
    total = lambda y: np.bincount(g, weights=np.nan_to_num(y), minlength=m)  # noqa: E731
    out["n_families"] = np.bincount(g, minlength=m).astype(np.int64)
    out["n_weighted"] = count(scores["bobot"].notna().to_numpy()) if "bobot" in scores else np.zeros(m, np.int64)
    values = {"indeks": scores["indeks"].to_numpy(float),
              **{f"dim_{d.id}": scores[f"dim_{d.id}"].to_numpy(float) for d in cat.dimensions},
              **{k: scores[k].astype("float64").to_numpy(na_value=np.nan) * 100 for k in ind_ids}}
    for col, y in values.items():
        out[f"n:{col}"], out[f"s:{col}"] = count(~np.isnan(y)), total(y)
    if cat.settings["aggregation_order"] != "family_first":
        applies = scores[[f"berlaku_{i}" for i in ind_ids]].set_axis(ind_ids, axis=1)
        x = effective_values(scores[ind_ids], applies, cat.settings["not_applicable"])
        for j, k in enumerate(ind_ids):
            out[f"a:{k}"], out[f"e:{k}"] = count(~np.isnan(x[:, j])), total(x[:, j])
    return pd.concat([place, pd.DataFrame(out)], axis=1)


def _census_rows(parts: list[tuple]) -> pd.DataFrame:
    """Long estimates of a census (no sampling error), as :func:`pk2d.estimators.means` gives them:
    ``parts`` holds (variable, codes, n, estimate, se) per variable, made into one frame at once."""
    variable = np.concatenate([np.repeat(np.asarray([v], dtype=object), len(c)) for v, c, *_ in parts])
    codes, n, est, se = (np.concatenate([np.asarray(p[j]) for p in parts]) for j in range(1, 5))
    est, se = est.astype(float), se.astype(float)
    nan = np.full(len(est), np.nan)
    return pd.DataFrame({"variable": variable, "code": codes, "n": n.astype(np.int64), "estimate": est, "se": se,
                         "ci_low": est.copy(), "ci_high": est.copy(), "df": nan, "n_psu": nan.copy(), "census": True,
                         "rse": relative_se(est, se),
                         "reliability": reliability(est, se, n_psu=nan, census=True).to_numpy()})


def _census_settings(n: int) -> dict:
    """``Design(frame, census=True).settings`` of a frame of ``n`` families (a census: one stage whose units
    are the families), without building the design over ``n`` rows."""
    settings = Design(pd.DataFrame(index=range(1)), census=True).settings
    return {**settings, "units": [n]}


def areas_from_census_sums(sums: pd.DataFrame, catalogue: Catalogue | str = "ikk", *, levels=LEVELS,
                           level: float = 0.95, design: str = "census") -> AreaEstimates:
    """:func:`estimate_areas` of a census from the totals :func:`census_sums` made of its partitions
    (concatenated in the partitions' order: the areas come out in the order of first appearance).
    ``design``: the design setting recorded (``"auto"`` or ``"census"``: every round here is a census)."""
    cat = load_catalogue(catalogue)
    ind_ids = [i.id for i in cat.indicators]
    family_first = cat.settings["aggregation_order"] == "family_first"
    head = ["indeks", *(f"dim_{d.id}" for d in cat.dimensions)]
    areas, comps, designs = [], [], {}
    for rnd, frame in sums.groupby("putaran", sort=True):
        designs[str(int(rnd))] = _census_settings(int(frame["n_families"].sum()))
        for lvl in levels:
            code_col, name_col, parent_col = LEVEL_COLUMNS[lvl]
            tot = frame.groupby(code_col, sort=True).sum(numeric_only=True)
            codes = tot.index.to_numpy()
            parts = []
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = {c: tot[f"s:{c}"].to_numpy() / tot[f"n:{c}"].to_numpy() for c in [*head, *ind_ids]}
                if family_first:
                    for c in head:
                        parts.append((c, codes, tot[f"n:{c}"], mean[c], np.where(np.isnan(mean[c]), np.nan, 0.0)))
                else:
                    A = tot[[f"a:{k}" for k in ind_ids]].to_numpy(float)
                    R = tot[[f"e:{k}" for k in ind_ids]].to_numpy(float) / A
                    for c, only in zip(head, [None, *(d.id for d in cat.dimensions)]):
                        est = composite_from_shares(cat, A, R, only)[0] * 100
                        parts.append((c, codes, tot["n_families"], est, np.zeros(len(codes))))
            for k in ind_ids:
                parts.append((k, codes, tot[f"n:{k}"], mean[k], np.where(np.isnan(mean[k]), np.nan, 0.0)))
            res = _census_rows(parts)
            agg = {"name": (name_col, "first"), "n_families": ("n_families", "sum"),
                   **({"parent_code": (parent_col, "first")} if parent_col else {})}
            info = frame.groupby(code_col, sort=False).agg(**agg).reset_index().rename(columns={code_col: "code"})
            a, comp = _assemble(res, info, cat, int(rnd), lvl, True)
            areas.append(a)
            comps.append(comp)
    return AreaEstimates(pd.concat(areas, ignore_index=True), pd.concat(comps, ignore_index=True)[COMPONENT_COLUMNS],
                         estimation_settings(cat, levels, design, designs, level))


def roll_up(sums: pd.DataFrame, level: str) -> pd.DataFrame:
    """The totals of :func:`census_sums` added up to the areas of ``level`` (one row per round and area, in
    the order of first appearance), with the place columns of that level and those above it: what
    :func:`areas_from_census_sums` needs for the levels from ``level`` up, in far fewer rows (a kabupaten's
    task hands the province level its kabupaten's totals only).

    >>> s = pd.DataFrame({"putaran": [1, 1], "kode_rt": ["a.1", "a.2"], "kode_desa": ["a", "a"],
    ...                   "nama_desa": ["A", "A"], "n_families": [3, 4], "s:indeks": [150.0, 280.0]})
    >>> roll_up(s, "desa")[["putaran", "kode_desa", "n_families", "s:indeks"]].values.tolist()
    [[1, 'a', 7, 430.0]]
    """
    start = LEVELS.index(level)
    keep = [c for lvl in LEVELS[start:] for c in LEVEL_COLUMNS[lvl][:2] if c in sums]
    code = LEVEL_COLUMNS[level][0]
    numeric = [c for c in sums.columns if c not in ("putaran", "kode_rt", *RT_INFO)
               and pd.api.types.is_numeric_dtype(sums[c])]
    grouped = sums.groupby(["putaran", code], sort=False)
    out = grouped[keep].first().reset_index(level="putaran")
    out = out[["putaran", *keep]].reset_index(drop=True)
    return pd.concat([out, grouped[numeric].sum().reset_index(drop=True)], axis=1)
