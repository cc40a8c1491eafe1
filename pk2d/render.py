"""Batch report renderer: parameterised notebooks -> self-contained HTML and PDF.

Each :class:`ReportUnit` (one village, *desa*, or one district, *kabupaten*) is
executed with papermill, kept as an executed notebook for audit, converted by
nbconvert into one self-contained HTML page (no code, no prompts, no parameter
cells, images embedded, no external resources at all) and printed to PDF by
WeasyPrint from that same HTML::

    out_dir/desa/63.02.06.2001-pondok-labu.html   (.pdf)
    out_dir/kabupaten/63.02-kotabaru.html          (.pdf)
    out_dir/_executed/desa/63.02.06.2001-pondok-labu.ipynb
    out_dir/_manifest.json                         (state for incremental runs)

:func:`render_units` renders a batch with a bounded number of parallel workers;
a unit whose inputs, template, parameters, pk2d version and formats are
unchanged since its last successful render is skipped. One failing unit never
stops the others: the :class:`RenderSummary` names each failure and its cell.

>>> u = ReportUnit("desa", "63.02.06.2001", "Pondok Labu", Path("t.ipynb"), {"village": "63.02.06.2001"})
>>> u.stem, u.id
('63.02.06.2001-pondok-labu', 'desa/63.02.06.2001')
>>> slugify('Desa "X"/<script>'), slugify("../../etc/passwd"), slugify("Sukamaju Ṣelatan")
('desa-x-script', 'etc-passwd', 'sukamaju-selatan')

Design notes (measured on the 2-core machine; see ``RenderSummary.text()``):

* Workers are threads. The expensive part of a report, the kernel, is a child
  process anyway; each worker thread keeps one warm nbconvert exporter, the
  process keeps WeasyPrint's font setup, nothing is pickled, callers need no
  ``if __name__ == "__main__"`` guard (a spawn/forkserver process pool does),
  and tests can monkeypatch the converters. No
  ``os.chdir`` is ever done (papermill's ``cwd=`` would change the directory of
  the whole process): the kernel gets its working directory from ``Popen``.
* Kernel port race (papermill#511, jupyter_client#487: two kernels started at
  the same time may pick the same TCP port and one dies with ZMQ "Address
  already in use", seen as "Kernel died before replying to kernel_info"): on
  POSIX each kernel talks over IPC (Unix sockets) in its own private temporary
  folder, so no ports are chosen at all; elsewhere TCP ports are taken from
  jupyter_client's process-wide port cache under a start lock. Any failure
  before the kernel answers ``kernel_info`` is retried (``retries``) after a
  small randomised back-off; errors in the notebook itself are never retried.
* The kernel's own stdout/stderr go to a log file (its tail is quoted if the
  kernel fails to start), so a batch prints nothing but the progress bar.

Where the seconds go (tiny test template with one matplotlib figure, 2 shared
cores, one report at a time): kernel start ~0.6-0.8 s (imports and IPython
shell set-up; nbclient already keeps history in memory, so history flags buy
nothing), execution ~0.7-1.0 s (mostly ``import matplotlib.pyplot``), kernel
stop ~0.1 s (``shutdown_kernel="immediate"``; graceful took 0.2-0.3 s, once
3.3 s), HTML ~0.05 s (0.3-0.5 s for the first, building the exporter), PDF
~0.9 s, of which ~0.8 s is fontTools subsetting the fonts: with the system
library HarfBuzz-subset (Debian ``libharfbuzz-subset0``) WeasyPrint subsets in
C and the PDF takes ~0.1 s. The analyst's way (``papermill`` CLI then
``jupyter nbconvert``, see :func:`plain_serial_baseline`) cost ~8 s a report,
HTML only, mostly two fresh Python start-ups.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unicodedata
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import quote

from . import paths
from .errors import ReportError
from .fmt import number
from .io import atomic_path, sha256_file, write_json, write_text

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

KINDS = ("desa", "kabupaten")
FORMATS = ("html", "pdf")
LANGS = ("id", "en")
MANIFEST_NAME = "_manifest.json"
EXECUTED_SUBDIR = "_executed"
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
PAGE_TEMPLATE = TEMPLATE_DIR / "page.html.j2"
INDEX_TEMPLATE = TEMPLATE_DIR / "index.html.j2"
REPORT_CSS = TEMPLATE_DIR / "report.css"
SLUG_MAX = 60
#: cell tags whose whole cell never reaches a report (papermill's two parameter cells first)
REMOVE_CELL_TAGS = ("parameters", "injected-parameters", "papermill-error-cell-tag", "remove-cell", "remove_cell")
REMOVE_INPUT_TAGS = ("remove-input", "remove_input", "hide-input")
REMOVE_OUTPUT_TAGS = ("remove-output", "remove_output", "hide-output")
_ENGINE_NAME = "pk2d"


def _version() -> str:
    try:
        from . import __version__
        return str(__version__)
    except ImportError:  # pragma: no cover - minimal package
        return "0"


# --- names and paths ---------------------------------------------------------------
def slugify(name: str, max_len: int = SLUG_MAX) -> str:
    """A file-name-safe slug: ASCII (NFKD), lower case, ``[a-z0-9-]``, at most ``max_len`` characters.

    >>> slugify("Pondok Labu"), slugify("Kota Baru (Utara) — II"), slugify("..."), slugify("Ñangka")
    ('pondok-labu', 'kota-baru-utara-ii', 'tanpa-nama', 'nangka')
    """
    text = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode("ascii").lower()
    text = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
    text = text[:max_len].rstrip("-")
    return text or "tanpa-nama"


def safe_code(code: str) -> str:
    """An area code reduced to digits and single dots (``'63.02/../06'`` -> ``'63.02.06'``).

    >>> safe_code(" 63.02.06.2001 "), safe_code("../63..02"), safe_code("abc")
    ('63.02.06.2001', '63.02', '')
    """
    text = re.sub(r"[^0-9.]", "", str(code))
    return re.sub(r"\.{2,}", ".", text).strip(".")


def _report_error(unit, problem: str, **kw) -> ReportError:
    err = ReportError(unit.label, problem, **kw)
    err.problem = problem  # the message without the unit, for summaries that name the unit themselves
    return err


def _printable(text: str, width: int | None = None) -> str:
    """Untrusted text made safe for a terminal line (no control characters, optionally cut)."""
    text = "".join(ch if ch.isprintable() else " " for ch in str(text))
    if width is not None and len(text) > width:
        text = text[: max(width - 1, 0)] + "…"
    return text


@dataclass(frozen=True)
class ReportUnit:
    """One report to render: a village (``kind="desa"``) or a district (``kind="kabupaten"``).

    ``name`` comes from the data and is untrusted: it only ever reaches a file
    name through :func:`slugify`, and HTML through escaping. ``inputs`` are the
    data files whose *content* decides whether the report is stale.

    >>> u = ReportUnit("kabupaten", "63.02", "Kotabaru", Path("11_district_report.ipynb"),
    ...                {"kabupaten": "63.02", "lang": "en"})
    >>> u.stem, u.lang, u.label
    ('63.02-kotabaru', 'en', 'kabupaten 63.02 Kotabaru')
    """

    kind: str
    code: str
    name: str
    template: Path
    parameters: dict = field(default_factory=dict, hash=False)
    inputs: tuple[Path, ...] = ()

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ReportError(f"{self.kind!r} {self.code}", f"unknown report kind {self.kind!r}",
                              fix=f"Use one of {', '.join(KINDS)}.")
        if not safe_code(self.code):
            raise ReportError(f"{self.kind} {_printable(self.code, 40)!r}", "the area code has no digits",
                              fix="Pass the BPS area code, e.g. 63.02.06.2001.")
        object.__setattr__(self, "template", Path(self.template))
        object.__setattr__(self, "parameters", dict(self.parameters or {}))
        inputs = (self.inputs,) if isinstance(self.inputs, (str, os.PathLike)) else self.inputs
        object.__setattr__(self, "inputs", tuple(Path(p) for p in inputs))

    @property
    def id(self) -> str:
        """``kind/code``: the unit's identity in the manifest."""
        return f"{self.kind}/{safe_code(self.code)}"

    @property
    def stem(self) -> str:
        """``<code>-<slug>``: the file name of every output of this unit, without suffix."""
        return f"{safe_code(self.code)}-{slugify(self.name)}"

    @property
    def lang(self) -> str:
        lang = str(self.parameters.get("lang", "id"))
        return lang if lang in LANGS else "id"

    @property
    def label(self) -> str:
        return _printable(f"{self.kind} {safe_code(self.code)} {self.name}")

    @property
    def title(self) -> str:
        what = {("desa", "id"): "Laporan Desa", ("kabupaten", "id"): "Laporan Kabupaten",
                ("desa", "en"): "Village report:", ("kabupaten", "en"): "District report:"}[self.kind, self.lang]
        return f"{what} {_printable(self.name)} ({safe_code(self.code)})"


