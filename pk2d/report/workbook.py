"""The agencies' workbook of a village (XLSX): one sheet per responsible agency, to fill in.

The follow-up plan of the village report (:mod:`pk2d.report.plan`) as a
workbook the offices can edit: a summary sheet (the village, its index, the
plan per agency, how to use the workbook, where the numbers come from), then
for each agency in plan order its indicators (share met, target, kabupaten
share, the rule that flagged it, families not meeting, families to reach the
target, trend) with empty columns for the agency's actions, dates and status,
and the families not meeting each indicator per RT, small counts suppressed
(:func:`~pk2d.report.privacy.suppress_small`, secondary suppression within each
indicator). Each share carries its reliability (``reliability.column``); the
figures of sensitive indicators are hidden where the village report hides them
(:mod:`pk2d.report.disclosure`). Published: aggregates only, never a family id
(those are in ``pk2d interventions``, for the village team).

Every number is read from the report (so from the run record), the same the
village report shows; words come from the text catalogue (``agency_workbook``).

>>> sheet_name("Dinas Pemberdayaan Perempuan, Perlindungan Anak, Pengendalian Penduduk dan KB", set())
'Dinas Pemberdayaan Perempuan, P'
>>> sheet_name("A/B: [C]?", {"A-B- -C--"})
'A-B- -C-- (2)'
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ..catalogue import agency_name
from ..defaults import MIN_CELL
from ..text import t
from .privacy import mark, suppress_small

#: editable columns of each agency's indicator table (text keys ``agency_workbook.col_<name>``)
ACTION_COLUMNS = ("action", "target_families", "person", "start", "end", "budget", "status", "notes")
#: the choices of the status column
STATUS = ("status_planned", "status_running", "status_done")


def sheet_name(name: str, taken: set[str]) -> str:
    """An Excel sheet name: no ``[]:*?/\\``, at most 31 characters, unique among ``taken`` (then added)."""
    base = re.sub(r"[\[\]:*?/\\]", "-", str(name)).strip("' ")[:31] or "Sheet"
    out, k = base, 2
    while out.lower() in {x.lower() for x in taken}:
        suffix = f" ({k})"
        out, k = base[:31 - len(suffix)] + suffix, k + 1
    taken.add(out)
    return out


def agency_workbook(report, path: str | Path, *, key: str = "") -> Path:
    """Write the agencies' workbook of a :class:`~pk2d.report.village.VillageReport` to ``path``."""
    from openpyxl import Workbook

    from ..io import atomic_path

    book = _Book(report, key)
    wb = Workbook()
    _styles(wb)
    book.summary(wb.active)
    for a in book.agencies:
        book.agency(wb.create_sheet(), a)
    wb.properties.title = book.T("title", name=report.name)
    wb.properties.creator = "pk2d"
    wb.properties.language = "id-ID" if report.lang == "id" else "en-GB"
    with atomic_path(path) as tmp:
        wb.save(tmp)
    return Path(path)


def unit_workbook(parameters: dict, path: str | Path, *, key: str = "") -> Path:
    """The workbook of the village a report batch renders (its notebook parameters name the village,
    round, catalogue, language and pinned run)."""
    from .village import village

    r = village(parameters["village"], round=parameters.get("round"), catalogue=parameters.get("catalogue"),
                lang=parameters.get("lang", "id"), processed_dir=parameters.get("processed_dir"),
                run_id=parameters.get("run_id"))
    return agency_workbook(r, path, key=key)


