"""What a report cell displays: :class:`Fragment` (a Jinja partial with its data) and :class:`Table`.

Both render through the autoescaped templates in ``pk2d/templates/report/``;
their words come from the text catalogue (:mod:`pk2d.text`) in the report's
language. Both are immutable and have ``_repr_html_``, so a notebook cell
shows them with ``display(...)``; ``str()`` gives the HTML.

>>> print(Table(pd.DataFrame({"a": ["1"]}), numeric=("a",)).html().split("<tbody>")[0])
<table class="pk2d-table"><thead><tr><th scope="col" class="num">a</th></tr></thead>
>>> "Nilai indeks" in Fragment("heading", {"key": "report.s_index"}).html()
True
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Mapping

import pandas as pd

from .. import fmt, paths
from ..text import catalogue, lang_of

TEMPLATES = paths.PACKAGE_DIR / "templates" / "report"


@functools.lru_cache(maxsize=1)
def env():
    """The report partials' Jinja environment: autoescaping, strict, text and number helpers."""
    import jinja2
    from markupsafe import Markup, escape

    e = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                           undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)

    @jinja2.pass_context
    def t(ctx, key, **values):
        """A text of the catalogue in the report's language; Markup values (e.g. ``b(...)``) stay markup."""
        text = catalogue()[key][lang_of(ctx.get("lang"))]
        return Markup(escape(text)).format(**values) if values else text

    def lang_bound(f):
        @jinja2.pass_context
        def g(ctx, *args, **kw):
            return f(*args, lang=lang_of(ctx.get("lang")), **kw)
        return g

    e.globals.update(t=t, num=lang_bound(fmt.number), count=lang_bound(fmt.count), pct=lang_bound(fmt.pct),
                     signed=lang_bound(fmt.signed), span=lang_bound(fmt.span), missing=fmt.missing)
    return e


def render(template: str, context: Mapping[str, Any]) -> str:
    return env().get_template(f"{template}.html.j2").render(**context)


class _Shown:
    """What a displayed piece shares: HTML for Jupyter and ``str()``, ``in`` on its HTML, ``+`` to join."""

    def html(self) -> str:  # pragma: no cover - defined by the subclasses
        raise NotImplementedError

    def _repr_html_(self) -> str:
        return self.html()

    def __str__(self) -> str:
        return self.html()

    def __contains__(self, text: str) -> bool:
        return text in self.html()

    def __add__(self, other) -> "Fragments":
        return Fragments((*(self.parts if isinstance(self, Fragments) else (self,)), other))


@dataclass(frozen=True)
class Fragment(_Shown):
    """A piece of a report: the partial ``templates/report/<template>.html.j2`` with its data.

    ``context`` holds numbers and names; ``lang`` picks the texts. The data stays available for
    tests and further use (``fragment.context``).
    """

    template: str
    context: Mapping[str, Any] = field(default_factory=dict)
    lang: str = "id"

    def html(self) -> str:
        return render(self.template, {**self.context, "lang": lang_of(self.lang)})

    def __repr__(self) -> str:  # short: IPython computes a text/plain form of every displayed object
        return f"Fragment({self.template!r})"


@dataclass(frozen=True)
class Fragments(_Shown):
    """Several pieces shown one after the other."""

    parts: tuple

    def html(self) -> str:
        return "".join(p.html() if hasattr(p, "html") else str(p) for p in self.parts if p is not None)

    def __repr__(self) -> str:
        return f"Fragments({len(self.parts)})"


@dataclass(frozen=True)
class Table:
    """A display-ready table: ``frame`` holds strings (numbers already formatted in the language).

    ``numeric`` columns are right-aligned; ``classes`` (same shape as ``frame``, optional) adds CSS
    classes per cell (e.g. shading); ``data`` keeps the unformatted numbers for tests and further use
    (never displayed). ``header=False``: a two-column fact table whose first column heads each row.
    ``group``: a column whose value, each time it changes, becomes a spanning row.
    """

    frame: pd.DataFrame
    caption: str = ""
    note: str = ""
    numeric: tuple[str, ...] = ()
    classes: pd.DataFrame | None = field(default=None, repr=False, compare=False)
    data: pd.DataFrame | None = field(default=None, repr=False, compare=False)
    header: bool = True
    group: str | None = None

    def __len__(self) -> int:
        return len(self.frame)

    def html(self) -> str:
        cols = list(self.frame.columns)
        gi = cols.index(self.group) if self.group in cols else None
        shown = [j for j in range(len(cols)) if j != gi]
        values = self.frame.to_numpy(dtype=object)
        classes = None if self.classes is None else self.classes.to_numpy(dtype=object)
        rows, last = [], object()
        for i, row in enumerate(values):
            group = None
            if gi is not None and row[gi] != last:
                last = group = row[gi]
            cells = []
            for n, j in enumerate(shown):
                cls = " ".join(c for c in ("num" if cols[j] in self.numeric else "",
                                           classes[i, j] if classes is not None and classes[i, j] else "") if c)
                cells.append({"v": "" if fmt.missing(row[j]) else row[j], "cls": cls,
                              "th": not self.header and n == 0})
            rows.append({"group": group, "cells": cells})
        return render("table", {"caption": self.caption, "note": self.note, "header": self.header,
                                "wide": len(shown) > 3, "ncols": len(shown),
                                "columns": [{"name": cols[j], "numeric": cols[j] in self.numeric} for j in shown],
                                "rows": rows})

    def _repr_html_(self) -> str:
        return self.html()

    def __repr__(self) -> str:
        return f"Table({self.caption!r}, {len(self.frame)} rows)"