def unit_paths(unit: ReportUnit, out_dir: str | Path = paths.REPORTS_DIR) -> dict[str, Path]:
    """Where a unit's outputs go: keys ``html``, ``pdf``, ``executed``.

    >>> p = unit_paths(ReportUnit("desa", "1.2", "../../etc/passwd", Path("t.ipynb")), "/r")
    >>> p["html"].as_posix(), p["executed"].as_posix()
    ('/r/desa/1.2-etc-passwd.html', '/r/_executed/desa/1.2-etc-passwd.ipynb')
    """
    out_dir = Path(out_dir)
    return {"html": out_dir / unit.kind / f"{unit.stem}.html",
            "pdf": out_dir / unit.kind / f"{unit.stem}.pdf",
            "executed": out_dir / EXECUTED_SUBDIR / unit.kind / f"{unit.stem}.ipynb"}


# --- results ------------------------------------------------------------------------
PHASES = ("kernel_start", "execute", "kernel_stop", "html", "pdf")


@dataclass(frozen=True)
class UnitResult:
    """What happened to one unit. ``status`` is ``rendered``, ``skipped`` or ``failed``.

    ``timings`` (seconds, ``time.perf_counter``): ``kernel_start`` (spawn until the
    kernel answers), ``execute`` (all cells), ``kernel_stop``, ``papermill``
    (the whole papermill call, including the three), ``html``, ``pdf``, ``total``.
    ``cell_index`` is the failing cell's index in the *executed* notebook
    (which has papermill's injected-parameters cell) kept at ``executed``.
    """

    unit: ReportUnit
    status: str
    outputs: tuple[Path, ...] = ()
    executed: Path | None = None
    error: str | None = None
    cell_index: int | None = None
    timings: dict = field(default_factory=dict, hash=False)
    attempts: int = 0
    pages: int | None = None
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    def as_error(self) -> ReportError | None:
        """The failure as a :class:`~pk2d.errors.ReportError` (``None`` when not failed)."""
        if self.ok:
            return None
        fix = None
        if self.executed and self.cell_index is not None:
            fix = f"See cell {self.cell_index} (counted from 0) of the executed notebook {self.executed}."
        elif self.executed:
            fix = f"See the executed notebook {self.executed}."
        return ReportError(self.unit.label, self.error or "failed", cell_index=self.cell_index, fix=fix)


