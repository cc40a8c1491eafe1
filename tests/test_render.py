"""pk2d.render: batch rendering of parameterised report notebooks to HTML and PDF.

Every papermill run costs a few seconds, so the units are few and shared: one
module-scoped batch (two units, HTML + PDF) for the read-only checks; the tests
that change state render their own small batches, HTML only where the PDF is
not the point.
"""
from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from pk2d import render
from tests._pdf import pdf_pages
from pk2d.errors import ReportError
from pk2d.render import ReportUnit, external_resources, render_units, safe_code, slugify, unit_paths, write_index

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "render"
TEMPLATE = FIXTURES / "report_template.ipynb"
SOURCE_MARKER = "SOURCE_MARKER_never_in_html"  # only in the fixture's code, never in its output
FAIL_CELL = 4  # index of the `if fail: raise` cell in the executed notebook (after injected-parameters)
NAME_A = 'Desa "X"/<script>'
NAME_B = "../../etc/passwd"


def make_unit(folder: Path, code: str, name: str, value: float, *, fail: bool = False, lang: str = "id",
              kind: str = "desa") -> ReportUnit:
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / f"input-{safe_code(code)}.txt"
    if not data.exists():
        data.write_text(str(value))
    params = {"village": code, "name": name, "lang": lang, "value_file": str(data), "fail": fail}
    return ReportUnit(kind, code, name, TEMPLATE, params, inputs=(data,))


class Links(HTMLParser):
    """Every (tag, attribute, value) that names a URL."""

    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href", "data", "srcset", "poster", "background") and value is not None:
                self.found.append((tag, name, value))


def urls(html: str) -> list[tuple[str, str, str]]:
    p = Links()
    p.feed(html)
    return p.found


def temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.startswith(".") and p.name.endswith(".tmp")]


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("render")
    units = [make_unit(root / "in", "63.02.06.2001", NAME_A, 21, lang="id"),
             make_unit(root / "in", "63.02.06.2002", NAME_B, 5, lang="en")]
    out = root / "out"
    summary = render_units(units, out_dir=out, jobs=2, progress=False)
    return out, units, summary


# --- one batch, read-only checks --------------------------------------------------------
def test_batch_renders_both_units_into_the_layout(batch):
    out, units, summary = batch
    assert summary.ok, summary.text()
    assert [r.status for r in summary.results] == ["rendered", "rendered"]
    for u, r in zip(units, summary.results):
        p = unit_paths(u, out)
        assert p["html"].parent == out / "desa" and p["html"].is_file() and p["pdf"].is_file()
        assert p["executed"].parent == out / "_executed" / "desa" and p["executed"].is_file()
        assert r.timings["kernel_start"] > 0 and r.timings["execute"] > 0 and r.timings["pdf"] > 0
        assert r.attempts == 1
    assert {q.name for q in (out / "desa").iterdir()} == {
        "63.02.06.2001-desa-x-script.html", "63.02.06.2001-desa-x-script.pdf",
        "63.02.06.2002-etc-passwd.html", "63.02.06.2002-etc-passwd.pdf"}
    assert temp_files(out) == []


def test_html_is_self_contained_without_code_or_parameters(batch):
    out, units, _ = batch
    for u, number in zip(units, ("NILAI=42.0", "NILAI=10.0")):
        html = unit_paths(u, out)["html"].read_text(encoding="utf-8")
        assert number in html  # the injected value went through the notebook
        assert SOURCE_MARKER not in html  # no code input
        assert "injected-parameters" not in html and "Injected parameters" not in html
        assert "value_file" not in html and "fail = " not in html  # neither parameter cell
        assert "In&nbsp;[" not in html and "In [" not in html  # no prompts
        assert "data:image/png;base64," in html
        loaded = [(tag, attr, v) for tag, attr, v in urls(html) if tag != "a"]
        assert loaded and all(v.startswith("data:") for _, _, v in loaded), loaded
        assert not [v for tag, _, v in urls(html) if tag != "a" and re.match(r"(?i)\s*(https?:)?//", v)]
        assert external_resources(html) == []
        assert "<script" not in html.lower()
        # the only <link> is the empty inline favicon that stops browsers asking for /favicon.ico
        assert html.lower().count("<link") == html.count('<link rel="icon" href="data:,">') == 1
        assert "https://www.bkkbn.go.id" in html  # a plain text link is fine
        assert f'<html lang="{u.lang}">' in html
    html_a = unit_paths(units[0], out)["html"].read_text(encoding="utf-8")
    assert "<title>Laporan Desa Desa &#34;X&#34;/&lt;script&gt; (63.02.06.2001)</title>" in html_a
    assert "@page" in html_a and "A4" in html_a  # print CSS inline
    html_b = unit_paths(units[1], out)["html"].read_text(encoding="utf-8")
    assert "<title>Village report: ../../etc/passwd (63.02.06.2002)</title>" in html_b


