"""What the village (desa) and district (kabupaten) reports show, ready to display.

The report notebooks (``notebooks/10_village_report.ipynb``,
``notebooks/11_district_report.ipynb``) stay thin: one call here builds every
table, sentence and figure input from the processed folder, in the requested
language (``lang="id"``: Bahasa Indonesia with a decimal comma and Indonesian
month names, the default; ``"en"``: English throughout). Every number shown
carries its *n*, and its uncertainty where it is an estimate: a census says
"sensus: tanpa galat sampling" instead of an interval; rank intervals and
model-based comparison intervals are named as such.

Displayable pieces are :class:`Html` strings and :class:`Table` objects (both
have ``_repr_html_``): ``display(R.summary)``, ``display(R.indicators)``.
Nothing here prints, and importing this module has no side effects (matplotlib
is imported only by :func:`category_bars`).

Privacy: reports read aggregated tables only. ``compare/intervention_families.parquet``
(pseudonymous family ids) is never read; ``rejects.csv`` is only counted by
table and rule (its messages may quote raw values); small RT cells are
suppressed (:func:`suppress_small`).

>>> suppress_small(pd.DataFrame({"rt": ["1", "2", "3"], "n": [3, 40, 41], "v": [1.0, 2.0, 3.0]}), "n", ["v"])["v"].tolist()
['<5', '<5', 3.0]
>>> estimate_text(73.9865, 73.9865, 73.9865, True), estimate_text(73.98, 71.2, 76.4, False, lang="en")
('73,99 (sensus: tanpa galat sampling)', '73.98 (95% CI 71.20–76.40)')
"""
from __future__ import annotations

import functools

import datetime as dt
import html as _html
import json
import math
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import yaml

from . import __version__, paths
from .catalogue import Catalogue, agency_name, load_catalogue
from .errors import MissingInputError, ReportError
from .fmt import date_text, interval, number

LANGS = ("id", "en")
MIN_CELL = 5  #: RT (or any) cells with fewer families are suppressed: "<5", never the value
GOOD, MEDIUM = 80.0, 60.0  #: indicator marking: share met >= 80 % baik, 60-<80 sedang, < 60 perlu perhatian
TIMEZONE = "Asia/Makassar"  #: WITA, Kalimantan Selatan's time zone
LEAGUE_MAX = 40  #: a village report's league figure shows at most this many villages around the village
DATA_FILES = ("families.parquet", "members.parquet", "scores.parquet")
#: processed files a report reads (its render is stale when one changes); never intervention_families
REPORT_INPUTS = ("areas.parquet", "area_components.parquet", "scores.parquet", "families.parquet",
                 "members.parquet", "cleaning_log.json", "rejects.csv", "index_settings.json")
COMPARE_INPUTS = ("league.parquet", "priorities.parquet", "strengths.parquet", "agency_plan.parquet",
                  "gaps.parquet", "change.parquet", "sensitivity.parquet", "sensitivity_drivers.parquet",
                  "reliability.parquet", "audit.json", "did.json")
VILLAGE_TEMPLATE = "10_village_report.ipynb"
DISTRICT_TEMPLATE = "11_district_report.ipynb"
HEAT_BINS = ((80, "#ffffff", "#111111"), (70, "#e0e0e0", "#111111"), (60, "#bdbdbd", "#111111"),
             (50, "#7a7a7a", "#ffffff"), (-math.inf, "#404040", "#ffffff"))

# --- texts (data: pk2d/templates/report_text.yaml) ---------------------------------------
@functools.lru_cache(maxsize=1)
def _texts() -> dict:
    return yaml.safe_load((paths.PACKAGE_DIR / "templates" / "report_text.yaml").read_text(encoding="utf-8"))


def __getattr__(name):  # LABELS, OPTION_TEXT, RULE_TEXT: loaded on first use, not on import
    if name in ("LABELS", "OPTION_TEXT", "RULE_TEXT"):
        return _texts()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _lang(lang: str) -> str:
    return lang if lang in LANGS else "id"


def text(key: str, lang: str = "id", **kw) -> str:
    """One report text from :data:`LABELS`, formatted.

    >>> text("census_mark"), text("census_mark", "en")
    ('sensus: tanpa galat sampling', 'census: no sampling error')
    """
    s = _texts()["LABELS"][_lang(lang)][key]
    return s.format(**kw) if kw else s


# --- display objects ---------------------------------------------------------------------
class Html(str):
    """An HTML fragment that Jupyter displays as HTML (``display(Html(...))``)."""

    def _repr_html_(self) -> str:
        return str(self)


def esc(value: Any) -> str:
    return _html.escape("" if value is None else str(value), quote=True)


def _p(*parts: str, cls: str | None = None) -> str:
    c = f' class="{cls}"' if cls else ""
    return f"<p{c}>{''.join(parts)}</p>"


@dataclass(frozen=True)
class Table:
    """A display-ready table: ``frame`` holds strings (numbers already formatted).

    ``numeric`` columns are right-aligned; ``styles`` (same shape as ``frame``,
    optional) adds inline CSS per cell; ``data`` keeps the unformatted numbers
    for tests and further use (never displayed).
    """

    frame: pd.DataFrame
    caption: str = ""
    note: str = ""
    numeric: tuple[str, ...] = ()
    styles: pd.DataFrame | None = field(default=None, repr=False, compare=False)
    data: pd.DataFrame | None = field(default=None, repr=False, compare=False)
    header: bool = True
    group: str | None = None

    def __len__(self) -> int:
        return len(self.frame)

    def html(self) -> str:
        """The table as HTML: every cell escaped; numeric cells right-aligned and unbroken; a ``group``
        column becomes a spanning row each time its value changes."""
        cols = list(self.frame.columns)
        gi = cols.index(self.group) if self.group in cols else None
        shown = [j for j in range(len(cols)) if j != gi]
        wide = len(shown) > 3
        width = ' style="width:100%"' if wide else ""
        out = [f'<table class="pk2d-table"{width}>']
        if self.caption:
            out.append(f"<caption>{esc(self.caption)}</caption>")
        if self.header:
            out.append("<thead><tr>" + "".join(
                f'<th{" class=num" if cols[j] in self.numeric else ""}>{esc(cols[j])}</th>' for j in shown)
                + "</tr></thead>")
        out.append("<tbody>")
        values = self.frame.to_numpy(dtype=object)
        styles = None if self.styles is None else self.styles.to_numpy(dtype=object)
        last = object()
        for i, row in enumerate(values):
            if gi is not None and row[gi] != last:
                last = row[gi]
                out.append(f'<tr class="pk2d-group"><th colspan="{len(shown)}" style="background:#e6e6e6">'
                           f"{esc(last)}</th></tr>")
            cells = []
            for j in shown:
                v = row[j]
                if not self.header and j == shown[0]:
                    cells.append(f'<th scope="row" style="text-align:left;white-space:nowrap">{esc(v)}</th>')
                    continue
                style = "white-space:nowrap" if cols[j] in self.numeric else ""
                if styles is not None and styles[i, j]:
                    style = ";".join(x for x in (style, styles[i, j]) if x)
                attrs = (' class="num"' if cols[j] in self.numeric else "") + (f' style="{esc(style)}"' if style else "")
                cells.append(f"<td{attrs}>{esc(v)}</td>")
            out.append("<tr>" + "".join(cells) + "</tr>")
        out.append("</tbody></table>")
        if self.note:
            out.append(_p(esc(self.note), cls="pk2d-muted"))
        return "".join(out)

    def _repr_html_(self) -> str:
        return self.html()

    def __repr__(self) -> str:
        return f"Table({self.caption!r}, {len(self.frame)} rows)"


# --- formatting ----------------------------------------------------------------------------
def _isnan(v) -> bool:
    try:
        return v is None or v is pd.NA or (isinstance(v, (float, np.floating)) and math.isnan(v))
    except TypeError:
        return False


def num(v, digits: int = 2, lang: str = "id") -> str:
    """:func:`pk2d.fmt.number` that also accepts NA and numpy scalars."""
    return "-" if _isnan(v) else number(float(v), digits, _lang(lang))


def count(v, lang: str = "id") -> str:
    return "-" if _isnan(v) else number(int(v), 0, _lang(lang))


def pct(v, digits: int = 1, lang: str = "id") -> str:
    return "-" if _isnan(v) else f"{number(float(v), digits, _lang(lang))}%"


def signed(v, digits: int = 2, lang: str = "id") -> str:
    if _isnan(v):
        return "-"
    return ("+" if v > 0 else "") + number(float(v), digits, _lang(lang))


def span(lo, hi, digits: int = 2, lang: str = "id", *, signs: bool = False) -> str:
    """'71,20–76,40' (:func:`pk2d.fmt.interval`); for differences (``signs``) or a negative bound
    '-1,20 s.d. +4,21'.

    >>> span(71.2, 76.4), span(-1.2, 4.21), span(1.2, 4.21, lang="en", signs=True)
    ('71,20–76,40', '-1,20 s.d. +4,21', '+1.20 to +4.21')
    """
    if _isnan(lo) or _isnan(hi):
        return "-"
    if signs or lo < 0 or hi < 0:
        return f"{signed(lo, digits, lang)} {text('to', lang)} {signed(hi, digits, lang)}"
    return interval(float(lo), float(hi), digits, _lang(lang))


