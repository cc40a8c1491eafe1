"""An executed report notebook -> an editable Word document (DOCX), with python-docx.

The document holds what the HTML page holds, in the same order: the outputs of
the cells the page keeps (the tags of :mod:`pk2d.render.publish` decide for
both), each output's HTML read element by element. Headings become Word
headings (the report title the document title), paragraphs and lists Word
paragraphs and lists, tables real Word tables (header row repeated on each
page, numbers right-aligned, shading of the heat table kept), figures
pictures (the PNG copy a report figure carries when the batch asks for a Word
document, :func:`pk2d.plots.image`) with their alternative text as the
picture's description. The document language is Bahasa Indonesia (``id-ID``)
unless the report is in English; the footer names pk2d, the template and the
report key, with page numbers.

>>> blocks = parse_html('<h2>Judul</h2><p>Nilai <strong>73,98</strong></p>')
>>> [(b.tag, text_of(b)) for b in blocks]
[('h2', 'Judul'), ('p', 'Nilai 73,98')]
"""
from __future__ import annotations

import base64
import functools
import io
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from .. import __version__
from ..text import t
from .publish import REMOVE_CELL_TAGS, REMOVE_OUTPUT_TAGS, css
from .unit import ReportUnit

#: elements whose content never reaches the document (figures come from their PNG copy)
_SKIP = {"svg", "style", "script", "head", "title"}
_VOID = {"br", "img", "hr", "meta", "link", "input", "col", "wbr"}
_BLOCKS = {"h1", "h2", "h3", "h4", "h5", "h6", "p", "ul", "ol", "table", "figure", "pre", "div", "section",
           "blockquote", "dl", "img", "main", "article"}
LANGS = {"id": "id-ID", "en": "en-GB"}
PICTURE_WIDTH_CM = 16.0


@dataclass
class Node:
    """One element of an output's HTML (text children are ``str``)."""

    tag: str
    attrs: dict = field(default_factory=dict)
    children: list = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())


class _TreeBuilder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node("root")
        self.stack = [self.root]
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if self.skip or tag in _SKIP:
            if tag not in _VOID:
                self.skip += 1
            return
        node = Node(tag, {k: (v or "") for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag, attrs):
        if not self.skip and tag not in _SKIP:
            self.stack[-1].children.append(Node(tag, {k: (v or "") for k, v in attrs}))

    def handle_endtag(self, tag):
        if self.skip:
            if tag not in _VOID:
                self.skip -= 1
            return
        for i in range(len(self.stack) - 1, 0, -1):  # tolerate a missing end tag
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data):
        if not self.skip and data:
            self.stack[-1].children.append(data)


def parse_html(html: str) -> list:
    """The top-level nodes of an HTML fragment (``<svg>``, ``<style>``, ``<script>`` left out)."""
    b = _TreeBuilder()
    b.feed(html)
    b.close()
    return b.root.children


def text_of(node) -> str:
    """The text of a node, white space collapsed."""
    if isinstance(node, str):
        return re.sub(r"\s+", " ", node)
    return re.sub(r"\s+", " ", "".join(text_of(c) for c in node.children)).strip()


@functools.lru_cache(maxsize=1)
def heat_colours() -> dict[str, tuple[str, str]]:
    """``heat-N`` -> (background, text colour), read from ``report.css`` (one source for page and document)."""
    found = {}
    for m in re.finditer(r"td\.(heat-\d+)\s*\{\s*background:\s*#([0-9a-fA-F]{6});\s*color:\s*#([0-9a-fA-F]{6})", css()):
        found[m.group(1)] = (m.group(2).upper(), m.group(3).upper())
    return found


