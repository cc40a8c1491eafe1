"""Figures (matplotlib): readable in print and greyscale, Bahasa Indonesia by default.

Every function takes the tidy tables pk2d writes, draws on ``ax`` (a new
figure when ``None``) and returns the Axes. Numbers use a decimal comma in
Bahasa Indonesia; axis words come from the text catalogue. :func:`image`
turns an Axes into what a report shows: an SVG (vector, sharp in print, text
kept as text for screen readers and search) with its alternative text.

>>> import pandas as pd
>>> ax = family_distribution(pd.Series([55.0, 70.0, 81.0]), cutoffs=[50, 75])
>>> ax.get_xlabel()
'Indeks keluarga (0-100)'
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter

from .fmt import number
from .text import t

GREYS = ["#222222", "#666666", "#aaaaaa", "#dddddd"]
#: margins around the axes, inches (left is fitted to the longest y label)
MARGIN = {"left": 0.55, "right": 0.2, "top": 0.2, "bottom": 0.55}
PNG_DPI = 200  #: resolution of the PNG copies of figures (Word documents)
CHAR_IN = 0.066  #: width of one 8-pt character of DejaVu Sans, inches (for the left margin)


def _t(key: str, lang: str) -> str:
    return t(f"plot.{key}", lang)


def _ax(ax, size=(7, 3.5)):
    if ax is None:
        _, ax = plt.subplots(figsize=size)
    return ax


def _fit(ax, *, bottom: float | None = None, top: float | None = None):
    """Fixed margins (inches; the left one from the longest y tick label): as tidy as a layout engine
    for these one-axes figures, at a third of the cost."""
    fig = ax.figure
    if len(fig.axes) != 1:
        return ax
    w, h = fig.get_size_inches()
    labels = [tl.get_text() for tl in ax.get_yticklabels()]
    longest = max((len(x) for x in labels), default=0) if ax.yaxis.get_visible() and len(ax.get_yticks()) else 0
    left = max(MARGIN["left"], longest * CHAR_IN + 0.25) if longest else 0.3
    b = MARGIN["bottom"] if bottom is None else bottom
    tp = MARGIN["top"] if top is None else top
    fig.subplots_adjust(left=min(left / w, 0.6), right=1 - MARGIN["right"] / w, bottom=min(b / h, 0.6),
                        top=max(1 - tp / h, 0.4))
    return ax


def _decimal_axis(ax, axis="x", lang="id", digits=0):
    fmt = FuncFormatter(lambda v, _: number(v, digits, lang))
    (ax.xaxis if axis == "x" else ax.yaxis).set_major_formatter(fmt)


def rejects_by_rule(rejects: pd.DataFrame, ax=None, lang: str = "id"):
    """Horizontal bars: rejected rows per table and rule."""
    ax = _ax(ax)
    counts = rejects.groupby(["table", "rule"]).size().sort_values()
    if counts.empty:
        ax.text(0.5, 0.5, _t("no_rejects", lang), ha="center")
        ax.set_axis_off()
        return _fit(ax)
    labels = [f"{t}: {r}" for t, r in counts.index]
    ax.barh(labels, counts.to_numpy(), color=GREYS[1])
    for y, v in enumerate(counts.to_numpy()):
        ax.text(v, y, f" {v}", va="center", fontsize=8)
    ax.set_xlabel(_t("rejects", lang))
    ax.spines[["top", "right"]].set_visible(False)
    return _fit(ax)


def family_distribution(index: pd.Series, cutoffs=(50, 75), ax=None, lang: str = "id"):
    """Histogram of family indices (2-point bins, as in the reports) with the category cut-offs marked."""
    edges = np.linspace(0, 100, 51)
    n, _ = np.histogram(index.dropna().to_numpy(float), bins=edges)
    return family_histogram(pd.DataFrame({"low": edges[:-1], "high": edges[1:], "n": n}), cutoffs, ax, lang)


def league(areas: pd.DataFrame, ax=None, lang: str = "id", highlight: str | None = None, cutoffs=(50, 75)):
    """Dot-and-whisker chart of area indices (sorted), intervals where estimated."""
    a = areas.sort_values("index")
    ax = _ax(ax, size=(7, 0.3 * len(a) + 1))
    y = np.arange(len(a))
    colors = [GREYS[0] if c == highlight else GREYS[1] for c in a["code"]]
    ax.hlines(y, a["ci_low"], a["ci_high"], color=GREYS[2], linewidth=3)
    ax.scatter(a["index"], y, color=colors, zorder=3, s=[60 if c == highlight else 25 for c in a["code"]])
    labels = [f"{n} (n={number(k, 0, lang)})" for n, k in zip(a["name"], a["n_families"])]
    ax.set_yticks(y, labels, fontsize=8)
    for c in cutoffs:
        ax.axvline(c, color=GREYS[0], linestyle=":", linewidth=1)
    ax.set_xlabel(_t("index", lang))
    _decimal_axis(ax, "x", lang)
    ax.spines[["top", "right"]].set_visible(False)
    return _fit(ax)


def dimension_profile(profile: pd.DataFrame, ax=None, lang: str = "id"):
    """Grouped bars: dimension scores of the focus village vs kecamatan vs kabupaten.

    ``profile`` has one row per dimension (``name``) and one column per unit
    (e.g. ``Desa``, ``Kecamatan``, ``Kabupaten``); hatching keeps the bars
    distinguishable in greyscale.
    """
    ax = _ax(ax, size=(7, 3.8))
    units = [c for c in profile.columns if c != "name"]
    y = np.arange(len(profile))
    h = 0.8 / len(units)
    for k, u in enumerate(units):
        vals = profile[u].to_numpy(float)
        ax.barh(y + (k - (len(units) - 1) / 2) * h, vals, height=h, color=GREYS[k % 4], edgecolor=GREYS[0],
                hatch=["", "//", ".."][k % 3], label=u, linewidth=0.5)
    ax.set_yticks(y, profile["name"], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel(_t("index", lang))
    _decimal_axis(ax, "x", lang)
    ax.legend(fontsize=8, loc="lower right", frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return _fit(ax)


def indicator_gaps(gaps: pd.DataFrame, ax=None, lang: str = "id", top: int = 12):
    """Bars of the gap (village minus kabupaten, percentage points) for the largest gaps."""
    g = gaps.reindex(gaps["gap"].abs().sort_values(ascending=False).index).head(top).sort_values("gap")
    ax = _ax(ax, size=(7, 0.32 * len(g) + 1))
    colors = [GREYS[0] if v < 0 else GREYS[2] for v in g["gap"]]
    ax.barh([f"{i} {n[:38]}" for i, n in zip(g["indicator"], g["name"])], g["gap"], color=colors,
            edgecolor=GREYS[0], linewidth=0.5)
    ax.axvline(0, color=GREYS[0], linewidth=0.8)
    ax.set_xlabel(_t("gap", lang))
    ax.tick_params(axis="y", labelsize=7)
    _decimal_axis(ax, "x", lang)
    ax.spines[["top", "right"]].set_visible(False)
    return _fit(ax)


def change_over_rounds(change: pd.DataFrame, ax=None, lang: str = "id"):
    """Dot-and-whisker of the change in the index per village between rounds."""
    c = change.sort_values("change")
    ax = _ax(ax, size=(7, 0.3 * len(c) + 1))
    y = np.arange(len(c))
    ax.hlines(y, c["ci_low"], c["ci_high"], color=GREYS[2], linewidth=3)
    ax.scatter(c["change"], y, color=GREYS[0], zorder=3, s=25)
    ax.axvline(0, color=GREYS[0], linewidth=0.8)
    ax.set_yticks(y, c["nama_desa"], fontsize=8)
    ax.set_xlabel(_t("change", lang))
    _decimal_axis(ax, "x", lang, 1)
    ax.spines[["top", "right"]].set_visible(False)
    return _fit(ax)


def effects(effects: pd.DataFrame, ax=None, lang: str = "id"):
    """Dot-and-whisker of estimated effects (``label``, ``estimate``, ``ci_low``, ``ci_high``), in the
    order given (first on top), with the zero line: e.g. the difference-in-differences of each desa lokus.

    >>> ax = effects(pd.DataFrame({"label": ["A", "B"], "estimate": [4.0, -1.0], "ci_low": [2.0, -3.0],
    ...                            "ci_high": [6.0, 1.0]}))
    >>> [t.get_text() for t in ax.get_yticklabels()]
    ['B', 'A']
    """
    e = effects.iloc[::-1]
    ax = _ax(ax, size=(7, 0.35 * len(e) + 1))
    y = np.arange(len(e))
    ax.hlines(y, e["ci_low"], e["ci_high"], color=GREYS[2], linewidth=3)
    ax.scatter(e["estimate"], y, color=GREYS[0], zorder=3, s=25)
    ax.axvline(0, color=GREYS[0], linewidth=0.8)
    ax.set_yticks(y, [str(x) for x in e["label"]], fontsize=8)
    ax.set_xlabel(_t("did", lang))
    _decimal_axis(ax, "x", lang, 1)
    ax.spines[["top", "right"]].set_visible(False)
    return _fit(ax)


def rank_ranges(summary: pd.DataFrame, ax=None, lang: str = "id"):
    """Sensitivity: rank range (5th-95th percentile over method choices) and nominal rank per village."""
    s = summary.sort_values("rank", ascending=False)
    ax = _ax(ax, size=(7, 0.3 * len(s) + 1))
    y = np.arange(len(s))
    ax.hlines(y, s["rank_p05"], s["rank_p95"], color=GREYS[2], linewidth=4)
    ax.scatter(s["rank"], y, color=GREYS[0], zorder=3, s=25, marker="D")
    ax.set_yticks(y, [f"{n} ({number(r * 100, 0, lang)}%)" for n, r in zip(s["name"], s["category_robustness"])],
                  fontsize=8)
    ax.set_xlabel(_t("rank_range", lang))
    ax.invert_xaxis()
    ax.spines[["top", "right"]].set_visible(False)
    return _fit(ax)


def family_histogram(hist: pd.DataFrame, cutoffs=(50, 75), ax=None, lang: str = "id"):
    """Histogram of family indices from binned counts (``low``, ``high``, ``n``), cut-offs marked."""
    ax = _ax(ax, size=(7, 3))
    if len(hist):  # one outline for all bins (a bar per bin costs a patch each)
        edges = np.arange(0.0, 100.0 + 1e-9, float((hist["high"] - hist["low"]).iloc[0]))
        counts = np.zeros(len(edges) - 1)
        counts[np.clip(np.searchsorted(edges, hist["low"].to_numpy(float) + 1e-9) - 1, 0, len(counts) - 1)] = hist["n"]
        ax.stairs(counts, edges, fill=True, color=GREYS[2])
        ax.stairs(counts, edges, color=GREYS[0], linewidth=0.6)
    for c in cutoffs:
        ax.axvline(c, color=GREYS[0], linestyle="--", linewidth=1)
    ax.set_xlabel(_t("family_index", lang))
    ax.set_ylabel(_t("families", lang))
    ax.set_xlim(0, 100)
    _decimal_axis(ax, "x", lang)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.spines[["top", "right"]].set_visible(False)
    return _fit(ax)


def position(bins: pd.DataFrame, peers: pd.DataFrame, cutoffs=(50, 75), ax=None, lang: str = "id"):
    """A compact picture of a village among all villages of its kabupaten, whatever their number:
    the villages' indices as a grey histogram (``bins``: ``low``, ``n``, 1-point bins), the village
    (``peers`` row with ``self``) as a large dot with its interval, the other villages of its kecamatan
    (the other ``peers`` rows) as triangles."""
    ax = _ax(ax, size=(7, 2.4))
    if len(bins):
        edges = np.arange(0.0, 101.0, 1.0)
        counts = np.zeros(100)
        counts[np.clip(bins["low"].to_numpy(int), 0, 99)] = bins["n"]
        ax.stairs(counts, edges, fill=True, color=GREYS[3], label=_t("all_villages", lang))
        ax.stairs(counts, edges, color=GREYS[2], linewidth=0.6)
    top = max(float(bins["n"].max()) if len(bins) else 1.0, 1.0)
    others = peers[~peers["self"]]
    if len(others):
        ax.scatter(others["index"], np.full(len(others), top * 1.15), marker="v", color=GREYS[1], s=28, zorder=3,
                   label=_t("same_kecamatan", lang))
    me = peers[peers["self"]]
    if len(me):
        r = me.iloc[0]
        ax.hlines(top * 1.45, r["ci_low"], r["ci_high"], color=GREYS[0], linewidth=2, zorder=3)
        ax.scatter([r["index"]], [top * 1.45], color=GREYS[0], s=60, zorder=4, label=_t("this_village", lang))
    for c in cutoffs:
        ax.axvline(c, color=GREYS[0], linestyle=":", linewidth=1)
    lo = min([*(bins["low"] if len(bins) else []), *peers["ci_low"].dropna(), 100.0])
    ax.set_xlim(max(0.0, np.floor(lo / 5) * 5 - 5), 100)
    ax.set_ylim(0, top * 1.7)
    ax.set_yticks([])
    ax.set_xlabel(_t("index", lang))
    _decimal_axis(ax, "x", lang)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.3), frameon=False, ncol=3)
    ax.spines[["top", "right", "left"]].set_visible(False)
    return _fit(ax, bottom=0.85)


def category_bars(counts: pd.DataFrame, ax=None, lang: str = "id"):
    """Horizontal bars of villages per category (``label``, ``n_villages``), hatched greys."""
    ax = _ax(ax, size=(7, 0.5 * len(counts) + 1))
    y = np.arange(len(counts))
    bars = ax.barh(y, counts["n_villages"].to_numpy(), color=[GREYS[(k + 1) % 4] for k in range(len(counts))],
                   edgecolor=GREYS[0], linewidth=0.6)
    for k, bar in enumerate(bars):
        bar.set_hatch(["", "//", ".."][k % 3])
    ax.set_yticks(y, counts["label"], fontsize=8)
    ax.invert_yaxis()
    for yy, v in zip(y, counts["n_villages"]):
        ax.text(v, yy, f" {number(int(v), 0, lang)}", va="center", fontsize=8)
    ax.set_xlabel(_t("villages", lang))
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.spines[["top", "right"]].set_visible(False)
    return _fit(ax)


class Figure:
    """A figure as a report shows it: an SVG with ``role="img"``, its alternative text as ``<title>`` and
    ``aria-label``, and ids of its own (several figures on one page never share an id)."""

    _count = 0

    def __init__(self, svg: str, alt: str, png: bytes | None = None):
        self.alt = alt
        self.svg = svg
        self.png = png

    def _repr_html_(self) -> str:
        return self.svg

    def _repr_png_(self) -> bytes | None:
        """A PNG copy when one was asked for (for the Word document): HTML pages show the SVG."""
        return self.png

    def __repr__(self) -> str:
        return f"Figure({self.alt[:40]!r})"


def image(ax, alt: str, *, png: bool = False) -> Figure:
    """A figure (or an Axes of it) as an accessible inline SVG for ``display(...)``, then closed.

    Text stays text (``svg.fonttype: none``; the report's fonts are DejaVu, as matplotlib's), no
    creation date is written, and every id is prefixed so that figures of one page do not collide.
    ``png``: also keep a 200-dpi PNG (a Word document embeds pictures, not SVG); notebooks then
    carry it as a second representation that HTML pages do not use.
    """
    import html
    import io
    import re
    import secrets

    fig = getattr(ax, "figure", ax)
    buf = io.StringIO()
    prefix = f"f{secrets.token_hex(3)}-"
    with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": prefix}):
        fig.savefig(buf, format="svg", facecolor="white", metadata={"Date": None})
    picture = None
    if png:
        raster = io.BytesIO()
        fig.savefig(raster, format="png", dpi=PNG_DPI, facecolor="white", metadata={"Software": None})
        picture = raster.getvalue()
    plt.close(fig)
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]  # no XML prolog or DOCTYPE inside HTML
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}{m.group(1)}"', svg)
    svg = re.sub(r'(href="#|url\(#)([^")]+)', lambda m: f"{m.group(1)}{prefix}{m.group(2)}", svg)
    label = html.escape(alt, quote=True)
    svg = re.sub(r"<svg\b", f'<svg role="img" aria-label="{label}"', svg, count=1)
    svg = re.sub(r"(<svg[^>]*>)", lambda m: f"{m.group(1)}<title>{label}</title>", svg, count=1)
    return Figure(f'<figure class="pk2d-figure">{svg}</figure>', alt, picture)