@dataclass(frozen=True)
class RenderSummary:
    """All units of one :func:`render_units` call, in input order, with wall-clock seconds."""

    results: tuple[UnitResult, ...]
    seconds: float = 0.0
    jobs: int = 1

    @property
    def ok(self) -> bool:
        """True when no unit failed (skipped units are fine)."""
        return all(r.ok for r in self.results)

    def by_status(self, status: str) -> list[UnitResult]:
        return [r for r in self.results if r.status == status]

    @property
    def rendered(self) -> list[UnitResult]:
        return self.by_status("rendered")

    @property
    def skipped(self) -> list[UnitResult]:
        return self.by_status("skipped")

    @property
    def failed(self) -> list[UnitResult]:
        return self.by_status("failed")

    def __getitem__(self, unit_id: str) -> UnitResult:
        """Result by unit id (``"desa/63.02.06.2001"``)."""
        for r in self.results:
            if r.unit.id == unit_id:
                return r
        raise KeyError(unit_id)

    def mean_timings(self) -> dict[str, float]:
        """Mean seconds per phase over the rendered units."""
        done = self.rendered
        keys = [*PHASES, "papermill", "total"]
        return {k: sum(r.timings.get(k, 0.0) for r in done) / len(done) for k in keys} if done else {}

    def text(self, *, all_rows: bool = True) -> str:
        """A plain-text table: one line per unit (``all_rows=False``: not the skipped ones),
        then the failures in full, then totals and the mean seconds per phase."""
        head = (f"{'status':<9} {'unit':<40} {'total':>6} {'kernel':>6} {'exec':>6} {'stop':>5} "
                f"{'html':>5} {'pdf':>5}  note")
        lines = [head, "-" * len(head)]
        for r in self.results:
            if not all_rows and r.status == "skipped":
                continue
            t = r.timings
            cols = "".join(f" {t[k]:>{w}.2f}" if k in t else f" {'':>{w}}" for k, w in (
                ("total", 6), ("kernel_start", 6), ("execute", 6), ("kernel_stop", 5), ("html", 5), ("pdf", 5)))
            note = r.note
            if r.status == "failed":
                cell = f"cell {r.cell_index}: " if r.cell_index is not None else ""
                note = _printable(f"{cell}{r.error}", 60)
            lines.append(f"{r.status:<9} {_printable(r.unit.label, 40):<40}{cols}  {note}")
        if self.failed:
            lines.append("")
            lines.append("Gagal / failed:")
            for r in self.failed:
                err = r.as_error()
                lines.append(f"  {_printable(err.message)}")
                if err.fix:
                    lines.append(f"    {_printable(err.fix)}")
        lines.append("")
        n = {s: len(self.by_status(s)) for s in ("rendered", "skipped", "failed")}
        lines.append(f"{n['rendered']} rendered, {n['skipped']} skipped, {n['failed']} failed "
                     f"in {self.seconds:.1f} s (jobs={self.jobs})")
        mean = self.mean_timings()
        if mean:
            seen = {k for r in self.rendered for k in r.timings}
            lines.append("mean per rendered report: " + ", ".join(
                f"{k} {mean[k]:.2f} s" for k in (*PHASES, "total") if k in seen))
        return "\n".join(lines)


# --- HTML ---------------------------------------------------------------------------
_local = threading.local()
_RESOURCE_ATTRS = {
    "script": ("src",), "link": ("href",), "img": ("src", "srcset"), "source": ("src", "srcset"),
    "iframe": ("src",), "frame": ("src",), "embed": ("src",), "object": ("data",), "video": ("src", "poster"),
    "audio": ("src",), "track": ("src",), "input": ("src",), "image": ("href", "xlink:href"),
    "use": ("href", "xlink:href"), "feimage": ("href", "xlink:href"), "body": ("background",),
}
_CSS_URL = re.compile(r"""url\(\s*(['"]?)([^'")]*)\1\s*\)|@import\s+(['"])([^'"]*)\3""", re.I)


_SRCSET_URL = re.compile(r"[\s,]*(\S+)")


def _srcset_urls(value: str) -> list[str]:
    """URLs of a ``srcset`` (a data: URI may contain commas; descriptors end at the next comma)."""
    found, pos = [], 0
    while (m := _SRCSET_URL.match(value, pos)) is not None:
        url, pos = m.group(1), m.end()
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            comma = value.find(",", pos)
            pos = len(value) if comma < 0 else comma + 1
        found.append(url)
    return found


