"""Which cells of the report tables may be published: the small-cell rule, and sensitive indicators.

:func:`small_cells` is the rule of every published table (:func:`pk2d.report.privacy.suppress_small`
applies it when a report shows RT and per-RT counts): a cell with fewer than
:data:`pk2d.defaults.MIN_CELL` families is hidden and, when exactly one cell of a set is hidden, the
next smallest is hidden too (secondary suppression), so that it cannot be recovered from a total.

The rest is decided here, with the report tables at the end of the compare stage, because it needs
every village of a kabupaten at once. An indicator the catalogue marks ``sensitive: true``
(violence, child marriage, child labour, trouble with the law, disability) is a count of families
in every table that prints its share (share × the families it applies to), its families to reach
the target, its trend or its gap, and in every sum of families over indicators or villages:

* **a village's cell** (round, village, indicator) is hidden when fewer than ``MIN_CELL``
  families meet it or fail it (0 included: ``<5`` stands for 0 to 4), with secondary suppression
  among the villages of its kabupaten; the families it applies to are hidden too when fewer than
  ``MIN_CELL``;
* **the kabupaten's share** (printed in every village report of the kabupaten) is hidden when its
  own count is small or when any village's cell is hidden (it would give their sum away);
* **a sum that holds hidden cells** (an agency's families in a village's follow-up plan, an
  agency's workload in the district and province reports) is hidden when what a reader can work
  out from it, the total less every published part, holds fewer than ``MIN_CELL`` families failing
  or meeting the hidden indicators.

Only flags are stored (``hidden``, ``kab_hidden``, ...); the report code writes the suppression
mark of the text catalogue in their place.

>>> small_cells([3, 40, 41]).tolist(), small_cells([3, 4, 41]).tolist(), small_cells([5, 6]).tolist()
([True, True, False], [True, True, False], [False, False])
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..defaults import MIN_CELL

CELL_COLUMNS = ["round", "kabupaten", "kode_desa", "indicator", "n_met", "n_not_met", "hidden", "hidden_n_app"]
KAB_COLUMNS = ["round", "kabupaten", "indicator", "kab_hidden"]
#: the flags a report table row of an indicator carries (all False for an indicator that is not sensitive)
FLAGS = ("sensitive", "hidden", "hidden_n_app", "kab_hidden")


def small_cells(n, *, min_n: int = MIN_CELL, secondary: bool = True) -> np.ndarray:
    """Which cells to hide: fewer than ``min_n`` families; with ``secondary``, when exactly one is
    hidden, the next smallest too (a missing count is never hidden, nor chosen)."""
    n = pd.to_numeric(pd.Series(np.asarray(n, dtype=object)), errors="coerce").to_numpy(float)
    hide = n < min_n
    others = ~hide & np.isfinite(n)
    if secondary and hide.sum() == 1 and others.any():
        hide[int(np.argmin(np.where(others, n, np.inf)))] = True
    return hide


def indicator_cells(cat, scores: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The cells of the catalogue's sensitive indicators, every round at once: per round, village and
    indicator (:data:`CELL_COLUMNS`: families meeting and not meeting, ``hidden``, ``hidden_n_app``)
    and per round, kabupaten and indicator (:data:`KAB_COLUMNS`)."""
    ids = [i.id for i in cat.indicators if getattr(i, "sensitive", False)]
    if not ids or not len(scores):
        return pd.DataFrame(columns=CELL_COLUMNS), pd.DataFrame(columns=KAB_COLUMNS)
    x = scores[ids].astype("float64").to_numpy()
    keys = pd.DataFrame({"round": scores["putaran"].astype("int64").to_numpy(),
                         "kabupaten": scores["kode_kabupaten"].to_numpy(), "kode_desa": scores["kode_desa"].to_numpy()})
    parts = []
    for j, ind in enumerate(ids):
        c = keys.assign(n_met=x[:, j] == 1, n_not_met=x[:, j] == 0).groupby(
            ["round", "kabupaten", "kode_desa"], sort=True)[["n_met", "n_not_met"]].sum().reset_index()
        parts.append(c.assign(indicator=ind))
    cells = pd.concat(parts, ignore_index=True)
    cells[["n_met", "n_not_met"]] = cells[["n_met", "n_not_met"]].astype("int64")
    n_app = (cells["n_met"] + cells["n_not_met"]).to_numpy()
    key = np.minimum(cells["n_met"], cells["n_not_met"]).to_numpy()
    hidden = np.zeros(len(cells), dtype=bool)
    for idx in cells.groupby(["round", "kabupaten", "indicator"], sort=False).indices.values():
        idx = idx[n_app[idx] > 0]  # a village the indicator applies to no family of has no cell
        hidden[idx] = small_cells(key[idx])
    cells["hidden"] = hidden
    cells["hidden_n_app"] = (n_app > 0) & (n_app < MIN_CELL)
    k = cells.assign(any_hidden=hidden).groupby(["round", "kabupaten", "indicator"], sort=True).agg(
        met=("n_met", "sum"), not_met=("n_not_met", "sum"), any_hidden=("any_hidden", "any")).reset_index()
    small = (np.minimum(k["met"], k["not_met"]) < MIN_CELL) & ((k["met"] + k["not_met"]) > 0)
    k["kab_hidden"] = small | k["any_hidden"]
    return cells[CELL_COLUMNS], k[KAB_COLUMNS]