def test_pdf_has_pages(batch):
    out, units, summary = batch
    for u, r in zip(units, summary.results):
        pdf = unit_paths(u, out)["pdf"]
        assert pdf.read_bytes()[:5] == b"%PDF-"
        assert pdf_pages(pdf) >= 1
        assert r.pages == pdf_pages(pdf)


def test_manifest_records_keys_and_relative_paths(batch):
    out, units, _ = batch
    m = json.loads((out / "_manifest.json").read_text())
    e = m["units"]["desa/63.02.06.2001"]
    assert e["status"] == "rendered" and len(e["key"]) == 64
    assert e["outputs"] == ["desa/63.02.06.2001-desa-x-script.html", "desa/63.02.06.2001-desa-x-script.pdf"]


def test_index_links_resolve(batch):
    out, units, _ = batch
    rows = [{"code": u.code, "name": u.name, "kecamatan": "Pulau Laut", "index": 73.98, "category": "Cukup",
             "n": 1234} for u in units]
    rows.append({"code": "63.02.06.2099", "name": "Belum Ada", "kecamatan": "-", "index": None,
                 "category": "", "n": 0})  # no report: listed, not linked
    index = write_index(rows, out, districts=[{"code": "63.02", "name": "Kotabaru"}])
    html = index.read_text(encoding="utf-8")
    hrefs = [v for tag, attr, v in urls(html) if tag == "a"]
    assert len(hrefs) == 4  # HTML + PDF of the two rendered villages
    for href in hrefs:
        assert not href.startswith(("/", "http")) and (index.parent / href).resolve().is_file(), href
    assert "73,98" in html and "1.234" in html  # decimal comma, thousands dot (lang="id")
    assert "&lt;script&gt;" in html and "<script" not in html.lower()
    assert external_resources(html) == [] and '<html lang="id">' in html
    en = write_index(rows[:1], out, lang="en").read_text(encoding="utf-8")
    assert "73.98" in en and "1,234" in en


def test_index_links_district_reports(tmp_path):
    (tmp_path / "kabupaten").mkdir()
    (tmp_path / "kabupaten" / "63.02-kotabaru.html").write_text("<html></html>")
    html = write_index([], tmp_path, districts=[{"code": "63.02", "name": "Kotabaru"}]).read_text()
    assert 'href="kabupaten/63.02-kotabaru.html"' in html


# --- names and paths (no rendering) ---------------------------------------------------------
@pytest.mark.parametrize("name", [NAME_A, NAME_B, "..", "", "/", "C:\\Windows\\x", "Ñandú\x00\n\t", "a" * 300,
                                  "Sukamaju Ṣelatan"])
@pytest.mark.parametrize("code", ["63.02.06.2001", "../63.02", "63.02/../../x", "..1..2.."])
def test_unsafe_names_give_safe_paths_inside_out_dir(tmp_path, name, code):
    u = ReportUnit("desa", code, name, TEMPLATE)
    for key, p in unit_paths(u, tmp_path).items():
        assert p.resolve().is_relative_to(tmp_path.resolve())
        assert re.fullmatch(r"\d+(\.\d+)*-[a-z0-9-]{1,60}\.(html|pdf|ipynb)", p.name), p.name
        assert p.parent == (tmp_path / "_executed" / "desa" if key == "executed" else tmp_path / "desa")


def test_slug_and_code_rules():
    assert slugify("Pondok Labu") == "pondok-labu"
    assert slugify("  Kota--Baru  ") == "kota-baru"
    assert len(slugify("x" * 100)) == 60 and not slugify("ab-" * 30).endswith("-")
    assert safe_code("63.02.06.2001") == "63.02.06.2001" and safe_code("../../63") == "63"
    with pytest.raises(ReportError):
        ReportUnit("desa", "abc", "x", TEMPLATE)
    with pytest.raises(ReportError):
        ReportUnit("provinsi", "63", "x", TEMPLATE)


