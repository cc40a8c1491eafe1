"""The village's problems (*permasalahan*), its strengths, and the follow-up plan (*rencana tindak lanjut*).

A problem is an indicator below the catalogue's target or below the kabupaten
(:func:`pk2d.compare.problems` decided it in the compare stage); the plan
groups the problems by responsible agency, with the families to reach and the
RT where they are most (RT counts under the small-cell threshold are never
named). A village with no problem says so. The family lists for cadres are
not here: they stay in the processed data (``pk2d interventions``).
"""
from __future__ import annotations

from functools import cached_property

import pandas as pd

from ..catalogue import agency_name
from ..defaults import MIN_CELL
from ..fmt import count, pct, signed
from .display import Fragment, Table
from .sections import Unit

#: RT named per problem or agency (the others are in the agencies' workbook)
TOP_RT = 3


def top_rts(rows: pd.DataFrame, lang: str = "id", *, n: int = TOP_RT, min_cell: int = MIN_CELL) -> str:
    """'3 (12) · 1 (9)': the RT numbers with most families not meeting (the family count in brackets),
    only RT with at least ``min_cell`` of them (smaller counts are never published).

    >>> top_rts(pd.DataFrame({"rt": [1, 3, 2], "n_not_met": [9, 12, 2]}))
    '3 (12) · 1 (9)'
    >>> top_rts(pd.DataFrame({"rt": [1], "n_not_met": [2]}))
    'tersebar (< 5 keluarga per RT)'
    """
    from ..text import t

    agg = rows.groupby("rt")["n_not_met"].sum().sort_values(ascending=False, kind="stable")
    big = agg[agg >= min_cell].head(n)
    if big.empty:
        return t("report.rts_spread", lang, min=min_cell)
    return " · ".join(f"{int(r)} ({count(k, lang)})" for r, k in big.items())


class PlanSections:
    """Problems, strengths and plan of a village report (mixed into :class:`~pk2d.report.village.VillageReport`)."""

    unit: Unit
    lang: str
    name: str

    @cached_property
    def problem_data(self) -> pd.DataFrame:
        g = self.unit.rows("report_gaps")
        return g[g["side"] == "weakness"].sort_values("order").reset_index(drop=True) if len(g) else g

    @cached_property
    def problems_intro(self) -> Fragment:
        u = self.unit
        return u.fragment("problems", n=len(self.problem_data), name=self.name,
                          n_target=int((self.problem_data.get("to_target", pd.Series(dtype=float)) > 0).sum()))

    def _rts(self, indicators) -> str:
        rt = self.unit.rows("report_problem_rt")
        if rt.empty:
            return "-"
        return top_rts(rt[rt["indicator"].isin(list(indicators))], self.lang)

    @cached_property
    def problems(self) -> Table:
        u, lang, g = self.unit, self.lang, self.problem_data
        if g.empty:
            return Table(pd.DataFrame({"": [u.L("problems_none_cell")]}), header=False, data=g)
        inds = {i.id: i for i in u.catalogue.indicators}
        flag = {"target": u.L("flag_target"), "kabupaten": u.L("flag_kabupaten"), "target+kabupaten": u.L("flag_both")}
        cols = {u.L("col_priority"): [str(int(x)) for x in g["priority"]],
                u.L("col_indicator"): [f"{i} {u.ind_name(inds[i])}" if i in inds else i for i in g["indicator"]],
                u.L("col_share"): [pct(x, 1, lang) for x in g["share"]],
                u.L("col_target"): [pct(x, 0, lang) for x in g["target"]],
                u.L("col_kab_share"): [pct(x, 1, lang) for x in g["kab_share"]],
                u.L("col_flag"): [flag.get(x, x) for x in g["rule"]],
                u.L("col_to_target"): [count(x, lang) for x in g["to_target"]],
                u.L("col_trend"): [signed(x, 1, lang) for x in g["trend"]],
                u.L("col_rts"): [self._rts([i]) for i in g["indicator"]]}
        note = u.L("problems_note", r=int(g["trend_round"].dropna().iloc[0])) if g["trend"].notna().any() else ""
        return Table(pd.DataFrame(cols), numeric=(u.L("col_priority"), u.L("col_share"), u.L("col_target"),
                                                  u.L("col_kab_share"), u.L("col_to_target"), u.L("col_trend")),
                     note=note, data=g)

    @cached_property
    def strengths_intro(self) -> Fragment:
        return self.unit.fragment("intro", key="report.s_strengths", text=self.unit.L("sw_intro"))

    @cached_property
    def strengths(self) -> Table:
        u, lang = self.unit, self.lang
        g = u.rows("report_gaps")
        g = g[g["side"] == "strength"].sort_values("order").reset_index(drop=True) if len(g) else g
        if g.empty:
            return Table(pd.DataFrame({"": [u.L("none")]}), caption=u.L("strengths"), header=False, data=g)
        inds = {i.id: i for i in u.catalogue.indicators}
        frame = pd.DataFrame({
            u.L("col_code"): g["indicator"].astype(str).to_numpy(),
            u.L("col_indicator"): [u.ind_name(inds[i]) if i in inds else i for i in g["indicator"]],
            u.L("col_share"): [pct(x, 1, lang) for x in g["share"]],
            u.L("col_kab_share"): [pct(x, 1, lang) for x in g["kab_share"]],
            u.L("col_gap"): [signed(x, 1, lang) for x in g["gap"]],
            u.L("col_n_app"): [count(x, lang) for x in g["n_applicable"]]})
        return Table(frame, caption=u.L("strengths"), data=g,
                     numeric=(u.L("col_share"), u.L("col_kab_share"), u.L("col_gap"), u.L("col_n_app")))

    @cached_property
    def plan_intro(self) -> Fragment:
        key = "plan_intro" if len(self.problem_data) else "plan_all_met"
        return self.unit.fragment("intro", key="report.s_plan", text=self.unit.L(key))

    @cached_property
    def plan_data(self) -> pd.DataFrame:
        return self.unit.rows("report_plan", sort="top_priority")

    @cached_property
    def plan(self) -> Table:
        u, pv = self.unit, self.plan_data
        if pv.empty:
            return Table(pd.DataFrame({"": [u.L("none")]}), header=False, data=pv)
        frame = pd.DataFrame({u.L("col_agency"): [agency_name(a, self.lang) for a in pv["agency"]],
                              u.L("col_indicators"): pv["indicators"].astype(str).to_numpy(),
                              u.L("col_to_target"): [count(x, self.lang) for x in pv["to_target"]],
                              u.L("col_affected"): [count(x, self.lang) for x in pv["families_affected"]],
                              u.L("col_rts"): [self._rts(str(x).split(", ")) for x in pv["indicators"]]})
        return Table(frame, numeric=(u.L("col_to_target"), u.L("col_affected")), note=u.L("plan_note"), data=pv)