class _ResourceScanner(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value is None:
                continue
            if name in _RESOURCE_ATTRS.get(tag, ()):
                if name == "srcset":
                    self.urls += _srcset_urls(value)
                else:
                    self.urls.append(value.strip())
            elif name == "style":
                self._css(value)
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self._css(data)

    def _css(self, text):
        for m in _CSS_URL.finditer(text):
            self.urls.append((m.group(2) if m.group(2) is not None else m.group(4)).strip())


def external_resources(html: str) -> list[str]:
    """URLs that the page would *load* (scripts, styles, images, fonts, frames...) that are not
    embedded ``data:`` URIs. Plain links (``<a href>``) are not resources.

    >>> external_resources('<img src="data:image/png;base64,AA"><a href="https://x.org">x</a>')
    []
    >>> external_resources('<script src="https://cdn.x/require.js"></script><style>@font-face{src:url(f.woff)}</style>')
    ['https://cdn.x/require.js', 'f.woff']
    """
    scanner = _ResourceScanner()
    scanner.feed(html)
    scanner.close()
    return [u for u in scanner.urls if u and not u.lower().startswith(("data:", "#"))]


def _exporter():
    """One configured nbconvert HTMLExporter per thread (building one costs ~0.2 s)."""
    exporter = getattr(_local, "exporter", None)
    if exporter is None:
        from nbconvert import HTMLExporter
        from nbconvert.preprocessors import Preprocessor
        from traitlets.config import Config

        class DropStderr(Preprocessor):
            """Warnings on stderr stay in the executed notebook (audit), not in the report."""

            def preprocess_cell(self, cell, resources, index):
                if cell.get("cell_type") == "code":
                    cell.outputs = [o for o in cell.get("outputs", [])
                                    if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
                return cell, resources

        c = Config()
        c.TagRemovePreprocessor.enabled = True
        c.TagRemovePreprocessor.remove_cell_tags = set(REMOVE_CELL_TAGS)
        c.TagRemovePreprocessor.remove_input_tags = set(REMOVE_INPUT_TAGS)
        c.TagRemovePreprocessor.remove_all_outputs_tags = set(REMOVE_OUTPUT_TAGS)
        # "basic" renders the cells only: no page, no CSS, no require.js, no MathJax, no fonts.
        exporter = HTMLExporter(config=c, template_name="basic", exclude_input=True, exclude_input_prompt=True,
                                exclude_output_prompt=True, embed_images=True, anchor_link_text="",
                                log=logging.getLogger(__name__ + ".nbconvert"))
        exporter.register_preprocessor(DropStderr(), enabled=True)
        _local.exporter = exporter
    return exporter


def _jinja_env():
    env = getattr(_local, "jinja", None)
    if env is None:
        import jinja2
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)), autoescape=True,
                                 undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
        _local.jinja = env
    return env


def _css() -> str:
    return REPORT_CSS.read_text(encoding="utf-8")


def notebook_to_html(nb, unit: ReportUnit, *, key: str = "") -> str:
    """One self-contained HTML page from an executed notebook (code, prompts and parameter cells removed)."""
    from markupsafe import Markup

    resources = {"metadata": {"path": str(unit.template.resolve().parent), "name": unit.stem}}
    body, _ = _exporter().from_notebook_node(nb, resources=resources)
    lang = unit.lang
    footer = (f"Dibuat otomatis oleh pk2d {_version()} dari templat {unit.template.name}"
              if lang == "id" else f"Generated by pk2d {_version()} from template {unit.template.name}")
    if key:
        footer += f" · {key[:12]}"
    page = _jinja_env().get_template(PAGE_TEMPLATE.name).render(
        lang=lang, title=unit.title, kind=unit.kind, version=_version(), css=Markup(_css()),
        body=Markup(body), footer=footer)
    bad = external_resources(page)
    if bad:
        raise _report_error(unit, f"the report would load external resources ({', '.join(bad[:3])})",
                            fix="Embed figures as PNG outputs; do not use CDN scripts, web fonts or linked files.")
    return page


# --- PDF ----------------------------------------------------------------------------
def _offline_fetcher():
    """WeasyPrint may read embedded ``data:`` URIs only: a report never touches the network or disk."""
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


def html_to_pdf(html: str, target: str | Path) -> int:
    """Print ``html`` to the PDF file ``target`` (written atomically); return the number of pages."""
    import weasyprint

    document = weasyprint.HTML(string=html, url_fetcher=_offline_fetcher()).render()
    with atomic_path(target) as tmp:
        document.write_pdf(tmp)
    return len(document.pages)


# --- executing with papermill -------------------------------------------------------
class _Failure(Exception):
    """Internal: a unit failed; ``problem`` is one line without the unit (UnitResult.as_error adds it)."""

    def __init__(self, problem: str, cell_index: int | None = None, attempts: int = 0, executed: bool = False):
        super().__init__(problem)
        self.problem = problem
        self.cell_index = cell_index
        self.attempts = attempts
        self.executed = executed  # an executed notebook of *this* attempt was written


class KernelStartError(RuntimeError):
    """The kernel did not come up (port clash, kernel_info timeout, died at start): worth a retry."""


class _Run:
    """Per-execution context handed to the papermill engine (thread-local by construction)."""

    def __init__(self, cwd: Path, transport: str):
        self.cwd = cwd
        self.transport = transport
        self.timings: dict[str, float] = {}
        self.nb = None


_START_LOCK = threading.Lock()
_ENGINE_LOCK = threading.Lock()


def _default_transport() -> str:
    return "ipc" if os.name == "posix" else "tcp"


def _launch(client, cwd: str, log_file, kwargs: dict) -> None:
    """Start the kernel and wait until it answers ``kernel_info`` (tests replace this to inject failures)."""
    client.start_new_kernel(cwd=cwd, stdout=log_file, stderr=log_file, **kwargs)
    client.start_new_kernel_client()


def _engine():
    """papermill's nbclient engine with a client that (a) starts the kernel in a private IPC folder
    with its output in a log, (b) times start / execution / stop, (c) never changes the process cwd."""
    with _ENGINE_LOCK:
        if getattr(_engine, "cls", None) is None:
            _engine.cls = _make_engine()
        return _engine.cls


