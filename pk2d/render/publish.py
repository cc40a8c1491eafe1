"""An executed notebook -> one self-contained HTML page (no code, no prompts, no parameters).

nbconvert's ``basic`` template renders the cells only; the page shell
(``templates/page.html.j2`` and ``report.css``) adds the document language,
title, print layout (A4, running title and page numbers) and footer. Nothing
is ever loaded from outside the page: :func:`external_resources` must find
nothing, or the report fails.

>>> css_string('Desa "X"</style>')
'"Desa \\\\"X\\\\"\\\\3C /style\\\\3E "'
"""
from __future__ import annotations

import functools
import hashlib
import logging
import re
import threading
from html.parser import HTMLParser

from .. import __version__, paths
from ..errors import ReportError
from ..text import t
from .unit import ReportUnit

TEMPLATE_DIR = paths.PACKAGE_DIR / "templates"
PAGE_TEMPLATE = TEMPLATE_DIR / "page.html.j2"
INDEX_TEMPLATE = TEMPLATE_DIR / "index.html.j2"
REPORT_CSS = TEMPLATE_DIR / "report.css"
#: cell tags whose whole cell never reaches a report (papermill's two parameter cells first)
REMOVE_CELL_TAGS = ("parameters", "injected-parameters", "papermill-error-cell-tag", "remove-cell", "remove_cell")
REMOVE_INPUT_TAGS = ("remove-input", "remove_input", "hide-input")
REMOVE_OUTPUT_TAGS = ("remove-output", "remove_output", "hide-output")

_local = threading.local()
_RESOURCE_ATTRS = {
    "script": ("src",), "link": ("href",), "img": ("src", "srcset"), "source": ("src", "srcset"),
    "iframe": ("src",), "frame": ("src",), "embed": ("src",), "object": ("data",), "video": ("src", "poster"),
    "audio": ("src",), "track": ("src",), "input": ("src",), "image": ("href", "xlink:href"),
    "use": ("href", "xlink:href"), "feimage": ("href", "xlink:href"), "body": ("background",),
}
_CSS_URL = re.compile(r"""url\(\s*(['"]?)([^'")]*)\1\s*\)|@import\s+(['"])([^'"]*)\3""", re.I)
_SRCSET_URL = re.compile(r"[\s,]*(\S+)")
#: the only parts of a page that can load anything: resource tags, style elements, style attributes
_CANDIDATES = re.compile(
    r"<style\b.*?</style\s*>|<(?:%s)\b[^>]*>|<[a-zA-Z][\w:-]*\s[^>]*?\bstyle\s*=\s*(?:\"[^\"]*\"|'[^']*')[^>]*>"
    % "|".join(sorted(_RESOURCE_ATTRS, key=len, reverse=True)), re.I | re.S)


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
    urls: list[str] = []
    for m in _CANDIDATES.finditer(html):  # parse those parts only: a page is mostly text, tables and SVG
        scanner = _ResourceScanner()  # each part alone (an opened <script> must not swallow the rest)
        scanner.feed(m.group(0))
        scanner.close()
        urls += scanner.urls
    return [u for u in urls if u and not u.lower().startswith(("data:", "#"))]


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

        class Exporter(HTMLExporter):
            """nbconvert's HTML exporter without its two whole-page passes that a report does not need:
            after rendering, HTMLExporter re-parses the page with BeautifulSoup to give images without
            alternative text a placeholder and lab cells tab stops (report figures carry their own
            alternative text, :func:`_alt_for_bare_images` covers any other image, and the basic template
            has no lab cells); and it re-validates the notebook after each preprocessor (papermill wrote a
            valid notebook). Together they were half of a report's HTML time."""

            def _validate_preprocessor(self, nbc, preprocessor):
                pass

            def from_notebook_node(self, nb, resources=None, **kw):
                from nbconvert.exporters.templateexporter import TemplateExporter
                from nbconvert.filters.highlight import Highlight2HTML
                from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter

                langinfo = nb.metadata.get("language_info", {})
                lexer = langinfo.get("pygments_lexer", langinfo.get("name", None))
                self.register_filter("highlight_code", self.filters.get(
                    "highlight_code", Highlight2HTML(pygments_lexer=lexer, parent=self)))
                resources = self._init_resources(resources)
                self.register_filter("filter_data_type", WidgetsDataTypeFilter(
                    notebook_metadata=self._nb_metadata, parent=self, resources=resources))
                return TemplateExporter.from_notebook_node(self, nb, resources, **kw)

        c = Config()
        c.TagRemovePreprocessor.enabled = True
        c.TagRemovePreprocessor.remove_cell_tags = set(REMOVE_CELL_TAGS)
        c.TagRemovePreprocessor.remove_input_tags = set(REMOVE_INPUT_TAGS)
        c.TagRemovePreprocessor.remove_all_outputs_tags = set(REMOVE_OUTPUT_TAGS)
        # "basic" renders the cells only: no page, no CSS, no require.js, no MathJax, no fonts.
        exporter = Exporter(config=c, template_name="basic", exclude_input=True, exclude_input_prompt=True,
                                exclude_output_prompt=True, embed_images=True, anchor_link_text="",
                                log=logging.getLogger(__name__ + ".nbconvert"))
        exporter.register_preprocessor(DropStderr(), enabled=True)
        _local.exporter = exporter
    return exporter


