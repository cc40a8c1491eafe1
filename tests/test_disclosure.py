"""Reliability flags on every estimate, and small counts of sensitive indicators never published.

Reliability: the rule is pk2d.reliability's (BPS relative standard error); here the report tables carry
its code (pk2d.report.tables.with_reliability) and every table, the summary and the agencies' workbook
show it: a one-PSU estimate without an interval, a census as a census, an RSE of 30 % as "use with care".

Sensitive indicators (catalogue ``sensitive: true``): Ampukung (a desa lokus of Kabupaten Tabalong) has, in
round 2, 1-4 families not meeting a sensitive indicator (domestic violence, child labour); the counts are
taken from the family scores, independently of the report code, and looked for in every published table
(HTML of the report tables, cells of the agencies' workbook, the district and province workloads).
"""
from __future__ import annotations

import re
from html import unescape

import numpy as np
import pandas as pd

from pk2d import fmt, report
from pk2d.catalogue import agency_name, load_catalogue
from pk2d.pipeline import load_scores
from pk2d.report import disclosure
from pk2d.report.sections import Unit
from pk2d.report.tables import with_reliability
from pk2d.report.workbook import agency_workbook
from pk2d.store import open_run

PONDOK_LABU, RND = "63.02.06.2012", 2
AMPUKUNG, TABALONG, ROUND_AMPUKUNG = "63.09.03.2001", "63.09", 2
TABLES = ("header", "dimensions", "indicators", "problems", "strengths", "plan", "family_categories", "rt",
          "position", "change", "quality", "rejects")


def _patched(run_dir, code, rnd, lang="id", **tables) -> report.VillageReport:
    run = open_run(run_dir)
    u = Unit(run, "desa", code, rnd, run.catalogue("ikk"), lang)
    for name, fn in tables.items():
        u._cache[name] = fn(u.rows(name).copy())
    return report.VillageReport(u)


