"""Report tables: everything the village, district and province reports show, for every unit.

Built in the compare stage (:mod:`pk2d.compare_stage`): :func:`build` by each kabupaten's task, from
that kabupaten's scores, area estimates and comparison tables, with group-bys over its villages at
once; :func:`build_province` by the command for the province units. They are stored with the run,
partitioned by kabupaten. Every table has the key columns
:data:`KEY` (``catalogue, round, kind, unit``: ``kind`` is ``desa``,
``kabupaten`` or ``provinsi``, ``unit`` the area code) and holds only aggregates: no family
id, no row-level value. A report reads the rows of its own unit and nothing
else (:mod:`pk2d.report.sections`), so its work does not grow with the
number of villages, and the hash of those rows (``report_units.digest``,
:mod:`pk2d.report.digests`) decides whether its rendered copy is still current.

Numbers, not words: labels come from the catalogue and the text catalogue
when a report is rendered, in its language. Every estimate a report prints
carries its reliability code (:func:`with_reliability`, the BPS rule of
:mod:`pk2d.reliability`), and every row of a sensitive indicator the flags of
:mod:`pk2d.report.disclosure` that say which of its cells may be published.

>>> KEY
('catalogue', 'round', 'kind', 'unit')
"""
from __future__ import annotations

import hashlib
from typing import Iterable

import numpy as np
import pandas as pd

from .. import defaults
from ..reliability import reliability as _reliability
from . import disclosure
from .digests import KEY, salts, unit_digests

HIST_BINS = np.linspace(0, 100, 51)  #: family index histogram: 50 bins of 2 points
LEAGUE_BINS = np.linspace(0, 100, 101)  #: village index distribution of a kabupaten: 1-point bins
#: reliability columns the area tables may carry (pk2d.areas): kept with the estimates they describe
RELIABILITY_COLUMNS = ("n_psu", "rse", "reliability")


def with_reliability(df: pd.DataFrame, estimate: str, se: str = "se", *, census: str = "census",
                     model: bool = False, name: str = "reliability") -> pd.DataFrame:
    """``df`` with ``name``, the reliability code of each estimate (:func:`pk2d.reliability.reliability`;
    None without an estimate), and ``n_psu`` (NaN where not known): where every report table gets its
    flags. A code the area tables give is kept; ``model`` (bootstrap, regression): the RSE rule on its SE.

    >>> f = pd.DataFrame({"estimate": [70.0, 10.0, 76.95, 50.0], "se": [1.0, 3.0, 0.0, 0.0],
    ...                   "census": [False, False, False, True], "n_psu": [20, 20, 1, 1]})
    >>> with_reliability(f, "estimate")["reliability"].tolist()
    ['ok', 'care', 'no_se', 'census']
    """
    out = df.copy()
    psu = None if model or "n_psu" not in out else pd.to_numeric(out["n_psu"], errors="coerce").to_numpy(float)
    cen = False if model else out[census].astype("boolean").fillna(False).to_numpy(bool)
    code = _reliability(pd.to_numeric(out[estimate], errors="coerce"), pd.to_numeric(out[se], errors="coerce"),
                        n_psu=psu, census=cen).to_numpy(object)
    if not model and name in df:
        given = df[name].to_numpy(object)
        code = np.where(pd.notna(given), given, code)
    out[name] = pd.Series(code, index=out.index, dtype=object)
    if not model and "n_psu" not in out:
        out["n_psu"] = np.nan
    return out


def _rel_cols(df: pd.DataFrame) -> list[str]:
    return [c for c in RELIABILITY_COLUMNS if c in df.columns]


def _key(df: pd.DataFrame, catalogue, rnd, kind: str, unit) -> pd.DataFrame:
    out = df.copy()
    out.insert(0, "unit", unit)
    out.insert(0, "kind", kind)
    out.insert(0, "round", rnd)
    out.insert(0, "catalogue", catalogue)
    return out


def _finish(df: pd.DataFrame, sort: Iterable[str] = ()) -> pd.DataFrame:
    df = df.sort_values([*KEY, *sort], kind="stable").reset_index(drop=True)
    df["round"] = df["round"].astype("int64")
    return df


