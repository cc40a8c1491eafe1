"""pk2d.report and the report templates (notebooks/10_village_report, 11_district_report, 12_province_report).

The session's sample run (tests/conftest.py) is rendered once for Pondok Labu (a desa lokus of the
sample) in round 2 (2024, its published figure) from the real template, HTML + PDF + DOCX + XLSX in
Bahasa Indonesia and HTML in English, and once for the province. The section data, the Word document
and the agencies' workbook are checked against direct counts from the family scores or against the
run record (an independent path), never against what the report code produced.
"""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pk2d import fmt, paths, render, report
from pk2d.errors import AreaNotFoundError
from pk2d.pipeline import load_scores
from pk2d import rawio
from pk2d.rawio import discover
from pk2d.render import unit_paths
from pk2d.report.sections import Unit
from pk2d.report.digests import run_context, salts, unit_digests
from pk2d.report.tables import with_reliability
from pk2d.store import open_run
from pk2d.text import catalogue as texts
from tests._pdf import pdf_pages
from tests.conftest import copy_run

PONDOK_LABU = "63.02.06.2012"
KOTABARU = "63.02"
RND = 2  #: the round rendered: 2024, the year of Pondok Labu's published figure


@pytest.fixture(scope="module")
def rendered(sample_run, tmp_path_factory):
    """(html id, pdf path, UnitResult, html en) of Pondok Labu, round 2 (also its .docx and .xlsx)."""
    out_id = tmp_path_factory.mktemp("reports_id")
    summary = report.build_reports(sample_run, out_id, villages=[PONDOK_LABU], round=RND, jobs=1, progress=False)
    assert summary.ok, summary.text()
    res = summary.results[0]
    assert len(summary.results) == 1 and res.unit.template.name == "10_village_report.ipynb"
    p = unit_paths(res.unit, out_id)
    out_en = tmp_path_factory.mktemp("reports_en")
    summary_en = report.build_reports(sample_run, out_en, villages=[PONDOK_LABU], round=RND, lang="en",
                                      formats=("html",), jobs=1, progress=False)
    assert summary_en.ok, summary_en.text()
    html_en = unit_paths(summary_en.results[0].unit, out_en)["html"].read_text(encoding="utf-8")
    return p["html"].read_text(encoding="utf-8"), p["pdf"], res, html_en


def _desa_row(run_dir, code=PONDOK_LABU, rnd=RND):
    a = open_run(run_dir).table("areas")
    return a[(a.catalogue == "ikk") & (a.level == "desa") & (a["round"] == rnd) & (a.code == code)].iloc[0]


def _scores(run_dir, rnd=RND, code=PONDOK_LABU):
    s = load_scores("ikk", run_dir)
    return s[(s.putaran == rnd) & (s.kode_desa == code)]


