"""pk2d.report and the report templates (notebooks/10_village_report, 11_district_report).

One module fixture builds the processed folder from the shipped sample (clean ->
index -> compare with few bootstrap/sensitivity runs); a second renders ONE
village report (Pondok Labu, the sample's desa lokus) from the real template
with ``render.render_units`` as HTML + PDF in Bahasa Indonesia, and as HTML in
English. The data functions are checked against direct counts.
"""
from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pk2d import fmt, paths, render, report
from pk2d.cleaning import clean
from pk2d.errors import ReportError
from pk2d.io import sha256_file
from pk2d.pipeline import build_compare, build_index, load_scores
from pk2d.rawio import discover
from tests._pdf import pdf_pages

PONDOK_LABU = "63.02.06.2012"
KOTABARU = "63.02"


@pytest.fixture(scope="module")
def processed(tmp_path_factory):
    out = tmp_path_factory.mktemp("processed")
    clean(paths.RAW_DIR, out, key=b"test-key")
    build_index(out, catalogues=("ikk",))
    build_compare(out, n_boot=199, n_runs=100)
    return out


@pytest.fixture(scope="module")
def rendered(processed, tmp_path_factory):
    """(html id, pdf path, UnitResult id, html en)."""
    out_id = tmp_path_factory.mktemp("reports_id")
    units = report.report_units(processed, villages=[PONDOK_LABU], round=1, district=False)
    assert len(units) == 1 and units[0].template.name == report.VILLAGE_TEMPLATE
    summary = render.render_units(units, out_dir=out_id, formats=("html", "pdf"), jobs=1, progress=False)
    assert summary.ok, summary.text()
    res = summary.results[0]
    p = render.unit_paths(units[0], out_id)
    out_en = tmp_path_factory.mktemp("reports_en")
    units_en = report.report_units(processed, villages=[PONDOK_LABU], round=1, district=False, lang="en")
    summary_en = render.render_units(units_en, out_dir=out_en, formats=("html",), jobs=1, progress=False)
    assert summary_en.ok, summary_en.text()
    html_en = render.unit_paths(units_en[0], out_en)["html"].read_text(encoding="utf-8")
    return p["html"].read_text(encoding="utf-8"), p["pdf"], res, html_en


def _desa_row(processed, code=PONDOK_LABU, rnd=1):
    a = pd.read_parquet(processed / "areas.parquet")
    return a[(a.catalogue == "ikk") & (a.level == "desa") & (a["round"] == rnd) & (a.code == code)].iloc[0]


