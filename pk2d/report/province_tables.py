"""Report tables of the province report, built with the other report tables (:mod:`pk2d.report.tables`).

The province team evaluates every district's desa lokus over the years: for each desa lokus its
baseline (the round of the year it became lokus) and each later round, the index then and now, the
difference-in-differences with its interval, and the category it moved from and to; the league of
kabupaten in their latest rounds; how villages moved between categories; and which agencies carry
most of the follow-up plans. One unit per province and catalogue, keyed on the latest round of the
run (``kind = provinsi``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import disclosure
from .tables import _key, with_reliability


def build(cat, areas: pd.DataFrame, cmp_c: dict[str, pd.DataFrame], lokus: pd.DataFrame,
          year: dict[int, int], log: dict, rejects: pd.DataFrame, cells: pd.DataFrame | None = None
          ) -> dict[str, pd.DataFrame]:
    """The ``report_*`` rows of every province unit of one catalogue (name -> frame); ``year``: round ->
    survey year; ``log`` and ``rejects``: the clean stage's log and its rejected rows counted by table, file
    and rule (:func:`pk2d.report.tables.rejects_by_file`), for the data-quality annex; ``cells``: the
    sensitive indicators' cells of every round (:func:`pk2d.report.disclosure.indicator_cells`)."""
    cells = disclosure.indicator_cells(cat, pd.DataFrame())[0] if cells is None else cells
    a = areas[areas["catalogue"] == cat.id]
    if a.empty:
        return {}
    last = int(a["round"].max())
    provs = a[a["level"] == "provinsi"].sort_values("round").groupby("code").tail(1)
    kab = a[a["level"] == "kabupaten"]
    desa = a[a["level"] == "desa"]
    kec_parent = a[a["level"] == "kecamatan"].drop_duplicates("code").set_index("code")["parent_code"]
    desa = desa.assign(kabupaten=desa["parent_code"].map(kec_parent))
    out: dict[str, list] = {}

    def put(name, df, unit):
        out.setdefault(name, []).append(_key(df, cat.id, last, "provinsi", unit))

    for p in provs.itertuples(index=False):
        kabs = kab[kab["parent_code"] == p.code]
        latest = kabs.sort_values("round").groupby("code").tail(1).sort_values("index", ascending=False)
        league = pd.DataFrame({"code": latest["code"].to_numpy(), "name": latest["name"].astype(str).to_numpy(),
                               "latest_round": latest["round"].to_numpy(), "year": latest["round"].map(year).to_numpy(),
                               "n_families": latest["n_families"].to_numpy(), "index": latest["index"].to_numpy(),
                               "se": latest["se"].to_numpy(),
                               "ci_low": latest["ci_low"].to_numpy(), "ci_high": latest["ci_high"].to_numpy(),
                               "census": latest["census"].to_numpy(), "category": latest["category"].to_numpy(),
                               **{c: latest[c].to_numpy() for c in ("n_psu", "reliability") if c in latest}})
        league = with_reliability(league, "index")
        league["n_villages"] = [int(((desa["kabupaten"] == k) & (desa["round"] == r)).sum())
                                for k, r in zip(league["code"], league["latest_round"])]
        league["rank"] = np.arange(1, len(league) + 1)
        put("report_prov_league", league, p.code)
        d = desa[desa["kabupaten"].isin(set(league["code"]))]
        put("report_units", pd.DataFrame([{
            "name": str(p.name), "kecamatan": pd.NA, "kecamatan_name": pd.NA, "kabupaten": pd.NA,
            "kabupaten_name": pd.NA, "provinsi": p.code, "provinsi_name": str(p.name), "index": np.nan,
            "category": 0, "n_families": int(league["n_families"].sum()), "census": bool(league["census"].all()),
            "lokus": False}]), p.code)
        put("report_facts", pd.DataFrame([{
            "name": str(p.name), "n_kabupaten": len(league), "n_villages": int(league["n_villages"].sum()),
            "n_families": int(league["n_families"].sum()), "first_year": int(min(year.values())) if year else np.nan,
            "last_year": int(max(year.values())) if year else np.nan,
            "n_lokus": int(lokus["kode_kabupaten"].isin(set(league["code"])).sum()),
            "n_rounds": int(d["round"].nunique())}]), p.code)
        put("report_prov_lokus", _lokus(d, cmp_c, lokus, league), p.code)
        put("report_prov_moves", _moves(d, league), p.code)
        q, rj = _quality(log, rejects, league)
        put("report_quality", q, p.code)
        put("report_rejects", rj, p.code)
        pl = cmp_c.get("problems", pd.DataFrame())
        if len(pl):
            pl = pl.merge(league[["code", "latest_round"]], left_on=["kabupaten", "round"],
                          right_on=["code", "latest_round"])
            wl = pl.groupby("agency").agg(n_villages=("kode_desa", "nunique"), n_kabupaten=("kabupaten", "nunique"),
                                          indicators=("indicator", lambda x: ", ".join(sorted(set(x)))),
                                          to_target=("to_target", "sum"), families_affected=("families_affected", "sum"),
                                          n_problems=("indicator", "size")).reset_index()
            wl = wl.sort_values(["to_target", "families_affected", "agency"], ascending=[False, False, True])
            wl["top_priority"] = np.arange(1, len(wl) + 1)
            # a sum over villages and districts whose published parts leave fewer than MIN_CELL hidden families
            villages = disclosure.plan_rows(pl, cells)
            districts = disclosure.sums_up(villages, ["round", "kabupaten", "agency"])
            hidden = (disclosure.sums_up(villages, ["agency"]).set_index("agency")["hidden"]
                      | disclosure.sums_up(districts, ["agency"]).set_index("agency")["hidden"])
            wl["hidden"] = wl["agency"].map(hidden).astype("boolean").fillna(False).astype(bool)
            put("report_plan", wl, p.code)
    return {k: pd.concat(v, ignore_index=True) for k, v in out.items()}


