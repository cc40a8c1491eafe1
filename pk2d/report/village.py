"""The village (desa) report: every section of one village, read from the run.

``VillageReport`` is what ``notebooks/10_village_report.ipynb`` displays,
section by section; each attribute is made by one function of this module
from this village's rows of the run's report tables, on first use.

>>> R = village("63.02.06.2012")  # doctest: +SKIP
>>> print(R.check)  # doctest: +SKIP
Pondok Labu: IKK 79,00 (Responsif Gender dan Hak Anak)
"""
from __future__ import annotations

from functools import cached_property

import pandas as pd

from .. import defaults
from ..fmt import count, number, pct, period_text, signed
from .display import Fragment, Table
from .plan import PlanSections
from .privacy import hide, suppress_small
from .sections import (WEAK, AnnexSections, Unit, add_flags, fact_table, flags_note, interval_text, open_unit,
                       reliability_label, summary_context)

GOOD, MEDIUM = 80.0, 60.0  #: indicator marks: share met >= 80 % baik, 60-<80 sedang, < 60 perlu perhatian


def mark(share: float, lang: str = "id") -> str:
    """●/◐/○ mark of an indicator's share met (%).

    >>> mark(80.0), mark(79.9), mark(12, "en")
    ('● baik', '◐ sedang', '○ needs attention')
    """
    from ..fmt import missing
    from ..text import t

    if missing(share):
        return t("report.mark_na", lang)
    return t("report.mark_good" if share >= GOOD else "report.mark_medium" if share >= MEDIUM else "report.mark_poor",
             lang)


def village(code: str, *, round: int | None = None, catalogue=None, lang: str = defaults.LANG, processed_dir=None,
            run_id: str | None = None, png_figures: bool = False) -> "VillageReport":
    """The report of village ``code`` (round: the latest of the run by default;
    ``png_figures``: figures also carry a PNG copy, for the Word document)."""
    return VillageReport(open_unit("desa", code, round=round, catalogue=catalogue, lang=lang,
                                   processed_dir=processed_dir, run_id=run_id,
                                   png_figures=png_figures))