def _visible_text(html: str) -> str:
    """The page without its <style> block and tags (what a reader sees)."""
    html = re.sub(r"<style.*?</style>", " ", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


# --- the rendered village report -----------------------------------------------------------------
def test_html_shows_index_with_decimal_comma_and_category(processed, rendered):
    html, _, _, _ = rendered
    row = _desa_row(processed)
    value = fmt.number(row["index"], 2)  # '73,99'
    assert "," in value and value in html
    assert row["category_label"] in html
    assert "sensus: tanpa galat sampling" in html
    assert "Pondok Labu" in html and "<h1>" in html


def test_english_report_uses_english_labels_and_decimal_point(processed, rendered):
    _, _, _, html_en = rendered
    row = _desa_row(processed)
    assert fmt.number(row["index"], 2, "en") in html_en  # '73.99'
    assert fmt.number(row["index"], 2) not in _visible_text(html_en)
    assert row["category_label_en"] in html_en
    assert "census: no sampling error" in html_en
    assert "Kualitas Legalitas dan Struktur" not in html_en and "Legality and Structure" in html_en


def test_no_code_no_parameters_no_paths_in_the_report(processed, rendered):
    html, _, _, html_en = rendered
    for page in (html, html_en):
        for needle in ("import pk2d", "load_scores(", "village =", "village_report_data", "NBVAL_CHECK_OUTPUT",
                       "processed_dir", "plt.show", "display(", "Traceback", "Warning", "<Axes", "<Figure"):
            assert needle not in page, needle
        assert str(processed) not in page and str(paths.PROJECT_DIR) not in page
        assert not render.external_resources(page)
        assert page.count("data:image/png;base64,") >= 3  # dimension profile, family distribution, league


def _raw_identifiers_and_names():
    ids, names = set(), set()
    for pair in discover(paths.RAW_DIR):
        for f in (pair.keluarga, pair.anggota):
            ids.update(re.findall(r"(?<!\d)\d{16}(?!\d)", Path(f).read_text(encoding="utf-8-sig", errors="replace")))
        sep = ";" if "putaran2" in pair.keluarga.name else ","
        fam = pd.read_csv(pair.keluarga, sep=sep, dtype=str, encoding="utf-8-sig")
        col = next(c for c in fam.columns if "nama" in c.lower() and "kepala" in c.lower())
        names.update(v for v in fam[col].dropna() if len(v) > 8)
    return ids, names


def test_no_personal_identifiers_in_the_report(processed, rendered):
    html, _, _, html_en = rendered
    ids, names = _raw_identifiers_and_names()
    assert len(ids) > 10_000 and len(names) > 100
    scores = load_scores("ikk", processed)
    pseudonyms = set(scores["id_keluarga"])
    for page in (html, html_en):
        assert not set(re.findall(r"(?<!\d)\d{16}(?!\d)", page)) & ids
        assert not [n for n in names if n in page]
        assert not [p for p in pseudonyms if p in page]  # pseudonymous family ids never reach a report


def test_pdf_exists_with_several_pages(rendered):
    _, pdf, res, _ = rendered
    assert pdf.is_file() and pdf.read_bytes().startswith(b"%PDF")
    assert res.pages is not None and res.pages >= 2
    assert pdf_pages(pdf) >= 2
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


def test_village_report_suppresses_an_rt_with_fewer_than_5_families(processed, tmp_path):
    work = tmp_path / "processed"
    shutil.copytree(processed, work)
    a = pd.read_parquet(work / "areas.parquet")
    rts = a[(a.level == "rt") & (a.parent_code == PONDOK_LABU) & (a["round"] == 1) & (a.catalogue == "ikk")]
    target = rts.index[0]
    a.loc[target, "n_families"] = 3
    a.loc[target, "index"] = 12.3456
    a.to_parquet(work / "areas.parquet", index=False)
    R = report.village_report_data(work, PONDOK_LABU, 1)
    frame = R.rt.frame
    row = frame[frame["RT"] == a.loc[target, "name"]].iloc[0]
    assert row["n"] == "<5" and row["Indeks"] == "<5"
    html = R.rt.html()
    assert "12,35" not in html and ">3<" not in html
    assert (frame["n"] == "<5").sum() == 2  # with its secondary suppression


# --- data functions against direct counts ---------------------------------------------------------
def test_family_category_counts_match_direct_count(processed):
    R = report.village_report_data(processed, PONDOK_LABU, 1)
    s = load_scores("ikk", processed)
    s = s[(s.putaran == 1) & (s.kode_desa == PONDOK_LABU)]
    direct = s["kategori"].astype("float64").value_counts()
    data = R.family_categories.data.set_index("code")
    for code in (1, 2, 3):
        assert data.loc[code, "n"] == int(direct.get(float(code), 0))
    assert data["n"].sum() == len(s) == R.n_families
    assert abs(data["share"].sum() - 100) < 1e-9
    labels = set(R.family_categories.frame["Kategori"])
    assert {"Baik", "Sedang", "Rendah", "Jumlah"} <= labels


def test_indicator_table_counts_and_marks(processed):
    R = report.village_report_data(processed, PONDOK_LABU, 1)
    s = load_scores("ikk", processed)
    s = s[(s.putaran == 1) & (s.kode_desa == PONDOK_LABU)]
    d = R.indicators.data.set_index("indicator")
    for ind in ("L1", "F3", "E6", "B6"):
        v = s[ind].astype("float64")
        assert d.loc[ind, "n_applicable"] == v.notna().sum()
        assert d.loc[ind, "families_not_met"] == (v == 0).sum()
        assert abs(d.loc[ind, "share"] - 100 * v.mean()) < 1e-9
    marks = dict(zip(R.indicators.frame["Kode"], R.indicators.frame["Tanda"]))
    for ind, share in d["share"].items():
        expected = "● baik" if share >= 80 else "◐ sedang" if share >= 60 else "○ perlu perhatian"
        assert marks[ind] == expected


def test_agency_workload_equals_sum_of_priorities(processed):
    D = report.district_report_data(processed, KOTABARU, 1)
    pri = pd.read_parquet(processed / "compare" / "priorities.parquet")
    pri = pri[pri["round"] == 1]
    wl = D.workload.data.set_index("agency")
    direct = pri.groupby("agency")["families_affected"].sum()
    assert wl["families_affected"].sum() == pri["families_affected"].sum()
    for agency, n in direct.items():
        assert wl.loc[agency, "families_affected"] == n
        assert wl.loc[agency, "n_villages"] == pri.loc[pri.agency == agency, "kode_desa"].nunique()


def test_village_plan_counts_only(processed):
    R = report.village_report_data(processed, PONDOK_LABU, 1)
    plan = pd.read_parquet(processed / "compare" / "agency_plan.parquet")
    plan = plan[(plan["round"] == 1) & (plan.kode_desa == PONDOK_LABU)]
    assert R.agency_plan.data["families_affected"].sum() == plan["families_affected"].sum()
    assert list(R.weaknesses.frame["Prioritas"]) == [str(i) for i in range(1, len(R.weaknesses) + 1)]


def test_position_change_and_did(processed):
    R1 = report.village_report_data(processed, PONDOK_LABU, 1)
    league = pd.read_parquet(processed / "compare" / "league.parquet")
    me = league[(league["round"] == 1) & (league.code == PONDOK_LABU)].iloc[0]
    assert f"peringkat <strong>{int(me['rank'])}</strong>" in R1.position_intro
    assert f"antara {int(me['rank_low'])} dan {int(me['rank_high'])}" in R1.position_intro
    assert R1.change is None and R1.did is None and "Belum ada putaran sebelumnya" in R1.change_intro
    R2 = report.village_report_data(processed, PONDOK_LABU, 2, lang="en")
    assert R2.change is not None and R2.did is not None
    assert "Assumptions, in plain words" in R2.did and "model interval" in R2.did


def test_district_report_data(processed):
    D = report.district_report_data(processed, KOTABARU, 1)
    a = pd.read_parquet(processed / "areas.parquet")
    a = a[(a.catalogue == "ikk") & (a["round"] == 1)]
    kab = a[(a.level == "kabupaten") & (a.code == KOTABARU)].iloc[0]
    n_desa = (a.level == "desa").sum()
    assert D.check == f"{n_desa} desa; {kab['name']}: IKK {fmt.number(kab['index'], 2)} ({kab['category_label']})"
    assert D.category_counts["n_villages"].sum() == n_desa
    assert len(D.heat) == n_desa + 1 and "background:" in D.heat.html()
    assert len(D.league) == n_desa


def test_index_rows_and_index_page(processed, tmp_path):
    rows = report.index_rows(processed, 1)
    assert len(rows) == 12 and {r["code"] for r in rows} >= {PONDOK_LABU}
    pl = next(r for r in rows if r["code"] == PONDOK_LABU)
    assert pl["kecamatan"] == "Pamukan Selatan" and pl["n"] == _desa_row(processed)["n_families"]
    page = render.write_index(rows, tmp_path, lang="id").read_text(encoding="utf-8")
    assert fmt.number(pl["index"], 2) in page


def test_provenance(processed):
    fixed = dt.datetime(2024, 7, 10, 1, 5, tzinfo=dt.timezone.utc)
    prov = report.provenance(processed, "ikk", {"village": PONDOK_LABU, "processed_dir": str(processed)}, now=fixed)
    assert prov["rendered_text"] == "10 Juli 2024 pukul 09.05 WITA"
    assert prov["data_files"]["families.parquet"] == sha256_file(processed / "families.parquet")
    assert set(prov["data_files"]) == {"families.parquet", "members.parquet", "scores.parquet"}
    assert prov["git_commit"] == "unknown" or re.fullmatch(r"[0-9a-f]{40}", prov["git_commit"])
    assert prov["parameters"] == {"village": PONDOK_LABU}  # folders of the analyst's machine are left out
    assert len(prov["catalogue"]["sha256"]) == 64
    en = report.provenance(processed, "ikk", {}, lang="en", now=fixed)
    assert en["rendered_text"] == "10 July 2024 at 09:05 WITA"


def test_unknown_village_is_a_clear_error(processed):
    with pytest.raises(ReportError, match="no ikk estimate"):
        report.village_report_data(processed, "63.02.99.9999", 1)


def test_labels_complete_in_both_languages():
    assert set(report.LABELS["id"]) == set(report.LABELS["en"])
    assert set(report.RULE_TEXT["id"]) == set(report.RULE_TEXT["en"])
    assert np.all([isinstance(v, str) and v for v in report.LABELS["en"].values()])


def test_sample_design_shows_intervals_not_the_census_mark(processed, tmp_path):
    """With a weighted sample, estimates carry their 95% CI (here faked on a copy of the outputs)."""
    work = tmp_path / "processed"
    shutil.copytree(processed, work)
    for name, value in (("areas.parquet", "index"), ("area_components.parquet", "estimate")):
        f = pd.read_parquet(work / name)
        f["census"] = False
        f["se"] = 1.0
        f["ci_low"], f["ci_high"] = f[value] - 1.96, f[value] + 1.96
        f.to_parquet(work / name, index=False)
    R = report.village_report_data(work, PONDOK_LABU, 1)
    low, high = fmt.number(R.index - 1.96, 2), fmt.number(R.index + 1.96, 2)
    assert "sensus" not in R.summary and low in R.summary and high in R.summary
    assert "SK 95%" in R.indicators.frame.columns and "SK 95%" in R.dimensions.frame.columns
    assert "sampel" in R.header.html()


def test_report_without_compare_outputs_computes_the_ranking(processed, tmp_path):
    """A village outside the compared kabupaten (here: no compare/ at all) still gets its ranking
    and action plan; the sensitivity analysis is then reported as not available."""
    work = tmp_path / "processed"
    shutil.copytree(processed, work, ignore=shutil.ignore_patterns("compare"))
    R = report.village_report_data(work, PONDOK_LABU, 1)
    assert len(R.position) == 12 and len(R.weaknesses) >= 1
    assert "belum tersedia" in R.methodology
    assert not R.focus and R.did is None
