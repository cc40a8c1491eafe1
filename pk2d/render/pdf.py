"""HTML -> PDF: the same page printed by headless Chromium (kept warm for a batch), or by WeasyPrint.

Chromium (Debian's ``chromium``, driven through Playwright, nothing downloaded)
prints a report in a few tenths of a second, with a tagged PDF (structure for
screen readers) and a document outline from the headings. It is started once
per batch and prints several pages at a time from one thread of its own.
Where no Chromium is installed, WeasyPrint (pure Python, slower) prints the
same HTML. Both read the same CSS (``@page``: A4, running title, page
numbers), so HTML and PDF show the same content.

>>> engine_name("weasyprint")
'weasyprint'
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import threading
import zlib
from pathlib import Path

from ..errors import ReportError
from ..io import atomic_path

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: the flags this machine's Chromium needs headless and offline (no background network, no sandbox as root)
CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-extensions", "--disable-dev-shm-usage", "--mute-audio")
ENGINES = ("auto", "chromium", "weasyprint")


def chromium_path() -> str | None:
    """The Chromium to print with: ``PK2D_CHROMIUM``, else the first on PATH, else None."""
    given = os.environ.get("PK2D_CHROMIUM")
    if given:
        return given if Path(given).is_file() else None
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def engine_name(engine: str = "auto") -> str:
    """``chromium`` when asked for or when auto finds Chromium and Playwright; else ``weasyprint``."""
    if engine not in ENGINES:
        raise ReportError("pdf", f"unknown PDF engine {engine!r}", fix=f"Use one of {', '.join(ENGINES)}.")
    if engine == "weasyprint":
        return engine
    try:
        import playwright  # noqa: F401
        have = chromium_path() is not None
    except ImportError:
        have = False
    if engine == "chromium" and not have:
        raise ReportError("pdf", "Chromium or the playwright package is not installed",
                          fix="apt-get install chromium (and pip install playwright), or use --pdf-engine weasyprint.")
    return "chromium" if have else "weasyprint"


def count_pages(data: bytes) -> int:
    """Pages of a PDF, from its page objects (also inside compressed object streams)."""
    chunks = [data]
    for m in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        with contextlib.suppress(zlib.error):
            chunks.append(zlib.decompress(m.group(1)))
    return sum(len(re.findall(rb"/Type\s*/Page(?![A-Za-z])", c)) for c in chunks)


class ChromiumPrinter:
    """One headless Chromium for a whole batch; :meth:`print` may be called from any thread.

    ``pages``: prints that may run at the same time (each in its own browser tab).
    """

    name = "chromium"

    def __init__(self, *, pages: int = 2, executable: str | None = None, timeout: float = 120):
        self.executable = executable or chromium_path()
        if not self.executable:
            raise ReportError("pdf", "no Chromium found", fix="apt-get install chromium, or set PK2D_CHROMIUM.")
        self.timeout = timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="pk2d-chromium", daemon=True)
        self._thread.start()
        self._pages_n = max(1, int(pages))
        self._run(self._start(), timeout=60)

    def _run(self, coro, timeout=None):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout or self.timeout)

    async def _start(self):
        from playwright.async_api import async_playwright

        self._pw = await async_playwright().start()
        self._browser = await self._pw.chromium.launch(executable_path=self.executable, args=list(CHROMIUM_ARGS),
                                                       headless=True)
        self._context = await self._browser.new_context(java_script_enabled=False, offline=True)
        self._free: asyncio.Queue = asyncio.Queue()
        for _ in range(self._pages_n):
            await self._free.put(await self._context.new_page())

    async def _print(self, html: str) -> bytes:
        page = await self._free.get()
        try:
            await page.set_content(html, wait_until="load")
            return await page.pdf(print_background=True, prefer_css_page_size=True, tagged=True, outline=True)
        finally:
            await self._free.put(page)

    def print(self, html: str, target: str | Path) -> int:
        """Print ``html`` to ``target`` (written atomically); return the number of pages."""
        data = self._run(self._print(html))
        with atomic_path(target) as tmp:
            tmp.write_bytes(data)
        return count_pages(data)

    def close(self) -> None:
        async def stop():
            with contextlib.suppress(Exception):
                await self._browser.close()
            with contextlib.suppress(Exception):
                await self._pw.stop()

        with contextlib.suppress(Exception):
            self._run(stop(), timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        with contextlib.suppress(Exception):
            self._loop.close()


class WeasyPrinter:
    """WeasyPrint, reading embedded ``data:`` URIs only: a report never touches the network or disk."""

    name = "weasyprint"

    def __init__(self, **_):
        import weasyprint  # noqa: F401  (fail early when missing)

    @staticmethod
    def _fetcher():
        try:
            from weasyprint.urls import URLFetcher
        except ImportError:  # WeasyPrint < 66: a plain function
            from weasyprint import default_url_fetcher

            def fetch(url, *args, **kw):
                if not url.lower().startswith("data:"):
                    raise ValueError(f"pk2d reports are offline; not fetching {url}")
                return default_url_fetcher(url, *args, **kw)

            return fetch
        return URLFetcher(allowed_protocols={"data"})

    def print(self, html: str, target: str | Path) -> int:
        import weasyprint

        document = weasyprint.HTML(string=html, url_fetcher=self._fetcher()).render()
        with atomic_path(target) as tmp:
            document.write_pdf(tmp, pdf_tags=True)
        return len(document.pages)

    def close(self) -> None:
        pass


def printer(engine: str = "auto", *, pages: int = 2):
    """A started printer for ``engine`` (``auto``: Chromium where installed, else WeasyPrint)."""
    name = engine_name(engine)
    if name == "chromium":
        try:
            return ChromiumPrinter(pages=pages)
        except Exception as exc:
            if engine == "chromium":
                raise ReportError("pdf", f"Chromium did not start: {type(exc).__name__}: {exc}",
                                  fix="Check `chromium --version`, or use --pdf-engine weasyprint.") from None
    return WeasyPrinter()
