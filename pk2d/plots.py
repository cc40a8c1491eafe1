"""Figures (matplotlib): readable in print and greyscale, Bahasa Indonesia by default.

Every function takes the tidy tables pk2d writes, draws on ``ax`` (a new
figure when ``None``) and returns the Axes. Numbers use a decimal comma in
Bahasa Indonesia.

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

GREYS = ["#222222", "#666666", "#aaaaaa", "#dddddd"]
TEXT = {
    "id": {"family_index": "Indeks keluarga (0-100)", "families": "Jumlah keluarga",
           "rejects": "Baris ditolak", "rule": "Aturan", "index": "Indeks (0-100)", "census": "sensus"},
    "en": {"family_index": "Family index (0-100)", "families": "Number of families",
           "rejects": "Rows rejected", "rule": "Rule", "index": "Index (0-100)", "census": "census"},
}


def _ax(ax, size=(7, 3.5)):
    if ax is None:
        _, ax = plt.subplots(figsize=size, layout="constrained")
    return ax


def _decimal_axis(ax, axis="x", lang="id", digits=0):
    fmt = FuncFormatter(lambda v, _: number(v, digits, lang))
    (ax.xaxis if axis == "x" else ax.yaxis).set_major_formatter(fmt)


def rejects_by_rule(rejects: pd.DataFrame, ax=None, lang: str = "id"):
    """Horizontal bars: rejected rows per table and rule."""
    ax = _ax(ax)
    counts = rejects.groupby(["table", "rule"]).size().sort_values()
    if counts.empty:
        ax.text(0.5, 0.5, "tidak ada baris ditolak" if lang == "id" else "no rows rejected", ha="center")
        ax.set_axis_off()
        return ax
    labels = [f"{t}: {r}" for t, r in counts.index]
    ax.barh(labels, counts.to_numpy(), color=GREYS[1])
    for y, v in enumerate(counts.to_numpy()):
        ax.text(v, y, f" {v}", va="center", fontsize=8)
    ax.set_xlabel(TEXT[lang]["rejects"])
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def family_distribution(index: pd.Series, cutoffs=(50, 75), ax=None, lang: str = "id"):
    """Histogram of family indices with the category cut-offs marked."""
    ax = _ax(ax)
    ax.hist(index.dropna().to_numpy(), bins=np.arange(0, 102.5, 2.5), color=GREYS[2], edgecolor=GREYS[0],
            linewidth=0.5)
    for c in cutoffs:
        ax.axvline(c, color=GREYS[0], linestyle="--", linewidth=1)
    ax.set_xlabel(TEXT[lang]["family_index"])
    ax.set_ylabel(TEXT[lang]["families"])
    ax.set_xlim(0, 100)
    _decimal_axis(ax, "x", lang)
    ax.spines[["top", "right"]].set_visible(False)
    return ax


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
    ax.set_xlabel(TEXT[lang]["index"])
    _decimal_axis(ax, "x", lang)
    ax.spines[["top", "right"]].set_visible(False)
    return ax


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
    ax.set_xlabel(TEXT[lang]["index"])
    _decimal_axis(ax, "x", lang)
    ax.legend(fontsize=8, loc="lower right", frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def indicator_gaps(gaps: pd.DataFrame, ax=None, lang: str = "id", top: int = 12):
    """Bars of the gap (village minus kabupaten, percentage points) for the largest gaps."""
    g = gaps.reindex(gaps["gap"].abs().sort_values(ascending=False).index).head(top).sort_values("gap")
    ax = _ax(ax, size=(7, 0.32 * len(g) + 1))
    colors = [GREYS[0] if v < 0 else GREYS[2] for v in g["gap"]]
    ax.barh([f"{i} {n[:38]}" for i, n in zip(g["indicator"], g["name"])], g["gap"], color=colors,
            edgecolor=GREYS[0], linewidth=0.5)
    ax.axvline(0, color=GREYS[0], linewidth=0.8)
    ax.set_xlabel("Selisih dengan kabupaten (poin persen)" if lang == "id" else "Gap to kabupaten (percentage points)")
    ax.tick_params(axis="y", labelsize=7)
    _decimal_axis(ax, "x", lang)
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def change_over_rounds(change: pd.DataFrame, ax=None, lang: str = "id"):
    """Dot-and-whisker of the change in the index per village between rounds."""
    c = change.sort_values("change")
    ax = _ax(ax, size=(7, 0.3 * len(c) + 1))
    y = np.arange(len(c))
    ax.hlines(y, c["ci_low"], c["ci_high"], color=GREYS[2], linewidth=3)
    ax.scatter(c["change"], y, color=GREYS[0], zorder=3, s=25)
    ax.axvline(0, color=GREYS[0], linewidth=0.8)
    ax.set_yticks(y, c["nama_desa"], fontsize=8)
    ax.set_xlabel("Perubahan indeks antar putaran (poin)" if lang == "id" else "Change in the index between rounds (points)")
    _decimal_axis(ax, "x", lang, 1)
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def rank_ranges(summary: pd.DataFrame, ax=None, lang: str = "id"):
    """Sensitivity: rank range (5th-95th percentile over method choices) and nominal rank per village."""
    s = summary.sort_values("rank", ascending=False)
    ax = _ax(ax, size=(7, 0.3 * len(s) + 1))
    y = np.arange(len(s))
    ax.hlines(y, s["rank_p05"], s["rank_p95"], color=GREYS[2], linewidth=4)
    ax.scatter(s["rank"], y, color=GREYS[0], zorder=3, s=25, marker="D")
    ax.set_yticks(y, [f"{n} ({number(r * 100, 0, lang)}%)" for n, r in zip(s["name"], s["category_robustness"])],
                  fontsize=8)
    ax.set_xlabel("Peringkat (1 = tertinggi); dalam kurung: kategori tetap" if lang == "id"
                  else "Rank (1 = highest); in brackets: category kept")
    ax.invert_xaxis()
    ax.spines[["top", "right"]].set_visible(False)
    return ax