def _lokus(desa: pd.DataFrame, cmp_c, lokus: pd.DataFrame, league: pd.DataFrame) -> pd.DataFrame:
    """One row per desa lokus and evaluation (baseline -> a later round), and one per desa lokus that has
    no later round yet (its baseline only)."""
    did = cmp_c.get("did", pd.DataFrame())
    idx = did[did["component_id"] == "indeks"] if len(did) else did
    at = desa.set_index(["code", "round"])
    names = dict(zip(league["code"], league["name"]))
    rows = []
    for lk in lokus[lokus["kode_kabupaten"].isin(set(league["code"]))].itertuples(index=False):
        base = {"kabupaten": lk.kode_kabupaten, "kabupaten_name": names.get(lk.kode_kabupaten, ""),
                "code": lk.kode_desa, "name": lk.nama_desa, "lokus_year": int(lk.tahun)}
        mine = idx[(idx["focus"] == lk.kode_desa) & (idx["lokus_year"] == int(lk.tahun))] if len(idx) else idx
        surveyed = sorted(r for c, r in at.index if c == lk.kode_desa)
        if not surveyed:
            continue
        if len(mine):
            for e in mine.sort_values("round").itertuples(index=False):
                b, af = at.loc[(lk.kode_desa, int(e.before_round))], at.loc[(lk.kode_desa, int(e.round))]
                rows.append({**base, "before_round": int(e.before_round), "after_round": int(e.round),
                             "before_index": float(b["index"]), "after_index": float(af["index"]),
                             "before_n": int(b["n_families"]), "after_n": int(af["n_families"]),
                             "before_category": int(b["category"]), "after_category": int(af["category"]),
                             "did": float(e.estimate), "did_se": float(e.se), "did_low": float(e.ci_low),
                             "did_high": float(e.ci_high),
                             "n_villages": int(e.n_villages), "n": int(e.n)})
        else:
            r0 = max(surveyed)
            b = at.loc[(lk.kode_desa, r0)]
            rows.append({**base, "before_round": r0, "after_round": np.nan, "before_index": float(b["index"]),
                         "before_n": int(b["n_families"]), "after_n": np.nan,
                         "after_index": np.nan, "before_category": int(b["category"]), "after_category": np.nan,
                         "did": np.nan, "did_se": np.nan, "did_low": np.nan, "did_high": np.nan, "n_villages": np.nan,
                         "n": np.nan})
    cols = ["kabupaten", "kabupaten_name", "code", "name", "lokus_year", "before_round", "after_round", "before_index",
            "after_index", "before_n", "after_n", "before_category", "after_category", "did", "did_se", "did_low", "did_high", "n_villages", "n"]
    return with_reliability(pd.DataFrame(rows, columns=cols), "did", "did_se", model=True, name="did_reliability")


def _quality(log: dict, rejects: pd.DataFrame, league: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows received, kept, rejected and removed per table in the input files behind each kabupaten's latest
    round (each file once, also when it holds several kabupaten); rejected rows per rule in those files."""
    wanted = set(zip(league["code"], league["latest_round"].astype(int)))
    sel = {i["file"]: i for i in log.get("inputs", []) if i.get("putaran") is not None
           and any((k, int(i["putaran"])) in wanted for k in (i.get("kabupaten") or []))}
    rows = []
    for order, t in enumerate(("keluarga", "anggota")):
        st = [i for i in sel.values() if i.get("table") == t]
        if st:
            rows.append({"order": order, "table": t, "n_files": len(st), "rows": sum(int(i.get("rows", 0)) for i in st),
                         "kept": sum(int(i.get("kept", 0)) for i in st),
                         "rejected": sum(int(i.get("rejected", 0)) for i in st),
                         "dupes": sum(int(i.get("exact_duplicates_removed", 0)) for i in st)})
    q = pd.DataFrame(rows, columns=["order", "table", "n_files", "rows", "kept", "rejected", "dupes"])
    rj = rejects[rejects["file"].isin(set(sel))]
    rj = (rj.groupby(["table", "rule"])["n"].sum().reset_index() if len(rj)
          else pd.DataFrame(columns=["table", "rule", "n"]))
    return q, rj


def _moves(desa: pd.DataFrame, league: pd.DataFrame) -> pd.DataFrame:
    """Per kabupaten, its villages between its two latest rounds: to a higher category, the same, a lower."""
    rows = []
    for k in league["code"]:
        d = desa[desa["kabupaten"] == k]
        rounds = sorted(d["round"].unique())
        if len(rounds) < 2:
            rows.append({"kabupaten": k, "before_round": np.nan, "after_round": rounds[-1] if rounds else np.nan,
                         "up": np.nan, "same": np.nan, "down": np.nan})
            continue
        b, a = rounds[-2], rounds[-1]
        both = d[d["round"] == b].set_index("code")["category"].to_frame("b").join(
            d[d["round"] == a].set_index("code")["category"].rename("a"), how="inner")
        rows.append({"kabupaten": k, "before_round": b, "after_round": a, "up": int((both["a"] > both["b"]).sum()),
                     "same": int((both["a"] == both["b"]).sum()), "down": int((both["a"] < both["b"]).sum())})
    return pd.DataFrame(rows)
