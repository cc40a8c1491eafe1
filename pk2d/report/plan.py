"""The village's problems (*permasalahan*), its strengths, and the follow-up plan (*rencana tindak lanjut*).

A problem is an indicator below the catalogue's target or below the kabupaten
(:func:`pk2d.compare.problems` decided it in the compare stage); the plan
groups the problems by responsible agency, with the families to reach and the
RT where they are most (RT counts under the small-cell threshold are never
named). Sensitive indicators show only what the run's disclosure flags allow
(:mod:`pk2d.report.disclosure`): a hidden one comes last, its figures and the
sums of its agency written with the suppression mark. A village with no problem says so. The family lists for cadres are
not here: they stay in the processed data (``pk2d interventions``).
"""
from __future__ import annotations

from functools import cached_property

import pandas as pd

from ..catalogue import agency_name
from ..defaults import MIN_CELL
from ..fmt import count, pct, signed
from .display import Fragment, Table
from .privacy import hide
from .sections import Unit, add_flags, flags_note, sensitive_note

#: RT named per problem or agency (the others are in the agencies' workbook)
TOP_RT = 3


def top_rts(rows: pd.DataFrame, lang: str = "id", *, n: int = TOP_RT, min_cell: int = MIN_CELL,
            total: int | None = None) -> str:
    """'3 (12) · 1 (9)': the RT numbers with most families not meeting (the family count in brackets),
    only RT with at least ``min_cell`` of them (smaller counts are never published).

    ``total`` (a sensitive indicator: the village's families not meeting it): the named RT must not
    leave fewer than ``min_cell`` (but some) families to the others, which the total would give away.

    >>> top_rts(pd.DataFrame({"rt": [1, 3, 2], "n_not_met": [9, 12, 2]}))
    '3 (12) · 1 (9)'
    >>> top_rts(pd.DataFrame({"rt": [1, 3, 2], "n_not_met": [9, 12, 2]}), total=23)
    '3 (12)'
    >>> top_rts(pd.DataFrame({"rt": [1], "n_not_met": [2]}))
    'tersebar (< 5 keluarga per RT)'
    """
    from ..text import t

    agg = rows.groupby("rt")["n_not_met"].sum().sort_values(ascending=False, kind="stable")
    big = agg[agg >= min_cell].head(n)
    while total is not None and len(big) and 0 < total - big.sum() < min_cell:
        big = big.iloc[:-1]
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
        """The problems in the order published: by priority, those with hidden figures last
        (``shown_priority``: their number in the report and the workbook)."""
        g = self.unit.rows("report_gaps")
        if not len(g):
            return g
        g = _flagged(g[g["side"] == "weakness"])
        g = g.assign(_h=g["hidden"]).sort_values(["_h", "order"], kind="stable").drop(columns="_h")
        return g.assign(shown_priority=range(1, len(g) + 1)).reset_index(drop=True)

    @cached_property
    def indicator_flags(self) -> pd.DataFrame:
        """Per indicator: reliability of its share and its families not meeting (from ``report_indicators``)."""
        ind = self.unit.rows("report_indicators")
        if not len(ind):
            return pd.DataFrame(columns=["reliability", "n_not_met"])
        return ind.set_index("indicator")[["reliability", "n_not_met"]]

    def reliability_of(self, indicators) -> list:
        return [self.indicator_flags["reliability"].get(i) for i in indicators]

    @cached_property
    def problems_intro(self) -> Fragment:
        u = self.unit
        return u.fragment("problems", n=len(self.problem_data), name=self.name,
                          n_target=int((self.problem_data.get("to_target", pd.Series(dtype=float)) > 0).sum()))

    def _rts(self, indicators, *, sensitive: bool = False) -> str:
        rt = self.unit.rows("report_problem_rt")
        if rt.empty:
            return "-"
        total = None
        if sensitive and len(indicators) == 1:  # a sensitive indicator's own RT (a sum of several is never named)
            total = int(self.indicator_flags["n_not_met"].get(indicators[0], 0))
        return top_rts(rt[rt["indicator"].isin(list(indicators))], self.lang, total=total)

    @cached_property
    def problems(self) -> Table:
        u, lang, g = self.unit, self.lang, self.problem_data
        if g.empty:
            return Table(pd.DataFrame({"": [u.L("problems_none_cell")]}), header=False, data=g)
        inds = {i.id: i for i in u.catalogue.indicators}
        flag = {"target": u.L("flag_target"), "kabupaten": u.L("flag_kabupaten"), "target+kabupaten": u.L("flag_both")}
        cols = {u.L("col_priority"): [str(int(x)) for x in g["shown_priority"]],
                u.L("col_indicator"): [f"{i} {u.ind_name(inds[i])}" if i in inds else i for i in g["indicator"]],
                u.L("col_share"): [pct(x, 1, lang) for x in g["share"]],
                u.L("col_target"): [pct(x, 0, lang) for x in g["target"]],
                u.L("col_kab_share"): [pct(x, 1, lang) for x in g["kab_share"]],
                u.L("col_flag"): [flag.get(x, x) for x in g["rule"]],
                u.L("col_to_target"): [count(x, lang) for x in g["to_target"]],
                u.L("col_trend"): [signed(x, 1, lang) for x in g["trend"]],
                u.L("col_rts"): [self._rts([i], sensitive=sv) for i, sv in zip(g["indicator"], g["sensitive"])]}
        frame, classes = add_flags(pd.DataFrame(cols), self.reliability_of(g["indicator"]), lang)
        frame = hide(frame, g["hidden"], [u.L("col_share"), u.L("col_to_target"), u.L("col_rts"),
                                          u.L("reliability.column")], lang=lang)
        frame = hide(frame, g["kab_hidden"], [u.L("col_kab_share")], lang=lang)
        frame = hide(frame, g["trend_hidden"], [u.L("col_trend")], lang=lang)
        note = u.L("problems_note", r=int(g["trend_round"].dropna().iloc[0])) if g["trend"].notna().any() else ""
        if (g["hidden"] | g["kab_hidden"] | g["trend_hidden"]).any():
            note = f"{note} {self.sensitive_note}" + (f" {u.L('sensitive_last')}" if g["hidden"].any() else "")
        return Table(frame, numeric=(u.L("col_priority"), u.L("col_share"), u.L("col_target"),
                                     u.L("col_kab_share"), u.L("col_to_target"), u.L("col_trend")),
                     note=flags_note(self.reliability_of(g["indicator"]), lang, note=note.strip()), classes=classes,
                     data=g)

    @cached_property
    def strengths_intro(self) -> Fragment:
        return self.unit.fragment("intro", key="report.s_strengths", text=self.unit.L("sw_intro"))

    @cached_property
    def strengths(self) -> Table:
        u, lang = self.unit, self.lang
        g = u.rows("report_gaps")
        if len(g):  # hidden figures last: their place would say how large they are
            g = _flagged(g[g["side"] == "strength"])
            g = g.assign(_h=g["hidden"]).sort_values(["_h", "order"], kind="stable").drop(columns="_h")
            g = g.reset_index(drop=True)
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
        frame, classes = add_flags(frame, self.reliability_of(g["indicator"]), lang)
        frame = hide(frame, g["hidden"], [u.L("col_share"), u.L("reliability.column")], lang=lang)
        frame = hide(frame, g["hidden"] | g["kab_hidden"], [u.L("col_gap")], lang=lang)
        frame = hide(frame, g["kab_hidden"], [u.L("col_kab_share")], lang=lang)
        frame = hide(frame, g["hidden_n_app"], [u.L("col_n_app")], lang=lang)
        note = self.sensitive_note if (g["hidden"] | g["kab_hidden"]).any() else ""
        return Table(frame, caption=u.L("strengths"), data=g, classes=classes,
                     note=flags_note(self.reliability_of(g["indicator"]), lang, note=note),
                     numeric=(u.L("col_share"), u.L("col_kab_share"), u.L("col_gap"), u.L("col_n_app")))

    @cached_property
    def plan_intro(self) -> Fragment:
        key = "plan_intro" if len(self.problem_data) else "plan_all_met"
        return self.unit.fragment("intro", key="report.s_plan", text=self.unit.L(key))

    @cached_property
    def plan_data(self) -> pd.DataFrame:
        """The agencies in the order published: by their first problem as published (hidden ones last)."""
        pv = self.unit.rows("report_plan", sort="top_priority")
        if pv.empty:
            return pv
        pv = pv.assign(**{f: pv[f].astype("boolean").fillna(False).astype(bool) if f in pv else False
                          for f in ("hidden", "sensitive")})
        g = self.problem_data
        first = g.groupby("agency")["shown_priority"].min() if len(g) else pd.Series(dtype=float)
        pv = pv.assign(_first=pv["agency"].map(first).fillna(pv["top_priority"] + len(g)))
        return pv.sort_values(["_first", "top_priority"], kind="stable").drop(columns="_first").reset_index(drop=True)

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
        # an agency's sums hold a hidden sensitive count; its RT sums hold a sensitive indicator's small RT counts
        frame = hide(frame, pv["hidden"], [u.L("col_to_target"), u.L("col_affected")], lang=self.lang)
        frame = hide(frame, pv["sensitive"], [u.L("col_rts")], lang=self.lang)
        note = u.L("plan_note") + (f" {self.sensitive_note}" if (pv["hidden"] | pv["sensitive"]).any() else "")
        return Table(frame, numeric=(u.L("col_to_target"), u.L("col_affected")), note=note, data=pv)

    @property
    def sensitive_note(self) -> str:
        return sensitive_note(self.unit)


def _flagged(g: pd.DataFrame) -> pd.DataFrame:
    """``report_gaps`` rows with every disclosure flag a bool (False where the run has none)."""
    return g.assign(**{f: g[f].astype("boolean").fillna(False).astype(bool) if f in g else False
                       for f in ("sensitive", "hidden", "hidden_n_app", "kab_hidden", "trend_hidden")})
