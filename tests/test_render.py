"""pk2d.render and pk2d.kernel: batch rendering of parameterised notebooks to HTML and PDF.

Uses a tiny fixture template (one number read from an input file, one matplotlib figure shown with
plt.show()). One module-scoped batch (two units, HTML + PDF) serves the read-only checks; tests that
change state render their own small batches, HTML only where the PDF is not the point. The fault
tests run a batch in a child process and kill it.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from pk2d import kernel
from pk2d.errors import ReportError, RunLockedError
from pk2d.render import (BatchInterrupted, ReportUnit, external_resources, render_units, safe_code, slugify,
                         unit_paths, write_index)
from pk2d.render import pdf as pdfmod
from pk2d.store import folder_lock
from tests._pdf import pdf_pages

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "render"
TEMPLATE = FIXTURES / "report_template.ipynb"
SOURCE_MARKER = "SOURCE_MARKER_never_in_html"  # only in the fixture's code, never in its output
FAIL_CELL = 4  # index of the `if fail: raise` cell in the executed notebook (after injected-parameters)
NAME_A = 'Desa "X"/<script>'
NAME_B = "../../etc/passwd"


def make_unit(folder: Path, code: str, name: str, value: float, *, fail: bool = False, lang: str = "id",
              kind: str = "desa", sleep: float = 0.0) -> ReportUnit:
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / f"input-{safe_code(code)}.txt"
    if not data.exists():
        data.write_text(str(value))
    params = {"village": code, "name": name, "lang": lang, "value_file": str(data), "fail": fail, "sleep": sleep}
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


def kernel_processes() -> list[int]:
    """pids of the processes a batch starts (kernel zygotes, forked kernels, the PDF browser and its driver)."""
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes()
            except OSError:
                continue
            if any(x in cmd for x in (b"pk2d.kernel", b"ipykernel_launcher", b"chromium", b"playwright/driver")):
                found.append(int(d.name))
    return found


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
        assert r.timings["execute"] > 0 and r.timings["pdf"] > 0 and "kernel_start" in r.timings
        assert r.attempts == 1
    assert {q.name for q in (out / "desa").iterdir()} == {
        "63.02.06.2001-desa-x-script.html", "63.02.06.2001-desa-x-script.pdf",
        "63.02.06.2002-etc-passwd.html", "63.02.06.2002-etc-passwd.pdf"}
    assert temp_files(out) == [] and not (out / ".pk2d-write-check").exists()
    text = summary.text()
    assert "mean per rendered report" in text and "pdf:" in text


def test_html_is_self_contained_without_code_or_parameters(batch):
    out, units, _ = batch
    for u, number in zip(units, ("NILAI=42.0", "NILAI=10.0")):
        html = unit_paths(u, out)["html"].read_text(encoding="utf-8")
        assert number in html  # the injected value went through the notebook
        assert SOURCE_MARKER not in html  # no code input
        assert "injected-parameters" not in html and "Injected parameters" not in html
        assert "value_file" not in html and "fail = " not in html  # neither parameter cell
        assert "In&nbsp;[" not in html and "In [" not in html  # no prompts
        assert "data:image/png;base64," in html  # plt.show() displays inline, as in JupyterLab
        loaded = [(tag, attr, v) for tag, attr, v in urls(html) if tag != "a"]
        assert loaded and all(v.startswith("data:") for _, _, v in loaded), loaded
        assert external_resources(html) == []
        assert "<script" not in html.lower()
        # the only <link> is the empty inline favicon that stops browsers asking for /favicon.ico
        assert html.lower().count("<link") == html.count('<link rel="icon" href="data:,">') == 1
        assert "https://www.bkkbn.go.id" in html  # a plain text link is fine
        assert f'<html lang="{u.lang}">' in html
    html_a = unit_paths(units[0], out)["html"].read_text(encoding="utf-8")
    assert "<title>Laporan Desa Desa &#34;X&#34;/&lt;script&gt; (63.02.06.2001)</title>" in html_a
    assert "@page" in html_a and "A4" in html_a  # print CSS inline
    # the running title of the printed page is a CSS string that cannot end the style element
    assert r'content: "Laporan Desa Desa \"X\"/\3C script\3E  (63.02.06.2001)"' in html_a
    html_b = unit_paths(units[1], out)["html"].read_text(encoding="utf-8")
    assert "<title>Village report: ../../etc/passwd (63.02.06.2002)</title>" in html_b


def test_pdf_has_pages_tags_and_outline(batch):
    out, units, summary = batch
    for u, r in zip(units, summary.results):
        pdf = unit_paths(u, out)["pdf"]
        data = pdf.read_bytes()
        assert data[:5] == b"%PDF-"
        assert pdf_pages(pdf) >= 1 and r.pages == pdf_pages(pdf)
        if summary.pdf_engine == "chromium":  # tagged (structure tree for screen readers) with an outline
            assert b"/StructTreeRoot" in data and b"/MarkInfo" in data and b"/Outlines" in data


def test_manifest_records_keys_per_format_and_relative_paths(batch):
    out, units, _ = batch
    m = json.loads((out / "_manifest.json").read_text())
    e = m["units"]["desa/63.02.06.2001"]
    assert e["status"] == "rendered" and len(e["key"]) == 64
    assert e["outputs"] == {"html": "desa/63.02.06.2001-desa-x-script.html", "pdf": "desa/63.02.06.2001-desa-x-script.pdf"}
    assert e["formats"] == {"html": e["key"], "pdf": e["key"]}


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
    assert html.count('<th scope="col"') >= 7
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
        assert re.fullmatch(r"\d+(\.\d+)*-[a-z0-9-]{1,60}(\.html|\.pdf|\.docx|-rencana-dinas\.xlsx|\.ipynb)", p.name), p.name
        assert p.parent == (tmp_path / "_executed" / "desa" if key == "executed" else tmp_path / "desa")


def test_slug_and_code_rules():
    assert slugify("Pondok Labu") == "pondok-labu"
    assert slugify("  Kota--Baru  ") == "kota-baru"
    assert len(slugify("x" * 100)) == 60 and not slugify("ab-" * 30).endswith("-")
    assert safe_code("63.02.06.2001") == "63.02.06.2001" and safe_code("../../63") == "63"
    with pytest.raises(ReportError):
        ReportUnit("desa", "abc", "x", TEMPLATE)
    with pytest.raises(ReportError):
        ReportUnit("negara", "63", "x", TEMPLATE)


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


def test_pdf_page_count_reads_compressed_object_streams():
    import zlib

    pages = b"1 0 obj << /Type /Page >> endobj 2 0 obj << /Type /Page >> endobj << /Type /Pages >>"
    data = b"%PDF-1.7\n" + b"stream\n" + zlib.compress(pages) + b"\nendstream\n<< /Type /Page >>"
    assert pdfmod.count_pages(data) == 3


# --- state-changing batches -------------------------------------------------------------------
def test_incremental_skip_force_changed_input_and_digest(tmp_path):
    units = [make_unit(tmp_path / "in", "11.01", "Satu", 1), make_unit(tmp_path / "in", "11.02", "Dua", 2)]
    out = tmp_path / "out"
    first = render_units(units, out_dir=out, formats=("html",), jobs=2, progress=False)
    assert [r.status for r in first.results] == ["rendered", "rendered"], first.text()
    assert not unit_paths(units[0], out)["pdf"].exists()  # html only was asked for

    again = render_units(units, out_dir=out, formats=("html",), jobs=2, progress=False)
    assert [r.status for r in again.results] == ["skipped", "skipped"] and again.ok

    # parameters that only say where to read (run_id, processed_dir) do not make a report stale
    moved = [ReportUnit(u.kind, u.code, u.name, u.template, {**u.parameters, "run_id": "x", "processed_dir": "/y"},
                        u.inputs) for u in units]
    assert [r.status for r in render_units(moved, out_dir=out, formats=("html",), progress=False).results] == [
        "skipped", "skipped"]
    # the data digest does
    redigested = [ReportUnit(u.kind, u.code, u.name, u.template, u.parameters, u.inputs, digest="new")
                  for u in units[:1]]
    assert render_units(redigested, out_dir=out, formats=("html",), progress=False).results[0].status == "rendered"

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
    assert sorted(p.name for p in (out / "desa").iterdir()) == ["11.01-satu-baru.html", "11.02-dua.html"]


def test_html_only_keeps_a_current_pdf_and_removes_a_stale_one(tmp_path):
    u = make_unit(tmp_path / "in", "16.01", "Format", 1)
    out = tmp_path / "out"
    assert render_units([u], out_dir=out, progress=False).ok
    p = unit_paths(u, out)
    pdf_bytes = p["pdf"].read_bytes()
    p["html"].unlink()
    s = render_units([u], out_dir=out, formats=("html",), progress=False)  # same data: the PDF stays
    assert s.results[0].status == "rendered" and p["pdf"].read_bytes() == pdf_bytes
    links = [v for tag, _, v in urls(write_index([{"code": u.code, "name": u.name}], out).read_text()) if tag == "a"]
    assert len(links) == 2
    u.inputs[0].write_text("2")  # new data: an HTML-only render must not leave the old PDF beside it
    s = render_units([u], out_dir=out, formats=("html",), progress=False)
    assert s.results[0].status == "rendered" and not p["pdf"].exists()
    entry = json.loads((out / "_manifest.json").read_text())["units"][u.id]
    assert set(entry["outputs"]) == {"html"}


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

    # fix the failing unit and make the good one stale: retry_failed renders only the failed one, and a
    # kernel that fails once at start-up is retried
    fixed = ReportUnit(bad.kind, bad.code, bad.name, bad.template, {**bad.parameters, "fail": False}, bad.inputs)
    good.inputs[0].write_text("3")
    calls = []
    original = kernel.KernelPool.take

    def flaky(self, timeout=120):
        calls.append(1)
        if len(calls) == 1:
            raise kernel.KernelStartError("Kernel died before replying to kernel_info")
        return original(self, timeout)

    monkeypatch.setattr(kernel.KernelPool, "take", flaky)
    retry = render_units([good, fixed], out_dir=out, formats=("html",), retry_failed=True, progress=False)
    assert [r.status for r in retry.results] == ["skipped", "rendered"], retry.text()
    assert retry["desa/12.02"].attempts == 2 and len(calls) == 2
    assert unit_paths(fixed, out)["html"].is_file() and retry.ok


def test_unknown_kernel_fails_every_unit_once_with_the_reason(tmp_path):
    units = [make_unit(tmp_path / "in", "13.01", "Tanpa Kernel", 1), make_unit(tmp_path / "in", "13.02", "Dua", 1)]
    s = render_units(units, out_dir=tmp_path / "out", kernel_name="no-such-kernel-pk2d", formats=("html",),
                     progress=False)
    assert [r.status for r in s.results] == ["failed", "failed"]
    assert all("no kernel named 'no-such-kernel-pk2d'" in r.error for r in s.results)


def test_missing_input_fails_that_unit_only(tmp_path):
    u = make_unit(tmp_path / "in", "14.01", "Hilang", 1)
    u.inputs[0].unlink()
    s = render_units([u], out_dir=tmp_path / "out", progress=False)
    assert s.results[0].status == "failed" and "missing file" in s.results[0].error


def test_failed_pdf_leaves_no_partial_file_and_keeps_the_old_report(tmp_path, monkeypatch):
    u = make_unit(tmp_path / "in", "17.01", "Cetak", 1)
    out = tmp_path / "out"
    assert render_units([u], out_dir=out, progress=False).ok
    p = unit_paths(u, out)
    old_html, old_pdf = p["html"].read_bytes(), p["pdf"].read_bytes()

    def broken(self, html, target):
        from pk2d.io import atomic_path

        with atomic_path(target) as tmp:
            tmp.write_bytes(b"%PDF-1.7 half a report")  # a partial write, then the crash
            raise OSError("disk full (simulated)")

    monkeypatch.setattr(pdfmod.ChromiumPrinter, "print", broken)
    monkeypatch.setattr(pdfmod.WeasyPrinter, "print", broken)
    s = render_units([u], out_dir=out, force=True, progress=False)
    r = s.results[0]
    assert r.status == "failed" and "pdf printing failed" in r.error and "disk full" in r.error
    assert p["html"].read_bytes() == old_html and p["pdf"].read_bytes() == old_pdf  # both or neither
    assert temp_files(out) == []
    entry = json.loads((out / "_manifest.json").read_text())["units"][u.id]
    assert entry["status"] == "failed" and set(entry["outputs"]) == {"html", "pdf"}  # old files still listed

    monkeypatch.undo()
    again = render_units([u], out_dir=out, progress=False)  # a failed unit is never skipped
    assert again.results[0].status == "rendered"


def test_weasyprint_prints_the_same_page(tmp_path):
    u = make_unit(tmp_path / "in", "18.01", "Weasy", 3)
    s = render_units([u], out_dir=tmp_path / "out", pdf_engine="weasyprint", progress=False)
    assert s.ok and s.pdf_engine == "weasyprint" and s.results[0].pages >= 1


def test_spawned_kernels_give_the_same_report(tmp_path):
    u = make_unit(tmp_path / "in", "19.01", "Spawn", 3)
    fork = render_units([u], out_dir=tmp_path / "fork", formats=("html",), progress=False)
    spawn = render_units([u], out_dir=tmp_path / "spawn", formats=("html",), kernel_mode="spawn", progress=False)
    assert fork.ok and spawn.ok
    strip = lambda p: re.sub(r"data:image/png;base64,[^\"']+", "IMG", p.read_text())  # noqa: E731
    assert strip(unit_paths(u, tmp_path / "fork")["html"]) == strip(unit_paths(u, tmp_path / "spawn")["html"])


def test_a_second_batch_on_the_same_folder_stops_with_a_clear_message(tmp_path):
    u = make_unit(tmp_path / "in", "20.01", "Kunci", 1)
    with folder_lock(tmp_path / "out", "A report batch"):
        with pytest.raises(RunLockedError, match="already running") as info:
            render_units([u], out_dir=tmp_path / "out", progress=False)
    assert info.value.exit_code == 2 and f"pid {os.getpid()}" in str(info.value)


def test_unwritable_folder_is_a_clear_error(tmp_path):
    if os.geteuid() == 0:
        target = Path("/proc/pk2d-not-writable")  # root may write anywhere else
    else:
        target = tmp_path / "ro"
        target.mkdir()
        target.chmod(0o500)
    with pytest.raises(ReportError, match="cannot be written"):
        render_units([make_unit(tmp_path / "in", "21.01", "Baca", 1)], out_dir=target, progress=False)


# --- faults: a batch killed or stopped ---------------------------------------------------------------
BATCH_SCRIPT = textwrap.dedent("""
    import sys
    from pathlib import Path
    sys.path.insert(0, {root!r})
    from tests.test_render import make_unit
    from pk2d.render import render_units, BatchInterrupted
    units = [make_unit(Path({src!r}), f"30.{{i:02d}}", f"Desa {{i}}", i, sleep=0.4) for i in range(1, 9)]
    try:
        s = render_units(units, out_dir=Path({out!r}), jobs=2, progress=False)
        print("DONE", len(s.rendered))
    except BatchInterrupted as exc:
        print("INTERRUPTED", len(exc.summary.rendered), flush=True)
        sys.exit(130)