def _visible_text(html: str) -> str:
    """The page without its <style> block, SVG figures and tags (what a reader sees)."""
    html = re.sub(r"<style.*?</style>", " ", html, flags=re.S)
    html = re.sub(r"<svg.*?</svg>", " ", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


# --- the rendered village report -----------------------------------------------------------------
def test_html_shows_index_with_decimal_comma_and_category(sample_run, rendered):
    html, _, _, _ = rendered
    row = _desa_row(sample_run)
    value = fmt.number(row["index"], 2)
    assert value == "73,98" and value in html  # the published figure of 2024
    assert row["category_label"] in html
    assert "sensus: tanpa galat sampling" in html
    assert "Pondok Labu" in html and "<h1>" in html


def test_english_report_uses_english_labels_and_decimal_point(sample_run, rendered):
    _, _, _, html_en = rendered
    row = _desa_row(sample_run)
    assert fmt.number(row["index"], 2, "en") in html_en  # '73.98'
    assert fmt.number(row["index"], 2) not in _visible_text(html_en)
    assert row["category_label_en"] in html_en
    assert "census: no sampling error" in html_en
    assert "Kualitas Legalitas dan Struktur" not in html_en and "Legality and Structure" in html_en


def test_no_code_no_parameters_no_paths_in_the_report(sample_run, rendered):
    html, _, _, html_en = rendered
    for page in (html, html_en):
        for needle in ("import pk2d", "load_scores(", "village =", "report.village(", "NBVAL_CHECK_OUTPUT",
                       "processed_dir", "run_id", "plt.show", "display(", "Traceback", "Warning", "<Axes",
                       "<Figure", "Fragment(", "Table("):
            assert needle not in page, needle
        assert str(sample_run) not in page and str(paths.PROJECT_DIR) not in page
        assert not render.external_resources(page)
        svgs = re.findall(r"<svg\b[^>]*>", page)
        assert len(svgs) == 3  # dimension profile, families, position
        assert all('role="img"' in x and 'aria-label="' in x for x in svgs)
        ids = re.findall(r'\bid="([^"]+)"', page)
        assert len(ids) == len(set(ids))  # figures of one page never share an id


def _raw_identifiers_and_names():
    ids, names = set(), set()
    for pair in discover(paths.RAW_DIR):
        for f in (pair.keluarga, pair.anggota):
            ids.update(re.findall(r"(?<!\d)\d{16}(?!\d)", Path(f).read_text(encoding="utf-8-sig", errors="replace")))
        fam = rawio.read_table(pair.keluarga, "keluarga").data
        names.update(v for v in fam["nama_kepala"].dropna() if len(v) > 8)
    return ids, names


def test_no_personal_identifiers_in_the_report(sample_run, rendered):
    html, _, _, html_en = rendered
    ids, names = _raw_identifiers_and_names()
    assert len(ids) > 10_000 and len(names) > 100
    pseudonyms = set(load_scores("ikk", sample_run)["id_keluarga"])
    for page in (html, html_en):
        assert not set(re.findall(r"(?<!\d)\d{16}(?!\d)", page)) & ids
        assert not [n for n in names if n in page]
        assert not [p for p in pseudonyms if p in page]  # pseudonymous family ids never reach a report


def test_report_tables_hold_no_family_level_data(sample_run):
    run = open_run(sample_run)
    pseudonyms = set(load_scores("ikk", run=run)["id_keluarga"])
    names = [n for n in run.tables("compare") if n.startswith("report_")]
    assert len(names) >= 15
    for name in names:
        t = run.table(name)
        assert "id_keluarga" not in t.columns
        for c in t.columns:
            if t[c].dtype == object or str(t[c].dtype) in ("str", "string"):
                assert not set(t[c].dropna().astype(str)) & pseudonyms, (name, c)


def test_pdf_exists_is_short_tagged_and_timed(rendered):
    _, pdf, res, _ = rendered
    assert pdf.is_file() and pdf.read_bytes().startswith(b"%PDF")
    assert 2 <= res.pages <= 12 and pdf_pages(pdf) == res.pages
    assert set(res.timings) >= {"kernel_start", "execute", "html", "pdf", "total"}


# --- suppression of small RT --------------------------------------------------------------------
def test_suppress_small_hides_value_and_n():
    f = pd.DataFrame({"rt": ["RT 001", "RT 002", "RT 003", "RT 004"], "n": [3, 12, 30, 40],
                      "index": [11.11, 22.22, 33.33, 44.44]})
    out = report.suppress_small(f, "n", ["index"])
    assert out.loc[0, "n"] == "<5" and out.loc[0, "index"] == "<5"
    # secondary suppression: the next smallest RT too, so the hidden one cannot be recovered from the total
    assert out.loc[1, "n"] == "<5" and out.loc[1, "index"] == "<5"
    assert out.loc[2, "index"] == 33.33 and out.loc[3, "n"] == 40
    both = report.suppress_small(f.assign(n=[3, 4, 30, 40]), "n", ["index"])
    assert list(both["n"]) == ["<5", "<5", 30, 40]  # two hidden already: no secondary suppression
    assert report.suppress_small(f.assign(n=[5, 12, 30, 40]), "n", ["index"])["n"].tolist() == [5, 12, 30, 40]


def _patched(run_dir, code, rnd, **tables) -> report.VillageReport:
    """A village report whose unit sees changed rows of some report tables (the run is not touched)."""
    run = open_run(run_dir)
    u = Unit(run, "desa", code, rnd, run.catalogue("ikk"), "id")
    for name, fn in tables.items():
        u._cache[name] = fn(u.rows(name).copy())
    return report.VillageReport(u)


def test_village_report_suppresses_an_rt_with_fewer_than_5_families(sample_run):
    def small(rt):
        rt.loc[0, "n_families"], rt.loc[0, "index"] = 3, 12.3456
        return rt

    R = _patched(sample_run, PONDOK_LABU, RND, report_rt=small)
    target = R.unit.rows("report_rt").loc[0, "name"]
    frame = R.rt.frame
    row = frame[frame["RT"] == target].iloc[0]
    assert row["n"] == "<5" and row["Indeks"] == "<5"
    html = R.rt.html()
    assert "12,35" not in html and ">3<" not in html
    assert (frame["n"] == "<5").sum() == 2  # with its secondary suppression


# --- section data against direct counts ---------------------------------------------------------
def test_family_category_counts_match_direct_count(sample_run):
    R = report.village(PONDOK_LABU, round=RND, processed_dir=sample_run)
    s = _scores(sample_run)
    direct = s["kategori"].astype("float64").value_counts()
    data = R.family_categories.data.set_index("code")
    for code in (1, 2, 3):
        assert data.loc[code, "n"] == int(direct.get(float(code), 0))
    assert data["n"].sum() == len(s) == R.n_families
    assert abs(data["share"].sum() - 100) < 1e-9
    assert {"Baik", "Sedang", "Rendah", "Jumlah"} <= set(R.family_categories.frame["Kategori"])
    hist = R.unit.rows("report_family_hist")  # the figure's counts: every scored family once
    assert hist["n"].sum() == s["indeks"].notna().sum()
    direct_bin = int(((s["indeks"] >= 70) & (s["indeks"] < 72)).sum())
    assert int(hist.loc[hist["low"] == 70, "n"].sum()) == direct_bin


def test_indicator_table_counts_and_marks(sample_run):
    R = report.village(PONDOK_LABU, round=RND, processed_dir=sample_run)
    s = _scores(sample_run)
    d = R.indicators.data.set_index("indicator")
    for ind in ("L1", "F3", "E6", "B6"):
        v = s[ind].astype("float64")
        assert d.loc[ind, "n_applicable"] == v.notna().sum()
        assert d.loc[ind, "families_not_met"] == (v == 0).sum()
        assert abs(d.loc[ind, "share"] - 100 * v.mean()) < 1e-9
    kab = load_scores("ikk", sample_run).query("putaran == @RND and kode_kabupaten == @KOTABARU")
    assert abs(d.loc["E6", "kab_share"] - 100 * kab["E6"].astype("float64").mean()) < 1e-9
    marks = dict(zip(R.indicators.frame["Kode"], R.indicators.frame["Tanda"]))
    sensitive = {i.id for i in R.unit.catalogue.indicators if i.sensitive}
    for ind, share in d["share"].items():
        v = s[ind].astype("float64")
        if ind in sensitive and min((v == 0).sum(), (v == 1).sum()) < 5:
            assert marks[ind] == "<5"  # a sensitive indicator's small count (P6 here) is never published
            continue
        expected = "● baik" if share >= 80 else "◐ sedang" if share >= 60 else "○ perlu perhatian"
        assert marks[ind] == ("<5" if d.loc[ind, "hidden"] else expected)  # or hidden with a neighbour's


def test_agency_workload_equals_sum_of_problems(sample_run):
    D = report.district(KOTABARU, round=1, processed_dir=sample_run)
    pri = open_run(sample_run).table("problems")
    pri = pri[(pri["round"] == 1) & (pri["catalogue"] == "ikk") & (pri["kabupaten"] == KOTABARU)]
    wl = D.workload.data.set_index("agency")
    direct = pri.groupby("agency")[["families_affected", "to_target"]].sum()
    assert wl["families_affected"].sum() == pri["families_affected"].sum()
    for agency, n in direct.iterrows():
        assert wl.loc[agency, "families_affected"] == n["families_affected"]
        assert wl.loc[agency, "to_target"] == n["to_target"]
        assert wl.loc[agency, "n_villages"] == pri.loc[pri.agency == agency, "kode_desa"].nunique()


def test_village_problems_and_plan_count_only(sample_run):
    R = report.village(PONDOK_LABU, round=RND, processed_dir=sample_run)
    s = _scores(sample_run)
    pri = R.problems.data
    assert len(pri) > 0 and f"<strong>{len(pri)}</strong>" in R.problems_intro
    for r in pri.itertuples():  # families affected = applicable families not meeting it, counted directly
        v = s[r.indicator].astype("float64")
        assert r.families_affected == int((v == 0).sum())
        assert r.to_target == max(0, -(-int(r.target) * int(v.notna().sum()) // 100) - int((v == 1).sum()))
    assert R.plan.data["families_affected"].sum() == pri["families_affected"].sum()
    assert R.plan.data["to_target"].sum() == pri["to_target"].sum()
    assert list(R.problems.frame["Prioritas"]) == [str(i) for i in range(1, len(R.problems) + 1)]
    # the RT named per problem hold at least 5 families not meeting it, counted directly
    for cell, ind in zip(R.problems.frame["RT terbanyak: no. (keluarga)"], pri["indicator"]):
        by_rt = s.assign(miss=(s[ind].astype("float64") == 0)).groupby("rt")["miss"].sum()
        for part in cell.split(" · "):
            if "(" in part and "tersebar" not in part:
                rt, n = part.split(" (")
                assert by_rt[int(rt)] == int(n.rstrip(")").replace(".", "")) >= 5


def test_every_village_report_names_its_problems_or_says_every_target_is_met(sample_run):
    run = open_run(sample_run)
    units = report.report_units(run, district=False)
    assert len(units) == 22  # every village of the sample, in its latest round
    for u in units:
        R = report.village(u.code, processed_dir=sample_run)
        n = len(R.problem_data)
        assert n > 0 and f"<strong>{n}</strong>" in R.problems_intro, u.code
        assert len(R.plan_data) > 0 and "Semua target terpenuhi" not in R.plan_intro
    # a village meeting every target and no worse than its kabupaten anywhere says so
    met = _patched(sample_run, PONDOK_LABU, RND, report_gaps=lambda g: g[g["side"] != "weakness"],
                   report_plan=lambda p: p.iloc[:0], report_problem_rt=lambda p: p.iloc[:0])
    assert "Pondok Labu memenuhi semua target" in met.problems_intro
    assert "Semua target terpenuhi" in met.plan_intro and len(met.plan) == 1


def test_position_change_and_did(sample_run):
    R1 = report.village(PONDOK_LABU, round=1, processed_dir=sample_run)
    league = open_run(sample_run).table("league")
    lg = league[(league["round"] == 1) & (league["catalogue"] == "ikk")]
    me = lg[lg.code == PONDOK_LABU].iloc[0]
    assert f"peringkat <strong>{int(me['rank'])}</strong>" in R1.position_intro
    assert f"antara {int(me['rank_low'])} dan {int(me['rank_high'])}" in R1.position_intro
    kec = lg[lg["kode_kecamatan"] == me["kode_kecamatan"]]
    assert sorted(R1.position.data["code"]) == sorted(kec["code"])  # the kecamatan's villages, not all 12
    assert R1.change is None and R1.did is None and "Belum ada putaran sebelumnya" in R1.change_intro
    R2 = report.village(PONDOK_LABU, round=2, processed_dir=sample_run)  # lokus in 2024: the baseline
    assert R2.change is not None and R2.did is None
    R3 = report.village(PONDOK_LABU, processed_dir=sample_run, lang="en")  # the latest round: 3 (2025)
    assert R3.round == 3 and R3.change is not None and R3.did is not None
    assert "Assumptions, in plain words" in R3.did and "model interval" in R3.did
    s = load_scores("ikk", sample_run)
    pl = s[s.kode_desa == PONDOK_LABU]
    idx = R3.change.data.query("component_id == 'indeks'").iloc[0]
    direct = pl.loc[pl.putaran == 3, "indeks"].mean() - pl.loc[pl.putaran == 2, "indeks"].mean()
    assert abs(idx["change"] - direct) < 1e-9


def test_district_report_data(sample_run):
    D = report.district(KOTABARU, round=1, processed_dir=sample_run)
    a = open_run(sample_run).table("areas")
    a = a[(a.catalogue == "ikk") & (a["round"] == 1) & a["code"].str.startswith(KOTABARU)]
    kab = a[(a.level == "kabupaten") & (a.code == KOTABARU)].iloc[0]
    n_desa = (a.level == "desa").sum()
    assert n_desa == 12
    assert D.check == f"{n_desa} desa; {kab['name']}: IKK {fmt.number(kab['index'], 2)} ({kab['category_label']})"
    assert D.category_counts["n_villages"].sum() == n_desa
    assert len(D.heat) == n_desa + 1 and "heat-" in D.heat.html()
    assert len(D.league) == n_desa
    desa = a[a.level == "desa"].set_index("code")
    heat = D.heat.data.set_index("code")
    for code in desa.index[:3]:
        assert abs(heat.loc[code, "indeks"] - desa.loc[code, "index"]) < 1e-9


def test_index_rows_and_index_page(sample_run, tmp_path):
    run = open_run(sample_run)
    rows, kabs, provs = report.index_rows(run, round=1)  # 2023: Kotabaru and Tabalong surveyed
    assert len(rows) == 17 and {r["code"] for r in rows} >= {PONDOK_LABU} and [k["code"] for k in kabs] == [
        KOTABARU, "63.09"] and provs == []  # the province report belongs to the latest round
    pl = next(r for r in rows if r["code"] == PONDOK_LABU)
    assert pl["kecamatan"] == "Pamukan Selatan" and pl["n"] == _desa_row(sample_run, rnd=1)["n_families"]
    latest, kabs, provs = report.index_rows(run)  # each village in its latest round
    assert len(latest) == 22 and len(kabs) == 3 and [p["code"] for p in provs] == ["63"]
    page = render.write_index(rows, tmp_path, lang="id", provinces=provs).read_text(encoding="utf-8")
    assert fmt.number(pl["index"], 2) in page and "Laporan provinsi" in page
    assert {r["round"] for r in latest if r["code"].startswith("63.10")} == {4}


def test_provenance_comes_from_the_run_record(sample_run):
    R = report.village(PONDOK_LABU, round=RND, processed_dir=sample_run)
    fixed = dt.datetime(2024, 7, 10, 1, 5, tzinfo=dt.timezone.utc)
    prov = R.provenance({"village": PONDOK_LABU, "processed_dir": str(sample_run), "run_id": "x"}, now=fixed)
    run = open_run(sample_run)
    assert prov["rendered_text"] == "10 Juli 2024 pukul 09.05 WITA"
    assert prov["run_id"] == run.id
    assert prov["data_files"]["families/"] == run.record("clean").sha256("families")
    assert prov["catalogue"]["sha256"] == run.settings("index")["catalogues"]["ikk"]["sha256"]
    assert (prov["seed"], prov["n_boot"], prov["n_runs"]) == (run.settings("compare")["seed"], 99, 50)
    assert prov["parameters"] == {"village": PONDOK_LABU}  # folders and run ids of the machine are left out
    en = R.provenance({}, now=fixed)
    assert en["rendered_text"] == "10 Juli 2024 pukul 09.05 WITA"
    en = report.village(PONDOK_LABU, round=RND, processed_dir=sample_run, lang="en").provenance({}, now=fixed)
    assert en["rendered_text"] == "10 July 2024 at 09:05 WITA"


def test_unknown_village_is_a_clear_error(sample_run):
    with pytest.raises(AreaNotFoundError, match="no ikk estimate") as info:
        report.village("63.02.99.9999", round=1, processed_dir=sample_run)
    assert info.value.exit_code == 2 and PONDOK_LABU[:5] in str(info.value)


def test_texts_complete_in_both_languages_without_html():
    cat = texts()
    assert len(cat) > 200
    for key, pair in cat.items():
        assert pair["id"].strip() and pair["en"].strip(), key
        assert not re.search(r"<[a-zA-Z/][^>]*>", pair["id"] + pair["en"]), key


def test_sample_design_shows_intervals_not_the_census_mark(sample_run):
    """With a weighted sample, estimates carry their 95% CI (here faked on the unit's rows)."""
    def sample(df):
        df["census"] = False
        for est in ("index", "estimate", "share"):
            if est in df and "ci_low" in df:
                df["ci_low"], df["ci_high"], df["se"] = df[est] - 1.96, df[est] + 1.96, 1.0
                return with_reliability(df.drop(columns="reliability"), est)  # the flags of a sample
        return df

    R = _patched(sample_run, PONDOK_LABU, RND, report_facts=sample, report_dimensions=sample,
                 report_indicators=sample, report_rt=sample)
    low, high = fmt.number(R.index - 1.96, 2), fmt.number(R.index + 1.96, 2)
    assert "sensus" not in R.summary and low in R.summary and high in R.summary
    assert "SK 95%" in R.indicators.frame.columns and any(c.startswith("SK 95%") for c in R.dimensions.frame.columns)
    assert "sampel" in R.header.html()
    shown = R.indicators.frame[R.indicators.frame["Keandalan"] != "<5"]
    assert set(shown["Keandalan"]) == {"layak"} and not shown["SK 95%"].str.contains("sensus").any()
    assert "Keandalan angka ini: layak" in R.summary and "konvensi BPS" in R.indicators.note


def test_digests_change_only_for_the_units_whose_rows_changed(sample_run):
    run = open_run(sample_run)
    names = [n for n in run.tables("compare") if n.startswith("report_")]
    tables = {n: run.table(n) for n in names}
    units = tables["report_units"]
    before = pd.Series(unit_digests(tables, units), index=units["unit"] + "/" + units["round"].astype(str))
    assert before.is_unique
    t = tables["report_indicators"].copy()
    hit = (t["unit"] == PONDOK_LABU) & (t["round"] == RND) & (t["indicator"] == "E6")
    t.loc[hit, "n_not_met"] += 1
    after = pd.Series(unit_digests({**tables, "report_indicators": t}, units), index=before.index)
    changed = sorted(before.index[before != after])
    assert changed == [f"{PONDOK_LABU}/{RND}"]
    assert np.array_equal(unit_digests(tables, units), before.to_numpy())  # deterministic
    # the same values typed otherwise (an int count that a group-by made float) give the same digests
    f = tables["report_facts"].copy()
    f["n_rt"] = f["n_rt"].astype("float64")
    assert np.array_equal(unit_digests({**tables, "report_facts": f}, units), before.to_numpy())
    # what every report shows besides its rows (catalogue, seed, draws) is in every digest
    cats = [run.catalogue("ikk")]
    ctx = run_context(run)
    assert list(unit_digests(tables, units, salts(cats, ctx))) == list(units["digest"])
    moved = unit_digests(tables, units, salts(cats, {**ctx, "n_boot": ctx["n_boot"] + 1}))
    assert not set(moved) & set(units["digest"])


# --- the Word document and the agencies' workbook -------------------------------------------------
def _unit_rows(run, table, code=PONDOK_LABU, rnd=RND, kind="desa"):
    t = run.table(table)
    return t[(t["unit"] == code) & (t["round"] == rnd) & (t["kind"] == kind) & (t["catalogue"] == "ikk")]


def test_word_document_has_real_headings_tables_and_described_figures(sample_run, rendered):
    import docx

    html, pdf, res, _ = rendered
    path = pdf.with_suffix(".docx")
    assert path in res.outputs and path.is_file()
    doc = docx.Document(str(path))
    run = open_run(sample_run)
    facts = _unit_rows(run, "report_facts").iloc[0]
    styles = [(p.style.name, p.text) for p in doc.paragraphs if p.text.strip()]
    assert styles[0] == ("Title", "Laporan Desa Pondok Labu")
    h2 = [re.sub(r"<[^>]+>", "", x) for x in re.findall(r"<h2[^>]*>(.*?)</h2>", html, flags=re.S)]
    assert [t for s, t in styles if s == "Heading 1"] == [fmt.printable(x).strip() for x in h2]
    assert len(doc.tables) == html.count("<table")  # every table a Word table, none a picture
    text = "\n".join(p.text for p in doc.paragraphs) + "\n".join(c.text for t in doc.tables for r in t.rows
                                                                    for c in r.cells)
    assert fmt.number(facts["index"], 2) in text and "73,98" in text
    # the plan table: each agency's families to reach the targets, from the run record
    plan = _unit_rows(run, "report_plan").sort_values("top_priority")
    table = next(t for t in doc.tables if t.rows[0].cells[0].text == "Dinas / mitra")
    body = [[c.text for c in r.cells] for r in table.rows[1:]]
    assert [int(r[2].replace(".", "")) for r in body] == list(plan["to_target"])
    assert [int(r[3].replace(".", "")) for r in body] == list(plan["families_affected"])
    header = table.rows[0]._tr.find("{http://schemas.openxmlformats.org/wordprocessingml/2006/main}trPr")
    assert header is not None and "tblHeader" in header[0].tag  # repeated on every page
    # three figures, each a picture with the report's alternative text
    alts = re.findall(r'<svg\b[^>]*aria-label="([^"]+)"', html)
    shapes = [s._inline.docPr.get("descr") for s in doc.inline_shapes]
    assert len(shapes) == 3 and shapes == [__import__("html").unescape(a) for a in alts]
    assert doc.core_properties.language == "id-ID"
    # the reliability flags reach the Word tables with the words of the page (census: "sensus")
    flagged = [t for t in doc.tables if "Keandalan" in [c.text for c in t.rows[0].cells]]
    assert len(flagged) >= 5 and "sensus" in {c.text for t in flagged for r in t.rows[1:] for c in r.cells}
    xml = __import__("zipfile").ZipFile(path).read("word/document.xml").decode()
    assert 'w:val="id-ID"' in __import__("zipfile").ZipFile(path).read("word/styles.xml").decode()
    ids, names = _raw_identifiers_and_names()
    assert not set(re.findall(r"(?<!\d)\d{16}(?!\d)", xml)) & ids and not [n for n in names if n in xml]
    assert not [p for p in set(load_scores("ikk", sample_run)["id_keluarga"]) if p in xml]


def test_agencies_workbook_has_a_sheet_per_agency_with_run_record_numbers(sample_run, rendered):
    import openpyxl

    _, pdf, res, _ = rendered
    path = pdf.with_name(pdf.stem + "-rencana-dinas.xlsx")
    assert path in res.outputs
    wb = openpyxl.load_workbook(path)
    run = open_run(sample_run)
    plan = _unit_rows(run, "report_plan").sort_values("top_priority")
    gaps = _unit_rows(run, "report_gaps")
    problems = gaps[gaps["side"] == "weakness"]
    from pk2d.catalogue import agency_name

    assert wb.sheetnames[0] == "Ringkasan" and len(wb.sheetnames) == 1 + len(plan)
    assert [agency_name(a)[:31].replace("/", "-") for a in plan["agency"]] == wb.sheetnames[1:]
    s = _scores(sample_run)
    for agency, ws in zip(plan["agency"], wb.worksheets[1:]):
        rows = list(ws.iter_rows(values_only=True))
        head = rows.index(next(r for r in rows if r[0] == "Prioritas"))
        cols = rows[head]
        mine = problems[problems["agency"] == agency].sort_values("priority")
        body = rows[head + 1: head + 1 + len(mine)]
        assert [r[1] for r in body] == list(mine["indicator"])
        assert [r[cols.index("Keluarga perlu berubah")] for r in body] == list(mine["to_target"])
        assert [r[cols.index("Keluarga terdampak")] for r in body] == list(mine["families_affected"])
        assert [r[cols.index("Target (%)")] for r in body] == list(mine["target"])
        assert all(r[cols.index("Kegiatan yang direncanakan")] is None for r in body)  # for the agency to fill in
        assert {r[cols.index("Keandalan")] for r in body} <= {"sensus", "<5"}  # the flag column (a census)
        # families not meeting each indicator per RT: direct counts, suppressed below 5
        rt_head = next(i for i, r in enumerate(rows) if r[0] == "RT" and i > head)
        inds = [x for x in rows[rt_head][1:] if x]
        for r in rows[rt_head + 1:]:
            if r[0] is None:
                break
            for ind, cell in zip(inds, r[1:]):
                n = int(((s["rt"] == int(r[0])) & (s[ind].astype("float64") == 0)).sum())
                assert cell == "<5" if n < 5 else cell == n or cell == "<5", (ind, r[0], n, cell)
    pseudonyms = set(load_scores("ikk", sample_run)["id_keluarga"])
    cells = {str(v) for ws in wb.worksheets for r in ws.iter_rows(values_only=True) for v in r if v is not None}
    assert not cells & pseudonyms


# --- the province report -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def province_rendered(sample_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("province")
    summary = report.build_reports(sample_run, out, province="63", jobs=1, progress=False)
    assert summary.ok, summary.text()
    assert [r.unit.id for r in summary.results] == ["provinsi/63"]
    return out, summary.results[0]


def test_province_report_in_html_pdf_and_docx(province_rendered):
    out, res = province_rendered
    p = unit_paths(res.unit, out)
    assert {p["html"], p["pdf"], p["docx"]} == set(res.outputs) and all(x.is_file() for x in res.outputs)
    html = p["html"].read_text(encoding="utf-8")
    assert "Laporan Provinsi: Kalimantan Selatan" in html and not render.external_resources(html)
    for name in ("Sangsang", "Pondok Labu", "Ampukung", "Pulau Tanjung", "Kabupaten Tabalong", "Kabupaten Tanah Bumbu"):
        assert name in html
    assert pdf_pages(p["pdf"]) >= 2
    import docx

    doc = docx.Document(str(p["docx"]))
    assert doc.paragraphs[0].text == "Laporan Provinsi: Kalimantan Selatan" and len(doc.tables) >= 6
    assert len(doc.inline_shapes) == 1 and doc.inline_shapes[0]._inline.docPr.get("descr")
    assert (out / "index.html").read_text(encoding="utf-8").count("provinsi/63-kalimantan-selatan.html") == 1


def test_province_evaluates_every_desa_lokus_against_the_run_record(sample_run):
    import yaml

    P = report.province("63", processed_dir=sample_run)
    d = P.lokus_data
    did = open_run(sample_run).table("did").query("catalogue == 'ikk' and component_id == 'indeks'")
    assert len(d) == len(did) == 5
    a = open_run(sample_run).table("areas").query("catalogue == 'ikk' and level == 'desa'").set_index(["code", "round"])
    cfg = yaml.safe_load((paths.REFERENCE_DIR / "synth_villages.yaml").read_text(encoding="utf-8"))
    planted = {x["kode_desa"]: x["effect"] for k in cfg["kabupaten"] for x in k["lokus"]}
    for r in d.itertuples():
        e = did[(did["focus"] == r.code) & (did["round"] == r.after_round)].iloc[0]
        assert (r.did, r.did_low, r.did_high, r.before_round) == (e.estimate, e.ci_low, e.ci_high, e.before_round)
        assert r.before_index == a.loc[(r.code, r.before_round), "index"]
        assert r.after_index == a.loc[(r.code, r.after_round), "index"]
        assert r.did_low <= planted[r.code] <= r.did_high
    assert P.check == "Kalimantan Selatan: 3 kabupaten, 4 desa lokus, 5 evaluasi"
    # the league of kabupaten in their latest rounds, and the agencies' workload from every village's problems
    lg = P.league.data
    assert list(lg["code"]) == list(lg.sort_values("index", ascending=False)["code"])
    assert dict(zip(lg["code"], lg["latest_round"])) == {"63.02": 3, "63.09": 2, "63.10": 4}
    pri = open_run(sample_run).table("problems").query("catalogue == 'ikk'")
    latest = pri[[r == {"63.02": 3, "63.09": 2, "63.10": 4}[k] for k, r in zip(pri["kabupaten"], pri["round"])]]
    wl = P.workload.data.set_index("agency")
    direct = latest.groupby("agency")[["to_target", "families_affected"]].sum()
    assert wl[["to_target", "families_affected"]].sort_index().equals(direct.sort_index())
    assert dict(wl["n_villages"]) == dict(latest.groupby("agency")["kode_desa"].nunique())


def test_cadres_lists_stay_in_processed_data(sample_run, tmp_path):
    import openpyxl

    from pk2d.interventions import export_interventions

    work = copy_run(sample_run, tmp_path / "processed")
    path = export_interventions(PONDOK_LABU, processed_dir=work)
    assert path.parent == work / "exports" and path.name == "63.02.06.2012-pondok-labu-intervensi-putaran-3.xlsx"
    wb = openpyxl.load_workbook(path)
    rows = list(wb["Semua RT"].iter_rows(values_only=True))[1:]
    s = load_scores("ikk", run=open_run(work)).query("putaran == 3 and kode_desa == @PONDOK_LABU")
    problems = open_run(work).table("problems").query("catalogue == 'ikk' and round == 3 and kode_desa == @PONDOK_LABU")
    want = {(ind, fid) for ind in problems["indicator"] for fid in s.loc[s[ind].astype("float64") == 0, "id_keluarga"]}
    assert {(r[2], r[5]) for r in rows} == want and len(rows) == len(want)
    assert len(wb.sheetnames) == 2 + s["kode_rt"].nunique()  # about, all RT, one sheet per RT
    with pytest.raises(AreaNotFoundError):
        export_interventions("63.02.99.9999", processed_dir=work)