def estimate_text(value, ci_low, ci_high, census: bool, *, digits: int = 2, lang: str = "id") -> str:
    """A value with its uncertainty: census mark, or the 95% CI."""
    v = num(value, digits, lang)
    if census:
        return f"{v} ({text('census_mark', lang)})"
    return f"{v} ({text('ci95', lang)} {span(ci_low, ci_high, digits, lang)})"


def mark(share: float, lang: str = "id") -> str:
    """●/◐/○ marking of an indicator's share met (%): >= 80 good, 60-<80 medium, < 60 needs attention.

    >>> mark(80.0), mark(79.9), mark(12, "en")
    ('● baik', '◐ sedang', '○ needs attention')
    """
    if _isnan(share):
        return text("mark_na", lang)
    return text("mark_good" if share >= GOOD else "mark_medium" if share >= MEDIUM else "mark_poor", lang)


def datetime_text(t: dt.datetime, lang: str = "id") -> str:
    """'27 November 2026 pukul 06.32 WITA' (Indonesian: period between hours and minutes)."""
    zone = "WITA" if t.utcoffset() == dt.timedelta(hours=8) else (t.tzname() or "")
    if _lang(lang) == "en":
        return f"{date_text(t.date(), 'en')} at {t:%H:%M} {zone}".rstrip()
    return f"{date_text(t.date())} pukul {t:%H.%M} {zone}".rstrip()


def period_text(start, end, lang: str = "id") -> str:
    if _isnan(start) or _isnan(end) or start is pd.NaT or end is pd.NaT:
        return "-"
    a, b = pd.Timestamp(start).date(), pd.Timestamp(end).date()
    if a == b:
        return date_text(a, _lang(lang))
    return f"{date_text(a, _lang(lang))} – {date_text(b, _lang(lang))}"


def cutoff_rule(categories, lang: str = "id") -> str:
    """'Rendah 0 sampai < 50, Sedang 50 sampai < 75, Baik ≥ 75'."""
    parts = []
    for i, c in enumerate(categories):
        lo = num(c.lower, 0 if float(c.lower).is_integer() else 2, lang)
        if i + 1 < len(categories):
            hi_v = categories[i + 1].lower
            hi = num(hi_v, 0 if float(hi_v).is_integer() else 2, lang)
            parts.append(f"{c.label(lang)} {text('m_range', lang, lo=lo, hi=hi)}")
        else:
            parts.append(f"{c.label(lang)} {text('m_range_top', lang, lo=lo)}")
    return ", ".join(parts)


# --- privacy: small cells --------------------------------------------------------------
def suppress_small(frame: pd.DataFrame, n_col: str, value_cols: Sequence[str], *, min_n: int = MIN_CELL,
                   secondary: bool = True) -> pd.DataFrame:
    """Replace ``n_col`` and ``value_cols`` by ``"<min_n"`` in rows with fewer than ``min_n`` families.

    ``secondary``: when exactly one row is suppressed and others remain, the
    next smallest row is suppressed too, so that the hidden value cannot be
    recovered from the total. The returned frame has object columns.

    >>> f = pd.DataFrame({"rt": ["1", "2"], "n": [4, 5], "v": [10.0, 20.0]})
    >>> suppress_small(f, "n", ["v"], secondary=False).to_dict("list")
    {'rt': ['1', '2'], 'n': ['<5', 5], 'v': ['<5', 20.0]}
    """
    out = frame.copy().astype({c: object for c in [n_col, *value_cols]})
    n = pd.to_numeric(frame[n_col], errors="coerce").to_numpy(float)
    hide = n < min_n
    if secondary and hide.sum() == 1 and (~hide).sum() >= 1:
        rest = np.where(~hide, n, np.inf)
        hide[int(np.argmin(rest))] = True
    if hide.any():
        idx = out.index[hide]
        for c in [n_col, *value_cols]:
            out.loc[idx, c] = f"<{min_n}"
    return out


# --- reading the processed folder ---------------------------------------------------------
def _pdir(processed_dir) -> Path:
    return Path(processed_dir) if processed_dir else paths.PROCESSED_DIR


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        raise MissingInputError(path, what, fix="Run the pipeline first (`pk2d run`, or clean, index and compare).")
    return path


def _areas(pdir: Path, cat: Catalogue, rnd: int | None = None) -> pd.DataFrame:
    a = pd.read_parquet(_need(pdir / "areas.parquet", "The report"), filters=[("catalogue", "==", cat.id)])
    if rnd is not None:
        a = a[a["round"] == int(rnd)]
    return a.reset_index(drop=True)


def _components(pdir: Path, cat: Catalogue, rnd: int, codes: Iterable[str]) -> pd.DataFrame:
    c = pd.read_parquet(_need(pdir / "area_components.parquet", "The report"),
                        filters=[("catalogue", "==", cat.id), ("round", "==", int(rnd))])
    return c[c["code"].isin(list(codes))].reset_index(drop=True)


def _scores(pdir: Path, catalogue) -> pd.DataFrame:
    from .pipeline import load_scores
    return load_scores(catalogue, pdir)


def _cat_label_col(lang: str) -> str:
    return "category_label_en" if _lang(lang) == "en" else "category_label"


def _json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class _Compare:
    """The comparison tables of one kabupaten, catalogue and round."""

    league: pd.DataFrame
    priorities: pd.DataFrame
    strengths: pd.DataFrame
    agency_plan: pd.DataFrame
    sensitivity: pd.DataFrame | None
    drivers: pd.DataFrame | None
    reliability: pd.DataFrame | None
    change: pd.DataFrame | None
    did: dict | None
    focus: str | None
    precomputed: bool


def _compare_tables(pdir: Path, cat: Catalogue, kabupaten: str, rnd: int, scores: pd.DataFrame) -> _Compare:
    """``compare/`` tables when they were built for this kabupaten and catalogue; otherwise the cheap
    parts (league, gaps, action plan) computed here and no sensitivity analysis. Never reads
    ``intervention_families.parquet``."""
    cdir = pdir / "compare"
    audit = _json(cdir / "audit.json") or {}
    if audit.get("kabupaten") == kabupaten and audit.get("catalogue") == cat.id and (cdir / "league.parquet").exists():
        def read(name):
            p = cdir / f"{name}.parquet"
            if not p.exists():
                return None
            df = pd.read_parquet(p)
            return df[df["round"] == rnd].reset_index(drop=True) if "round" in df.columns else df
        league = read("league")
        if league is not None and len(league):
            did = _json(cdir / "did.json")
            change = read("change")
            return _Compare(league, read("priorities"), read("strengths"), read("agency_plan"), read("sensitivity"),
                            read("sensitivity_drivers"), read("reliability"), change, did, audit.get("focus"), True)
    from . import compare as cp
    s = scores[scores["kode_kabupaten"] == kabupaten]
    if s[s["putaran"] == rnd].empty:
        empty = pd.DataFrame()
        return _Compare(empty, empty, empty, empty, None, None, None, None, None, None, False)
    league = cp.league_table(s, cat, round=rnd, n_boot=999, seed=20240710)
    pri, strong, plan = cp.action_plan(s, cat, round=rnd)
    return _Compare(league, pri, strong, plan, None, None, None, None, None, None, False)


# --- provenance -----------------------------------------------------------------------------
def git_commit(cwd: str | Path = paths.PROJECT_DIR) -> str:
    """``git rev-parse HEAD`` of the project, or ``"unknown"`` (no git, not a repository)."""
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=str(cwd), capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    out = done.stdout.strip()
    return out if done.returncode == 0 and len(out) >= 7 else "unknown"


def _public_parameters(parameters: Mapping | None) -> dict:
    """Report parameters without folders (paths of the analyst's machine are never shown)."""
    out = {}
    for k, v in (parameters or {}).items():
        if k.endswith("_dir") or isinstance(v, Path) or (isinstance(v, str) and ("/" in v or "\\" in v)):
            continue
        out[k] = v
    return out


def provenance(processed_dir=None, catalogue="ikk", parameters: Mapping | None = None, *, lang: str = "id",
               now: dt.datetime | None = None) -> dict:
    """Where a report comes from: pk2d version, git commit (``"unknown"`` when not available),
    sha256 of the data files (families, members, scores), the catalogue file's hash and version,
    the parameters (folders left out), and the rendering time in WITA (Asia/Makassar).
    """
    from zoneinfo import ZoneInfo

    pdir = _pdir(processed_dir)
    cat = load_catalogue(catalogue)
    from .io import sha256_file
    files = {name: (sha256_file(pdir / name) if (pdir / name).exists() else None) for name in DATA_FILES}
    t = (now or dt.datetime.now(dt.timezone.utc)).astimezone(ZoneInfo(TIMEZONE)).replace(microsecond=0)
    return {
        "pk2d_version": __version__, "git_commit": git_commit(), "data_files": files,
        "catalogue": {"id": cat.id, "version": cat.version, "sha256": cat.sha256},
        "parameters": _public_parameters(parameters), "rendered_at": t.isoformat(),
        "rendered_text": datetime_text(t, lang), "timezone": TIMEZONE,
    }


