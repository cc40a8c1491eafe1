"""``reports/index.html``: every province, district and village with relative links to its reports.

Self-contained (inline CSS, no external resources); numbers with a decimal comma in Bahasa
Indonesia; only files that exist are linked.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping
from urllib.parse import quote

from .. import __version__, paths
from ..fmt import number
from ..io import write_text
from ..fmt import printable
from ..text import lang_of, t
from .publish import INDEX_TEMPLATE, css, jinja_env
from .unit import FORMATS, ReportUnit, output_path, safe_code, slugify


def _links(out_dir: Path, kind: str, row: Mapping) -> list[tuple[str, str]]:
    """(label, relative href) for each existing output of a row (HTML, PDF, DOCX, XLSX); explicit
    ``html``/``pdf``/... keys win."""
    code = safe_code(row.get("code", ""))
    stem = f"{code}-{slugify(row.get('name', ''))}" if code else None
    links = []
    for fmt in FORMATS:
        given = row.get(fmt)
        target = Path(given) if given else (output_path(out_dir, kind, stem, fmt) if stem else None)
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
        return printable(str(value))


def write_index(rows: Iterable[Mapping], out_dir: str | Path = paths.REPORTS_DIR, *,
                districts: Iterable[Mapping | ReportUnit] = (), provinces: Iterable[Mapping | ReportUnit] = (),
                lang: str = "id", title: str | None = None, note: str | None = None) -> Path:
    """Write ``out_dir/index.html``: all villages with relative links to their reports.

    ``rows``: dicts with ``code``, ``name``, ``kecamatan``, ``index``, ``category``, ``n``
    (optional ``html``/``pdf`` paths; by default the paths the batch uses). ``districts``: dicts
    (``code``, ``name``) or :class:`~pk2d.render.unit.ReportUnit`; ``provinces`` the same. Only existing
    files are linked.
    """
    from markupsafe import Markup

    out_dir = Path(out_dir)
    lang = lang_of(lang)
    village_rows = [{
        "code": printable(r.get("code", "")), "name": printable(r.get("name", "")),
        "kecamatan": printable(r.get("kecamatan", "") or ""), "index": _num(r.get("index"), 2, lang),
        "category": printable(r.get("category", "") or ""), "n": _num(r.get("n"), 0, lang),
        "round": printable(r.get("round", "") or ""),
        "links": _links(out_dir, "desa", r)} for r in rows]
    def area_rows(items, kind):
        out = []
        for d in items:
            if isinstance(d, ReportUnit):
                d = {"code": d.code, "name": d.name}
            out.append({"code": printable(d.get("code", "")), "name": printable(d.get("name", "")),
                        "links": _links(out_dir, kind, d)})
        return out
    district_rows, province_rows = area_rows(districts, "kabupaten"), area_rows(provinces, "provinsi")
    page = jinja_env().get_template(INDEX_TEMPLATE.name).render(
        lang=lang, title=title or t("index_page.title", lang), t=lambda key, **kw: t(f"index_page.{key}", lang, **kw),
        rows=village_rows, districts=district_rows, provinces=province_rows, note=note, css=Markup(css()), version=__version__,
        footer=t("index_page.footer", lang, v=__version__))
    return write_text(out_dir / "index.html", page)