def _make_engine():
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine
    from papermill.utils import merge_kwargs, remove_args

    nb_log = logging.getLogger(__name__ + ".kernel")

    class Client(PapermillNotebookClient):
        @contextlib.contextmanager
        def setup_kernel(self, **kwargs):
            run: _Run = self._pk2d_run
            kwargs.pop("cleanup_kc", None)
            folder = Path(tempfile.mkdtemp(prefix="pk2d-k-"))
            klog = open(folder / "kernel.log", "w+b")
            try:
                t0 = time.perf_counter()
                try:
                    self.km = self.create_kernel_manager()
                    lock = contextlib.nullcontext()
                    if run.transport == "ipc" and len(str(folder)) < 80:  # Unix socket paths are short
                        self.km.transport = "ipc"
                        self.km.connection_file = str(folder / "kernel.json")
                        self.km.ip = str(folder / "k")
                    else:
                        lock = _START_LOCK  # tcp: ports come from the process-wide LocalPortCache
                    with lock:
                        _launch(self, str(run.cwd), klog, kwargs)
                except Exception as exc:
                    with contextlib.suppress(Exception):
                        self._cleanup_kernel()
                    klog.flush()
                    klog.seek(0)
                    tail = [ln for ln in klog.read().decode("utf-8", "replace").splitlines() if ln.strip()][-3:]
                    detail = f"{type(exc).__name__}: {exc}" + (f" | kernel: {' / '.join(tail)}" if tail else "")
                    raise KernelStartError(_printable(detail, 400)) from exc
                t1 = time.perf_counter()
                run.timings["kernel_start"] = t1 - t0
                try:
                    yield
                finally:
                    t2 = time.perf_counter()
                    run.timings["execute"] = t2 - t1
                    self._cleanup_kernel()
                    run.timings["kernel_stop"] = time.perf_counter() - t2
            finally:
                klog.close()
                shutil.rmtree(folder, ignore_errors=True)

    class Engine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, stdout_file=None,
                                     stderr_file=None, start_timeout=60, execution_timeout=None, **kwargs):
            run = kwargs.pop("pk2d_run")
            run.nb = nb_man.nb
            kwargs = remove_args(["input_path", "timeout", "startup_timeout"], **kwargs)
            final = merge_kwargs(kwargs, timeout=execution_timeout, startup_timeout=start_timeout,
                                 kernel_name=kernel_name, log=nb_log, log_output=log_output,
                                 stdout_file=stdout_file, stderr_file=stderr_file, shutdown_kernel="immediate")
            client = Client(nb_man, **final)
            client._pk2d_run = run
            return client.execute()

    from papermill.engines import papermill_engines
    papermill_engines.register(_ENGINE_NAME, Engine)  # at first use, never on import
    return Engine


def _write_executed(target: Path, nb) -> bool:
    """Keep a failed run's notebook for audit; never let that hide the original error."""
    if nb is None:
        return False
    import nbformat
    try:
        write_text(target, nbformat.writes(nb))
        return True
    except Exception:  # pragma: no cover - e.g. a notebook nbformat refuses to serialise
        log.warning("could not write the executed notebook %s", target, exc_info=True)
        return False


def _running_cell(nb) -> int | None:
    for i, cell in enumerate(getattr(nb, "cells", []) or []):
        if cell.get("metadata", {}).get("papermill", {}).get("status") == "running":
            return i
    return None


def _execute(unit: ReportUnit, executed: Path, *, kernel_name: str, timeout: int | None,
             retries: int, transport: str, timings: dict) -> tuple[Any, int]:
    """Run papermill (retrying kernel start failures); write the executed notebook atomically.

    Returns ``(notebook, attempts)``; raises _Failure (with the cell index) on failure.
    """
    import nbformat
    import papermill as pm
    from jupyter_client.kernelspec import NoSuchKernel
    from papermill.exceptions import PapermillExecutionError

    _engine()
    template = unit.template.resolve()
    attempts = 0
    while True:
        attempts += 1
        run = _Run(template.parent, transport)
        t0 = time.perf_counter()
        try:
            nb = pm.execute_notebook(
                str(template), None, parameters=unit.parameters, engine_name=_ENGINE_NAME,
                request_save_on_cell_execute=False, kernel_name=kernel_name, progress_bar=False,
                log_output=False, start_timeout=60, execution_timeout=timeout, pk2d_run=run)
        except KernelStartError as exc:
            timings.update(run.timings, papermill=time.perf_counter() - t0)
            if isinstance(exc.__cause__, NoSuchKernel):  # not a race: retrying cannot help
                raise _Failure(f"no kernel named {kernel_name!r}", attempts=attempts) from None
            if attempts > retries:
                raise _Failure(f"the kernel did not start ({attempts} attempts): {exc}", attempts=attempts) from None
            time.sleep(random.uniform(0.2, 0.8) * attempts)  # randomised: two racing workers drift apart
            continue
        except PapermillExecutionError as exc:
            timings.update(run.timings, papermill=time.perf_counter() - t0)
            if run.nb is not None:
                # papermill inserted two marker cells; drop them so cell_index matches the kept notebook
                run.nb.cells = [c for c in run.nb.cells
                                if "papermill-error-cell-tag" not in c.get("metadata", {}).get("tags", [])]
            wrote = _write_executed(executed, run.nb)
            raise _Failure(_printable(f"{exc.ename}: {exc.evalue}", 300), exc.cell_index, attempts, wrote) from None
        except Exception as exc:  # dead kernel, cell timeout...
            timings.update(run.timings, papermill=time.perf_counter() - t0)
            wrote = _write_executed(executed, run.nb)
            raise _Failure(_printable(f"{type(exc).__name__}: {exc}", 300), _running_cell(run.nb), attempts,
                           wrote) from None
        timings.update(run.timings, papermill=time.perf_counter() - t0)
        write_text(executed, nbformat.writes(nb))
        return nb, attempts