def provenance_table(prov: Mapping, lang: str = "id") -> Table:
    unknown = text("p_unknown", lang)
    rows = [(text("p_version", lang), prov["pk2d_version"]),
            (text("p_commit", lang), unknown if prov["git_commit"] == "unknown" else prov["git_commit"]),
            (text("p_rendered", lang), prov["rendered_text"])]
    c = prov["catalogue"]
    rows.append((text("p_catalogue", lang), f"{c['id']} {c['version']}: {c['sha256']}"))
    for name, h in prov["data_files"].items():
        rows.append((f"{text('p_file', lang)}: {name}", h or unknown))
    params = " · ".join(f"{k}: {v}" for k, v in prov["parameters"].items())
    rows.append((text("p_parameters", lang), params or "-"))
    mono = "font-family:'DejaVu Sans Mono',monospace;font-size:0.85em;overflow-wrap:anywhere"
    styles = pd.DataFrame([("", mono if len(str(v)) >= 40 else "") for _, v in rows], columns=["", " "])
    return Table(pd.DataFrame(rows, columns=["", " "]), header=False, styles=styles)


# --- shared pieces --------------------------------------------------------------------------
def _header_table(rows: list[tuple[str, str]]) -> Table:
    return Table(pd.DataFrame(rows, columns=["", " "]), header=False)


def _summary_sentence(cat: Catalogue, area: str, row, rnd: int, year, lang: str) -> str:
    label = row[_cat_label_col(lang)]
    s = text("summary", lang, index_name=esc(cat.name(lang)), area=esc(area), round=rnd, year=year,
             value=esc(num(row["index"], 2, lang)), category=esc(label))
    if bool(row["census"]):
        s += text("summary_census", lang, n=count(row["n_families"], lang))
    else:
        s += text("summary_sample", lang, n=count(row["n_families"], lang), low=num(row["ci_low"], 2, lang),
                  high=num(row["ci_high"], 2, lang))
    cats = cat.categories["area"]
    higher = [c for c in cats if c.lower > row["index"]]
    if higher:
        nxt = higher[0]
        s += text("summary_next", lang, next=esc(nxt.label(lang)), cut=num(nxt.lower, 0, lang),
                  gap=num(nxt.lower - row["index"], 2, lang))
    elif not _isnan(row["index"]):
        s += text("summary_top", lang)
    return s


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _h(key: str, lang: str, level: int = 2) -> str:
    return f"<h{level}>{esc(text(key, lang))}</h{level}>"


def _methodology(cat: Catalogue, lang: str, *, name: str, sens_row, drivers: pd.DataFrame | None,
                 reliability: pd.DataFrame | None, n_kab: int | None, n_runs: int | None) -> Html:
    L = lambda key_, **kw: text(key_, lang, **kw)  # noqa: E731
    parts = [_h("s_method", lang)]
    parts.append(_p(L("m_catalogue", name=esc(cat.name(lang)), id=esc(cat.id), version=esc(cat.version),
                      k=len(cat.indicators), d=len(cat.dimensions))))
    note = cat.note_en if lang == "en" else cat.note_id
    if not cat.official_list_public:
        parts.append(_p("<strong>", esc(L("m_official")), "</strong> ", esc(note)))
    elif note:
        parts.append(_p(esc(note)))
    parts.append("<ul>")
    parts.append(f"<li>{esc(L('m_cutoffs_area'))}: {esc(cutoff_rule(cat.categories['area'], lang))}.</li>")
    parts.append(f"<li>{esc(L('m_cutoffs_family'))}: {esc(cutoff_rule(cat.categories['family'], lang))}.</li>")
    st = cat.settings
    parts.append(f"<li>{esc(L('order_' + st['aggregation_order']))}</li>")
    parts.append(f"<li>{esc(L('method_' + st['aggregation_method']))}</li>")
    parts.append(f"<li>{esc(L('na_' + st['not_applicable']))}</li>")
    weights = ", ".join(f"{_dim_name(d, lang)} {num(d.weight * 100, 0, lang)}%" for d in cat.dimensions)
    parts.append(f"<li>{esc(L('m_weights', w=weights))}</li>")
    parts.append(f"<li>{esc(L('ind_intro'))}</li>")
    parts.append(f"<li>{esc(L('m_intervals'))}</li>")
    parts.append("</ul>")
    if sens_row is not None:
        parts.append(_p(L("m_robust", runs=count(n_runs, lang) if n_runs else "-", name=esc(name),
                          share=pct(100 * sens_row["category_robustness"], 0, lang),
                          lo=num(sens_row["index_p05"], 2, lang), hi=num(sens_row["index_p95"], 2, lang),
                          rlo=int(sens_row["rank_p05"]), rhi=int(sens_row["rank_p95"]), to=L("to"))))
        drv = _driver_sentence(drivers, lang)
        if drv:
            parts.append(drv)
    else:
        parts.append(_p(esc(L("m_robust_none"))))
    if reliability is not None and len(reliability):
        ov = reliability[reliability["scope"] == "overall"]
        if len(ov) and n_kab:
            parts.append(_p(esc(L("m_alpha", alpha=num(ov["alpha"].iloc[0], 2, lang), n=count(n_kab, lang)))))
    return Html("".join(parts))


def _driver_sentence(drivers: pd.DataFrame | None, lang: str) -> str:
    """One paragraph: which method choice moves the categories most (empty without drivers)."""
    drv = _driver(drivers)
    if drv is None:
        return ""
    ch, oa, a, ob, b = drv
    labels, options = _texts()["LABELS"][lang], _texts()["OPTION_TEXT"][lang]
    return _p(esc(text("m_driver", lang, choice=labels.get("choice_" + ch, ch), oa=options.get(oa, oa),
                       a=pct(100 * a, 0, lang), ob=options.get(ob, ob), b=pct(100 * b, 0, lang))))


def _driver(drivers: pd.DataFrame | None):
    """(choice, worst option, its share kept, best option, its share kept) of the choice whose options
    differ most in the share of categories kept."""
    if drivers is None or drivers.empty:
        return None
    best = None
    for ch, g in drivers.groupby("choice", sort=False):
        if len(g) < 2:
            continue
        lo, hi = g.loc[g["category_kept"].idxmin()], g.loc[g["category_kept"].idxmax()]
        spread = hi["category_kept"] - lo["category_kept"]
        if best is None or spread > best[0]:
            best = (spread, (str(ch), str(lo["option"]), float(lo["category_kept"]), str(hi["option"]),
                             float(hi["category_kept"])))
    return None if best is None else best[1]


def _n_runs(pdir: Path, rnd: int) -> int | None:
    audit = _json(pdir / "compare" / "audit.json") or {}
    s = (audit.get("rounds") or {}).get(str(rnd), {}).get("sensitivity_settings", {})
    return s.get("n_runs")


def _dim_name(d, lang: str) -> str:
    return d.name_en if _lang(lang) == "en" else d.name_id


def _ind_name(i, lang: str) -> str:
    return i.name_en if _lang(lang) == "en" else i.name_id


# --- village report ---------------------------------------------------------------------------
@dataclass(frozen=True)
class VillageReport:
    """Everything a village report shows. ``Html``/``Table`` fields display as they are;
    ``profile``, ``league_plot``, ``family_index`` feed :mod:`pk2d.plots`."""

    lang: str
    catalogue: str
    round: int
    year: int | None
    code: str
    name: str
    kecamatan: str
    kabupaten: str
    kabupaten_code: str
    n_families: int
    n_rt: int
    census: bool
    focus: bool
    index: float
    ci_low: float
    ci_high: float
    category: int
    category_label: str
    title: Html
    header: Table
    summary: Html
    check: str
    dimensions_intro: Html
    profile: pd.DataFrame
    dimensions: Table
    indicators_intro: Html
    indicators: Table
    families_intro: Html
    family_index: pd.Series
    family_cutoffs: tuple[float, ...]
    area_cutoffs: tuple[float, ...]
    family_categories: Table
    rt_intro: Html
    rt: Table
    position_intro: Html
    league_plot: pd.DataFrame
    position: Table
    strengths_intro: Html
    strengths: Table
    weaknesses: Table
    plan_intro: Html
    agency_plan: Table
    change_intro: Html
    change: Table | None
    did: Html | None
    quality_intro: Html
    quality: Table
    rejects: Table
    methodology: Html
    provenance: dict
    provenance_table: Table
    provenance_intro: Html
    alt: dict = field(default_factory=dict)


def _setup(processed_dir, catalogue, round, lang):
    """What every report starts from: language, text lookup, folder, catalogue, round, areas."""
    lang = _lang(lang)
    pdir = _pdir(processed_dir)
    cat = load_catalogue(catalogue)
    rnd = int(round)
    return (lang, lambda key_, **kw: text(key_, lang, **kw), pdir, cat, rnd, _cat_label_col(lang),
            _areas(pdir, cat, rnd))


def _area_row(areas: pd.DataFrame, level: str, code: str, cat: Catalogue, rnd: int) -> pd.Series:
    """The area's row of areas.parquet, or a ReportError naming codes that do exist."""
    rows = areas[(areas["level"] == level) & (areas["code"] == code)]
    if rows.empty:
        known = sorted(areas.loc[areas["level"] == level, "code"])[:5]
        raise ReportError(f"{level} {code}", f"no {cat.id} estimate for round {rnd} in areas.parquet",
                          fix=f"Use a surveyed {level} code (e.g. {', '.join(known) or '-'}) and round.")
    return rows.iloc[0]