class VillageReport(PlanSections, AnnexSections):
    """Every section of one village report (see the module docstring)."""

    def __init__(self, unit: Unit):
        self.unit = u = unit
        f = u.facts
        self.code, self.round, self.lang = u.code, u.round, u.lang
        self.name = str(f["name"])
        self.kabupaten_code = str(f["kabupaten"])
        self.n_families = int(f["n_families"])
        self.census = bool(f["census"])
        self.index, self.ci_low, self.ci_high = float(f["index"]), float(f["ci_low"]), float(f["ci_high"])
        self.category = int(f["category"])
        self.category_label = u.category_label(f["category"])
        self.focus = bool(f["lokus"])
        self.area = f"Desa {self.name}" if self.lang == "id" else self.name

    # --- title, header, summary ------------------------------------------------------------------
    @cached_property
    def title(self) -> Fragment:
        return self.unit.fragment("title", key="report.title_village", name=self.name, synthetic=self.unit.synthetic)

    @cached_property
    def header(self) -> Table:
        u, f = self.unit, self.unit.facts
        year = "-" if pd.isna(f["year"]) else int(f["year"])
        return fact_table([
            (u.L("h_village"), f"{self.name} ({self.code})"),
            (u.L("h_kecamatan"), f"{f['kecamatan_name']} ({f['kecamatan']})"),
            (u.L("h_kabupaten"), f"{f['kabupaten_name']} ({f['kabupaten']})"),
            *([(u.L("h_provinsi"), str(f["provinsi_name"]))] if not pd.isna(f["provinsi_name"]) else []),
            (u.L("h_round"), u.L("h_round_value", round=self.round, year=year)),
            (u.L("h_period"), period_text(f["period_start"], f["period_end"], self.lang)),
            (u.L("h_families"), count(f["n_families"], self.lang)), (u.L("h_rt"), count(f["n_rt"], self.lang)),
            (u.L("h_design"), u.L("census_design") if self.census else u.L("sample_design")),
            (u.L("h_lokus"), u.L("lokus_yes", years=f["lokus_years"]) if self.focus else u.L("no"))])

    @cached_property
    def summary(self) -> Fragment:
        return self.unit.fragment("summary", **summary_context(self.unit, self.unit.facts, self.area))

    @cached_property
    def check(self) -> str:
        """One line for notebook validation: name, index, category."""
        return self.unit.L("check", name=self.name, index_name=self.unit.catalogue.id.upper(),
                           value=number(self.index, 2, self.lang), category=self.category_label)

    # --- dimensions ------------------------------------------------------------------------------
    @cached_property
    def dimension_data(self) -> pd.DataFrame:
        """Dimensions (and the index, ``indeks``) of the village, its kecamatan and kabupaten (long)."""
        return self.unit.rows("report_dimensions")

    @cached_property
    def dimensions_intro(self) -> Fragment:
        return self.unit.fragment("intro", key="report.s_dimensions", text=self.unit.L("dim_intro"))

    @cached_property
    def profile(self) -> pd.DataFrame:
        """One row per dimension, one column per area (for :func:`pk2d.plots.dimension_profile`)."""
        u, d = self.unit, self.dimension_data
        d = d[d["dimension"] != "indeks"]
        prof = pd.DataFrame({"name": [u.dim_name(x) for x in u.catalogue.dimensions]})
        for label, role in self._roles():
            sub = d[d["role"] == role].set_index("dimension").reindex([x.id for x in u.catalogue.dimensions])
            prof[label] = sub["estimate"].to_numpy(float)
        return prof

    def _roles(self) -> list[tuple[str, str]]:
        f = self.unit.facts
        return [(self.area, "desa"), (f"Kec. {f['kecamatan_name']}", "kecamatan"), (str(f["kabupaten_name"]), "kabupaten")]

    @cached_property
    def dimensions(self) -> Table:
        u, d = self.unit, self.dimension_data
        d = d[d["dimension"] != "indeks"]
        any_sample = not d["census"].all() if len(d) else False
        columns, values = [u.L("col_dimension")], [[u.dim_name(x) for x in u.catalogue.dimensions]]
        per_role = []
        for label, role in self._roles():
            sub = d[d["role"] == role].set_index("dimension").reindex([x.id for x in u.catalogue.dimensions])
            rel = sub["reliability"].tolist()
            per_role.append((role, rel))
            columns.append(label)
            values.append([number(x, 2, self.lang) for x in sub["estimate"]])
            if any_sample:
                columns.append(f"{u.L('ci95')} ({role})")
                values.append([interval_text(lo, hi, c, n_psu=n, lang=self.lang) for lo, hi, c, n in
                               zip(sub["ci_low"], sub["ci_high"], rel, sub["n_psu"])])
            columns.append(f"n ({role})")
            values.append([count(x, self.lang) for x in sub["n_applicable"]])
        note = u.L("all_census") if not any_sample else ""
        if int(u.facts["n_kec_villages"]) == 1:
            note = (note + " " + u.L("dim_alone")).strip()
        frame = pd.DataFrame(list(zip(*values)), columns=columns)
        # one reliability column: the row's flag where the three areas agree, else each area's
        rows = list(zip(*[rel for _, rel in per_role]))
        labels = [reliability_label(r[0], self.lang) if len(set(r)) == 1 else
                  ", ".join(f"{reliability_label(c, self.lang)} ({role})" for (role, _), c in zip(per_role, r))
                  for r in rows]
        frame, classes = add_flags(frame, [next((c for c in r if c in WEAK), r[0]) for r in rows], self.lang)
        frame[u.L("reliability.column")] = labels
        codes = [c for r in rows for c in r]
        return Table(frame, note=flags_note(codes, self.lang, note=note), classes=classes,
                     numeric=tuple(columns[1:]), data=self.profile)

    @cached_property
    def dimensions_figure(self):
        from .. import plots

        return self.unit.image(plots.dimension_profile(self.profile, lang=self.lang),
                           self.unit.L("alt_dimensions", units=", ".join(lbl for lbl, _ in self._roles())))

    # --- indicators ----------------------------------------------------------------------------------
    @cached_property
    def indicators_intro(self) -> Fragment:
        return self.unit.fragment("intro", key="report.s_indicators", text=self.unit.L("ind_intro"))

    @cached_property
    def indicators(self) -> Table:
        u = self.unit
        ind = u.rows("report_indicators").set_index("indicator").reindex([i.id for i in u.catalogue.indicators])
        dims = {d.id: u.dim_name(d) for d in u.catalogue.dimensions}
        flags = {f: ind[f].fillna(False).astype(bool).to_numpy() if f in ind else False
                 for f in ("sensitive", "hidden", "hidden_n_app", "kab_hidden")}
        data = pd.DataFrame({"indicator": ind.index, "name": [u.ind_name(i) for i in u.catalogue.indicators],
                             "dimension": [dims[i.dimension] for i in u.catalogue.indicators],
                             "share": ind["share"].to_numpy(float), "ci_low": ind["ci_low"].to_numpy(float),
                             "ci_high": ind["ci_high"].to_numpy(float), "n_applicable": ind["n_applicable"].to_numpy(),
                             "families_not_met": ind["n_not_met"].to_numpy(), "kab_share": ind["kab_share"].to_numpy(float),
                             "target": [i.target for i in u.catalogue.indicators],
                             "reliability": ind["reliability"].to_numpy(object), "n_psu": ind["n_psu"].to_numpy(),
                             **flags})
        lang = self.lang
        cols = {k: u.L(f"col_{k}") for k in ("code", "indicator", "dimension", "share", "n_app", "not_met", "target",
                                              "kab_share", "mark")}
        frame = pd.DataFrame({
            cols["code"]: data["indicator"], cols["indicator"]: data["name"],
            cols["dimension"]: data["dimension"], cols["share"]: [pct(x, 1, lang) for x in data["share"]],
            **({u.L("ci95"): [interval_text(a, b, c, n_psu=n, digits=1, lang=lang) for a, b, c, n in
                              zip(data["ci_low"], data["ci_high"], data["reliability"], data["n_psu"])]}
               if not self.census else {}),
            cols["n_app"]: [count(x, lang) for x in data["n_applicable"]],
            cols["not_met"]: [count(x, lang) for x in data["families_not_met"]],
            cols["target"]: [pct(x, 0, lang) for x in data["target"]],
            cols["kab_share"]: [pct(x, 1, lang) for x in data["kab_share"]],
            cols["mark"]: [mark(x, lang) for x in data["share"]]})
        frame, classes = add_flags(frame, data["reliability"], lang)
        # sensitive indicators: the count, and what it could be worked out from, where the run says so
        frame = hide(frame, data["hidden"], [cols["share"], u.L("ci95"), cols["not_met"], cols["mark"],
                                            u.L("reliability.column")], lang=lang)
        frame = hide(frame, data["hidden_n_app"], [cols["n_app"]], lang=lang)
        frame = hide(frame, data["kab_hidden"], [cols["kab_share"]], lang=lang)
        numeric = (cols["share"], u.L("ci95"), cols["n_app"], cols["not_met"], cols["target"], cols["kab_share"])
        note = u.L("ind_note") + (" " + u.L("all_census") if self.census else "")
        if (data["hidden"] | data["hidden_n_app"] | data["kab_hidden"]).any():
            note += " " + self.sensitive_note
        return Table(frame, note=flags_note(data["reliability"], lang, note=note), classes=classes,
                     numeric=numeric, data=data, group=cols["dimension"])

    # --- families ---------------------------------------------------------------------------------------
    @cached_property
    def families_intro(self) -> Fragment:
        from .sections import cutoff_rule

        rule = cutoff_rule(self.unit.catalogue.categories["family"], self.lang)
        return self.unit.fragment("intro", key="report.s_families", text=self.unit.L("fam_intro", rule=rule))

    @cached_property
    def family_categories(self) -> Table:
        u = self.unit
        fc = u.rows("report_family_categories", sort="category", ascending=False)
        fc = fc[(fc["category"] != 0) | (fc["n"] > 0)] if len(fc) else pd.DataFrame(columns=["category", "n", "share"])
        data = fc.assign(label=[u.category_label(c, "family") for c in fc["category"]]).rename(
            columns={"category": "code"})[["code", "label", "n", "share"]].reset_index(drop=True)
        frame = pd.DataFrame({u.L("col_category"): data["label"],
                              u.L("col_families"): [count(x, self.lang) for x in data["n"]],
                              u.L("col_share_fam"): [pct(x, 1, self.lang) for x in data["share"]]})
        frame.loc[len(frame)] = [u.L("total"), count(data["n"].sum(), self.lang), pct(100.0, 1, self.lang)]
        return Table(frame, numeric=(u.L("col_families"), u.L("col_share_fam")), data=data,
                     note=u.L("all_census") if self.census else u.L("fam_weighted"))

    @cached_property
    def families_figure(self):
        from .. import plots

        u = self.unit
        cuts = [c.lower for c in u.catalogue.categories["family"][1:]]
        joined = u.L("and").join(number(c, 0, self.lang) for c in cuts)
        return self.unit.image(plots.family_histogram(u.rows("report_family_hist"), cutoffs=cuts, lang=self.lang),
                           u.L("alt_families", name=self.name, n=count(self.n_families, self.lang), cuts=joined))

    # --- RT ------------------------------------------------------------------------------------------------
    @cached_property
    def rt_intro(self) -> Fragment:
        return self.unit.fragment("intro", key="report.s_rt", text=self.unit.L("rt_intro", min=defaults.MIN_CELL))

    @cached_property
    def rt(self) -> Table:
        u, lang = self.unit, self.lang
        r = u.rows("report_rt", sort="code")
        data = pd.DataFrame({"rt": r["name"].astype(str).to_numpy(), "dusun": r["dusun"].astype(str).to_numpy(),
                             "n": r["n_families"].to_numpy(), "index": r["index"].to_numpy(float),
                             "category": [u.category_label(c) for c in r["category"]],
                             "interval": [interval_text(lo, hi, c, n_psu=n, lang=lang) for lo, hi, c, n in
                                          zip(r["ci_low"], r["ci_high"], r["reliability"], r["n_psu"])],
                             "reliability": [reliability_label(c, lang) for c in r["reliability"]]})
        sup = suppress_small(data, "n", ["index", "category", "interval", "reliability"], lang=lang)
        frame = pd.DataFrame({u.L("col_rt"): sup["rt"], u.L("col_dusun"): sup["dusun"],
                              u.L("col_n"): [x if isinstance(x, str) else count(x, lang) for x in sup["n"]],
                              u.L("col_index"): [x if isinstance(x, str) else number(x, 2, lang) for x in sup["index"]],
                              u.L("col_category"): sup["category"]})
        if not self.census:
            frame[u.L("ci95")] = sup["interval"]
        frame[u.L("reliability.column")] = sup["reliability"]
        codes = [None if isinstance(n, str) else c for c, n in zip(r["reliability"], sup["n"])]  # hidden RT: no flag
        classes = pd.DataFrame("", index=frame.index, columns=frame.columns)
        classes[u.L("reliability.column")] = ["strong" if c in WEAK else "" for c in codes]
        return Table(frame, numeric=(u.L("col_n"), u.L("col_index"), u.L("ci95")), classes=classes,
                     note=flags_note(codes, lang, note=u.L("all_census") if self.census else ""), data=sup)

    # --- position among the kabupaten's villages ----------------------------------------------------------------
    @cached_property
    def position_intro(self) -> Fragment:
        u, f = self.unit, self.unit.facts
        if pd.isna(f["rank"]):
            return u.fragment("intro", key="report.s_position", text=u.L("pos_missing"))
        return u.fragment("position", n=int(f["n_league"]), kab=str(f["kabupaten_name"]), name=self.name,
                          rank=int(f["rank"]), low=int(f["rank_low"]), high=int(f["rank_high"]),
                          kec=str(f["kecamatan_name"]), n_kec=int(f["n_kec_villages"]))

    @cached_property
    def position(self) -> Table:
        u, lang = self.unit, self.lang
        p = u.rows("report_position", sort=["rank", "code"])
        if p.empty:
            return Table(pd.DataFrame())
        frame = pd.DataFrame({
            u.L("col_rank"): [str(int(r)) for r in p["rank"]],
            u.L("col_rank_int"): [f"{int(a)}–{int(b)}" for a, b in zip(p["rank_low"], p["rank_high"])],
            u.L("col_village"): [f"{n} ◄" if s else str(n) for n, s in zip(p["name"], p["self"])],
            u.L("col_n"): [count(x, lang) for x in p["n_families"]],
            u.L("col_index"): [number(x, 2, lang) for x in p["index"]],
            u.L("col_interval"): [interval_text(a, b, c, lang=lang) for a, b, c in
                                  zip(p["ci_low"], p["ci_high"], p["reliability"])],
            u.L("col_category"): [u.category_label(c) for c in p["category"]]})
        frame, classes = add_flags(frame, p["reliability"], lang)
        return Table(frame, caption=u.L("pos_table", kec=str(u.facts["kecamatan_name"])), classes=classes,
                     numeric=(u.L("col_rank"), u.L("col_rank_int"), u.L("col_n"), u.L("col_index"), u.L("col_interval")),
                     note=flags_note(p["reliability"], lang, model=True), data=p.reset_index(drop=True))

    @cached_property
    def position_figure(self):
        from .. import plots

        u = self.unit
        p = u.rows("report_position")
        if p.empty:
            return None
        cuts = [c.lower for c in u.catalogue.categories["area"][1:]]
        ax = plots.position(u.rows("report_league_bins"), p, cutoffs=cuts, lang=self.lang)
        return self.unit.image(ax, u.L("alt_position", n=int(u.facts["n_league"]), kab=str(u.facts["kabupaten_name"]),
                                   name=self.name))

    # --- change and difference-in-differences -------------------------------------------------------------------------
    @cached_property
    def change_data(self) -> pd.DataFrame:
        return self.unit.rows("report_change", sort="order")

    @cached_property
    def change_intro(self) -> Fragment:
        u, ch = self.unit, self.change_data
        if ch.empty:
            return u.fragment("intro", key="report.s_change", text=u.L("change_none"))
        idx = ch[ch["component_type"] == "index"]
        r = idx.iloc[0] if len(idx) else None
        return u.fragment("change", before=int(ch["before_round"].iloc[0]), after=self.round,
                          change=signed(r["change"], 2, self.lang) if r is not None else None,
                          low=signed(r["ci_low"], 2, self.lang) if r is not None else None,
                          high=signed(r["ci_high"], 2, self.lang) if r is not None else None)

    @cached_property
    def change(self) -> Table | None:
        u, ch, lang = self.unit, self.change_data, self.lang
        if ch.empty:
            return None
        before = int(ch["before_round"].iloc[0])
        names = {"indeks": u.catalogue.name(lang), **{d.id: u.dim_name(d) for d in u.catalogue.dimensions}}
        frame = pd.DataFrame({
            u.L("col_component"): [names.get(c, c) for c in ch["component_id"]],
            u.L("col_before", r=before): [number(x, 2, lang) for x in ch["before"]],
            f"n ({before})": [count(x, lang) for x in ch["n_before"]],
            u.L("col_before", r=self.round): [number(x, 2, lang) for x in ch["after"]],
            f"n ({self.round})": [count(x, lang) for x in ch["n_after"]],
            u.L("col_change"): [signed(x, 2, lang) for x in ch["change"]],
            u.L("ci95_model_cap"): [interval_text(a, b, c, lang=lang, signs=True)
                                    for a, b, c in zip(ch["ci_low"], ch["ci_high"], ch["reliability"])]})
        numeric = tuple(c for c in frame.columns if c != u.L("col_component"))
        frame, classes = add_flags(frame, ch["reliability"], lang)
        return Table(frame, numeric=numeric, classes=classes, note=flags_note(ch["reliability"], lang, model=True),
                     data=ch.reset_index(drop=True))

    @cached_property
    def did(self) -> Fragment | None:
        u, lang = self.unit, self.lang
        d = u.rows("report_did", sort="order")
        if d.empty:
            return None
        idx = d[d["component_id"] == "indeks"]
        if idx.empty:
            return None
        r = idx.iloc[0]
        rows = pd.DataFrame({u.L("col_dimension"): [u.dim_name(x) for x in u.catalogue.dimensions]})
        dims = d.set_index("component_id").reindex([x.id for x in u.catalogue.dimensions])
        rows["DiD"] = [signed(x, 2, lang) for x in dims["estimate"]]
        rows[u.L("ci95_model_cap")] = [interval_text(a, b, c, lang=lang, signs=True) for a, b, c in
                                       zip(dims["ci_low"], dims["ci_high"], dims["reliability"])]
        rows["n"] = [count(x, lang) for x in dims["n"]]
        rows, classes = add_flags(rows, dims["reliability"], lang)
        table = Table(rows, numeric=("DiD", u.L("ci95_model_cap"), "n"), classes=classes,
                      note=flags_note(dims["reliability"], lang, model=True), data=d.reset_index(drop=True))
        return u.fragment("did", k=int(r["n_villages"]) - 1, est=signed(r["estimate"], 2, lang),
                          low=signed(r["ci_low"], 2, lang), high=signed(r["ci_high"], 2, lang),
                          n=count(r["n"], lang), c=count(r["n_clusters"], lang), before=int(r["before_round"]),
                          after=self.round, table=table)