def execute_notebook(template: str | Path, executed: str | Path, parameters: dict, *,
                     kernel_name: str = "python3", timeout: int | None = None, retries: int = 2) -> dict:
    """Execute one notebook with the batch renderer's kernel handling; keep the executed copy.

    Used for the pipeline's stage notebooks: same Unix-socket kernels, start-up
    retries and atomic write as the reports. Returns the phase timings; raises
    :class:`~pk2d.errors.ReportError` naming the notebook and the failing cell.
    """
    from types import SimpleNamespace

    timings: dict[str, float] = {}
    job = SimpleNamespace(template=Path(template), parameters=dict(parameters))  # what _execute reads
    try:
        _execute(job, Path(executed), kernel_name=kernel_name, timeout=timeout, retries=retries,
                 transport=_default_transport(), timings=timings)
    except _Failure as exc:
        raise ReportError(Path(template).name, exc.problem, cell_index=exc.cell_index,
                          fix=f"open {executed} to see the failing cell") from None
    return timings


def _render_one(unit: ReportUnit, out_dir: Path, *, formats: Sequence[str], key: str, kernel_name: str,
                timeout: int | None, retries: int, transport: str) -> UnitResult:
    """Render one unit. Never raises for a report problem: failures come back as a result."""
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    p = unit_paths(unit, out_dir)
    attempts = 0
    phase = "papermill"
    try:
        nb, attempts = _execute(unit, p["executed"], kernel_name=kernel_name, timeout=timeout, retries=retries,
                                transport=transport, timings=timings)
        phase = "html conversion"
        t = time.perf_counter()
        page = notebook_to_html(nb, unit, key=key)
        timings["html"] = time.perf_counter() - t
        pages = None

        def pdf():
            nonlocal phase, pages
            phase = "pdf conversion"
            t = time.perf_counter()
            pages = html_to_pdf(page, p["pdf"])
            timings["pdf"] = time.perf_counter() - t

        if "html" in formats:
            # both files or neither: the HTML is renamed into place only after the PDF was written whole
            with atomic_path(p["html"]) as html_tmp:
                html_tmp.write_text(page, encoding="utf-8")
                if "pdf" in formats:
                    pdf()
        else:
            pdf()
    except ReportError as exc:  # the page would not be self-contained
        timings["total"] = time.perf_counter() - t_start
        return UnitResult(unit, "failed", executed=p["executed"], error=getattr(exc, "problem", exc.message),
                          timings=timings, attempts=attempts)
    except _Failure as exc:
        timings["total"] = time.perf_counter() - t_start
        return UnitResult(unit, "failed", executed=p["executed"] if exc.executed else None,
                          error=exc.problem, cell_index=exc.cell_index, timings=timings,
                          attempts=exc.attempts or attempts)
    except Exception as exc:  # a converter failed: name the phase, no traceback
        timings["total"] = time.perf_counter() - t_start
        return UnitResult(unit, "failed", executed=p["executed"] if phase != "papermill" else None,
                          error=_printable(f"{phase} failed: {type(exc).__name__}: {exc}", 300),
                          timings=timings, attempts=attempts)
    timings["total"] = time.perf_counter() - t_start
    outputs = tuple(p[f] for f in FORMATS if f in formats)
    return UnitResult(unit, "rendered", outputs=outputs, executed=p["executed"], timings=timings,
                      attempts=attempts, pages=pages)


# --- batch --------------------------------------------------------------------------
def _shell_hash() -> str:
    h = hashlib.sha256()
    for f in (PAGE_TEMPLATE, REPORT_CSS):
        h.update(f.read_bytes())
    return h.hexdigest()


def unit_key(unit: ReportUnit, formats: Sequence[str] = FORMATS) -> str:
    """sha256 over input-file hashes, template hash, parameters (JSON), pk2d version, formats
    and the page shell (CSS + HTML template): equal keys mean an identical report."""
    missing = [str(p) for p in (unit.template, *unit.inputs) if not Path(p).is_file()]
    if missing:
        raise _report_error(unit, f"missing file(s): {', '.join(missing)}",
                            fix="Run the earlier pipeline stages first (`pk2d run`).")
    payload = {
        "inputs": [sha256_file(p) for p in unit.inputs],
        "template": sha256_file(unit.template),
        "parameters": unit.parameters,
        "version": _version(),
        "formats": sorted(formats),
        "shell": _shell_hash(),
    }
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_manifest(out_dir: str | Path = paths.REPORTS_DIR) -> dict:
    """``out_dir/_manifest.json`` (``{"units": {}}`` when missing or unreadable)."""
    p = Path(out_dir) / MANIFEST_NAME
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
        if isinstance(data, dict) and isinstance(data.get("units"), dict):
            return data
    except (OSError, ValueError):
        pass
    return {"format": 1, "units": {}}


def _rel(path: Path | None, out_dir: Path) -> str | None:
    if path is None:
        return None
    try:
        return Path(path).resolve().relative_to(out_dir.resolve()).as_posix()
    except ValueError:
        return str(path)


def _manifest_entry(res: UnitResult, key: str, out_dir: Path) -> dict:
    return {
        "kind": res.unit.kind, "code": safe_code(res.unit.code), "name": res.unit.name, "key": key,
        "status": res.status, "error": res.error, "cell_index": res.cell_index,
        "outputs": [_rel(o, out_dir) for o in res.outputs], "executed": _rel(res.executed, out_dir),
        "pages": res.pages, "attempts": res.attempts,
        "timings": {k: round(v, 4) for k, v in res.timings.items()},
        "updated": dt.datetime.now().isoformat(timespec="seconds"), "pk2d_version": _version(),
    }