class _Writer:
    """Appends parsed HTML to a python-docx Document."""

    def __init__(self, doc, lang: str):
        self.doc = doc
        self.lang = lang
        self.pending_picture: bytes | None = None

    # --- blocks ---------------------------------------------------------------------------------------
    def blocks(self, nodes, *, figure_png: bytes | None = None) -> None:
        inline: list = []

        def flush():
            if any(text_of(x) for x in inline):
                self.paragraph(inline)
            inline.clear()

        for n in nodes:
            if isinstance(n, Node) and n.tag in _BLOCKS:
                flush()
                self.block(n, figure_png=figure_png)
            else:
                inline.append(n)
        flush()

    def block(self, n: Node, *, figure_png: bytes | None = None) -> None:
        tag = n.tag
        if tag == "h1":
            self.doc.add_heading(text_of(n), level=0)
        elif tag in ("h2", "h3", "h4", "h5", "h6"):
            self.doc.add_heading(text_of(n), level=min(int(tag[1]) - 1, 4))
        elif tag == "p":
            self.paragraph(n.children, muted="pk2d-muted" in n.classes)
        elif tag in ("ul", "ol"):
            self.list(n, numbered=tag == "ol", depth=1)
        elif tag == "table":
            self.table(n)
        elif tag == "figure":
            alt = _figure_alt(n)
            if figure_png is not None:
                self.picture(figure_png, alt)
            else:  # a figure without a PNG copy: its description stands in, said as such
                self.paragraph([f"[{t('page.docx_no_picture', self.lang)}: {alt}]"], muted=True)
            caption = next((c for c in n.children if isinstance(c, Node) and c.tag == "figcaption"), None)
            if caption is not None:
                self.paragraph(caption.children, style="Caption")
        elif tag == "img":
            src = n.attrs.get("src", "")
            if src.startswith("data:image/png;base64,"):
                self.picture(base64.b64decode(src.split(",", 1)[1]), n.attrs.get("alt") or t("page.no_alt", self.lang))
        elif tag == "pre":
            self.paragraph([text_of(n)], mono=True)
        else:
            self.blocks(n.children, figure_png=figure_png)

    def paragraph(self, nodes, *, muted: bool = False, mono: bool = False, style: str | None = None):
        from docx.shared import Pt, RGBColor

        p = self.doc.add_paragraph(style=style)
        self.runs(p, nodes)
        for r in (p.runs if muted or mono else ()):
            if muted:
                r.font.size = Pt(9)
                r.font.color.rgb = RGBColor(0x44, 0x44, 0x44)
            if mono:
                r.font.name = "Consolas"
                r.font.size = Pt(8.5)
        return p

    def runs(self, p, nodes, bold=False, italic=False, mono=False) -> None:
        """Append the inline content of ``nodes`` to paragraph ``p``: white space collapsed, none at
        either end, one run per piece of differently formatted text."""
        pieces = list(_pieces(nodes, bold, italic, mono))
        texts = [x for x in pieces if x[0] is not None]
        if texts:  # no blank at either end of the paragraph's text
            i, j = pieces.index(texts[0]), len(pieces) - 1 - pieces[::-1].index(texts[-1])
            pieces[i] = (pieces[i][0].lstrip(), *pieces[i][1:])
            pieces[j] = (pieces[j][0].rstrip(), *pieces[j][1:])
        for text, b, it, mo in pieces:
            if text is None:
                p.add_run().add_break()
            elif text:
                r = p.add_run(text)
                if b:
                    r.bold = True
                if it:
                    r.italic = True
                if mo:
                    r.font.name = "Consolas"

    def list(self, n: Node, *, numbered: bool, depth: int) -> None:
        style = ("List Number" if numbered else "List Bullet") + ("" if depth == 1 else f" {min(depth, 3)}")
        for li in n.children:
            if not isinstance(li, Node) or li.tag != "li":
                continue
            inline = [c for c in li.children if not (isinstance(c, Node) and c.tag in ("ul", "ol"))]
            p = self.doc.add_paragraph(style=style)
            self.runs(p, inline)
            for c in li.children:
                if isinstance(c, Node) and c.tag in ("ul", "ol"):
                    self.list(c, numbered=c.tag == "ol", depth=depth + 1)

    def table(self, n: Node) -> None:
        from docx.enum.table import WD_TABLE_ALIGNMENT
        from docx.enum.text import WD_ALIGN_PARAGRAPH
        from docx.shared import Pt

        caption = next((c for c in n.children if isinstance(c, Node) and c.tag == "caption"), None)
        rows = []  # (kind, cells): kind head / body / group; cells: (node, is_th, classes)
        for part in n.children:
            if not isinstance(part, Node):
                continue
            trs = [part] if part.tag == "tr" else [c for c in part.children if isinstance(c, Node) and c.tag == "tr"]
            for tr in trs:
                cells = [c for c in tr.children if isinstance(c, Node) and c.tag in ("td", "th")]
                if not cells:
                    continue
                kind = "head" if part.tag == "thead" else "group" if "pk2d-group" in tr.classes else "body"
                rows.append((kind, cells))
        if not rows:
            return
        ncols = max(sum(int(c.attrs.get("colspan") or 1) for c in cells) for _, cells in rows)
        if caption is not None:
            cap = self.paragraph(caption.children, style="Caption")
            cap.paragraph_format.keep_with_next = True
        table = self.doc.add_table(rows=0, cols=ncols)
        table.style = "Table Grid"
        table.alignment = WD_TABLE_ALIGNMENT.CENTER
        small = ncols > 5
        numeric_cols = set()
        for kind, cells in rows:
            if kind == "head":
                numeric_cols |= {j for j, c in enumerate(cells) if "num" in c.classes}
        for kind, cells in rows:
            row = table.add_row()
            if kind == "head":
                _repeat_header(row)
            row_cells = row.cells  # python-docx rebuilds this list on every access
            j = 0
            for c in cells:
                span = int(c.attrs.get("colspan") or 1)
                cell = row_cells[j]
                if span > 1:
                    cell = cell.merge(row_cells[min(j + span, ncols) - 1])
                para = cell.paragraphs[0]
                self.runs(para, c.children, bold=c.tag == "th" or kind == "group")
                runs = para.runs  # an XPath query each time: once per cell
                if "num" in c.classes or (kind != "head" and j in numeric_cols and c.tag == "td"):
                    para.alignment = WD_ALIGN_PARAGRAPH.RIGHT
                if small:
                    for r in runs:
                        r.font.size = Pt(8.5)
                if kind == "head":
                    _shade(cell, "EEEEEE")
                for cls in c.classes:
                    if cls in heat_colours():
                        from docx.shared import RGBColor

                        bg, fg = heat_colours()[cls]
                        _shade(cell, bg)
                        for r in runs:
                            r.font.color.rgb = RGBColor.from_string(fg)
                if "mono" in c.classes:
                    for r in runs:
                        r.font.name = "Consolas"
                        r.font.size = Pt(8)
                j += span
        self.doc.add_paragraph()  # Word joins two adjacent tables into one

    def picture(self, png: bytes, alt: str) -> None:
        from docx.enum.text import WD_ALIGN_PARAGRAPH
        from docx.shared import Cm

        p = self.doc.add_paragraph()
        p.alignment = WD_ALIGN_PARAGRAPH.CENTER
        shape = p.add_run().add_picture(io.BytesIO(png), width=Cm(PICTURE_WIDTH_CM))
        doc_pr = shape._inline.docPr  # the alternative text Word shows and reads aloud
        doc_pr.set("descr", alt)
        doc_pr.set("title", alt[:80])