def village_report_data(processed_dir=None, village: str = "63.02.06.2012", round: int = 1, catalogue="ikk",
                        lang: str = "id", *, parameters: Mapping | None = None) -> VillageReport:
    """Assemble a village report from the processed folder (see :class:`VillageReport`)."""
    lang, L, pdir, cat, rnd, lab, areas = _setup(processed_dir, catalogue, round, lang)
    village = str(village).strip()
    v = _area_row(areas, "desa", village, cat, rnd)
    kec = areas[(areas["level"] == "kecamatan") & (areas["code"] == v["parent_code"])].iloc[0]
    kab = areas[(areas["level"] == "kabupaten") & (areas["code"] == kec["parent_code"])].iloc[0]
    prov = areas[(areas["level"] == "provinsi") & (areas["code"] == kab["parent_code"])]
    scores = _scores(pdir, catalogue)
    fam = scores[(scores["putaran"] == rnd) & (scores["kode_desa"] == village)].reset_index(drop=True)
    year = int(fam["tahun"].mode().iloc[0]) if len(fam) and fam["tahun"].notna().any() else None
    census = bool(v["census"])
    cmp_ = _compare_tables(pdir, cat, kab["code"], rnd, scores)
    focus = cmp_.focus == village
    name = str(v["name"])

    # header --------------------------------------------------------------------------------
    period = "-"
    fp = pdir / "families.parquet"
    if fp.exists():
        dates = pd.read_parquet(fp, columns=["kode_desa", "putaran", "tanggal_wawancara"],
                                filters=[("kode_desa", "==", village), ("putaran", "==", rnd)])["tanggal_wawancara"]
        if dates.notna().any():
            period = period_text(dates.min(), dates.max(), lang)
    rt_rows = areas[(areas["level"] == "rt") & (areas["parent_code"] == village)]
    n_rt = int(fam["kode_rt"].nunique()) if len(fam) else len(rt_rows)
    header = _header_table([
        (L("h_village"), f"{name} ({village})"),
        (L("h_kecamatan"), f"{kec['name']} ({kec['code']})"),
        (L("h_kabupaten"), f"{kab['name']} ({kab['code']})"),
        *([(L("h_provinsi"), f"{prov.iloc[0]['name']}")] if len(prov) else []),
        (L("h_round"), L("h_round_value", round=rnd, year=year if year else "-")),
        (L("h_period"), period),
        (L("h_families"), count(v["n_families"], lang)),
        (L("h_rt"), count(n_rt, lang)),
        (L("h_design"), L("census_design") if census else L("sample_design")),
        (L("h_lokus"), L("yes") if focus else L("no")),
    ])
    title = Html(f"<h1>{esc(L('title_village', name=name))}</h1>")
    summary = Html(_h("s_index", lang) + _p(_summary_sentence(cat, f"Desa {name}" if lang == "id" else name, v,
                                                              rnd, year or "-", lang)))
    check = L("check", name=name, index_name=cat.id.upper(), value=num(v["index"], 2, lang), category=v[lab])

    # dimensions ----------------------------------------------------------------------------
    comps = _components(pdir, cat, rnd, [village, kec["code"], kab["code"]])
    dims = comps[comps["component_type"] == "dimension"]
    units = [(f"Desa {name}" if lang == "id" else name, village), (f"Kec. {kec['name']}", kec["code"]),
             (str(kab["name"]), kab["code"])]
    prof = pd.DataFrame({"name": [_dim_name(d, lang) for d in cat.dimensions]})
    columns, values = [L("col_dimension")], [list(prof["name"])]
    any_sample = not all(bool(x) for x in comps["census"]) if len(comps) else False
    for label, code in units:
        sub = dims[dims["code"] == code].set_index("component_id").reindex([d.id for d in cat.dimensions])
        prof[label] = sub["estimate"].to_numpy(float)
        columns.append(label)
        values.append([num(x, 2, lang) for x in sub["estimate"]])
        if any_sample:
            columns.append(L("ci95"))
            values.append([L("census_mark") if bool(c) else span(lo, hi, 2, lang)
                           for lo, hi, c in zip(sub["ci_low"], sub["ci_high"], sub["census"])])
        columns.append(L("col_n"))
        values.append([count(x, lang) for x in sub["n_applicable"]])
    disp = pd.DataFrame(list(zip(*values)), columns=columns)
    only = areas[(areas["level"] == "desa") & (areas["parent_code"] == kec["code"])]
    dim_note = L("all_census") if not any_sample else ""
    if len(only) == 1:
        dim_note = (dim_note + " " + L("dim_alone")).strip()
    dimensions = Table(disp, note=dim_note, numeric=tuple(c for c in columns if c != L("col_dimension")),
                       data=prof)
    dimensions_intro = Html(_h("s_dimensions", lang) + _p(esc(L("dim_intro"))))

    # indicators ----------------------------------------------------------------------------
    ind = comps[(comps["component_type"] == "indicator") & (comps["code"] == village)].set_index("component_id")
    kab_ind = comps[(comps["component_type"] == "indicator") & (comps["code"] == kab["code"])].set_index("component_id")
    ids = [i.id for i in cat.indicators]
    ind, kab_ind = ind.reindex(ids), kab_ind.reindex(ids)
    not_met = [int((fam[i].astype("float64") == 0).sum()) if i in fam else np.nan for i in ids]
    dim_names = {d.id: _dim_name(d, lang) for d in cat.dimensions}
    idata = pd.DataFrame({"indicator": ids, "name": [_ind_name(i, lang) for i in cat.indicators],
                          "dimension": [dim_names[i.dimension] for i in cat.indicators],
                          "share": ind["estimate"].to_numpy(float), "ci_low": ind["ci_low"].to_numpy(float),
                          "ci_high": ind["ci_high"].to_numpy(float), "n_applicable": ind["n_applicable"].to_numpy(),
                          "families_not_met": not_met, "kab_share": kab_ind["estimate"].to_numpy(float)})
    idisp = pd.DataFrame({
        L("col_code"): idata["indicator"], L("col_indicator"): idata["name"], L("col_dimension"): idata["dimension"],
        L("col_share"): [pct(x, 1, lang) for x in idata["share"]],
        **({L("ci95"): [span(a, b, 1, lang) for a, b in zip(idata["ci_low"], idata["ci_high"])]} if not census else {}),
        L("col_n_app"): [count(x, lang) for x in idata["n_applicable"]],
        L("col_not_met"): [count(x, lang) for x in idata["families_not_met"]],
        L("col_kab_share"): [pct(x, 1, lang) for x in idata["kab_share"]],
        L("col_mark"): [mark(x, lang) for x in idata["share"]],
    })
    indicators = Table(idisp, note=L("ind_note") + (" " + L("all_census") if census else ""),
                       numeric=(L("col_share"), L("ci95"), L("col_n_app"), L("col_not_met"), L("col_kab_share")),
                       data=idata, group=L("col_dimension"))
    indicators_intro = Html(_h("s_indicators", lang) + _p(esc(L("ind_intro"))))

    # family categories ---------------------------------------------------------------------
    fams, fam_table = family_categories(fam, cat, lang=lang, census=census)
    fam_cats = cat.categories["family"]
    families_intro = Html(_h("s_families", lang) + _p(esc(L("fam_intro", rule=cutoff_rule(fam_cats, lang)))))

    # RT ------------------------------------------------------------------------------------
    rtd = rt_rows.sort_values("code").copy()
    dusun = fam.groupby("kode_rt")["dusun"].first() if "dusun" in fam else pd.Series(dtype=str)
    rt_data = pd.DataFrame({"rt": rtd["name"].astype(str).to_numpy(),
                            "dusun": dusun.reindex(rtd["code"]).fillna("").astype(str).to_numpy(),
                            "n": rtd["n_families"].to_numpy(), "index": rtd["index"].to_numpy(float),
                            "category": rtd[lab].astype(str).to_numpy(),
                            "interval": [L("census_mark") if c else span(lo, hi, 2, lang)
                                         for lo, hi, c in zip(rtd["ci_low"], rtd["ci_high"], rtd["census"])]})
    sup = suppress_small(rt_data, "n", ["index", "category", "interval"])
    rt_disp = pd.DataFrame({L("col_rt"): sup["rt"], L("col_dusun"): sup["dusun"],
                            L("col_n"): [x if isinstance(x, str) else count(x, lang) for x in sup["n"]],
                            L("col_index"): [x if isinstance(x, str) else num(x, 2, lang) for x in sup["index"]],
                            L("col_category"): sup["category"]})
    if not census:
        rt_disp[L("ci95")] = sup["interval"]
    rt = Table(rt_disp, numeric=(L("col_n"), L("col_index"), L("ci95")),
               note=L("all_census") if census else "", data=sup)
    rt_intro = Html(_h("s_rt", lang) + _p(esc(L("rt_intro", min=MIN_CELL))))

    # position --------------------------------------------------------------------------------
    lg = cmp_.league
    if lg is not None and len(lg) and village in set(lg["code"]):
        me = lg[lg["code"] == village].iloc[0]
        pos_text = L("pos_sentence", n=len(lg), kab=esc(kab["name"]), name=esc(name), rank=int(me["rank"]),
                     low=int(me["rank_low"]), high=int(me["rank_high"]))
        lgs = lg.sort_values("rank").reset_index(drop=True)
        if len(lgs) > LEAGUE_MAX:
            i = int(lgs.index[lgs["code"] == village][0])
            half = LEAGUE_MAX // 2
            lo = max(0, min(i - half, len(lgs) - LEAGUE_MAX))
            league_plot = lgs.iloc[lo:lo + LEAGUE_MAX].reset_index(drop=True)
            pos_text += " " + esc(L("pos_subset", k=len(league_plot), n=len(lgs)))
        else:
            league_plot = lgs
        position = replace(_league_display(lgs, lang, highlight=village), note="")
        position_intro = Html(_h("s_position", lang) + _p(pos_text) + _p(esc(L("pos_note")), cls="pk2d-muted"))
    else:
        league_plot = pd.DataFrame(columns=["code", "name", "n_families", "index", "ci_low", "ci_high"])
        position = Table(pd.DataFrame())
        position_intro = Html(_h("s_position", lang) + _p(esc(L("pos_missing"))))

    # strengths / weaknesses / plan -----------------------------------------------------------
    inds = {i.id: i for i in cat.indicators}
    strengths = _gap_table(cmp_.strengths, village, inds, lang, caption=L("strengths"), weak=False)
    weaknesses = _gap_table(cmp_.priorities, village, inds, lang, caption=L("weaknesses"), weak=True)
    strengths_intro = Html(_h("s_strengths", lang) + _p(esc(L("sw_intro"))))
    plan = cmp_.agency_plan
    if plan is not None and len(plan):
        pv = plan[plan["kode_desa"] == village].sort_values("top_priority")
        pdata = pd.DataFrame({"agency": pv["agency"].to_numpy(), "indicators": pv["indicators"].to_numpy(),
                              "families_affected": pv["families_affected"].to_numpy()})
        pdisp = pd.DataFrame({L("col_agency"): [agency_name(a, lang) for a in pv["agency"]],
                              L("col_indicators"): pv["indicators"].astype(str).to_numpy(),
                              L("col_affected"): [count(x, lang) for x in pv["families_affected"]]})
        agency_plan = Table(pdisp, numeric=(L("col_affected"),), note=L("plan_note"), data=pdata)
        if pv.empty:
            agency_plan = Table(pd.DataFrame({"": [L("none")]}), header=False, data=pdata)
    else:
        agency_plan = Table(pd.DataFrame(), note=L("plan_missing"))
    plan_intro = Html(_h("s_plan", lang) + _p(esc(L("plan_intro"))))

    # change and DiD ----------------------------------------------------------------------------
    change_intro, change, did = _village_change(scores, cat, village, rnd, cmp_, lang)

    # data quality ----------------------------------------------------------------------------
    quality_intro, quality, rejects = _quality(pdir, rnd, lang)
    if "n_jawaban_kosong" in fam:
        k = int((fam["n_jawaban_kosong"] > 0).sum())
        quality_intro = Html(quality_intro + _p(esc(L("q_missing", k=count(k, lang), n=count(len(fam), lang)))))

    # methodology and provenance ------------------------------------------------------------
    sens_row = None
    if cmp_.sensitivity is not None and len(cmp_.sensitivity) and village in set(cmp_.sensitivity["code"]):
        sens_row = cmp_.sensitivity[cmp_.sensitivity["code"] == village].iloc[0]
    n_kab = int(kab["n_families"])
    methodology = _methodology(cat, lang, name=name, sens_row=sens_row, drivers=cmp_.drivers,
                               reliability=cmp_.reliability, n_kab=n_kab, n_runs=_n_runs(pdir, rnd))
    params = dict(parameters or {"village": village, "round": rnd, "catalogue": str(catalogue), "lang": lang})
    prov = provenance(pdir, catalogue, params, lang=lang)

    cuts = (" dan " if lang == "id" else " and ").join(num(c.lower, 0, lang) for c in fam_cats[1:])
    alt = {"dimensions": L("alt_dimensions", units=", ".join(u for u, _ in units)),
           "families": L("alt_families", name=name, n=count(len(fam), lang), cuts=cuts),
           "league": L("alt_league", k=len(league_plot), kab=kab["name"], mark=L("alt_league_mark", name=name))}
    return VillageReport(
        alt=alt, lang=lang, catalogue=cat.id, round=rnd, year=year, code=village, name=name, kecamatan=str(kec["name"]),
        kabupaten=str(kab["name"]), kabupaten_code=str(kab["code"]), n_families=int(v["n_families"]), n_rt=n_rt,
        census=census, focus=focus, index=float(v["index"]), ci_low=float(v["ci_low"]), ci_high=float(v["ci_high"]),
        category=int(v["category"]), category_label=str(v[lab]), title=title, header=header, summary=summary,
        check=check, dimensions_intro=dimensions_intro, profile=prof, dimensions=dimensions,
        indicators_intro=indicators_intro, indicators=indicators, families_intro=families_intro,
        family_index=fam["indeks"].astype("float64").reset_index(drop=True),
        family_cutoffs=tuple(c.lower for c in fam_cats[1:]),
        area_cutoffs=tuple(c.lower for c in cat.categories["area"][1:]), family_categories=fam_table,
        rt_intro=rt_intro, rt=rt, position_intro=position_intro, league_plot=league_plot, position=position,
        strengths_intro=strengths_intro, strengths=strengths, weaknesses=weaknesses, plan_intro=plan_intro,
        agency_plan=agency_plan, change_intro=change_intro, change=change, did=did, quality_intro=quality_intro,
        quality=quality, rejects=rejects, methodology=methodology, provenance=prov,
        provenance_table=provenance_table(prov, lang), provenance_intro=Html(_h("s_provenance", lang)))