def test_external_resources_detects_loads_not_links():
    assert external_resources('<a href="https://x.org">x</a><img src="data:image/png;base64,AA">') == []
    found = external_resources(
        '<script src="https://cdn.example/require.js"></script><link rel="stylesheet" href="s.css">'
        '<img srcset="a.png 1x, data:image/png;base64,AA 2x"><div style="background:url(\'http://x/y.png\')">'
        '<style>@import "https://fonts.example/f.css"; p{}</style>')
    assert found == ["https://cdn.example/require.js", "s.css", "a.png", "http://x/y.png",
                     "https://fonts.example/f.css"]


def test_duplicate_units_are_refused(tmp_path):
    u = make_unit(tmp_path, "1.2", "A", 1)
    with pytest.raises(ReportError, match="twice"):
        render_units([u, ReportUnit("desa", "1.2", "B", TEMPLATE)], out_dir=tmp_path / "out", progress=False)


# --- state-changing batches -------------------------------------------------------------------
def test_incremental_skip_force_and_changed_input(tmp_path):
    units = [make_unit(tmp_path / "in", "11.01", "Satu", 1), make_unit(tmp_path / "in", "11.02", "Dua", 2)]
    out = tmp_path / "out"
    first = render_units(units, out_dir=out, formats=("html",), jobs=2, progress=False)
    assert [r.status for r in first.results] == ["rendered", "rendered"], first.text()
    assert not unit_paths(units[0], out)["pdf"].exists()  # html only was asked for

    again = render_units(units, out_dir=out, formats=("html",), jobs=2, progress=False)
    assert [r.status for r in again.results] == ["skipped", "skipped"]
    assert again.seconds < 3 and again.ok

    forced = render_units(units, out_dir=out, formats=("html",), jobs=2, force=True, progress=False)
    assert [r.status for r in forced.results] == ["rendered", "rendered"]

    units[1].inputs[0].write_text("7")  # new data for one village only
    changed = render_units(units, out_dir=out, formats=("html",), jobs=2, progress=False)
    assert [r.status for r in changed.results] == ["skipped", "rendered"]
    assert "NILAI=14.0" in unit_paths(units[1], out)["html"].read_text()

    unit_paths(units[1], out)["html"].unlink()  # a deleted output is re-rendered
    old_html = unit_paths(units[0], out)["html"]
    renamed = ReportUnit("desa", "11.01", "Satu Baru", TEMPLATE, {**units[0].parameters, "name": "Satu Baru"},
                         units[0].inputs)  # a renamed village leaves no orphaned report behind
    again = render_units([renamed, units[1]], out_dir=out, formats=("html",), jobs=2, progress=False)
    assert [r.status for r in again.results] == ["rendered", "rendered"]
    assert not old_html.exists() and unit_paths(renamed, out)["html"].is_file()
    assert unit_paths(units[1], out)["html"].is_file()
    assert sorted(p.name for p in (out / "desa").iterdir()) == ["11.01-satu-baru.html", "11.02-dua.html"]