#: the report tables and how the rows of one unit are ordered in each
SORTS = {"report_units": (), "report_facts": (), "report_dimensions": ("role_order", "code", "dim_order"),
         "report_indicators": ("order",), "report_family_categories": ("category",), "report_family_hist": ("bin",),
         "report_rt": ("code",), "report_position": ("rank", "code"), "report_league_bins": ("bin",),
         "report_league": ("rank", "code"), "report_gaps": ("side", "order"), "report_plan": ("top_priority", "agency"),
         "report_problem_rt": ("order", "kode_rt"), "report_change": ("order",), "report_did": ("order",),
         "report_quality": ("order",), "report_rejects": ("table", "n", "rule"), "report_sensitivity": ("rank", "code"),
         "report_drivers": ("choice", "option"), "report_reliability": ("order",),
         "report_area_categories": ("category",), "report_prov_league": ("rank",),
         "report_prov_lokus": ("kabupaten", "lokus_year", "code", "after_round"), "report_prov_moves": ("kabupaten",)}


def build(cats, data: dict[str, dict], families: pd.DataFrame, cmp: dict[str, pd.DataFrame], lokus: pd.DataFrame,
          log: dict, rejects: pd.DataFrame, context: dict | None = None) -> dict[str, pd.DataFrame]:
    """The report tables of the villages and the kabupaten of one kabupaten (name -> DataFrame, names start
    with ``report_``), with ``report_units`` listing each unit and the digest of its rows: one task of the
    compare stage (:func:`pk2d.compare_stage.compare_kabupaten`), so its work and memory follow the
    kabupaten, never the run.

    ``data``: per catalogue id, the kabupaten's ``scores`` (every round), ``areas`` and ``components``
    (its areas and its province's own rows); ``families``: its families' ``putaran``, ``kode_desa``,
    ``kode_kabupaten`` and ``tanggal_wawancara``; ``cmp``: its comparison tables; ``log`` and ``rejects``:
    the clean stage's log and its rejected rows counted by table, file and rule (:func:`rejects_by_file`).
    ``context`` holds what every report of a catalogue shows besides its rows (the seed and numbers of
    draws); the catalogue's hash (names, labels, cut-offs, version) is added to it, so a change of
    either makes every report of that catalogue current no more."""
    lokus_set = set(lokus["kode_desa"])
    parts: dict[str, list[pd.DataFrame]] = {n: [] for n in SORTS if not n.startswith("report_prov")}
    for cat in cats:
        s_all, a_all, c_all = (data[cat.id][k] for k in ("scores", "areas", "components"))
        cmp_c = {k: (v[v["catalogue"] == cat.id] if "catalogue" in v else v) for k, v in cmp.items()}
        priv = disclosure.indicator_cells(cat, s_all)
        for rnd in sorted(int(r) for r in s_all["putaran"].unique()):  # the kabupaten's own rounds
            a = a_all[a_all["round"] == rnd]
            c = c_all[c_all["round"] == rnd]
            s = s_all[s_all["putaran"] == rnd]
            r = {k: (v[v["round"] == rnd] if "round" in v else v) for k, v in cmp_c.items()}
            for name, df in _round_tables(cat, rnd, a, c, s, r, cmp_c, families[families["putaran"] == rnd],
                                          log, rejects, lokus, lokus_set, priv).items():
                parts[name].append(df)
    return finish(parts, cats, context)


def build_province(cats, areas: dict[str, pd.DataFrame], cmp: dict[str, dict[str, pd.DataFrame]],
                   lokus: pd.DataFrame, years: dict[str, dict[int, int]], log: dict, rejects: pd.DataFrame,
                   cells: dict[str, pd.DataFrame], context: dict | None = None) -> dict[str, pd.DataFrame]:
    """The report tables of the province units (:mod:`pk2d.report.province_tables`), with their
    ``report_units`` rows and digests: per catalogue id, its ``areas`` from the desa level up, the ``did``
    and ``problems`` comparison tables, the survey ``years`` of the rounds and the sensitive indicators'
    village ``cells`` of every kabupaten (each a few rows per village, never a family)."""
    from . import province_tables

    parts: dict[str, list[pd.DataFrame]] = {}
    for cat in cats:
        for name, df in province_tables.build(cat, areas[cat.id], cmp[cat.id], lokus, years[cat.id], log, rejects,
                                              cells[cat.id]).items():
            parts.setdefault(name, []).append(df)
    return finish(parts, cats, context) if parts.get("report_units") else {}