def family_categories(fam: pd.DataFrame, catalogue="ikk", *, lang: str = "id", census: bool = True
                      ) -> tuple[pd.DataFrame, Table]:
    """Families per family category (highest first), with shares; families without an index
    (missing answers) counted apart. Returns (data, display table).

    ``data`` columns: ``code``, ``label``, ``n``, ``share`` (percent of all families;
    weighted with ``bobot`` when not a census).
    """
    cat = load_catalogue(catalogue)
    lang = _lang(lang)
    L = lambda key_, **kw: text(key_, lang, **kw)  # noqa: E731
    cats = cat.categories["family"]
    idx = fam["indeks"].astype("float64")
    from .score import categorize
    codes = categorize(idx.to_numpy(), cats)
    w = (fam["bobot"].astype("float64").to_numpy() if not census and "bobot" in fam and fam["bobot"].notna().all()
         else np.ones(len(fam)))
    rows = []
    total_w = w.sum()
    for c in sorted(cats, key=lambda c: -c.code):
        m = codes == c.code
        rows.append({"code": c.code, "label": c.label(lang), "n": int(m.sum()),
                     "share": 100 * w[m].sum() / total_w if total_w else np.nan})
    m0 = codes == 0
    if m0.any():
        rows.append({"code": 0, "label": L("fam_unscored"), "n": int(m0.sum()),
                     "share": 100 * w[m0].sum() / total_w if total_w else np.nan})
    data = pd.DataFrame(rows)
    disp = pd.DataFrame({L("col_category"): data["label"], L("col_families"): [count(x, lang) for x in data["n"]],
                         L("col_share_fam"): [pct(x, 1, lang) for x in data["share"]]})
    disp.loc[len(disp)] = [L("total"), count(len(fam), lang), pct(100.0 if len(fam) else np.nan, 1, lang)]
    note = L("all_census") if census else L("fam_weighted")
    return data, Table(disp, numeric=(L("col_families"), L("col_share_fam")), note=note, data=data)


def _league_display(lg: pd.DataFrame, lang: str, highlight: str | None = None) -> Table:
    L = lambda key_, **kw: text(key_, lang, **kw)  # noqa: E731
    lab = _cat_label_col(lang)
    lg = lg.sort_values("rank")
    disp = pd.DataFrame({
        L("col_rank"): [str(int(r)) for r in lg["rank"]],
        L("col_rank_int"): [f"{int(a)}–{int(b)}" for a, b in zip(lg["rank_low"], lg["rank_high"])],
        L("col_village"): [f"{n} ◄" if c == highlight else str(n) for n, c in zip(lg["name"], lg["code"])],
        L("col_kec"): lg["nama_kecamatan"].astype(str).to_numpy() if "nama_kecamatan" in lg else "",
        L("col_n"): [count(x, lang) for x in lg["n_families"]],
        L("col_index"): [num(x, 2, lang) for x in lg["index"]],
        L("col_interval"): [span(a, b, 2, lang) for a, b in zip(lg["ci_low"], lg["ci_high"])],
        L("col_category"): lg[lab].astype(str).to_numpy(),
    })
    return Table(disp, numeric=(L("col_rank"), L("col_rank_int"), L("col_n"), L("col_index"), L("col_interval")),
                 note=L("pos_note"), data=lg.reset_index(drop=True))