def flag_rows(df: pd.DataFrame, cells: pd.DataFrame, kab: pd.DataFrame, kab_of: pd.Series, sensitive,
              *, desa: str = "kode_desa") -> pd.DataFrame:
    """``df`` (one round: a village column ``desa`` and ``indicator``) with the :data:`FLAGS` of each row;
    ``kab_of`` maps a village to its kabupaten, ``sensitive`` holds the sensitive indicator ids."""
    c = cells[["kode_desa", "indicator", "hidden", "hidden_n_app"]].rename(columns={"kode_desa": desa})
    out = df.merge(c, on=[desa, "indicator"], how="left")
    kb = kab[["kabupaten", "indicator", "kab_hidden"]].rename(columns={"kabupaten": "_kab"})
    out = out.assign(_kab=out[desa].map(kab_of)).merge(kb, on=["_kab", "indicator"], how="left").drop(columns="_kab")
    out["sensitive"] = out["indicator"].isin(set(sensitive))
    for f in FLAGS:
        out[f] = out[f].astype("boolean").fillna(False).astype(bool) & out["sensitive"]
    out.index = df.index
    return out


def _sums(rows: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Per group of ``by``: the hidden families a sum over ``rows`` holds (``hmet``, ``hnot``: of the rows
    with ``hidden``) and whether the sum must be hidden for them."""
    r = rows.assign(hmet=np.where(rows["hidden"], rows["n_met"], 0), hnot=np.where(rows["hidden"], rows["n_not_met"], 0))
    g = r.groupby(by, sort=False).agg(any_hidden=("hidden", "any"), hmet=("hmet", "sum"),
                                      hnot=("hnot", "sum")).reset_index()
    g["hidden"] = g["any_hidden"] & ((g["hmet"] < MIN_CELL) | (g["hnot"] < MIN_CELL))
    return g[[*by, "hidden", "hmet", "hnot"]]


def plan_rows(problems: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """Per round, village and agency of ``problems``: ``hidden`` (the agency's families in the village's
    plan), ``sensitive`` (a sensitive indicator among its problems) and the hidden families it holds."""
    by = ["round", "kabupaten", "kode_desa", "agency"]
    if not len(problems):
        return pd.DataFrame(columns=[*by, "hidden", "hmet", "hnot", "sensitive"])
    c = cells[["round", "kode_desa", "indicator", "hidden", "n_met", "n_not_met"]]
    p = problems[[*by, "indicator"]].astype({"round": "int64"}).merge(c.astype({"round": "int64"}),
                                                                      on=["round", "kode_desa", "indicator"], how="left")
    p["sensitive"] = p["indicator"].isin(set(cells["indicator"]))
    p["hidden"] = p["hidden"].astype("boolean").fillna(False).astype(bool)
    p[["n_met", "n_not_met"]] = p[["n_met", "n_not_met"]].fillna(0)
    out = _sums(p, by)
    return out.merge(p.groupby(by, sort=False)["sensitive"].any().reset_index(), on=by)


def sums_up(rows: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """The sums over ``rows`` (a lower level's sums: ``hidden``, ``hmet``, ``hnot``) grouped by ``by``: a
    reader can work out what the hidden rows hold (the total less the published rows), so it is hidden
    when they hold fewer than ``MIN_CELL`` families."""
    if not len(rows):
        return pd.DataFrame(columns=[*by, "hidden", "hmet", "hnot"])
    return _sums(rows.assign(n_met=rows["hmet"], n_not_met=rows["hnot"]), by)


def trend_hidden(gaps: pd.DataFrame, cells: pd.DataFrame) -> np.ndarray:
    """Rows of ``gaps`` (flagged by :func:`flag_rows`) whose trend would give a hidden share away: hidden
    in this round, or in the round the trend is measured from (``trend_round``; ``cells``: every round)."""
    was = set(map(tuple, cells.loc[cells["hidden"].astype(bool), ["round", "kode_desa", "indicator"]].to_numpy()))
    tr = gaps["trend_round"] if "trend_round" in gaps else pd.Series(np.nan, index=gaps.index)
    before = [pd.notna(t) and (int(t), d, i) in was for t, d, i in zip(tr, gaps["kode_desa"], gaps["indicator"])]
    return (gaps["sensitive"].to_numpy(bool) & (gaps["hidden"].to_numpy(bool) | np.array(before, dtype=bool)))


def attach(df: pd.DataFrame, flags: pd.DataFrame, on: list[str], columns: list[str]) -> pd.DataFrame:
    """``df`` with the bool ``columns`` of ``flags`` (False where ``flags`` has no row)."""
    out = df.merge(flags[[*on, *columns]], on=on, how="left")
    out[columns] = out[columns].astype("boolean").fillna(False).astype(bool)
    return out