def finish(parts: dict[str, list[pd.DataFrame]], cats, context: dict | None = None) -> dict[str, pd.DataFrame]:
    """Each table's rows made one, in key order (:data:`KEY`, then its :data:`SORTS`), and the digest of
    every unit of ``report_units`` (:func:`unit_digests`)."""
    out = {}
    for name, frames in parts.items():
        frames = [f for f in frames if len(f)]
        if frames:
            out[name] = _finish(pd.concat(frames, ignore_index=True), SORTS.get(name, ()))
    out["report_units"] = out["report_units"].assign(
        digest=unit_digests(out, out["report_units"], salts(cats, context)))
    return out


def rejects_by_file(path, chunk: int = 1_000_000) -> pd.DataFrame:
    """The clean stage's rejected rows (``rejects.csv``) counted by ``table``, ``file`` and ``rule`` (column
    ``n``): what the data-quality annexes show, read a chunk at a time (a national census may reject
    millions of rows)."""
    counts = []
    for part in pd.read_csv(path, usecols=["table", "file", "rule"], dtype=str, chunksize=chunk):
        counts.append(part.groupby(["table", "file", "rule"]).size())
    if not counts:
        return pd.DataFrame({c: pd.Series(dtype="str") for c in ("table", "file", "rule")}).assign(n=pd.Series(
            dtype="int64"))
    return pd.concat(counts).groupby(level=[0, 1, 2]).sum().rename("n").reset_index()