def _gap_table(frame: pd.DataFrame | None, village: str, inds: dict, lang: str, *, caption: str, weak: bool) -> Table:
    L = lambda key_, **kw: text(key_, lang, **kw)  # noqa: E731
    nothing = Table(pd.DataFrame({"": [L("none")]}), caption=caption, header=False)
    if frame is None or frame.empty:
        return nothing
    f = frame[frame["kode_desa"] == village]
    f = f.sort_values("priority") if weak and "priority" in f else f.sort_values("gap", ascending=weak)
    if f.empty:
        return nothing
    cols = {}
    if weak:
        cols[L("col_priority")] = [str(int(x)) for x in f["priority"]]
    cols.update({
        L("col_code"): f["indicator"].astype(str).to_numpy(),
        L("col_indicator"): [_ind_name(inds[i], lang) if i in inds else n for i, n in zip(f["indicator"], f["name"])],
        L("col_share"): [pct(x, 1, lang) for x in f["share"]],
        L("col_kab_share"): [pct(x, 1, lang) for x in f["kab_share"]],
        L("col_gap"): [signed(x, 1, lang) for x in f["gap"]],
        L("col_n_app"): [count(x, lang) for x in f["n_applicable"]],
        L("col_not_met"): [count(x, lang) for x in f["families_affected"]],
    })
    if weak:
        cols[L("col_agency")] = [agency_name(a, lang) for a in f["agency"]]
    return Table(pd.DataFrame(cols), caption=caption,
                 numeric=(L("col_priority"), L("col_share"), L("col_kab_share"), L("col_gap"), L("col_n_app"),
                          L("col_not_met")), data=f.reset_index(drop=True))


def _village_change(scores: pd.DataFrame, cat: Catalogue, village: str, rnd: int, cmp_: _Compare, lang: str):
    L = lambda key_, **kw: text(key_, lang, **kw)  # noqa: E731
    rounds = sorted(int(r) for r in scores.loc[scores["kode_desa"] == village, "putaran"].unique())
    earlier = [r for r in rounds if r < rnd]
    head = _h("s_change", lang)
    if not earlier:
        return Html(head + _p(esc(L("change_none")))), None, None
    before = earlier[-1]
    ch = None
    if cmp_.change is not None and len(cmp_.change) and rounds and before == rounds[0] and rnd == rounds[-1]:
        ch = cmp_.change[cmp_.change["kode_desa"] == village]
    if ch is None or ch.empty:
        from . import compare as cp
        ch = cp.change_over_rounds(scores[scores["kode_desa"] == village], cat, before=before, after=rnd)
    ch = ch[ch["component_type"].isin(["index", "dimension"])]
    names = {"indeks": cat.name(lang), **{d.id: _dim_name(d, lang) for d in cat.dimensions}}
    disp = pd.DataFrame({
        L("col_component"): [names.get(c, c) for c in ch["component_id"]],
        L("col_before", r=before): [num(x, 2, lang) for x in ch["before"]],
        f"n ({before})": [count(x, lang) for x in ch["n_before"]],
        L("col_before", r=rnd): [num(x, 2, lang) for x in ch["after"]],
        f"n ({rnd})": [count(x, lang) for x in ch["n_after"]],
        L("col_change"): [signed(x, 2, lang) for x in ch["change"]],
        _cap(L("ci95_model")): [span(a, b, 2, lang, signs=True) for a, b in zip(ch["ci_low"], ch["ci_high"])],
    })
    table = Table(disp, numeric=tuple(c for c in disp.columns if c != L("col_component")), data=ch.reset_index(drop=True))
    intro = head + _p(esc(L("change_intro", before=before, after=rnd)))
    idx = ch[ch["component_type"] == "index"]
    if len(idx):
        r = idx.iloc[0]
        intro += _p(esc(L("change_sentence", change=signed(r["change"], 2, lang), ci=L("ci95_model"),
                          low=signed(r["ci_low"], 2, lang), high=signed(r["ci_high"], 2, lang), to=L("to"))))
    did_html = None
    d = (cmp_.did or {}).get("index") if cmp_.did else None
    if (d and cmp_.focus == village and str(d.get("focus")) == village and int(d.get("after", -1)) == rnd
            and int(d.get("before", -1)) == before):
        parts = [f"<h3>{esc(L('did_title'))}</h3>"]
        parts.append(_p(L("did_sentence", k=int(d["n_villages"]) - 1, est=esc(signed(d["estimate"], 2, lang)),
                          ci=L("ci95_model"), low=esc(signed(d["ci_low"], 2, lang)), high=esc(signed(d["ci_high"], 2, lang)),
                          to=L("to"), n=count(d["n"], lang), c=count(d["n_clusters"], lang))))
        rows = []
        for dm in cat.dimensions:
            e = cmp_.did.get(dm.id)
            if e:
                rows.append((_dim_name(dm, lang), signed(e["estimate"], 2, lang),
                             span(e["ci_low"], e["ci_high"], 2, lang, signs=True),
                             count(e["n"], lang)))
        if rows:
            parts.append(Table(pd.DataFrame(rows, columns=[L("col_dimension"), "DiD", _cap(L("ci95_model")), "n"]),
                               numeric=("DiD", _cap(L("ci95_model")), "n")).html())
        parts.append(_p(f"<strong>{esc(L('did_assumptions'))}</strong> ", esc(L("did_plain"))))
        did_html = Html("".join(parts))
    return Html(intro), table, did_html


def _quality(pdir: Path, rnd: int, lang: str) -> tuple[Html, Table, Table]:
    """Rows received/kept/rejected per table for the round's input files, and rejected rows per rule.
    Aggregates only: no row numbers, no values, no messages."""
    L = lambda key_, **kw: text(key_, lang, **kw)  # noqa: E731
    log = _json(pdir / "cleaning_log.json") or {}
    inputs = [i for i in log.get("inputs", []) if int(i.get("putaran", -1)) == rnd]
    rows = []
    for t in ("keluarga", "anggota"):
        sel = [i for i in inputs if i.get("table") == t]
        if not sel:
            continue
        rows.append((L(f"t_{t}"), count(sum(int(i.get("rows", 0)) for i in sel), lang),
                     count(sum(int(i.get("kept", 0)) for i in sel), lang),
                     count(sum(int(i.get("rejected", 0)) for i in sel), lang),
                     count(sum(int(i.get("exact_duplicates_removed", 0)) for i in sel), lang)))
    quality = Table(pd.DataFrame(rows, columns=[L("col_table"), L("col_rows"), L("col_kept"), L("col_rejected"),
                                                L("col_dupes")]),
                    numeric=(L("col_rows"), L("col_kept"), L("col_rejected"), L("col_dupes")))
    files = {i.get("file") for i in inputs}
    rej_path = pdir / "rejects.csv"
    agg = pd.DataFrame(columns=["table", "rule", "n"])
    if rej_path.exists() and files:
        r = pd.read_csv(rej_path, usecols=["table", "file", "rule"], dtype=str)
        r = r[r["file"].isin(files)]
        agg = r.groupby(["table", "rule"]).size().rename("n").reset_index().sort_values(["table", "n"],
                                                                                        ascending=[True, False])
    if len(agg):
        rt = _texts()["RULE_TEXT"][lang]
        rdisp = pd.DataFrame({L("col_table"): [L(f"t_{t}") if f"t_{t}" in _texts()["LABELS"][lang] else t for t in agg["table"]],
                              L("col_rule"): [rt.get(x, str(x).replace("_", " ")) for x in agg["rule"]],
                              L("col_count"): [count(x, lang) for x in agg["n"]]})
        rejects = Table(rdisp, numeric=(L("col_count"),), data=agg.reset_index(drop=True))
    else:
        rejects = Table(pd.DataFrame({L("col_rule"): [L("q_none")]}), data=agg)
    intro = Html(_h("s_quality", lang) + _p(esc(L("q_intro", round=rnd))))
    return intro, quality, rejects


# --- district report ---------------------------------------------------------------------------
@dataclass(frozen=True)
class DistrictReport:
    """Everything a district (kabupaten) report shows."""

    lang: str
    catalogue: str
    round: int
    year: int | None
    code: str
    name: str
    n_villages: int
    n_families: int
    census: bool
    index: float
    category_label: str
    title: Html
    header: Table
    summary: Html
    check: str
    league_intro: Html
    league_plot: pd.DataFrame
    league: Table
    area_cutoffs: tuple[float, ...]
    categories_intro: Html
    category_counts: pd.DataFrame
    categories: Table
    heat_intro: Html
    heat: Table
    attention_intro: Html
    attention: Table
    workload_intro: Html
    workload: Table
    methodology: Html
    provenance: dict
    provenance_table: Table
    provenance_intro: Html
    alt: dict = field(default_factory=dict)


