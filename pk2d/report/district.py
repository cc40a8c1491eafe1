"""The district (kabupaten) report: the league of all its villages, categories, dimensions per
village, the villages needing attention and the agencies' workload, read from the run.

>>> D = district("63.02")  # doctest: +SKIP
>>> print(D.check)  # doctest: +SKIP
12 desa; Kabupaten Kotabaru: IKK 74,67 (Cukup Responsif Gender dan Hak Anak)
"""
from __future__ import annotations

import math
from functools import cached_property

import numpy as np
import pandas as pd

from .. import defaults
from ..catalogue import agency_name
from ..fmt import count, number, period_text, signed
from .display import Fragment, Table
from .privacy import hide
from .sections import (WEAK, AnnexSections, Unit, add_flags, cutoff_rule, fact_table, flags_note, interval_text,
                       open_unit, reliability_label, sensitive_note, summary_context)

#: shading of the dimension table: lower bound, CSS class (darker = lower; the numbers stay printed)
HEAT_BINS = ((80, "heat-1"), (70, "heat-2"), (60, "heat-3"), (50, "heat-4"), (-math.inf, "heat-5"))


def heat_class(value) -> str:
    """The shading class of a value (0-100).

    >>> heat_class(85), heat_class(64.9), heat_class(float("nan"))
    ('heat-1', 'heat-3', '')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return next(c for lower, c in HEAT_BINS if value >= lower)


def district(code: str, *, round: int | None = None, catalogue=None, lang: str = defaults.LANG, processed_dir=None,
             run_id: str | None = None, png_figures: bool = False) -> "DistrictReport":
    """The report of kabupaten ``code`` (round: the latest of the run by default;
    ``png_figures``: figures also carry a PNG copy, for the Word document)."""
    return DistrictReport(open_unit("kabupaten", code, round=round, catalogue=catalogue, lang=lang,
                                    processed_dir=processed_dir, run_id=run_id,
                                   png_figures=png_figures))


class DistrictReport(AnnexSections):
    """Every section of one district report."""

    def __init__(self, unit: Unit):
        self.unit = u = unit
        f = u.facts
        self.code, self.round, self.lang = u.code, u.round, u.lang
        self.name = str(f["name"])
        self.n_villages = int(f["n_villages"])
        self.n_families = int(f["n_families"])
        self.census = bool(f["census"])
        self.index = float(f["index"])
        self.category_label = u.category_label(f["category"])

    @cached_property
    def title(self) -> Fragment:
        return self.unit.fragment("title", key="report.title_district", name=self.name, synthetic=self.unit.synthetic)

    @cached_property
    def header(self) -> Table:
        u, f = self.unit, self.unit.facts
        year = "-" if pd.isna(f["year"]) else int(f["year"])
        return fact_table([
            (u.L("h_kabupaten"), f"{self.name} ({self.code})"),
            (u.L("h_round"), u.L("h_round_value", round=self.round, year=year)),
            (u.L("h_period"), period_text(f["period_start"], f["period_end"], self.lang)),
            (u.L("h_villages"), count(f["n_villages"], self.lang)),
            (u.L("h_kecamatans"), count(f["n_kecamatan"], self.lang)),
            (u.L("h_families"), count(f["n_families"], self.lang)),
            (u.L("h_design"), u.L("census_design") if self.census else u.L("sample_design"))])

    @cached_property
    def summary(self) -> Fragment:
        u, f = self.unit, self.unit.facts
        ctx = summary_context(u, f, self.name)
        ctx["extra"] = u.L("dist_intro", round=self.round, year=ctx["year"], n=count(f["n_villages"], self.lang),
                           k=count(f["n_kecamatan"], self.lang), f=count(f["n_families"], self.lang))
        return u.fragment("summary", **ctx)

    @cached_property
    def check(self) -> str:
        return self.unit.L("check_district", n=self.n_villages, name=self.name,
                           index_name=self.unit.catalogue.id.upper(), value=number(self.index, 2, self.lang),
                           category=self.category_label)

    # --- league -----------------------------------------------------------------------------------
    @cached_property
    def league_data(self) -> pd.DataFrame:
        return self.unit.rows("report_league", sort=["rank", "code"]).reset_index(drop=True)

    @cached_property
    def league_intro(self) -> Fragment:
        key = "pos_note" if len(self.league_data) else "pos_missing"
        return self.unit.fragment("intro", key="report.s_league", text=self.unit.L(key))

    @cached_property
    def league(self) -> Table:
        u, lg, lang = self.unit, self.league_data, self.lang
        if lg.empty:
            return Table(pd.DataFrame())
        frame = pd.DataFrame({
            u.L("col_rank"): [str(int(r)) for r in lg["rank"]],
            u.L("col_rank_int"): [f"{int(a)}–{int(b)}" for a, b in zip(lg["rank_low"], lg["rank_high"])],
            u.L("col_village"): lg["name"].astype(str).to_numpy(),
            u.L("col_kec"): lg["kecamatan_name"].astype(str).to_numpy(),
            u.L("col_n"): [count(x, lang) for x in lg["n_families"]],
            u.L("col_index"): [number(x, 2, lang) for x in lg["index"]],
            u.L("col_interval"): [interval_text(a, b, c, lang=lang) for a, b, c in
                                  zip(lg["ci_low"], lg["ci_high"], lg["reliability"])],
            u.L("col_category"): [u.category_label(c) for c in lg["category"]]})
        frame, classes = add_flags(frame, lg["reliability"], lang)
        return Table(frame, numeric=(u.L("col_rank"), u.L("col_rank_int"), u.L("col_n"), u.L("col_index"),
                                     u.L("col_interval")), classes=classes, data=lg,
                     note=flags_note(lg["reliability"], lang, model=True, note=u.L("pos_note")))

    @cached_property
    def league_figure(self):
        from .. import plots

        lg = self.league_data
        if lg.empty:
            return None
        cuts = [c.lower for c in self.unit.catalogue.categories["area"][1:]]
        return self.unit.image(plots.league(lg, lang=self.lang, cutoffs=cuts),
                           self.unit.L("alt_league", k=len(lg), kab=self.name, mark=""))

    # --- categories ----------------------------------------------------------------------------------
    @cached_property
    def category_counts(self) -> pd.DataFrame:
        u = self.unit
        cc = u.rows("report_area_categories", sort="category", ascending=False)
        return cc.assign(label=[u.category_label(c) for c in cc["category"]]).reset_index(drop=True)

    @cached_property
    def categories_intro(self) -> Fragment:
        rule = cutoff_rule(self.unit.catalogue.categories["area"], self.lang)
        return self.unit.fragment("intro", key="report.s_categories", text=self.unit.L("cat_intro", rule=rule))

    @cached_property
    def categories(self) -> Table:
        u, cc = self.unit, self.category_counts
        frame = pd.DataFrame({u.L("col_category"): cc["label"],
                              u.L("col_villages"): [count(x, self.lang) for x in cc["n_villages"]],
                              u.L("h_families"): [count(x, self.lang) for x in cc["n_families"]]})
        return Table(frame, numeric=(u.L("col_villages"), u.L("h_families")), data=cc)

    @cached_property
    def categories_figure(self):
        from .. import plots

        return self.unit.image(plots.category_bars(self.category_counts, lang=self.lang), self.unit.L("alt_categories"))

    # --- dimensions per village --------------------------------------------------------------------------
    @cached_property
    def heat_data(self) -> pd.DataFrame:
        """Index and dimensions per village (one row each, highest index first) and the kabupaten (last)."""
        d = self.unit.rows("report_dimensions")
        piv = d.pivot_table(index=["role", "code"], columns="dimension", values="estimate", aggfunc="first")
        rel = d.pivot_table(index=["role", "code"], columns="dimension", values="reliability", aggfunc="first")
        piv = piv.join(rel.add_prefix("rel_"))
        n = d[d["dimension"] == "indeks"].set_index(["role", "code"])[["name", "n_applicable"]]
        piv = piv.join(n).reset_index()
        villages = piv[piv["role"] == "desa"].sort_values(["indeks", "code"], ascending=[False, True])
        return pd.concat([villages, piv[piv["role"] == "kabupaten"]], ignore_index=True)

    @cached_property
    def heat_intro(self) -> Fragment:
        return self.unit.fragment("intro", key="report.s_heat", text=self.unit.L("heat_intro"))

    @cached_property
    def heat(self) -> Table:
        u, h, lang = self.unit, self.heat_data, self.lang
        dims = [d.id for d in u.catalogue.dimensions]
        cols = [u.L("col_village"), u.L("col_n"), u.L("col_index"), *[u.dim_name(d) for d in u.catalogue.dimensions]]
        rows, classes = [], []
        cols.append(u.L("reliability.column"))

        def value(x, code):  # a dimension value: its flag beside it where it is not usable as it stands
            v = number(x, 1, lang)
            return f"{v} ({reliability_label(code, lang)})" if code in WEAK else v
        codes = []
        for _, r in h.iterrows():
            last = r["role"] == "kabupaten"
            bold = " strong" if last else ""
            code = r.get("rel_indeks")
            codes += [code, *[r.get(f"rel_{d}") for d in dims]]
            rows.append([str(r["name"]), count(r["n_applicable"], lang), number(r["indeks"], 2, lang),
                         *[value(r.get(d), r.get(f"rel_{d}")) for d in dims], reliability_label(code, lang)])
            classes.append([bold.strip(), bold.strip(), heat_class(r["indeks"]) + bold,
                            *[heat_class(r.get(d)) + bold for d in dims], "strong" if code in WEAK or last else ""])
        return Table(pd.DataFrame(rows, columns=cols), numeric=tuple(cols[1:-1]),
                     classes=pd.DataFrame(classes, columns=cols), data=h,
                     note=flags_note(codes, lang, note=u.L("all_census") if self.census else ""))

    # --- villages needing attention ---------------------------------------------------------------------------
    @cached_property
    def attention_intro(self) -> Fragment:
        return self.unit.fragment("intro", key="report.s_attention", text=self.unit.L("att_intro"))

    @cached_property
    def attention(self) -> Table:
        u, lang = self.unit, self.lang
        lg = self.league_data
        if lg.empty:
            return Table(pd.DataFrame())
        low = u.catalogue.categories["area"][0].code
        att = lg[lg["category"] == low].assign(reason=u.L("reason_low_cat"))
        if att.empty:
            att = lg.nsmallest(min(5, len(lg)), "index").assign(reason=u.L("reason_low_index"))
        att = att.sort_values("index")
        h = self.heat_data.set_index("code")
        dims = [d.id for d in u.catalogue.dimensions]
        kab = h[h["role"] == "kabupaten"].iloc[0] if (h["role"] == "kabupaten").any() else None
        weakest = []
        for code in att["code"]:
            vals = h.loc[code, dims].astype(float) if code in h.index else pd.Series(np.nan, index=dims)
            if vals.notna().any() and kab is not None:
                wid = vals.idxmin()
                d = next(x for x in u.catalogue.dimensions if x.id == wid)
                weakest.append(f"{u.dim_name(d)}: {number(vals[wid], 1, lang)} ({signed(vals[wid] - kab[wid], 1, lang)})")
            else:
                weakest.append("-")
        frame = pd.DataFrame({u.L("col_village"): att["name"].astype(str).to_numpy(),
                              u.L("col_kec"): att["kecamatan_name"].astype(str).to_numpy(),
                              u.L("col_n"): [count(x, lang) for x in att["n_families"]],
                              u.L("col_index"): [number(x, 2, lang) for x in att["index"]],
                              u.L("col_category"): [u.category_label(c) for c in att["category"]],
                              u.L("col_weakest"): weakest, u.L("col_reason"): att["reason"].to_numpy()})
        frame, classes = add_flags(frame, att["reliability"], lang)
        return Table(frame, numeric=(u.L("col_n"), u.L("col_index")), classes=classes, data=att.reset_index(drop=True),
                     note=flags_note(att["reliability"], lang, model=True))

    # --- agencies ------------------------------------------------------------------------------------------------
    @cached_property
    def workload_intro(self) -> Fragment:
        return self.unit.fragment("intro", key="report.s_workload", text=self.unit.L("wl_intro"))

    @cached_property
    def workload(self) -> Table:
        u = self.unit
        wl = u.rows("report_plan", sort="top_priority").reset_index(drop=True)
        if wl.empty:
            return Table(pd.DataFrame({"": [u.L("none")]}), header=False, data=wl)
        frame = pd.DataFrame({u.L("col_agency"): [agency_name(a, self.lang) for a in wl["agency"]],
                              u.L("col_n_villages"): [count(x, self.lang) for x in wl["n_villages"]],
                              u.L("col_indicators"): wl["indicators"].astype(str).to_numpy(),
                              u.L("col_to_target"): [count(x, self.lang) for x in wl["to_target"]],
                              u.L("col_affected"): [count(x, self.lang) for x in wl["families_affected"]]})
        hidden = wl["hidden"].astype("boolean").fillna(False).astype(bool) if "hidden" in wl else False
        frame = hide(frame, hidden, [u.L("col_to_target"), u.L("col_affected")], lang=self.lang)
        return Table(frame, numeric=(u.L("col_n_villages"), u.L("col_to_target"), u.L("col_affected")), data=wl,
                     note=u.L("plan_note") + (f" {sensitive_note(u)}" if np.any(hidden) else ""))