def _pieces(nodes, bold: bool, italic: bool, mono: bool):
    """(text, bold, italic, mono) of each text piece of ``nodes`` in order; ``(None, ...)`` for a line break."""
    for n in nodes:
        if isinstance(n, str):
            text = re.sub(r"\s+", " ", n)
            if text:
                yield text, bold, italic, mono
        elif n.tag == "br":
            yield None, bold, italic, mono
        elif n.tag in ("strong", "b", "th"):
            yield from _pieces(n.children, True, italic, mono)
        elif n.tag in ("em", "i", "cite"):
            yield from _pieces(n.children, bold, True, mono)
        elif n.tag in ("code", "kbd", "samp", "tt"):
            yield from _pieces(n.children, bold, italic, True)
        elif n.tag in ("ul", "ol", "table", "figure"):  # a block inside an inline run: its text
            yield text_of(n), bold, italic, mono
        else:
            yield from _pieces(n.children, bold, italic, mono)


def _figure_alt(n: Node) -> str:
    """The alternative text of a report figure: its SVG's ``aria-label``, copied onto the ``<figure>`` by
    :func:`_with_alt` (the parser skips the SVG itself), else the figure's text."""
    return n.attrs.get("data-alt") or text_of(n) or ""


def _repeat_header(row) -> None:
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    tr_pr = row._tr.get_or_add_trPr()
    el = OxmlElement("w:tblHeader")
    el.set(qn("w:val"), "true")
    tr_pr.append(el)