def district_report_data(processed_dir=None, kabupaten: str = "63.02", round: int = 1, catalogue="ikk",
                         lang: str = "id", *, parameters: Mapping | None = None) -> DistrictReport:
    """Assemble a district report from the processed folder (see :class:`DistrictReport`)."""
    lang, L, pdir, cat, rnd, lab, areas = _setup(processed_dir, catalogue, round, lang)
    kabupaten = str(kabupaten).strip()
    k = _area_row(areas, "kabupaten", kabupaten, cat, rnd)
    kecs = areas[(areas["level"] == "kecamatan") & (areas["parent_code"] == kabupaten)]
    vill = areas[(areas["level"] == "desa") & (areas["parent_code"].isin(kecs["code"]))].copy()
    scores = _scores(pdir, catalogue)
    s = scores[(scores["kode_kabupaten"] == kabupaten) & (scores["putaran"] == rnd)]
    year = int(s["tahun"].mode().iloc[0]) if len(s) and s["tahun"].notna().any() else None
    census = bool(k["census"])
    cmp_ = _compare_tables(pdir, cat, kabupaten, rnd, scores)
    name = str(k["name"])

    title = Html(f"<h1>{esc(L('title_district', name=name))}</h1>")
    header = _header_table([
        (L("h_kabupaten"), f"{name} ({kabupaten})"),
        (L("h_round"), L("h_round_value", round=rnd, year=year or "-")),
        (L("h_villages"), count(len(vill), lang)),
        (L("h_kecamatans"), count(len(kecs), lang)),
        (L("h_families"), count(k["n_families"], lang)),
        (L("h_design"), L("census_design") if census else L("sample_design")),
    ])
    summary = Html(_h("s_index", lang) + _p(_summary_sentence(cat, name, k, rnd, year or "-", lang))
                   + _p(esc(L("dist_intro", round=rnd, year=year or "-", n=count(len(vill), lang),
                                k=count(len(kecs), lang), f=count(k["n_families"], lang)))))
    check = L("check_district", n=len(vill), name=name, index_name=cat.id.upper(), value=num(k["index"], 2, lang),
              category=k[lab])

    # league ----------------------------------------------------------------------------------
    lg = cmp_.league if cmp_.league is not None else pd.DataFrame()
    if len(lg):
        league = _league_display(lg, lang)
        league_plot = lg.sort_values("rank").reset_index(drop=True)
        league_intro = Html(_h("s_league", lang) + _p(esc(L("pos_note"))))
    else:
        league = Table(pd.DataFrame())
        league_plot = pd.DataFrame(columns=["code", "name", "n_families", "index", "ci_low", "ci_high"])
        league_intro = Html(_h("s_league", lang) + _p(esc(L("pos_missing"))))

    # categories --------------------------------------------------------------------------------
    acats = cat.categories["area"]
    cc = pd.DataFrame({"code": [c.code for c in acats][::-1], "label": [c.label(lang) for c in acats][::-1]})
    cc["n_villages"] = [int((vill["category"] == c).sum()) for c in cc["code"]]
    cc["n_families"] = [int(vill.loc[vill["category"] == c, "n_families"].sum()) for c in cc["code"]]
    categories = Table(pd.DataFrame({L("col_category"): cc["label"],
                                     L("col_villages"): [count(x, lang) for x in cc["n_villages"]],
                                     L("h_families"): [count(x, lang) for x in cc["n_families"]]}),
                       numeric=(L("col_villages"), L("h_families")), data=cc)
    categories_intro = Html(_h("s_categories", lang) + _p(esc(L("cat_intro", rule=cutoff_rule(acats, lang)))))

    # heat table --------------------------------------------------------------------------------
    comps = _components(pdir, cat, rnd, list(vill["code"]) + [kabupaten])
    dims = comps[comps["component_type"] == "dimension"]
    piv = dims.pivot_table(index="code", columns="component_id", values="estimate", aggfunc="first")
    piv = piv.reindex(columns=[d.id for d in cat.dimensions])
    order = vill.sort_values("index", ascending=False)
    heat_rows, heat_styles = [], []
    dim_cols = [_dim_name(d, lang) for d in cat.dimensions]
    for _, r in order.iterrows():
        vals = piv.loc[r["code"]] if r["code"] in piv.index else pd.Series(np.nan, index=piv.columns)
        heat_rows.append([str(r["name"]), count(r["n_families"], lang), num(r["index"], 2, lang),
                          *[num(x, 1, lang) for x in vals]])
        heat_styles.append(["", "", _heat_style(r["index"]), *[_heat_style(x) for x in vals]])
    kv = piv.loc[kabupaten] if kabupaten in piv.index else pd.Series(np.nan, index=piv.columns)
    heat_rows.append([name, count(k["n_families"], lang), num(k["index"], 2, lang), *[num(x, 1, lang) for x in kv]])
    heat_styles.append(["font-weight:bold", "font-weight:bold", _heat_style(k["index"]) + ";font-weight:bold",
                        *[_heat_style(x) + ";font-weight:bold" for x in kv]])
    hcols = [L("col_village"), L("col_n"), L("col_index"), *dim_cols]
    heat = Table(pd.DataFrame(heat_rows, columns=hcols), numeric=tuple(hcols[1:]),
                 styles=pd.DataFrame(heat_styles, columns=hcols),
                 note=L("all_census") if census else "", data=piv.reset_index())
    heat_intro = Html(_h("s_heat", lang) + _p(esc(L("heat_intro"))))

    # villages needing attention -----------------------------------------------------------------
    low_code = acats[0].code
    att = vill[vill["category"] == low_code].assign(reason=L("reason_low_cat"))
    if att.empty:
        att = vill.nsmallest(min(5, len(vill)), "index").assign(reason=L("reason_low_index"))
    att = att.sort_values("index")
    arows = []
    for _, r in att.iterrows():
        vals = piv.loc[r["code"]] if r["code"] in piv.index else None
        if vals is not None and vals.notna().any():
            wid = vals.idxmin()
            d = next(d for d in cat.dimensions if d.id == wid)
            weakest = f"{_dim_name(d, lang)}: {num(vals[wid], 1, lang)} ({signed(vals[wid] - kv[wid], 1, lang)})"
        else:
            weakest = "-"
        arows.append([str(r["name"]), str(kecs.set_index("code")["name"].get(r["parent_code"], "")),
                      count(r["n_families"], lang), num(r["index"], 2, lang), str(r[lab]), weakest, r["reason"]])
    attention = Table(pd.DataFrame(arows, columns=[L("col_village"), L("col_kec"), L("col_n"), L("col_index"),
                                                   L("col_category"), L("col_weakest"), L("col_reason")]),
                      numeric=(L("col_n"), L("col_index")), data=att.reset_index(drop=True))
    attention_intro = Html(_h("s_attention", lang) + _p(esc(L("att_intro"))))

    # agency workload ------------------------------------------------------------------------------
    wl = agency_workload(cmp_.priorities, villages=list(vill["code"]))
    workload = Table(pd.DataFrame({
        L("col_agency"): [agency_name(a, lang) for a in wl["agency"]],
        L("col_n_villages"): [count(x, lang) for x in wl["n_villages"]],
        L("col_indicators"): wl["indicators"].astype(str).to_numpy(),
        L("col_affected"): [count(x, lang) for x in wl["families_affected"]]}),
        numeric=(L("col_n_villages"), L("col_affected")), data=wl, note=L("plan_intro"))
    workload_intro = Html(_h("s_workload", lang) + _p(esc(L("wl_intro"))))

    methodology = _methodology(cat, lang, name=name, sens_row=None, drivers=None, reliability=cmp_.reliability,
                               n_kab=int(k["n_families"]), n_runs=None)
    if cmp_.sensitivity is not None and len(cmp_.sensitivity):
        methodology = Html(methodology + _district_robustness(cmp_, lang, _n_runs(pdir, rnd)))
    params = dict(parameters or {"kabupaten": kabupaten, "round": rnd, "catalogue": str(catalogue), "lang": lang})
    prov = provenance(pdir, catalogue, params, lang=lang)
    alt = {"league": L("alt_league", k=len(league_plot), kab=name, mark=""), "categories": L("alt_categories")}
    return DistrictReport(
        alt=alt, lang=lang, catalogue=cat.id, round=rnd, year=year, code=kabupaten, name=name, n_villages=len(vill),
        n_families=int(k["n_families"]), census=census, index=float(k["index"]), category_label=str(k[lab]),
        title=title, header=header, summary=summary, check=check, league_intro=league_intro, league_plot=league_plot,
        league=league, area_cutoffs=tuple(c.lower for c in acats[1:]), categories_intro=categories_intro, category_counts=cc, categories=categories,
        heat_intro=heat_intro, heat=heat, attention_intro=attention_intro, attention=attention,
        workload_intro=workload_intro, workload=workload, methodology=methodology, provenance=prov,
        provenance_table=provenance_table(prov, lang), provenance_intro=Html(_h("s_provenance", lang)))


def _district_robustness(cmp_: _Compare, lang: str, n_runs) -> str:
    L = lambda key_, **kw: text(key_, lang, **kw)  # noqa: E731
    s = cmp_.sensitivity.sort_values("rank")
    disp = pd.DataFrame({L("col_village"): s["name"].astype(str).to_numpy(),
                         L("col_rank"): [str(int(x)) for x in s["rank"]],
                         "P5–P95": [f"{int(a)}–{int(b)}" for a, b in zip(s["rank_p05"], s["rank_p95"])],
                         L("col_index") + " P5–P95": [span(a, b, 2, lang) for a, b in zip(s["index_p05"], s["index_p95"])],
                         "%": [pct(100 * x, 0, lang) for x in s["category_robustness"]]})
    out = _p(esc(L("robust_villages", runs=count(n_runs, lang) if n_runs else "-")))
    out += Table(disp, numeric=(L("col_rank"), "P5–P95", L("col_index") + " P5–P95", "%")).html()
    return out + _driver_sentence(cmp_.drivers, lang)


def _heat_style(value) -> str:
    if _isnan(value):
        return ""
    for lower, bg, fg in HEAT_BINS:
        if value >= lower:
            return (f"background:{bg};color:{fg};-webkit-print-color-adjust:exact"
                    + (";font-weight:bold" if fg == "#ffffff" else ""))
    return ""