def render_units(units: Iterable[ReportUnit], *, out_dir: str | Path = paths.REPORTS_DIR,
                 formats: Sequence[str] = FORMATS, jobs: int = 2, force: bool = False,
                 retry_failed: bool = False, kernel_name: str = "python3", progress: bool = True,
                 timeout: int | None = 600, retries: int = 2) -> RenderSummary:
    """Render many reports, ``jobs`` at a time; skip unchanged ones; never stop at one failure.

    * ``formats``: any of ``("html", "pdf")``; the PDF is printed from the HTML.
    * ``force``: render even unchanged units. ``retry_failed``: render only the
      units whose last render (in ``out_dir/_manifest.json``) failed.
    * ``timeout``: seconds allowed per cell; ``retries``: extra attempts when the
      kernel fails to *start* (never for errors in the notebook).

    The manifest is rewritten atomically after every unit, so an interrupted
    batch resumes where it stopped. Example (the CLI prints the summary)::

        units = [ReportUnit("desa", code, name, NOTEBOOKS_DIR / "10_village_report.ipynb",
                            {"village": code, "round": 1, "catalogue": "ikk", "lang": "id"},
                            inputs=(PROCESSED_DIR / "areas.parquet",)) for code, name in villages]
        summary = render_units(units, jobs=2)
        print(summary.text()); sys.exit(0 if summary.ok else 1)
    """
    t_batch = time.perf_counter()
    out_dir = Path(out_dir)
    units = list(units)
    requested = (formats,) if isinstance(formats, str) else tuple(formats)
    formats = tuple(f for f in FORMATS if f in requested)
    if not formats or set(requested) - set(FORMATS):
        raise ReportError("batch", f"formats must be some of {FORMATS}, not {requested}",
                          fix="Use formats=('html', 'pdf').")
    seen: dict[str, ReportUnit] = {}
    for u in units:
        if u.id in seen:
            raise ReportError(u.label, f"listed twice (also as {seen[u.id].label!r})",
                              fix="Give every report unit a distinct kind and code.")
        seen[u.id] = u
    jobs = max(1, int(jobs))
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest(out_dir)
    entries: dict = manifest["units"]
    results: dict[str, UnitResult] = {}
    todo: list[tuple[ReportUnit, str]] = []

    def finished(unit: ReportUnit, key: str, res: UnitResult):
        """Record one result; the manifest is rewritten atomically after every unit."""
        results[unit.id] = res
        old = entries.get(unit.id, {})
        entry = _manifest_entry(res, key, out_dir)
        if res.status == "rendered":  # a renamed unit leaves no orphaned report behind
            keep = {_rel(o, out_dir) for o in res.outputs} | {_rel(res.executed, out_dir)}
            for rel in [*old.get("outputs", []), old.get("executed")]:
                if rel and rel not in keep:
                    _remove_inside(out_dir, rel)
        else:  # a failure leaves the previous good files as they were: the manifest still lists them
            entry["outputs"] = old.get("outputs", [])
        entries[unit.id] = entry
        write_json(out_dir / MANIFEST_NAME, manifest)

    for u in units:
        previous = entries.get(u.id, {})
        try:
            key = unit_key(u, formats)
        except ReportError as exc:
            finished(u, "", UnitResult(u, "failed", error=getattr(exc, "problem", exc.message)))
            continue
        if retry_failed and previous.get("status") != "failed":
            results[u.id] = UnitResult(u, "skipped", note="not failed last time")
            continue
        p = unit_paths(u, out_dir)
        fresh = (previous.get("status") == "rendered" and previous.get("key") == key
                 and all(p[f].is_file() for f in formats))
        if fresh and not force and not retry_failed:
            results[u.id] = UnitResult(u, "skipped", outputs=tuple(p[f] for f in formats),
                                       executed=p["executed"], note="unchanged")
            continue
        todo.append((u, key))

    if todo:
        from tqdm import tqdm

        kw = dict(formats=formats, kernel_name=kernel_name, timeout=timeout, retries=max(0, int(retries)),
                  transport=_default_transport())
        bar = tqdm(total=len(todo), desc="laporan", unit="lap", file=sys.stderr, dynamic_ncols=True,
                   disable=None if progress else True, leave=False)
        n_failed = 0

        def done(u, key, res):
            nonlocal n_failed
            finished(u, key, res)
            n_failed += res.status == "failed"
            bar.update(1)
            if n_failed:
                bar.set_postfix_str(f"gagal {n_failed}", refresh=False)

        try:
            if jobs == 1 or len(todo) == 1:
                for u, key in todo:
                    done(u, key, _render_one(u, out_dir, key=key, **kw))
            else:
                # threads: the kernels are child processes anyway (measured: faster than a process
                # pool on 2 cores, and no __main__ guard needed by callers)
                pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="pk2d-render")
                try:
                    futures = {pool.submit(_render_one, u, out_dir, key=key, **kw): (u, key) for u, key in todo}
                    for fut in as_completed(futures):
                        u, key = futures[fut]
                        done(u, key, fut.result())
                finally:  # on Ctrl-C: drop the queue, let running units finish whole
                    pool.shutdown(wait=True, cancel_futures=True)
        finally:
            bar.close()
    return RenderSummary(tuple(results[u.id] for u in units), time.perf_counter() - t_batch, jobs)


