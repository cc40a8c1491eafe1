"""The rendered reports as a reader opens them: the index page, a village and a district report in a
real browser, with an accessibility audit.

Renders the village report of Pondok Labu and the district report of Kotabaru from the session's
sample run (``report.build_reports``, which also writes the index page), serves the folder over HTTP
on 127.0.0.1 (random free port, a thread), and opens it with Playwright driving Debian's Chromium.
Checks: no console or page errors, every image and figure present, every link of the index answers
200, and axe-core (from the npm registry; ``make test`` installs it under ``.venv/node``) finds no
serious or critical accessibility violation.

Skipped (with the reason) only when the playwright package, Chromium or axe-core is missing.
"""
from __future__ import annotations

import functools
import http.server
import shutil
import threading
from pathlib import Path
from urllib.parse import urljoin

import pytest

import os

from pk2d import paths, report

PONDOK_LABU = "63.02.06.2012"
KOTABARU = "63.02"
AXE = Path(os.environ.get("PK2D_AXE", paths.PROJECT_DIR / ".venv" / "node" / "node_modules" / "axe-core" / "axe.min.js"))
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _chromium() -> str | None:
    if Path(CHROMIUM).is_file():
        return CHROMIUM
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def sync_playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright Python package is not installed (pip install playwright)")
    if _chromium() is None:
        pytest.skip(f"Chromium is not installed ({CHROMIUM}; apt-get install chromium)")
    return sync_playwright


@pytest.fixture(scope="module")
def site(sync_playwright, sample_run, tmp_path_factory):
    """The reports folder: index.html, desa/<Pondok Labu>.html, kabupaten/<Kotabaru>.html and
    provinsi/<Kalimantan Selatan>.html (+ .pdf, .docx, the village's .xlsx)."""
    out = tmp_path_factory.mktemp("reports")
    summary = report.build_reports(sample_run, out, villages=[PONDOK_LABU], district=True, province="63", round=1,
                                   jobs=2, progress=False)
    assert summary.ok and len(summary.results) == 3, summary.text()
    return out


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest's output clean
        pass


@pytest.fixture(scope="module")
def server(site):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, name="pk2d-test-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(sync_playwright):
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def _open(browser, url):
    """Open ``url`` in a fresh page; return (page, errors, response status)."""
    page = browser.new_page()
    errors = []

    def on_console(msg):
        # the browser asks for /favicon.ico by itself (no page links it): its 404 is not the report's error
        if msg.type == "error" and not (msg.location or {}).get("url", "").endswith("/favicon.ico"):
            errors.append(f"console: {msg.text} ({(msg.location or {}).get('url', '')})")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    response = page.goto(url, wait_until="load")
    return page, errors, (response.status if response else None)


def _images(page) -> tuple[int, list[str]]:
    broken = page.evaluate("""() => Array.from(document.images)
        .filter(i => !(i.complete && i.naturalWidth > 0)).map(i => (i.alt || i.src).slice(0, 60))""")
    return page.evaluate("() => document.images.length"), broken


def test_index_page_loads_without_errors_and_every_link_resolves(server, browser):
    page, errors, status = _open(browser, server + "index.html")
    try:
        assert status == 200
        assert "Pondok Labu" in page.inner_text("body")
        hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
        _, broken = _images(page)
        assert not broken
        for suffix in (".html", ".pdf", ".docx", ".xlsx"):
            assert any(h.endswith(suffix) for h in hrefs), suffix
        for href in hrefs:
            resp = page.request.get(urljoin(server + "index.html", href))
            assert resp.status == 200, (href, resp.status)
            if href.endswith(".pdf"):
                assert resp.body().startswith(b"%PDF")
            if href.endswith((".docx", ".xlsx")):
                assert resp.body().startswith(b"PK")  # an Office Open XML package
    finally:
        page.close()
    assert not errors, errors


def test_village_report_in_the_browser(server, browser):
    index, _, _ = _open(browser, server + "index.html")
    try:
        hrefs = index.eval_on_selector_all("a[href$='.html']", "els => els.map(e => e.href)")
    finally:
        index.close()
    village = [h for h in hrefs if "/desa/" in h]
    assert len(village) == 1 and PONDOK_LABU in village[0]
    page, errors, status = _open(browser, village[0])
    try:
        assert status == 200
        _, broken = _images(page)
        assert not broken, broken
        assert page.evaluate("() => document.querySelectorAll('svg[role=img][aria-label]').length") == 3
        text = page.inner_text("body")
        assert "Laporan Desa Pondok Labu" in text and "sensus: tanpa galat sampling" in text
        assert "import pk2d" not in text and "village =" not in text
        # no table forces a horizontal scroll of the whole page on a 1024 px screen
        page.set_viewport_size({"width": 1024, "height": 800})
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 1024 + 1
    finally:
        page.close()
    assert not errors, errors


def _axe(page) -> list[dict]:
    """Serious and critical violations axe-core finds on the page (WCAG 2 A/AA rules and best practice)."""
    page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                       nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
    }""")
    return [v for v in result if v["impact"] in ("serious", "critical")]


@pytest.mark.parametrize("which", ["index.html", "desa", "kabupaten", "provinsi"])
def test_accessibility_audit_finds_no_serious_violation(server, browser, site, which):
    if not AXE.is_file():
        pytest.skip(f"axe-core is not installed ({AXE}; `make test` installs it with npm)")
    path = which if which.endswith(".html") else next((site / which).glob("*.html")).relative_to(site).as_posix()
    page, errors, status = _open(browser, server + path)
    try:
        assert status == 200
        assert page.evaluate("() => document.documentElement.lang") in ("id", "en")
        violations = _axe(page)
    finally:
        page.close()
    assert violations == [], violations