def agency_workload(priorities: pd.DataFrame | None, villages: Iterable[str] | None = None) -> pd.DataFrame:
    """Families affected per agency summed over the villages' priority indicators.

    Columns ``agency``, ``n_villages``, ``indicators`` (sorted, comma separated),
    ``families_affected``; largest workload first.
    """
    cols = ["agency", "n_villages", "indicators", "families_affected"]
    if priorities is None or priorities.empty:
        return pd.DataFrame(columns=cols)
    p = priorities if villages is None else priorities[priorities["kode_desa"].isin(list(villages))]
    if p.empty:
        return pd.DataFrame(columns=cols)
    out = p.groupby("agency").agg(n_villages=("kode_desa", "nunique"),
                                  indicators=("indicator", lambda x: ", ".join(sorted(set(x)))),
                                  families_affected=("families_affected", "sum")).reset_index()
    return out.sort_values(["families_affected", "agency"], ascending=[False, True]).reset_index(drop=True)[cols]


def figure(ax, alt: str, *, dpi: int = 200):
    """A matplotlib figure (or an Axes of it) as an embedded PNG with alternative text, for
    ``display(...)``: printed at 200 dpi, shown at its natural size (retina), and closed.

    nbconvert writes ``alt`` into the report's ``<img>``, so screen readers get a description.
    """
    import io

    import matplotlib.pyplot as plt
    from IPython.display import Image

    fig = getattr(ax, "figure", ax)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    plt.close(fig)
    return Image(data=buf.getvalue(), format="png", retina=dpi >= 144, alt=alt)


def category_bars(counts: pd.DataFrame, ax=None, lang: str = "id"):
    """Horizontal bars of villages per category (``label``, ``n_villages``), hatched greys."""
    import matplotlib.pyplot as plt

    from .plots import GREYS

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.5 * len(counts) + 1), layout="constrained")
    y = np.arange(len(counts))
    bars = ax.barh(y, counts["n_villages"].to_numpy(), color=[GREYS[(k + 1) % 4] for k in range(len(counts))],
                   edgecolor=GREYS[0], linewidth=0.6)
    for k, bar in enumerate(bars):
        bar.set_hatch(["", "//", ".."][k % 3])
    ax.set_yticks(y, counts["label"], fontsize=8)
    ax.invert_yaxis()
    for yy, v in zip(y, counts["n_villages"]):
        ax.text(v, yy, f" {number(int(v), 0, _lang(lang))}", va="center", fontsize=8)
    ax.set_xlabel(text("cat_bar_x", lang))
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.spines[["top", "right"]].set_visible(False)
    return ax


# --- index page and batch ------------------------------------------------------------------------
def latest_round(processed_dir=None, catalogue="ikk") -> int:
    cat = load_catalogue(catalogue)
    a = _areas(_pdir(processed_dir), cat)
    return int(a["round"].max())


def index_rows(processed_dir=None, round: int | None = None, catalogue="ikk", lang: str = "id",
               kabupaten: str | None = None) -> list[dict]:
    """Rows for :func:`pk2d.render.write_index`: every surveyed village of the round
    (``code``, ``name``, ``kecamatan``, ``kabupaten``, ``index``, ``category``, ``n``)."""
    cat = load_catalogue(catalogue)
    pdir = _pdir(processed_dir)
    rnd = latest_round(pdir, cat) if round is None else int(round)
    a = _areas(pdir, cat, rnd)
    kec = a[a["level"] == "kecamatan"].set_index("code")
    v = a[a["level"] == "desa"].sort_values("code")
    lab = _cat_label_col(lang)
    rows = []
    for r in v.itertuples(index=False):
        kab = kec["parent_code"].get(r.parent_code, "")
        if kabupaten and kab != kabupaten:
            continue
        rows.append({"code": r.code, "name": str(r.name), "kecamatan": str(kec["name"].get(r.parent_code, "")),
                     "kabupaten": str(kab), "index": float(r.index), "category": str(getattr(r, lab)),
                     "n": int(r.n_families)})
    return rows


def report_inputs(processed_dir=None, catalogue="ikk") -> tuple[Path, ...]:
    """Files whose content decides whether a rendered report is stale: the processed files a report
    reads, the catalogue, and the report code itself."""
    pdir = _pdir(processed_dir)
    cat = load_catalogue(catalogue)
    files = [pdir / n for n in REPORT_INPUTS] + [pdir / "compare" / n for n in COMPARE_INPUTS]
    src = Path(cat.source)
    code = [Path(__file__), paths.PACKAGE_DIR / "plots.py", paths.PACKAGE_DIR / "fmt.py",
            paths.CATALOGUE_DIR / "agencies.yaml"]
    return tuple(p for p in [*files, *([src] if src.is_file() else []), *code] if p.is_file())


def report_units(processed_dir=None, *, villages: Sequence[str] | None = None, kabupaten: str | None = None,
                 round: int | None = None, catalogue="ikk", lang: str = "id", district: bool = True,
                 notebooks_dir: str | Path | None = None) -> list:
    """:class:`pk2d.render.ReportUnit` for the villages (all of the round, or of ``kabupaten``,
    when ``villages`` is None) and, with ``district``, for each of their kabupaten."""
    from .render import ReportUnit

    cat = load_catalogue(catalogue)
    pdir = _pdir(processed_dir).resolve()
    rnd = latest_round(pdir, cat) if round is None else int(round)
    nb_dir = Path(notebooks_dir) if notebooks_dir else paths.NOTEBOOKS_DIR
    a = _areas(pdir, cat, rnd)
    kec_parent = a[a["level"] == "kecamatan"].set_index("code")["parent_code"]
    desa = a[a["level"] == "desa"].sort_values("code")
    desa = desa.assign(kab=desa["parent_code"].map(kec_parent))
    if villages:
        wanted = [str(x).strip() for x in villages]
        missing = [x for x in wanted if x not in set(desa["code"])]
        if missing:
            raise ReportError(f"desa {', '.join(missing)}", f"not surveyed in round {rnd} ({cat.id})",
                              fix="Use the 10-digit village codes listed in areas.parquet (pk2d index prints them).")
        desa = desa[desa["code"].isin(wanted)]
    elif kabupaten:
        desa = desa[desa["kab"] == kabupaten]
        if desa.empty:
            raise ReportError(f"kabupaten {kabupaten}", f"has no surveyed village in round {rnd} ({cat.id})",
                              fix="Use a kabupaten code such as 63.02.")
    inputs = report_inputs(pdir, cat)
    catalogue_param = str(catalogue) if not isinstance(catalogue, Catalogue) else cat.source
    base = {"round": rnd, "catalogue": catalogue_param, "lang": _lang(lang), "processed_dir": str(pdir)}
    units = [ReportUnit("desa", r.code, str(r.name), nb_dir / VILLAGE_TEMPLATE, {"village": r.code, **base},
                        inputs=inputs) for r in desa.itertuples(index=False)]
    if district:
        kabs = a[(a["level"] == "kabupaten") & a["code"].isin(set(desa["kab"]))].sort_values("code")
        units += [ReportUnit("kabupaten", r.code, str(r.name), nb_dir / DISTRICT_TEMPLATE,
                             {"kabupaten": r.code, **base}, inputs=inputs) for r in kabs.itertuples(index=False)]
    return units


def reports_dir(lang: str = "id") -> Path:
    """Default output folder: ``reports/`` for Bahasa Indonesia, ``reports/en/`` for English."""
    return paths.REPORTS_DIR if _lang(lang) == "id" else paths.REPORTS_DIR / "en"


def build_reports(processed_dir=None, out_dir=None, *, villages: Sequence[str] | None = None,
                  kabupaten: str | None = None, round: int | None = None, catalogue="ikk", lang: str = "id",
                  formats: Sequence[str] = ("html", "pdf"), jobs: int = 2, force: bool = False,
                  retry_failed: bool = False, district: bool = True, progress: bool = True,
                  notebooks_dir: str | Path | None = None):
    """Render village and district reports and write ``out_dir/index.html``; return the
    :class:`pk2d.render.RenderSummary`.

    ``villages=None`` renders every surveyed village of the round (of ``kabupaten``
    when given); ``round=None`` takes the latest round. ``out_dir`` defaults to
    ``reports/`` (``reports/en/`` for ``lang="en"``, so both languages can live side by side).
    The index page lists every village of the round and links the reports that exist.
    """
    from . import render

    cat = load_catalogue(catalogue)
    pdir = _pdir(processed_dir)
    lang = _lang(lang)
    out = Path(out_dir) if out_dir else reports_dir(lang)
    rnd = latest_round(pdir, cat) if round is None else int(round)
    units = report_units(pdir, villages=villages, kabupaten=kabupaten, round=rnd, catalogue=catalogue, lang=lang,
                         district=district, notebooks_dir=notebooks_dir)
    summary = render.render_units(units, out_dir=out, formats=formats, jobs=jobs, force=force,
                                  retry_failed=retry_failed, progress=progress)
    rows = index_rows(pdir, rnd, catalogue, lang)
    a = _areas(pdir, cat, rnd)
    kabs = [{"code": r.code, "name": str(r.name)} for r in a[a["level"] == "kabupaten"].sort_values("code").itertuples()]
    note = (f"{cat.name(lang)} · {'putaran' if lang == 'id' else 'round'} {rnd} · "
            f"{cat.note_en if lang == 'en' else cat.note_id}")
    render.write_index(rows, out, districts=kabs, lang=lang, note=note)
    return summary