""")


def _start_batch(tmp_path, out) -> subprocess.Popen:
    script = tmp_path / "batch.py"
    script.write_text(BATCH_SCRIPT.format(root=str(ROOT), src=str(tmp_path / "in"), out=str(out)))
    return subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def _wait_rendered(out: Path, n: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = out / "_manifest.json"
        if m.is_file():
            try:
                if sum(e["status"] == "rendered" for e in json.loads(m.read_text())["units"].values()) >= n:
                    return
            except ValueError:
                pass
        time.sleep(0.1)
    raise AssertionError("the batch rendered nothing in time")


def _no_orphans(before: set[int], timeout: float = 15) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [p for p in kernel_processes() if p not in before]
        if not left:
            return []
        time.sleep(0.2)
    return left


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_a_killed_batch_leaves_no_partial_file_no_kernel_and_resumes(tmp_path, sig):
    out = tmp_path / "out"
    before = set(kernel_processes())
    proc = _start_batch(tmp_path, out)
    try:
        _wait_rendered(out, 2)
        os.kill(proc.pid, sig)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _no_orphans(before) == [], "kernel or browser processes outlived their batch"
    if sig != signal.SIGKILL:  # stopped cleanly: summary, no traceback, finished units recorded
        assert proc.returncode == 130 and "INTERRUPTED" in stdout and "Traceback" not in stderr, (stdout, stderr)
    m = json.loads((out / "_manifest.json").read_text())["units"]
    done = {k for k, e in m.items() if e["status"] == "rendered"}
    assert len(done) >= 2
    for k in done:  # every recorded report is whole
        html = out / m[k]["outputs"]["html"]
        assert html.read_text(encoding="utf-8").rstrip().endswith("</html>")
    # the next run: no temporary file left behind, and exactly the missing reports are rendered
    units = [make_unit(tmp_path / "in", f"30.{i:02d}", f"Desa {i}", i, sleep=0.4) for i in range(1, 9)]
    s = render_units(units, out_dir=out, jobs=2, progress=False)
    assert temp_files(out) == []
    assert {r.unit.id for r in s.skipped} == done and len(s.rendered) == 8 - len(done), s.text()
    assert s.ok and _no_orphans(before) == []


def test_pool_kernels_are_fresh_processes(tmp_path):
    pids = set()
    with kernel.KernelPool(size=2, cwd=tmp_path) as pool:
        for _ in range(3):
            k, _ = pool.take()
            pids.add(k.pid if hasattr(k, "pid") else k.km.provisioner.pid)
            k.shutdown_kernel(now=True)
            k.cleanup_resources()
    assert len(pids) == 3
    assert not [d for d in Path(tempfile.gettempdir()).glob(f"pk2d-k-{os.getpid()}-*")]