def _rows(table) -> list[list[str]]:
    """The body cells of a displayed table, as a reader sees them."""
    html = table.html()
    return [[unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", tr)]
            for tr in re.findall(r"<tr>(.*?)</tr>", html.split("<tbody>")[-1], flags=re.S)]


# --- reliability flags ---------------------------------------------------------------------------
def test_with_reliability_codes_census_one_psu_and_rse():
    f = pd.DataFrame({"estimate": [76.95, 76.95, 20.0, 20.0, 20.0, 0.0], "se": [0.0, 0.0, 6.0, 1.0, 12.0, 0.0],
                      "census": [True, False, False, False, False, False], "n_psu": [1, 1, 30, 30, 30, 30]})
    assert with_reliability(f, "estimate")["reliability"].tolist() == ["census", "no_se", "care", "ok", "unreliable",
                                                                       "no_se"]
    given = with_reliability(f.assign(reliability=["census", None, "ok", None, None, None]), "estimate")
    assert given["reliability"].tolist()[:3] == ["census", "no_se", "ok"]  # codes of the area tables are kept
    model = with_reliability(f, "estimate", model=True)  # bootstrap / regression: never a census
    assert model["reliability"].tolist()[:3] == ["ok", "ok", "care"]


def _one_psu(est):
    def patch(df):
        df = df.assign(census=False, se=0.0, n_psu=1, ci_low=df[est], ci_high=df[est])
        return with_reliability(df.drop(columns="reliability"), est)
    return patch


def test_one_psu_estimate_says_its_se_cannot_be_estimated_and_prints_no_interval(sample_run):
    R = _patched(sample_run, PONDOK_LABU, RND, report_facts=_one_psu("index"), report_indicators=_one_psu("share"),
                 report_dimensions=_one_psu("estimate"), report_rt=_one_psu("index"))
    words = "galat baku tidak dapat diestimasi (hanya 1 PSU)"
    value = fmt.number(R.index, 2)
    assert words in R.summary and f"{value}–{value}" not in R.summary and "95%" not in str(R.summary)
    for table, estimates in ((R.indicators, R.indicators.data["share"]), (R.rt, R.unit.rows("report_rt")["index"]),
                             (R.dimensions, R.unit.rows("report_dimensions")["estimate"])):
        html = table.html()
        assert words in html and "tanpa galat baku" in html  # the interval cell and the flag
        for x in estimates:  # never an interval collapsed onto the estimate
            for digits in (1, 2):
                v = fmt.number(x, digits)
                assert f"{v}–{v}" not in html
    assert "SK 95%" in R.indicators.frame.columns and set(R.indicators.frame["SK 95%"]) <= {words, "<5"}
    en = _patched(sample_run, PONDOK_LABU, RND, "en", report_facts=_one_psu("index"),
                  report_indicators=_one_psu("share"))
    assert "standard error cannot be estimated (only 1 PSU)" in en.summary and "no standard error" in en.indicators.html()
    from pk2d.report.sections import estimate_text

    assert estimate_text(76.95, 76.95, 76.95, False, reliability="no_se", n_psu=1) == f"76,95 ({words})"


def test_census_rows_say_census(sample_run):
    R = report.village(PONDOK_LABU, round=RND, processed_dir=sample_run)
    shown = R.indicators.frame[R.indicators.frame["Keandalan"] != "<5"]
    assert len(shown) >= 25 and set(shown["Keandalan"]) == {"sensus"}
    assert set(R.rt.frame["Keandalan"]) <= {"sensus", "<5"}
    assert all(set(R.dimensions.frame[c]) == {"sensus"} for c in R.dimensions.frame.columns if c.startswith("Keandalan"))
    assert "sensus" in R.summary and "SK 95%" not in R.indicators.frame.columns
    P = report.province("63", processed_dir=sample_run)
    assert set(P.league.frame["Keandalan"]) == {"sensus"}
    assert set(report.district("63.02", round=1, processed_dir=sample_run).heat.frame["Keandalan"]) == {"sensus"}
    en = report.village(PONDOK_LABU, round=RND, processed_dir=sample_run, lang="en")
    assert "census" in set(en.indicators.frame["Reliability"])
    # model-based intervals (bootstrap of the league) take the RSE rule from their bootstrap SE
    lg = open_run(sample_run).table("league").query("catalogue == 'ikk' and round == 1 and kabupaten == '63.02'")
    rse = lg.set_index("code")["boot_se"] / lg.set_index("code")["index"]
    want = {c: "layak" if r <= 0.25 else "hati-hati" if r <= 0.5 else "tidak andal" for c, r in rse.items()}
    D = report.district("63.02", round=1, processed_dir=sample_run)
    assert dict(zip(D.league.data["code"], D.league.frame["Keandalan"])) == want


def test_an_rse_of_30_percent_is_marked_use_with_care(sample_run, tmp_path):
    def care(df):  # E6 as a sample estimate: 20 % with a standard error of 6 points
        hit = df["indicator"] == "E6"
        df.loc[hit, ["share", "se", "ci_low", "ci_high", "census", "n_psu"]] = [20.0, 6.0, 8.2, 31.8, False, 30]
        return with_reliability(df.drop(columns="reliability"), "share")

    R = _patched(sample_run, PONDOK_LABU, RND, report_indicators=care)
    frame = R.indicators.frame
    row = frame[frame["Kode"] == "E6"].iloc[0]
    assert row["Keandalan"] == "hati-hati"
    cell = next(r for r in _rows(R.indicators) if r[0] == "E6")
    assert "hati-hati" in cell  # in the HTML as words (and bold: not colour only)
    assert re.search(r'<td class="strong">hati-hati</td>', R.indicators.html())
    assert "RSE di atas 25% sampai 50%" in R.indicators.note  # the legend says what the word means
    problems = next(r for r in _rows(R.problems) if "E6 " in r[1])
    assert "hati-hati" in problems
    en = _patched(sample_run, PONDOK_LABU, RND, "en", report_indicators=care)
    assert en.indicators.frame.set_index("Code").loc["E6", "Reliability"] == "use with care"
    # the agencies' workbook has the flag column, with the same words
    import openpyxl

    wb = openpyxl.load_workbook(agency_workbook(R, tmp_path / "w.xlsx"))
    ws = wb[next(s for s in wb.sheetnames if s.startswith("Dinas Koperasi"))]
    rows = list(ws.iter_rows(values_only=True))
    head = next(r for r in rows if r[0] == "Prioritas")
    e6 = next(r for r in rows if r[1] == "E6")
    assert "Keandalan" in head and e6[head.index("Keandalan")] == "hati-hati"
    assert any(r[0] and str(r[0]).startswith("Keandalan (konvensi BPS") for r in rows)


def test_the_workbook_has_the_flag_column_and_the_census_mark(sample_run, tmp_path):
    import openpyxl

    R = report.village(PONDOK_LABU, round=RND, processed_dir=sample_run)
    wb = openpyxl.load_workbook(agency_workbook(R, tmp_path / "w.xlsx"))
    for ws in wb.worksheets[1:]:
        rows = list(ws.iter_rows(values_only=True))
        head = next(r for r in rows if r[0] == "Prioritas")
        body = [r for r in rows[rows.index(head) + 1:] if isinstance(r[0], int)]
        assert body and {r[head.index("Keandalan")] for r in body} <= {"sensus", "<5"}
    summary = [r for r in wb.worksheets[0].iter_rows(values_only=True) if r[0] == "Nilai Indeks Kualitas Keluarga"]
    assert summary[0][1] == f"{fmt.number(R.index, 2)} (sensus: tanpa galat sampling)"


# --- sensitive indicators ----------------------------------------------------------------------
def test_catalogue_marks_sensitive_indicators():
    ikk, ib = load_catalogue("ikk"), load_catalogue("ibangga")
    assert [i.id for i in ikk.indicators if i.sensitive] == ["E8", "P1", "P5", "P6", "B6"]
    assert [i.id for i in ib.indicators if i.sensitive] == ["T5"]


def test_small_cells_with_secondary_suppression_among_villages_and_the_kabupaten():
    cat = load_catalogue("ikk")
    s = pd.DataFrame({"putaran": 1, "kode_kabupaten": "K", "kode_desa": np.repeat(["A", "B", "C"], [40, 40, 40]),
                      "P1": np.r_[np.zeros(3), np.ones(37), np.zeros(9), np.ones(31), np.zeros(20), np.ones(20)]})
    for i in cat.indicators:
        if i.sensitive and i.id != "P1":
            s[i.id] = 1.0
    cells, kab = disclosure.indicator_cells(cat, s)
    p1 = cells[cells["indicator"] == "P1"].set_index("kode_desa")
    assert p1["n_not_met"].to_dict() == {"A": 3, "B": 9, "C": 20}
    assert p1["hidden"].to_dict() == {"A": True, "B": True, "C": False}  # B: the next smallest
    assert bool(kab.set_index("indicator").loc["P1", "kab_hidden"])  # the kabupaten would give A + B away
    # sums: an agency's families in A hold A's 3 (hidden); the district's sum: only A's row is hidden
    pri = pd.DataFrame({"round": 1, "kabupaten": "K", "kode_desa": ["A", "A", "B", "C"],
                        "agency": "dp3ap2kb", "indicator": ["P1", "P2", "P1", "P1"]})
    rows = disclosure.plan_rows(pri, cells).set_index("kode_desa")
    assert rows["hidden"].to_dict() == {"A": True, "B": False, "C": False}  # B's 9: not a small count
    assert bool(disclosure.sums_up(rows.reset_index(), ["kabupaten", "agency"])["hidden"].iloc[0])


def _small_sensitive(run_dir, code=AMPUKUNG, rnd=ROUND_AMPUKUNG):
    """Sensitive indicators of the village with 1-4 families not meeting them, counted from the scores."""
    s = load_scores("ikk", run_dir).query("putaran == @rnd and kode_desa == @code")
    out = {}
    for i in load_catalogue("ikk").indicators:
        v = s[i.id].astype("float64")
        k = int((v == 0).sum())
        if i.sensitive and 1 <= k <= 4:
            out[i.id] = {"k": k, "n": int(v.notna().sum()), "share": 100 * (1 - k / v.notna().sum()), "agency": i.agency,
                         "rt": s.loc[v == 0, "rt"].value_counts().to_dict()}
    return s, out


def test_a_few_families_not_meeting_a_sensitive_indicator_are_never_published(sample_run, tmp_path):
    import openpyxl

    s, small = _small_sensitive(sample_run)
    assert set(small) >= {"P1", "E8"}  # domestic violence and child labour: 3 families each in the sample
    R = report.village(AMPUKUNG, processed_dir=sample_run)
    assert R.round == ROUND_AMPUKUNG
    for ind, x in small.items():
        share = fmt.pct(x["share"], 1)
        for name in TABLES:
            table = getattr(R, name)
            for row in _rows(table) if table is not None else []:
                if not any(c == ind or c.startswith(f"{ind} ") for c in row):
                    continue
                assert share not in row and fmt.count(x["k"]) not in row, (name, ind, row)
                assert fmt.count(x["n"] - x["k"]) not in row  # the families meeting it, either
    problems = set(R.problem_data["indicator"]) & set(small)
    assert problems >= {"P1", "E8"}  # both are problems of Ampukung, so its plan and workbook name them
    for ind in problems:
        row = next(r for r in _rows(R.problems) if r[1].startswith(f"{ind} "))
        assert row[2] == "<5" and row[6] == "<5" and row[7] == "<5"  # share, families to reach, trend
        plan = [r for r in _rows(R.plan) if ind in r[1].split(", ")]
        assert plan and all(r[2] == r[3] == r[4] == "<5" for r in plan)  # the agency's sums and its RT
    # hidden problems come last: their place in the ranking (by families to reach) would tell their size
    order = [r[1].split(" ")[0] for r in _rows(R.problems)]
    assert problems <= set(order[-int(R.problem_data["hidden"].sum()):])
    # the agencies' workbook: no cell of the indicator's row, its RT column or its agency's sums holds the count
    wb = openpyxl.load_workbook(agency_workbook(R, tmp_path / "w.xlsx"))
    summary = list(wb.worksheets[0].iter_rows(values_only=True))
    for ind, x in ((i, small[i]) for i in problems):
        sheet = next(ws for ws in wb.worksheets[1:] if ws["A1"].value == agency_name(x["agency"]))
        rows = list(sheet.iter_rows(values_only=True))
        head = next(i for i, r in enumerate(rows) if r[0] == "Prioritas")
        row = next(r for r in rows[head:] if r[1] == ind)
        assert x["k"] not in row and round(x["share"], 1) not in row and x["n"] - x["k"] not in row
        rt_head = next(i for i, r in enumerate(rows) if r[0] == "RT" and i > head)
        j = list(rows[rt_head]).index(ind)
        assert {r[j] for r in rows[rt_head + 1:] if r[0] is not None and r[j] is not None} == {"<5"}
        agency_row = next(r for r in summary if r[1] == agency_name(x["agency"]))
        assert agency_row[4] == agency_row[5] == "<5"
    # the district and province workloads: Ampukung's is the only hidden row of these agencies, so their
    # sums less every published village's would give its count away
    D = report.district(TABALONG, round=ROUND_AMPUKUNG, processed_dir=sample_run)
    P = report.province("63", processed_dir=sample_run)
    for ind, x in ((i, small[i]) for i in problems):
        name = agency_name(x["agency"])
        for table in (D.workload, P.workload):
            row = next(r for r in _rows(table) if r[0] == name)
            assert row[-1] == row[-2] == "<5", (table, row)
    # the kabupaten's share, which every village report of Tabalong prints, is hidden as well
    kab = load_scores("ikk", sample_run).query("putaran == @ROUND_AMPUKUNG and kode_kabupaten == @TABALONG")
    for code in sorted(set(kab["kode_desa"])):
        V = report.village(code, round=ROUND_AMPUKUNG, processed_dir=sample_run)
        ind = V.indicators.frame.set_index("Kode")
        assert (ind.loc[list(small), "Kabupaten"] == "<5").all()


def test_sensitive_rt_counts_do_not_leave_a_small_rest():
    from pk2d.report.plan import top_rts

    rows = pd.DataFrame({"rt": [1, 2, 3], "n_not_met": [6, 5, 2]})
    assert top_rts(rows) == "1 (6) · 2 (5)"
    assert top_rts(rows, total=13) == "1 (6)"  # naming both would leave RT 3's 2 families to the total
    assert top_rts(rows, total=11) == "1 (6) · 2 (5)"  # nothing left to work out