def _round_tables(cat, rnd, a, c, s, r, cmp_c, fam, log, rejects, lokus, lokus_set, priv) -> dict[str, pd.DataFrame]:
    """Every report table for one catalogue and round; ``priv``: the cells of the sensitive indicators
    (:func:`pk2d.report.disclosure.indicator_cells`, every round)."""
    cid = cat.id
    desa = a[a["level"] == "desa"].set_index("code")
    kec = a[a["level"] == "kecamatan"].set_index("code")
    kab = a[a["level"] == "kabupaten"].set_index("code")
    prov = a[a["level"] == "provinsi"].set_index("code")
    rt = a[a["level"] == "rt"]
    v = desa.reset_index()[["code", "name", "parent_code", "n_families", "index", "se", "ci_low", "ci_high",
                            "census", "category", *_rel_cols(desa)]].rename(columns={"parent_code": "kecamatan"})
    v = with_reliability(v, "index")
    v["kecamatan_name"] = v["kecamatan"].map(kec["name"])
    v["kabupaten"] = v["kecamatan"].map(kec["parent_code"])
    v["kabupaten_name"] = v["kabupaten"].map(kab["name"])
    v["provinsi"] = v["kabupaten"].map(kab["parent_code"])
    v["provinsi_name"] = v["provinsi"].map(prov["name"])
    out: dict[str, list] = {}

    def put(name, df):
        out.setdefault(name, []).append(df)

    # --- units ------------------------------------------------------------------------------
    units_v = v.assign(lokus=v["code"].isin(lokus_set))[["code", "name", "kecamatan", "kecamatan_name", "kabupaten",
                                                         "kabupaten_name", "provinsi", "provinsi_name", "index",
                                                         "category", "n_families", "census", "lokus"]]
    put("report_units", _key(units_v.drop(columns="code"), cid, rnd, "desa", units_v["code"].to_numpy()))
    k = kab.reset_index()[["code", "name", "parent_code", "n_families", "index", "se", "ci_low", "ci_high", "census",
                           "category", *_rel_cols(kab)]].rename(columns={"parent_code": "provinsi"})
    k = with_reliability(k, "index")
    k["provinsi_name"] = k["provinsi"].map(prov["name"])
    units_k = k.assign(kecamatan=pd.NA, kecamatan_name=pd.NA, kabupaten=k["code"], kabupaten_name=k["name"],
                       lokus=False)[units_v.columns]
    put("report_units", _key(units_k.drop(columns="code"), cid, rnd, "kabupaten", units_k["code"].to_numpy()))

    # --- facts --------------------------------------------------------------------------------
    year = s.groupby("kode_desa")["tahun"].agg(lambda x: x.mode().iloc[0] if x.notna().any() else np.nan)
    kab_year = s.groupby("kode_kabupaten")["tahun"].agg(lambda x: x.mode().iloc[0] if x.notna().any() else np.nan)
    dates = fam.groupby("kode_desa")["tanggal_wawancara"].agg(["min", "max"])
    n_rt = s.groupby("kode_desa")["kode_rt"].nunique()
    n_missing = (s["n_jawaban_kosong"] > 0).groupby(s["kode_desa"]).sum() if "n_jawaban_kosong" in s else None
    league = r.get("league", pd.DataFrame())
    lg = league.set_index("code") if len(league) else pd.DataFrame(columns=["rank", "rank_low", "rank_high"])
    n_league = league.groupby("kabupaten").size() if len(league) else pd.Series(dtype="int64")
    lokus_years = lokus.groupby("kode_desa")["tahun"].agg(lambda x: ",".join(str(int(y)) for y in sorted(set(x))))
    fv = v.assign(
        year=v["code"].map(year), period_start=v["code"].map(dates["min"]), period_end=v["code"].map(dates["max"]),
        n_rt=v["code"].map(n_rt).fillna(0).astype("int64"),
        n_missing=(v["code"].map(n_missing).fillna(0).astype("int64") if n_missing is not None else 0),
        lokus=v["code"].isin(lokus_set), lokus_years=v["code"].map(lokus_years).fillna(""),
        n_kec_villages=v["kecamatan"].map(v.groupby("kecamatan").size()),
        n_kab_villages=v["kabupaten"].map(v.groupby("kabupaten").size()),
        n_kab_kecamatan=v["kabupaten"].map(v.groupby("kabupaten")["kecamatan"].nunique()),
        kab_index=v["kabupaten"].map(kab["index"]), kab_n_families=v["kabupaten"].map(kab["n_families"]),
        rank=v["code"].map(lg["rank"]) if len(lg) else np.nan,
        rank_low=v["code"].map(lg["rank_low"]) if len(lg) else np.nan,
        rank_high=v["code"].map(lg["rank_high"]) if len(lg) else np.nan,
        n_league=v["kabupaten"].map(n_league) if len(n_league) else np.nan)
    put("report_facts", _key(fv.drop(columns="code"), cid, rnd, "desa", fv["code"].to_numpy()))
    fk = k.assign(year=k["code"].map(kab_year), n_villages=k["code"].map(v.groupby("kabupaten").size()),
                  n_kecamatan=k["code"].map(v.groupby("kabupaten")["kecamatan"].nunique()),
                  n_rt=k["code"].map(s.groupby("kode_kabupaten")["kode_rt"].nunique()),
                  period_start=k["code"].map(fam.groupby("kode_kabupaten")["tanggal_wawancara"].min()),
                  period_end=k["code"].map(fam.groupby("kode_kabupaten")["tanggal_wawancara"].max()),
                  n_lokus=k["code"].map(v[v["code"].isin(lokus_set)].groupby("kabupaten").size()).fillna(0))
    put("report_facts", _key(fk.drop(columns="code"), cid, rnd, "kabupaten", fk["code"].to_numpy()))

    # --- dimensions: village, its kecamatan and kabupaten; per kabupaten every village (heat) ----
    dims = [d.id for d in cat.dimensions]
    dim_order = {d: i + 1 for i, d in enumerate(dims)} | {"indeks": 0}
    dc = c[c["component_type"] == "dimension"][["level", "code", "component_id", "estimate", "se", "ci_low",
                                                 "ci_high", "n_applicable", "census", *_rel_cols(c)]]
    idx_rows = a[a["level"].isin(["desa", "kecamatan", "kabupaten"])][
        ["level", "code", "index", "se", "ci_low", "ci_high", "n_families", "census", *_rel_cols(a)]].rename(
        columns={"index": "estimate", "n_families": "n_applicable"}).assign(component_id="indeks")
    dc = pd.concat([idx_rows, dc], ignore_index=True).rename(columns={"component_id": "dimension"})
    dc = with_reliability(dc, "estimate")
    dc["dim_order"] = dc["dimension"].map(dim_order)
    names = pd.concat([desa["name"], kec["name"], kab["name"]])
    dc["name"] = dc["code"].map(names)
    role_order = {"desa": 0, "kecamatan": 1, "kabupaten": 2}
    frames = []
    for role, col in (("desa", "code"), ("kecamatan", "kecamatan"), ("kabupaten", "kabupaten")):
        m = pd.DataFrame({"unit": v["code"].to_numpy(), "area": v[col].to_numpy()})
        part = m.merge(dc[dc["level"] == role], left_on="area", right_on="code").drop(columns=["area"])
        frames.append(part.assign(role=role, role_order=role_order[role]))
    dv = pd.concat(frames, ignore_index=True).drop(columns="level")
    put("report_dimensions", _key(dv.drop(columns="unit"), cid, rnd, "desa", dv["unit"].to_numpy()))
    heat = v[["code", "kabupaten"]].merge(dc[dc["level"] == "desa"], on="code").assign(role="desa", role_order=0)
    heat_k = dc[dc["level"] == "kabupaten"].assign(kabupaten=lambda d: d["code"], role="kabupaten", role_order=2)
    dk = pd.concat([heat, heat_k], ignore_index=True).drop(columns="level")
    put("report_dimensions", _key(dk.drop(columns="kabupaten"), cid, rnd, "kabupaten", dk["kabupaten"].to_numpy()))

    # --- indicators ------------------------------------------------------------------------------
    ids = [i.id for i in cat.indicators]
    ind_order = {i: n for n, i in enumerate(ids)}
    ic = with_reliability(c[(c["component_type"] == "indicator") & (c["level"] == "desa")][
        ["code", "component_id", "estimate", "se", "ci_low", "ci_high", "n_applicable", "census", *_rel_cols(c)]],
        "estimate")
    x = s[ids].astype("float64")
    not_met = (x == 0).groupby(s["kode_desa"]).sum()
    nm = not_met.stack().rename("n_not_met").reset_index().rename(columns={"kode_desa": "code", "level_1": "component_id"})
    nm.columns = ["code", "component_id", "n_not_met"]
    ic = ic.merge(nm, on=["code", "component_id"], how="left")
    kab_share = c[(c["component_type"] == "indicator") & (c["level"] == "kabupaten")][
        ["code", "component_id", "estimate"]].rename(columns={"code": "kabupaten", "estimate": "kab_share"})
    ic = ic.merge(v[["code", "kabupaten"]], on="code").merge(kab_share, on=["kabupaten", "component_id"], how="left")
    ic = ic.rename(columns={"component_id": "indicator", "estimate": "share"}).drop(columns="kabupaten")
    ic["order"] = ic["indicator"].map(ind_order)
    ic["target"] = ic["indicator"].map({i.id: i.target for i in cat.indicators})
    cells, kab_cells = (x[x["round"] == rnd] for x in priv)
    kab_of = v.set_index("code")["kabupaten"]
    sensitive = [i.id for i in cat.indicators if i.sensitive]
    ic = disclosure.flag_rows(ic, cells, kab_cells, kab_of, sensitive, desa="code")
    put("report_indicators", _key(ic.drop(columns="code"), cid, rnd, "desa", ic["code"].to_numpy()))

    # --- families: categories and distribution -----------------------------------------------------
    from ..score import categorize

    idx = s["indeks"].astype("float64").to_numpy()
    fcat = categorize(idx, cat.categories["family"])
    census_of = v.set_index("code")["census"]
    w = s["bobot"].astype("float64").to_numpy() if "bobot" in s else np.ones(len(s))
    weighted = ~s["kode_desa"].map(census_of).fillna(True).astype(bool).to_numpy() & ~np.isnan(w)
    w = np.where(weighted, w, 1.0)
    fc = pd.DataFrame({"code": s["kode_desa"].to_numpy(), "category": fcat, "w": w}).groupby(
        ["code", "category"]).agg(n=("w", "size"), wsum=("w", "sum")).reset_index()
    fc["share"] = 100 * fc["wsum"] / fc.groupby("code")["wsum"].transform("sum")
    full = pd.MultiIndex.from_product([v["code"], [cc.code for cc in cat.categories["family"]]],
                                      names=["code", "category"]).to_frame(index=False)
    fc = full.merge(fc, how="outer", on=["code", "category"]).fillna({"n": 0, "share": 0.0}).drop(columns="wsum")
    fc["n"] = fc["n"].astype("int64")
    put("report_family_categories", _key(fc.drop(columns="code"), cid, rnd, "desa", fc["code"].to_numpy()))
    ok = ~np.isnan(idx)
    b = np.clip(np.digitize(idx[ok], HIST_BINS[1:-1]), 0, len(HIST_BINS) - 2)
    hist = pd.DataFrame({"code": s["kode_desa"].to_numpy()[ok], "bin": b}).groupby(["code", "bin"]).size()
    hist = hist.rename("n").reset_index()
    hist["low"], hist["high"] = HIST_BINS[hist["bin"]], HIST_BINS[hist["bin"] + 1]
    put("report_family_hist", _key(hist.drop(columns="code"), cid, rnd, "desa", hist["code"].to_numpy()))

    # --- RT ------------------------------------------------------------------------------------------
    dusun = s.groupby("kode_rt")["dusun"].first() if "dusun" in s else pd.Series(dtype="str")
    rtt = with_reliability(rt[["code", "name", "parent_code", "n_families", "index", "se", "ci_low", "ci_high",
                               "census", "category", *_rel_cols(rt)]], "index")
    rtt["dusun"] = rtt["code"].map(dusun).fillna("").astype("str")
    put("report_rt", _key(rtt.drop(columns="parent_code"), cid, rnd, "desa", rtt["parent_code"].to_numpy()))

    # --- position: the kecamatan's villages; the kabupaten's distribution; the full league ---------
    if len(league):
        lgc = league[["code", "name", "kode_kecamatan", "nama_kecamatan", "n_families", "index", "boot_se", "ci_low",
                      "ci_high", "rank", "rank_low", "rank_high", "category", "kabupaten"]].rename(
            columns={"kode_kecamatan": "kecamatan", "nama_kecamatan": "kecamatan_name"})
        lgc = with_reliability(lgc, "index", "boot_se", model=True)  # bootstrap: the RSE rule on its SE
        pos = v[["code", "kecamatan"]].rename(columns={"code": "unit"}).merge(lgc, on="kecamatan")
        pos["self"] = pos["unit"] == pos["code"]
        # long kecamatan lists: the KECAMATAN_MAX villages nearest in rank (the village always among them)
        me = pos.loc[pos["self"], ["unit", "rank"]].rename(columns={"rank": "my_rank"})
        pos = pos.merge(me, on="unit", how="left")
        pos["dist"] = (pos["rank"] - pos["my_rank"]).abs()
        pos = pos.sort_values(["unit", "dist", "rank"]).groupby("unit").head(defaults.KECAMATAN_MAX)
        pos = pos.drop(columns=["my_rank", "dist", "kabupaten"])
        put("report_position", _key(pos.drop(columns="unit"), cid, rnd, "desa", pos["unit"].to_numpy()))
        lb = np.clip(np.digitize(league["index"].to_numpy(float), LEAGUE_BINS[1:-1]), 0, len(LEAGUE_BINS) - 2)
        bins = pd.DataFrame({"kabupaten": league["kabupaten"].to_numpy(), "bin": lb}).groupby(
            ["kabupaten", "bin"]).size().rename("n").reset_index()
        bins["low"] = LEAGUE_BINS[bins["bin"]]
        lbv = v[["code", "kabupaten"]].merge(bins, on="kabupaten").drop(columns="kabupaten")
        put("report_league_bins", _key(lbv.drop(columns="code"), cid, rnd, "desa", lbv["code"].to_numpy()))
        put("report_league", _key(lgc.drop(columns="kabupaten"), cid, rnd, "kabupaten", lgc["kabupaten"].to_numpy()))
        ac = v.groupby(["kabupaten", "category"]).agg(n_villages=("code", "size"), n_families=("n_families", "sum"))
        full = pd.MultiIndex.from_product([k["code"], [cc.code for cc in cat.categories["area"]]],
                                          names=["kabupaten", "category"]).to_frame(index=False)
        ac = full.merge(ac.reset_index(), how="left", on=["kabupaten", "category"]).fillna(0)
        ac[["n_villages", "n_families"]] = ac[["n_villages", "n_families"]].astype("int64")
        put("report_area_categories", _key(ac.drop(columns="kabupaten"), cid, rnd, "kabupaten",
                                           ac["kabupaten"].to_numpy()))

    # --- problems, strengths, the follow-up plan, the agencies' workload ----------------------------
    cols = ["kode_desa", "indicator", "share", "kab_share", "gap", "n_applicable", "families_affected", "agency"]
    pri, strong = r.get("problems", pd.DataFrame()), r.get("strengths", pd.DataFrame())
    gaps = []
    if len(pri):
        trend = _trend(cmp_c.get("gaps", pd.DataFrame()), rnd)
        p = pri.merge(trend, on=["kode_desa", "indicator"], how="left")
        gaps.append(p[[*cols, "priority", "target", "to_target", "to_kab", "rule", "trend", "trend_round"]].assign(
            side="weakness", order=p["priority"]))
    if len(strong):
        gaps.append(strong[cols].assign(side="strength", priority=np.nan,
                                        order=strong.groupby("kode_desa").cumcount() + 1))
    if gaps:
        g = disclosure.flag_rows(pd.concat(gaps, ignore_index=True), cells, kab_cells, kab_of, sensitive)
        g["trend_hidden"] = disclosure.trend_hidden(g, priv[0])
        put("report_gaps", _key(g.drop(columns="kode_desa"), cid, rnd, "desa", g["kode_desa"].to_numpy()))
    plan = r.get("agency_plan", pd.DataFrame())
    prt = r.get("problem_rts", pd.DataFrame())
    plan_hidden = disclosure.plan_rows(pri, cells)
    if len(plan):
        p = plan[["kode_desa", "agency", "indicators", "to_target", "families_affected", "top_priority",
                  "n_problems"]].assign(n_villages=1)
        p = disclosure.attach(p, plan_hidden, ["kode_desa", "agency"], ["hidden", "sensitive"])
        put("report_plan", _key(p.drop(columns="kode_desa"), cid, rnd, "desa", p["kode_desa"].to_numpy()))
    if len(prt):
        q = prt[["kode_desa", "indicator", "kode_rt", "rt", "n_not_met", "n_applicable"]].merge(
            pri[["kode_desa", "indicator", "agency", "priority"]], on=["kode_desa", "indicator"])
        q["order"] = q["priority"]
        q["sensitive"] = q["indicator"].isin(set(sensitive))
        put("report_problem_rt", _key(q.drop(columns="kode_desa"), cid, rnd, "desa", q["kode_desa"].to_numpy()))
    if len(pri):
        wl = pri.groupby(["kabupaten", "agency"]).agg(
            n_villages=("kode_desa", "nunique"), indicators=("indicator", lambda x: ", ".join(sorted(set(x)))),
            to_target=("to_target", "sum"), families_affected=("families_affected", "sum"),
            n_problems=("indicator", "size"), top_priority=("priority", "min")).reset_index()
        wl = wl.sort_values(["kabupaten", "to_target", "families_affected", "agency"],
                            ascending=[True, False, False, True])
        wl["top_priority"] = wl.groupby("kabupaten").cumcount() + 1
        wl = disclosure.attach(wl, disclosure.sums_up(plan_hidden, ["kabupaten", "agency"]), ["kabupaten", "agency"],
                               ["hidden"])
        put("report_plan", _key(wl.drop(columns="kabupaten"), cid, rnd, "kabupaten", wl["kabupaten"].to_numpy()))

    # --- change and difference-in-differences (this round compared with the one before) --------------
    ch = r.get("change", pd.DataFrame())
    if len(ch):
        chv = ch[ch["component_type"].isin(["index", "dimension"])].copy()
        chv["order"] = chv["component_id"].map(dim_order)
        chv = with_reliability(chv[["kode_desa", "before_round", "component_type", "component_id", "before", "after",
                                    "n_before", "n_after", "change", "se", "ci_low", "ci_high", "p", "order"]],
                               "change", model=True)
        put("report_change", _key(chv.drop(columns="kode_desa"), cid, rnd, "desa", chv["kode_desa"].to_numpy()))
    did = r.get("did", pd.DataFrame())
    if len(did):
        dd = did[["focus", "before_round", "component_id", "estimate", "se", "ci_low", "ci_high", "p", "n",
                  "n_clusters", "n_villages"]].copy()
        dd["order"] = dd["component_id"].map(dim_order)
        dd = with_reliability(dd, "estimate", model=True)
        put("report_did", _key(dd.drop(columns="focus"), cid, rnd, "desa", dd["focus"].to_numpy()))

    # --- robustness and reliability (each village gets its kabupaten's context) ----------------------
    sens = r.get("sensitivity", pd.DataFrame())
    if len(sens):
        se = sens[["kabupaten", "code", "name", "index", "index_p05", "index_p95", "rank", "rank_p05", "rank_p95",
                   "category_robustness"]]
        put("report_sensitivity", _key(se.drop(columns=["kabupaten"]), cid, rnd, "desa", se["code"].to_numpy()))
        put("report_sensitivity", _key(se.drop(columns=["kabupaten"]), cid, rnd, "kabupaten",
                                       se["kabupaten"].to_numpy()))
    drv = r.get("sensitivity_drivers", pd.DataFrame())
    rel = r.get("reliability", pd.DataFrame())
    for name, df, cols_ in (("report_drivers", drv, ["choice", "option", "runs", "category_kept"]),
                            ("report_reliability", rel, ["scope", "k", "alpha", "published_alpha", "n_families"])):
        if not len(df):
            continue
        df = df.assign(order=df.groupby("kabupaten").cumcount())[["kabupaten", "order", *cols_]]
        put(name, _key(df.drop(columns="kabupaten"), cid, rnd, "kabupaten", df["kabupaten"].to_numpy()))
        dv_ = v[["code", "kabupaten"]].merge(df, on="kabupaten").drop(columns="kabupaten")
        put(name, _key(dv_.drop(columns="code"), cid, rnd, "desa", dv_["code"].to_numpy()))

    # --- data quality: the files behind each kabupaten ----------------------------------------------
    q, rj = _quality(log, rejects, rnd, list(k["code"]))
    if len(q):
        put("report_quality", _key(q.drop(columns="kabupaten"), cid, rnd, "kabupaten", q["kabupaten"].to_numpy()))
        qv = v[["code", "kabupaten"]].merge(q, on="kabupaten").drop(columns="kabupaten")
        put("report_quality", _key(qv.drop(columns="code"), cid, rnd, "desa", qv["code"].to_numpy()))
    if len(rj):
        put("report_rejects", _key(rj.drop(columns="kabupaten"), cid, rnd, "kabupaten", rj["kabupaten"].to_numpy()))
        rv = v[["code", "kabupaten"]].merge(rj, on="kabupaten").drop(columns="kabupaten")
        put("report_rejects", _key(rv.drop(columns="code"), cid, rnd, "desa", rv["code"].to_numpy()))
    return {name: pd.concat(frames, ignore_index=True) for name, frames in out.items()}