def test_failure_is_isolated_and_retry_failed_renders_only_it(tmp_path, capfd, monkeypatch):
    good = make_unit(tmp_path / "in", "12.01", "Baik", 1)
    bad = make_unit(tmp_path / "in", "12.02", "Rusak", 2, fail=True)
    out = tmp_path / "out"
    summary = render_units([good, bad], out_dir=out, formats=("html",), jobs=2, progress=False)
    assert not summary.ok
    assert [r.status for r in summary.results] == ["rendered", "failed"]
    failed = summary["desa/12.02"]
    assert failed.cell_index == FAIL_CELL and "ValueError" in failed.error and "gagal disengaja" in failed.error
    executed = nbformat.read(failed.executed, as_version=4)  # kept for audit, with the error
    assert "raise ValueError" in executed.cells[FAIL_CELL].source
    assert not unit_paths(bad, out)["html"].exists()
    message = str(failed.as_error())
    assert "desa 12.02 Rusak" in message and f"(cell {FAIL_CELL})" in message
    text = summary.text()
    assert "failed" in text and f"cell {FAIL_CELL}" in text and "Traceback" not in text
    captured = capfd.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    assert json.loads((out / "_manifest.json").read_text())["units"]["desa/12.02"]["status"] == "failed"

    # fix the failing unit, and make the good one stale: retry_failed must still render only the failed one,
    # and a kernel that dies once at start-up is retried
    fixed = ReportUnit(bad.kind, bad.code, bad.name, bad.template, {**bad.parameters, "fail": False}, bad.inputs)
    good.inputs[0].write_text("3")
    calls = []
    original = render._launch

    def flaky(client, cwd, log_file, kwargs):
        calls.append(cwd)
        if len(calls) == 1:
            raise RuntimeError("Kernel died before replying to kernel_info")
        return original(client, cwd, log_file, kwargs)

    monkeypatch.setattr(render, "_launch", flaky)
    retry = render_units([good, fixed], out_dir=out, formats=("html",), retry_failed=True, progress=False)
    assert [r.status for r in retry.results] == ["skipped", "rendered"], retry.text()
    assert retry["desa/12.02"].attempts == 2 and len(calls) == 2
    assert unit_paths(fixed, out)["html"].is_file() and retry.ok


def test_kernel_that_never_starts_fails_after_retries(tmp_path, monkeypatch):
    u = make_unit(tmp_path / "in", "13.01", "Tanpa Kernel", 1)
    s = render_units([u], out_dir=tmp_path / "out", kernel_name="no-such-kernel-pk2d", formats=("html",),
                     progress=False)
    r = s.results[0]
    assert r.status == "failed" and r.attempts == 1 and "no kernel named 'no-such-kernel-pk2d'" in r.error

    def dies(client, cwd, log_file, kwargs):
        raise RuntimeError("Kernel didn't respond in 60 seconds")

    monkeypatch.setattr(render, "_launch", dies)
    s = render_units([u], out_dir=tmp_path / "out", retries=1, formats=("html",), progress=False)
    r = s.results[0]
    assert r.status == "failed" and r.attempts == 2 and r.executed is None
    assert "did not start (2 attempts)" in r.error and "didn't respond" in r.error


def test_missing_input_fails_that_unit_only(tmp_path):
    u = make_unit(tmp_path / "in", "14.01", "Hilang", 1)
    u.inputs[0].unlink()
    s = render_units([u], out_dir=tmp_path / "out", progress=False)
    assert s.results[0].status == "failed" and "missing file" in s.results[0].error


def test_failed_pdf_leaves_no_partial_file_and_keeps_the_old_report(batch, tmp_path, monkeypatch):
    src_out, units, _ = batch
    out = tmp_path / "out"
    shutil.copytree(src_out, out)  # manifest paths are relative: the copy is a valid report folder
    p = unit_paths(units[0], out)
    old_html, old_pdf = p["html"].read_bytes(), p["pdf"].read_bytes()

    import weasyprint

    def broken_write_pdf(self, target=None, *args, **kwargs):
        Path(target).write_bytes(b"%PDF-1.7 half a report")  # a partial write, then the crash
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(weasyprint.Document, "write_pdf", broken_write_pdf)
    s = render_units(units[:1], out_dir=out, force=True, progress=False)
    r = s.results[0]
    assert r.status == "failed" and "pdf conversion failed" in r.error and "disk full" in r.error
    assert p["html"].read_bytes() == old_html and p["pdf"].read_bytes() == old_pdf  # both or neither
    assert temp_files(out) == []
    entry = json.loads((out / "_manifest.json").read_text())["units"][units[0].id]
    assert entry["status"] == "failed" and entry["outputs"]  # old files still listed

    monkeypatch.undo()
    again = render_units(units[:1], out_dir=out, progress=False)  # a failed unit is never skipped
    assert again.results[0].status == "rendered"


def test_plain_serial_baseline_runs_the_clis(tmp_path):
    u = make_unit(tmp_path / "in", "15.01", "Garis Dasar", 4)
    res = render.plain_serial_baseline([u], tmp_path / "base")
    assert res["units"] == 1 and res["seconds"] > 0
    html = (tmp_path / "base" / "desa" / f"{u.stem}.html").read_text(encoding="utf-8")
    assert "NILAI=8.0" in html and SOURCE_MARKER not in html
