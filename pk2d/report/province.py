"""The province report: every district's desa lokus evaluated over the years, the league of kabupaten,
how villages moved between categories, and which agencies carry most of the follow-up plans.

>>> P = province("63")  # doctest: +SKIP
>>> print(P.check)  # doctest: +SKIP
Kalimantan Selatan: 3 kabupaten, 4 desa lokus, 5 evaluasi
"""
from __future__ import annotations

from functools import cached_property

import pandas as pd

from .. import defaults
from ..catalogue import agency_name
from ..fmt import count, number, signed
from .display import Fragment, Table
from .privacy import hide
from .sections import AnnexSections, Unit, add_flags, fact_table, flags_note, interval_text, open_unit, sensitive_note


def province(code: str, *, catalogue=None, lang: str = defaults.LANG, processed_dir=None,
             run_id: str | None = None, png_figures: bool = False) -> "ProvinceReport":
    """The report of province ``code`` (e.g. ``"63"``, Kalimantan Selatan) on every round of the run
    (``png_figures``: figures also carry a PNG copy, for the Word document)."""
    return ProvinceReport(open_unit("provinsi", code, catalogue=catalogue, lang=lang, processed_dir=processed_dir,
                                    run_id=run_id, png_figures=png_figures))


class ProvinceReport(AnnexSections):
    """Every section of one province report."""

    def __init__(self, unit: Unit):
        self.unit = u = unit
        f = u.facts
        self.code, self.round, self.lang = u.code, u.round, u.lang
        self.name = str(f["name"])

    @cached_property
    def title(self) -> Fragment:
        return self.unit.fragment("title", key="report.title_province", name=self.name, synthetic=self.unit.synthetic)

    @cached_property
    def header(self) -> Table:
        u, f = self.unit, self.unit.facts
        years = f"{int(f['first_year'])}–{int(f['last_year'])}" if not pd.isna(f["first_year"]) else "-"
        return fact_table([
            (u.L("h_provinsi"), f"{self.name} ({self.code})"), (u.L("h_years"), years),
            (u.L("h_kabupatens"), count(f["n_kabupaten"], self.lang)),
            (u.L("h_villages_latest"), count(f["n_villages"], self.lang)),
            (u.L("h_families_latest"), count(f["n_families"], self.lang)),
            (u.L("h_lokus_n"), count(f["n_lokus"], self.lang))])

    @cached_property
    def lokus_data(self) -> pd.DataFrame:
        return self.unit.rows("report_prov_lokus")

    @cached_property
    def check(self) -> str:
        d = self.lokus_data
        n_eval = int(d["after_round"].notna().sum()) if len(d) else 0
        return self.unit.L("check_province", name=self.name, k=int(self.unit.facts["n_kabupaten"]),
                           n=int(d["code"].nunique()) if len(d) else 0, e=n_eval)

    @cached_property
    def summary(self) -> Fragment:
        u, f = self.unit, self.unit.facts
        return u.fragment("intro", key="report.s_province", text=u.L(
            "prov_intro", name=self.name, k=count(f["n_kabupaten"], self.lang), n=count(f["n_lokus"], self.lang)))

    # --- desa lokus before and after ----------------------------------------------------------------
    @cached_property
    def lokus_intro(self) -> Fragment:
        return self.unit.fragment("intro", key="report.s_prov_lokus", text=self.unit.L("prov_lokus_intro"))

    @cached_property
    def lokus(self) -> Table:
        u, d, lang = self.unit, self.lokus_data, self.lang
        if d.empty:
            return Table(pd.DataFrame({"": [u.L("none")]}), header=False, data=d)

        def move(b, a):
            return str(int(b)) if pd.isna(a) else f"{int(b)} → {int(a)}"
        frame = pd.DataFrame({
            u.L("col_kabupaten"): d["kabupaten_name"].astype(str).to_numpy(),
            u.L("col_village"): d["name"].astype(str).to_numpy(),
            u.L("col_lokus_year"): [str(int(y)) for y in d["lokus_year"]],
            u.L("col_rounds"): [f"{int(b)} → {int(a)}" if not pd.isna(a) else f"{int(b)}"
                                for b, a in zip(d["before_round"], d["after_round"])],
            u.L("col_n_ba"): [f"{count(b, lang)} → {count(a, lang)}" if not pd.isna(a) else count(b, lang)
                              for b, a in zip(d["before_n"], d["after_n"])],
            u.L("col_index_ba"): [f"{number(b, 2, lang)} → {number(a, 2, lang)}" if not pd.isna(a) else number(b, 2, lang)
                                  for b, a in zip(d["before_index"], d["after_index"])],
            "DiD": [signed(x, 2, lang) for x in d["did"]],
            u.L("ci95_model_cap"): [interval_text(lo, hi, c, lang=lang, signs=True)
                                    for lo, hi, c in zip(d["did_low"], d["did_high"], d["did_reliability"])],
            u.L("col_controls"): ["-" if pd.isna(k) else count(int(k) - 1, lang) for k in d["n_villages"]],
            u.L("col_category_code"): [move(b, a) for b, a in zip(d["before_category"], d["after_category"])]})
        codes = "; ".join(f"{c.code} = {c.label(lang)}" for c in u.catalogue.categories["area"])
        frame, classes = add_flags(frame, d["did_reliability"], lang, column=f"{u.L('reliability.column')} (DiD)")
        note = f"{u.L('prov_lokus_note')} {u.L('category_codes', codes=codes)}"
        return Table(frame, numeric=(u.L("col_n_ba"), u.L("col_index_ba"), "DiD", u.L("ci95_model_cap"),
                                     u.L("col_controls")), group=u.L("col_kabupaten"), classes=classes,
                     note=flags_note(d["did_reliability"], lang, model=True, note=note), data=d)

    @cached_property
    def lokus_figure(self):
        from .. import plots

        d = self.lokus_data
        d = d[d["did"].notna()] if len(d) else d
        if d.empty:
            return None
        labels = [f"{n} ({int(b)}→{int(a)})" for n, b, a in zip(d["name"], d["before_round"], d["after_round"])]
        ax = plots.effects(pd.DataFrame({"label": labels, "estimate": d["did"].to_numpy(),
                                         "ci_low": d["did_low"].to_numpy(), "ci_high": d["did_high"].to_numpy()}),
                           lang=self.lang)
        return self.unit.image(ax, self.unit.L("alt_prov_lokus", n=len(d)))

    # --- league of kabupaten, category moves --------------------------------------------------------
    @cached_property
    def league_intro(self) -> Fragment:
        return self.unit.fragment("intro", key="report.s_prov_league", text=self.unit.L("prov_league_intro"))

    @cached_property
    def league(self) -> Table:
        u, lg, lang = self.unit, self.unit.rows("report_prov_league", sort="rank"), self.lang
        frame = pd.DataFrame({
            u.L("col_rank"): [str(int(x)) for x in lg["rank"]], u.L("col_kabupaten"): lg["name"].astype(str).to_numpy(),
            u.L("col_round_year"): [f"{int(r)} ({int(y)})" for r, y in zip(lg["latest_round"], lg["year"])],
            u.L("col_villages"): [count(x, lang) for x in lg["n_villages"]],
            u.L("col_n"): [count(x, lang) for x in lg["n_families"]],
            u.L("col_index"): [number(x, 2, lang) for x in lg["index"]],
            u.L("ci95"): [interval_text(a, b, c, n_psu=n, lang=lang) for a, b, c, n in
                          zip(lg["ci_low"], lg["ci_high"], lg["reliability"], lg["n_psu"])],
            u.L("col_category"): [u.category_label(c) for c in lg["category"]]})
        frame, classes = add_flags(frame, lg["reliability"], lang)
        return Table(frame, numeric=(u.L("col_rank"), u.L("col_villages"), u.L("col_n"), u.L("col_index")), data=lg,
                     classes=classes, note=flags_note(lg["reliability"], lang))

    @cached_property
    def moves(self) -> Table:
        u, m = self.unit, self.unit.rows("report_prov_moves", sort="kabupaten")
        names = dict(zip(*[self.unit.rows("report_prov_league")[c] for c in ("code", "name")]))
        frame = pd.DataFrame({
            u.L("col_kabupaten"): [names.get(k, k) for k in m["kabupaten"]],
            u.L("col_rounds"): ["-" if pd.isna(b) else f"{int(b)} → {int(a)}" for b, a in zip(m["before_round"],
                                                                                        m["after_round"])],
            u.L("col_up"): [count(x, self.lang) for x in m["up"]], u.L("col_same"): [count(x, self.lang) for x in m["same"]],
            u.L("col_down"): [count(x, self.lang) for x in m["down"]]})
        return Table(frame, caption=u.L("prov_moves"), numeric=(u.L("col_up"), u.L("col_same"), u.L("col_down")),
                     data=m)

    # --- agencies --------------------------------------------------------------------------------------
    @cached_property
    def workload_intro(self) -> Fragment:
        return self.unit.fragment("intro", key="report.s_prov_workload", text=self.unit.L("prov_workload_intro"))

    @cached_property
    def workload(self) -> Table:
        u = self.unit
        wl = u.rows("report_plan", sort="top_priority")
        if wl.empty:
            return Table(pd.DataFrame({"": [u.L("none")]}), header=False, data=wl)
        frame = pd.DataFrame({u.L("col_agency"): [agency_name(a, self.lang) for a in wl["agency"]],
                              u.L("col_kabupatens"): [count(x, self.lang) for x in wl["n_kabupaten"]],
                              u.L("col_n_villages"): [count(x, self.lang) for x in wl["n_villages"]],
                              u.L("col_to_target"): [count(x, self.lang) for x in wl["to_target"]],
                              u.L("col_affected"): [count(x, self.lang) for x in wl["families_affected"]]})
        hidden = wl["hidden"].astype("boolean").fillna(False).astype(bool) if "hidden" in wl else pd.Series(False)
        frame = hide(frame, hidden.to_numpy(), [u.L("col_to_target"), u.L("col_affected")], lang=self.lang)
        return Table(frame, numeric=tuple(frame.columns[1:]), data=wl,
                     note=u.L("plan_note") + (f" {sensitive_note(u)}" if hidden.any() else ""))


__all__ = ["ProvinceReport", "province"]