class _Book:
    def __init__(self, report, key: str):
        self.r = report
        self.u = report.unit
        self.lang = report.lang
        self.key = key
        self.problems = report.problem_data
        self.plan = report.plan_data
        self.rt = self.u.rows("report_problem_rt")
        self.inds = {i.id: i for i in self.u.catalogue.indicators}
        taken: set[str] = {self.T("sheet_summary")}
        self.agencies = [(a, sheet_name(agency_name(a, self.lang), taken)) for a in self.plan.get("agency", [])]

    def T(self, key: str, **kw) -> str:  # noqa: N802
        return t(f"agency_workbook.{key}", self.lang, **kw)

    @property
    def hidden(self) -> str:
        return mark(self.lang)

    # --- the summary sheet ------------------------------------------------------------------------
    def summary(self, ws) -> None:
        from openpyxl.styles import Font

        r, u = self.r, self.u
        ws.title = self.T("sheet_summary")
        ws.append([self.T("title", name=r.name)])
        ws["A1"].font = Font(bold=True, size=14)
        ws.append([])
        for label, value in r.header.frame.itertuples(index=False):
            ws.append([label, value])
            ws.cell(ws.max_row, 1).font = Font(bold=True)
        f = u.facts
        from .sections import estimate_text

        ws.append([self.T("index", name=u.catalogue.name(self.lang)),
                   estimate_text(f["index"], f["ci_low"], f["ci_high"], bool(f["census"]), lang=self.lang,
                                 reliability=f.get("reliability"), n_psu=f.get("n_psu"))])
        ws.cell(ws.max_row, 1).font = Font(bold=True)
        ws.append([u.L("col_category"), r.category_label])
        ws.cell(ws.max_row, 1).font = Font(bold=True)
        ws.append([])
        ws.append([self.T("how_to")])
        ws.append([self.T("how_to_2", min=MIN_CELL)])
        ws.append([])
        if self.plan.empty:
            ws.append([u.L("plan_all_met")])
        else:
            ws.append([self.T("plan")])
            ws.cell(ws.max_row, 1).font = Font(bold=True)
            head = ["No.", u.L("col_agency"), self.T("col_sheet"), u.L("col_indicators"),
                    u.L("col_to_target"), u.L("col_affected")]
            start = ws.max_row + 1
            ws.append(head)
            for k, ((a, sheet), p) in enumerate(zip(self.agencies, self.plan.itertuples(index=False)), 1):
                hidden = bool(p.hidden)  # its sums hold a hidden count of a sensitive indicator
                ws.append([k, agency_name(a, self.lang), sheet, str(p.indicators),
                           self.hidden if hidden else int(p.to_target),
                           self.hidden if hidden else int(p.families_affected)])
                ws.cell(ws.max_row, 3).hyperlink = f"#'{sheet}'!A1"
            _style_table(ws, start, len(head))
            ws.append([u.L("plan_note")])
        ws.append([])
        run = u.run
        ws.append([self.T("source", run=run.id, catalogue=f"{u.catalogue.id} {u.catalogue.version}",
                          sha=u.catalogue.sha256[:16], report_key=self.key[:12] or "-")])
        _widths(ws, {"A": 34, "B": 46, "C": 30, "D": 28, "E": 18, "F": 18})

    # --- one sheet per agency ---------------------------------------------------------------------
    def agency(self, ws, item) -> None:
        from openpyxl.styles import Font
        from openpyxl.worksheet.datavalidation import DataValidation

        a, sheet = item
        u, lang = self.u, self.lang
        ws.title = sheet
        ws.append([agency_name(a, lang)])
        ws["A1"].font = Font(bold=True, size=13)
        f = u.facts
        ws.append([self.T("agency_sub", name=self.r.name, code=self.r.code, round=self.r.round,
                          year="-" if pd.isna(f["year"]) else int(f["year"]))])
        ws.append([])
        mine = self.problems[self.problems["agency"] == a]
        flag = {"target": u.L("flag_target"), "kabupaten": u.L("flag_kabupaten"), "target+kabupaten": u.L("flag_both")}
        head = [u.L("col_priority"), u.L("col_code"), u.L("col_indicator"), self.T("col_share"),
                u.L("reliability.column"), self.T("col_target"), self.T("col_kab_share"), u.L("col_flag"),
                u.L("col_affected"), u.L("col_to_target"), self.T("col_trend"), *[self.T(f"col_{c}") for c in ACTION_COLUMNS]]
        start = ws.max_row + 1
        ws.append(head)
        from .sections import reliability_label

        for p in mine.itertuples(index=False):
            ind = self.inds.get(p.indicator)
            h = bool(p.hidden)  # a sensitive indicator's small count: hidden as in the village report
            rel = self.r.reliability_of([p.indicator])[0]
            ws.append([int(p.shown_priority), str(p.indicator), u.ind_name(ind) if ind else str(p.indicator),
                       self.hidden if h else _round(p.share, 1), self.hidden if h else reliability_label(rel, lang),
                       _round(p.target, 0), self.hidden if p.kab_hidden else _round(p.kab_share, 1),
                       flag.get(p.rule, p.rule), self.hidden if h else int(p.families_affected),
                       self.hidden if h else int(p.to_target), self.hidden if p.trend_hidden else _round(p.trend, 1),
                       *[None] * len(ACTION_COLUMNS)])
        end = ws.max_row
        _style_table(ws, start, len(head), editable_from=len(head) - len(ACTION_COLUMNS) + 1)
        first_action = len(head) - len(ACTION_COLUMNS) + 1
        col = {c: _letter(first_action + i) for i, c in enumerate(ACTION_COLUMNS)}
        if end > start:
            dates = DataValidation(type="date", operator="greaterThan", formula1="DATE(2000,1,1)", allow_blank=True,
                                   error=self.T("date_error"), errorTitle=self.T("col_start"))
            status = DataValidation(type="list", allow_blank=True,
                                    formula1='"' + ",".join(self.T(s) for s in STATUS) + '"')
            whole = DataValidation(type="whole", operator="greaterThanOrEqual", formula1="0", allow_blank=True)
            for dv in (dates, status, whole):
                ws.add_data_validation(dv)
            dates.add(f"{col['start']}{start + 1}:{col['end']}{end}")
            status.add(f"{col['status']}{start + 1}:{col['status']}{end}")
            whole.add(f"{col['target_families']}{start + 1}:{col['target_families']}{end}")
            whole.add(f"{col['budget']}{start + 1}:{col['budget']}{end}")
            for rr in range(start + 1, end + 1):
                for c in ("start", "end"):
                    ws[f"{col[c]}{rr}"].number_format = "DD/MM/YYYY"
                ws[f"{col['budget']}{rr}"].number_format = "#,##0"
        ws.append([self.T("note_shares")])
        ws.append([t("reliability.legend", lang)])
        if mine["sensitive"].any():
            ws.append([self.r.sensitive_note])
        ws.append([])
        self._per_rt(ws, mine)
        ws.freeze_panes = ws.cell(start + 1, 4)
        _widths(ws, {"A": 10, "B": 8, "C": 46, "D": 12, "E": 14, "F": 10, "G": 12, "H": 18, "I": 14, "J": 14, "K": 10,
                     **{col[c]: (40 if c in ("action", "notes") else 16) for c in ACTION_COLUMNS}})

    def _per_rt(self, ws, mine: pd.DataFrame) -> None:
        """Families not meeting each of the agency's indicators per RT (suppressed below MIN_CELL)."""
        from openpyxl.styles import Font

        u = self.u
        ws.append([self.T("per_rt", min=MIN_CELL)])
        ws.cell(ws.max_row, 1).font = Font(bold=True)
        rt = self.rt[self.rt["indicator"].isin(set(mine["indicator"]))] if len(self.rt) else self.rt
        if rt.empty:
            ws.append([u.L("none")])
            return
        order = list(mine["indicator"])
        hidden = set(mine.loc[mine["hidden"], "indicator"])
        rts = rt.drop_duplicates("kode_rt").sort_values("kode_rt")[["kode_rt", "rt"]]
        cols = {}
        for ind in order:
            g = rts.merge(rt[rt["indicator"] == ind][["kode_rt", "n_not_met"]], on="kode_rt", how="left")
            g["n_not_met"] = g["n_not_met"].fillna(0).astype("int64")
            if ind in hidden:  # the village's count itself is hidden: so is every RT of it
                cols[ind] = [self.hidden] * len(g)
            else:
                cols[ind] = suppress_small(g, "n_not_met", [], lang=self.lang)["n_not_met"].to_list()
        head = [u.L("col_rt"), *order]
        start = ws.max_row + 1
        ws.append(head)
        for i, r in enumerate(rts.itertuples(index=False)):
            ws.append([str(r.rt), *[cols[ind][i] for ind in order]])
        _style_table(ws, start, len(head))