def _trend(gaps: pd.DataFrame, rnd: int) -> pd.DataFrame:
    """Per village and indicator: the change of its share (percentage points) since the previous round
    the village was surveyed in (``trend``, ``trend_round``); empty without an earlier round."""
    none = pd.DataFrame({"kode_desa": pd.Series(dtype=object), "indicator": pd.Series(dtype=object),
                         "trend": pd.Series(dtype="float64"), "trend_round": pd.Series(dtype="float64")})
    if not len(gaps) or "round" not in gaps:
        return none
    now = gaps[gaps["round"] == rnd][["kode_desa", "indicator", "share"]]
    before = gaps[gaps["round"] < rnd]
    if before.empty:
        return none
    last = before.loc[before.groupby(["kode_desa", "indicator"])["round"].idxmax(), ["kode_desa", "indicator", "share",
                                                                                      "round"]]
    t = now.merge(last, on=["kode_desa", "indicator"], suffixes=("", "_before"))
    return pd.DataFrame({"kode_desa": t["kode_desa"], "indicator": t["indicator"],
                         "trend": t["share"] - t["share_before"], "trend_round": t["round"].astype("int64")})


def _quality(log: dict, rejects: pd.DataFrame, rnd: int, kabupaten: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows received, kept, rejected and removed per table in the round's input files that hold each
    kabupaten's families; rejected rows per rule in those files. Aggregates only."""
    inputs = [i for i in log.get("inputs", []) if i.get("putaran") is not None and int(i["putaran"]) == rnd]
    q_rows, r_rows = [], []
    for kb in kabupaten:
        sel = [i for i in inputs if kb in (i.get("kabupaten") or [])]
        files = {i["file"] for i in sel}
        for order, t in enumerate(("keluarga", "anggota")):
            st = [i for i in sel if i.get("table") == t]
            if st:
                q_rows.append({"kabupaten": kb, "order": order, "table": t, "n_files": len(st),
                               "rows": sum(int(i.get("rows", 0)) for i in st),
                               "kept": sum(int(i.get("kept", 0)) for i in st),
                               "rejected": sum(int(i.get("rejected", 0)) for i in st),
                               "dupes": sum(int(i.get("exact_duplicates_removed", 0)) for i in st)})
        rj = rejects[rejects["file"].isin(files)]
        if len(rj):
            agg = rj.groupby(["table", "rule"])["n"].sum().reset_index()
            r_rows.append(agg.assign(kabupaten=kb))
    q = pd.DataFrame(q_rows, columns=["kabupaten", "order", "table", "n_files", "rows", "kept", "rejected", "dupes"])
    rj = pd.concat(r_rows, ignore_index=True) if r_rows else pd.DataFrame(columns=["table", "rule", "n", "kabupaten"])
    return q, rj