_BARE_IMG = re.compile(r"<img\b(?![^>]*\balt=)", re.I)


def _alt_for_bare_images(body: str, alt: str) -> str:
    """Every ``<img>`` has an ``alt`` (a figure a researcher adds with ``plt.show()`` gets a plain one).

    >>> _alt_for_bare_images('<img src="a"><img alt="x" src="b">', "gambar")
    '<img alt="gambar" src="a"><img alt="x" src="b">'
    """
    from markupsafe import escape

    return _BARE_IMG.sub(f'<img alt="{escape(alt)}"', body)


def jinja_env():
    """The page templates' Jinja environment (autoescaping, strict: a missing value is an error)."""
    env = getattr(_local, "jinja", None)
    if env is None:
        import jinja2

        env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)), autoescape=True,
                                 undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
        _local.jinja = env
    return env


@functools.lru_cache(maxsize=1)
def css() -> str:
    return REPORT_CSS.read_text(encoding="utf-8")


def shell_hash() -> str:
    """sha256 of what the page shell adds (CSS, page template): part of every report's key."""
    h = hashlib.sha256()
    for f in (PAGE_TEMPLATE, REPORT_CSS):
        h.update(f.read_bytes())
    return h.hexdigest()


def css_string(text: str) -> str:
    """``text`` as a quoted CSS string that cannot end the string or the ``<style>`` element."""
    out = []
    for ch in str(text):
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in "<>&" or not ch.isprintable():
            out.append(f"\\{ord(ch):X} ")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def notebook_to_html(nb, unit: ReportUnit, *, key: str = "") -> str:
    """One self-contained HTML page from an executed notebook (code, prompts and parameter cells removed)."""
    from markupsafe import Markup

    resources = {"metadata": {"path": str(unit.template.resolve().parent), "name": unit.stem}}
    body, _ = _exporter().from_notebook_node(nb, resources=resources)
    body = _alt_for_bare_images(body, t("page.no_alt", unit.lang))
    footer = t("page.footer", unit.lang, version=__version__, template=unit.template.name)
    if key:
        footer += f" · {key[:12]}"
    page = jinja_env().get_template(PAGE_TEMPLATE.name).render(
        lang=unit.lang, title=unit.title, kind=unit.kind, version=__version__, css=Markup(css()),
        page_title=Markup(css_string(unit.title)), body=Markup(body), footer=footer)
    bad = external_resources(page)
    if bad:
        err = ReportError(unit.label, f"the report would load external resources ({', '.join(bad[:3])})",
                          fix="Embed figures as image outputs; do not use CDN scripts, web fonts or linked files.")
        err.problem = err.message.split(": ", 1)[-1]
        raise err
    return page