def _round(x, digits: int):
    return None if pd.isna(x) else round(float(x), digits)


def _letter(i: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(i)


def _widths(ws, widths: dict[str, float]) -> None:
    for c, w in widths.items():
        ws.column_dimensions[c].width = w


def _styles(wb) -> None:
    """The workbook's named cell styles (one registration each: cheaper than styling every cell)."""
    from openpyxl.styles import Alignment, Border, Font, NamedStyle, PatternFill, Side

    thin = Side(style="thin", color="999999")
    border = Border(left=thin, right=thin, top=thin, bottom=thin)
    for name, font, fill, wrap in (("pk2d-head", Font(bold=True), "E6E6E6", True), ("pk2d-cell", Font(), None, False),
                                   ("pk2d-wrap", Font(), None, True), ("pk2d-edit", Font(), "FFF8DC", True)):
        st = NamedStyle(name=name, font=font, border=border, alignment=Alignment(wrap_text=wrap, vertical="top"))
        if fill:
            st.fill = PatternFill("solid", fgColor=fill)
        wb.add_named_style(st)


def _style_table(ws, header_row: int, ncols: int, *, editable_from: int | None = None) -> None:
    """Bold shaded header with wrapped text, thin borders, editable columns tinted (named styles of
    :func:`_styles`)."""
    for rr in range(header_row, ws.max_row + 1):
        for cc in range(1, ncols + 1):
            if rr == header_row:
                style = "pk2d-head"
            elif editable_from and cc >= editable_from:
                style = "pk2d-edit"
            else:
                style = "pk2d-wrap" if cc == 3 else "pk2d-cell"
            ws.cell(rr, cc).style = style