def _remove_inside(out_dir: Path, rel: str) -> None:
    """Delete ``out_dir/rel`` only if it really lies inside ``out_dir`` (manifest is data, not trusted)."""
    target = (out_dir / rel).resolve()
    try:
        target.relative_to(out_dir.resolve())
    except ValueError:
        return
    with contextlib.suppress(FileNotFoundError, IsADirectoryError):
        target.unlink()


# --- index page ---------------------------------------------------------------------
INDEX_TEXT = {
    "id": {"title": "Laporan PK2D", "districts": "Laporan kabupaten", "villages": "Laporan desa",
           "code": "Kode", "district": "Kabupaten", "village": "Desa", "kecamatan": "Kecamatan",
           "index": "Indeks", "category": "Kategori", "reports": "Laporan",
           "footer": "Dibuat otomatis oleh pk2d {v}."},
    "en": {"title": "PK2D reports", "districts": "District reports", "villages": "Village reports",
           "code": "Code", "district": "District", "village": "Village", "kecamatan": "Sub-district",
           "index": "Index", "category": "Category", "reports": "Reports",
           "footer": "Generated by pk2d {v}."},
}


def _links(out_dir: Path, kind: str, row: Mapping) -> list[tuple[str, str]]:
    """(label, relative href) for each existing HTML/PDF of a row; explicit ``html``/``pdf`` keys win."""
    code = safe_code(row.get("code", ""))
    stem = f"{code}-{slugify(row.get('name', ''))}" if code else None
    links = []
    for fmt in FORMATS:
        given = row.get(fmt)
        target = Path(given) if given else (out_dir / kind / f"{stem}.{fmt}" if stem else None)
        if target is None:
            continue
        if not target.is_absolute():
            target = out_dir / target
        if not target.is_file():
            continue
        rel = os.path.relpath(target, out_dir)
        links.append((fmt.upper(), quote(Path(rel).as_posix())))
    return links


def _num(value, digits: int, lang: str) -> str:
    if value is None or value == "":
        return "-"
    try:
        return number(float(value), digits, lang)
    except (TypeError, ValueError):
        return _printable(str(value))


def write_index(rows: Iterable[Mapping], out_dir: str | Path = paths.REPORTS_DIR, *,
                districts: Iterable[Mapping | ReportUnit] = (), lang: str = "id", title: str | None = None,
                note: str | None = None) -> Path:
    """Write ``out_dir/index.html``: all villages with relative links to their reports.

    ``rows``: dicts with ``code``, ``name``, ``kecamatan``, ``index``, ``category``,
    ``n`` (optional ``html``/``pdf`` paths; by default the paths
    :func:`render_units` uses). ``districts``: dicts (``code``, ``name``) or
    :class:`ReportUnit` of the district reports. Only existing files are linked.
    Numbers use a decimal comma in Bahasa Indonesia (:func:`pk2d.fmt.number`).
    Self-contained: inline CSS, no external resources.
    """
    from markupsafe import Markup

    out_dir = Path(out_dir)
    lang = lang if lang in LANGS else "id"
    t = INDEX_TEXT[lang]
    village_rows = []
    for r in rows:
        village_rows.append({
            "code": _printable(r.get("code", "")), "name": _printable(r.get("name", "")),
            "kecamatan": _printable(r.get("kecamatan", "") or ""), "index": _num(r.get("index"), 2, lang),
            "category": _printable(r.get("category", "") or ""), "n": _num(r.get("n"), 0, lang),
            "links": _links(out_dir, "desa", r)})
    district_rows = []
    for d in districts:
        if isinstance(d, ReportUnit):
            d = {"code": d.code, "name": d.name}
        district_rows.append({"code": _printable(d.get("code", "")), "name": _printable(d.get("name", "")),
                              "links": _links(out_dir, "kabupaten", d)})
    page = _jinja_env().get_template(INDEX_TEMPLATE.name).render(
        lang=lang, title=title or t["title"], t=t, rows=village_rows, districts=district_rows, note=note,
        css=Markup(_css()), version=_version(), footer=t["footer"].format(v=_version()))
    return write_text(out_dir / "index.html", page)


# --- benchmark baseline -------------------------------------------------------------
def plain_serial_baseline(units: Iterable[ReportUnit], out_dir: str | Path) -> dict:
    """What an analyst does by hand, one unit after another: ``papermill`` CLI, then
    ``jupyter nbconvert --to html --no-input`` (same Python, ``-m`` entry points).

    For benchmarks only (no PDF, no skipping, no parallelism). Returns
    ``{"units": n, "seconds": total, "per_unit": [seconds, ...]}``.
    """
    out_dir = Path(out_dir)
    per_unit = []
    t_all = time.perf_counter()
    for u in units:
        folder = out_dir / u.kind
        folder.mkdir(parents=True, exist_ok=True)
        executed = folder / f"{u.stem}.ipynb"
        t = time.perf_counter()
        cmds = [
            [sys.executable, "-m", "papermill", str(u.template), str(executed), "-y",
             json.dumps(u.parameters, default=str), "--no-progress-bar", "--cwd", str(u.template.resolve().parent)],
            [sys.executable, "-m", "nbconvert", "--to", "html", "--no-input", "--output-dir", str(folder),
             str(executed)],
        ]
        for cmd in cmds:
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                tail = " / ".join(done.stderr.strip().splitlines()[-2:])
                raise ReportError(u.label, f"baseline step {cmd[2]} failed: {_printable(tail, 300)}")
        per_unit.append(time.perf_counter() - t)
    return {"units": len(per_unit), "seconds": time.perf_counter() - t_all, "per_unit": per_unit}