def _shade(cell, fill: str) -> None:
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    tc_pr = cell._tc.get_or_add_tcPr()
    shd = OxmlElement("w:shd")
    shd.set(qn("w:val"), "clear")
    shd.set(qn("w:color"), "auto")
    shd.set(qn("w:fill"), fill)
    tc_pr.append(shd)


_ARIA = re.compile(r'<figure class="pk2d-figure"><svg\b[^>]*\baria-label="([^"]*)"', re.S)


def _with_alt(html: str) -> str:
    """Copy each report figure's ``aria-label`` onto its ``<figure>`` (the parser skips the SVG)."""
    import html as h

    return _ARIA.sub(lambda m: f'<figure class="pk2d-figure" data-alt="{m.group(1)}"><svg aria-label="'
                     f'{h.escape(h.unescape(m.group(1)), quote=True)}"', html)


def _setup(doc, unit: ReportUnit, key: str) -> None:
    """Page (A4, 2 cm margins), language, fonts, document properties and footer."""
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn
    from docx.shared import Cm, Pt

    for s in doc.sections:
        s.page_height, s.page_width = Cm(29.7), Cm(21.0)
        s.left_margin = s.right_margin = s.top_margin = s.bottom_margin = Cm(2)
    lang = LANGS.get(unit.lang, "id-ID")
    styles = doc.styles.element
    rpr = styles.find(qn("w:docDefaults")).find(qn("w:rPrDefault")).find(qn("w:rPr"))
    el = rpr.find(qn("w:lang"))
    if el is None:
        el = OxmlElement("w:lang")
        rpr.append(el)
    el.set(qn("w:val"), lang)
    el.set(qn("w:eastAsia"), lang)
    normal = doc.styles["Normal"]
    normal.font.name = "Calibri"
    normal.font.size = Pt(10.5)
    cp = doc.core_properties
    cp.title = unit.title
    cp.language = lang
    cp.author = f"pk2d {__version__}"
    cp.subject = unit.label
    cp.keywords = "PK2D; IKK; SINTETIS" if "SINTETIS" in unit.name.upper() else "PK2D; IKK"
    cp.comments = f"{t('page.footer', unit.lang, version=__version__, template=unit.template.name)}" + (
        f" · {key[:12]}" if key else "")
    footer = doc.sections[0].footer.paragraphs[0]
    footer.alignment = WD_ALIGN_PARAGRAPH.CENTER
    run = footer.add_run(cp.comments + " · ")
    run.font.size = Pt(8)
    fld = footer.add_run()
    fld.font.size = Pt(8)
    for kind, text in (("begin", None), (None, "PAGE"), ("end", None)):
        if kind:
            e = OxmlElement("w:fldChar")
            e.set(qn("w:fldCharType"), kind)
        else:
            e = OxmlElement("w:instrText")
            e.set(qn("xml:space"), "preserve")
            e.text = text
        fld._r.append(e)


def published_outputs(nb):
    """The outputs the HTML page shows, in order: those of code cells not removed by a tag, without
    stderr (the same rule as :func:`pk2d.render.publish.notebook_to_html`)."""
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        tags = set(cell.get("metadata", {}).get("tags", []))
        if tags & set(REMOVE_CELL_TAGS) or tags & set(REMOVE_OUTPUT_TAGS):
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                continue
            yield out


def notebook_to_docx(nb, unit: ReportUnit, path: str | Path, *, key: str = "") -> Path:
    """Write the Word document of an executed report notebook to ``path`` (atomically)."""
    import docx

    from ..io import write_bytes

    doc = docx.Document()
    _setup(doc, unit, key)
    w = _Writer(doc, unit.lang)
    for out in published_outputs(nb):
        kind = out.get("output_type")
        if kind == "stream":
            text = "".join(out.get("text", ""))
            if text.strip():
                w.paragraph([text.rstrip()], mono=True)
            continue
        data = out.get("data", {})
        png = data.get("image/png")
        png = base64.b64decode(png) if isinstance(png, str) else None
        if "text/html" in data:
            html = data["text/html"]
            w.blocks(parse_html(_with_alt("".join(html) if isinstance(html, list) else html)), figure_png=png)
        elif png is not None:
            w.picture(png, t("page.no_alt", unit.lang))
        elif "text/plain" in data:
            w.paragraph(["".join(data["text/plain"])], mono=True)
    buf = io.BytesIO()
    doc.save(buf)
    return write_bytes(Path(path), buf.getvalue())
