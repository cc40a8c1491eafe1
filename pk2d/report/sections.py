"""The report sections shared by village and district reports, and the :class:`Unit` they read.

A :class:`Unit` is one area of one round and catalogue, opened on a run
record: it reads the rows of its own unit from the run's report tables
(:mod:`pk2d.report.tables`) and nothing else, and the catalogue as the index
stage recorded it. Every section is one function ``(unit) -> display object``;
a number in a report is found in three steps: the report cell, the section
function, the run's table or catalogue entry.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd

from .. import __version__, defaults, paths
from ..catalogue import Catalogue
from ..errors import AreaNotFoundError
from ..fmt import count, datetime_text, missing, number, pct, span
from ..reliability import CODES
from ..store import Run, open_run
from ..text import group, lang_of, t
from .display import Fragment, Table
from .tables import KEY

TIMEZONE = "Asia/Makassar"  #: WITA, Kalimantan Selatan's time zone
#: report tables read once for a whole batch (in the kernel zygote), by run id: table -> (frame, row ranges)
_PRELOADED: dict[tuple[str, str], tuple[pd.DataFrame, dict]] = {}


def preload(processed_dir, run_id: str, parts: list | None = None) -> int:
    """Read every report table of the pinned run once, sorted and indexed by unit, so that each report kernel
    forked afterwards slices its rows from memory instead of reading files. ``parts``: only the rows of
    these partitions (``[province, kabupaten or None]`` each: the kabupaten a worker's share of a batch
    reports on, :func:`pk2d.render.workers.shares`), so a worker of a national batch holds its share's
    rows, not the nation's. Returns the number of tables."""
    from .. import partitions

    run = open_run(processed_dir, run_id=run_id, check=False)
    wanted = None if parts is None else {tuple(p) for p in parts}
    n = 0
    for table in run.tables("compare"):
        if not table.startswith("report_") or table == "report_units":
            continue
        path = run.path(table)
        if wanted is not None and path.is_dir():  # no pyarrow thread pool in a process that forks
            files = [p["path"] for p in partitions.partitions(path) if tuple(p["values"].values()) in wanted]
            df = partitions.read(path, paths=files, use_threads=False)
        else:
            df = run.table(table, use_threads=False)
        groups = df.groupby(list(KEY), sort=False).indices
        _PRELOADED[(run.id, table)] = (df, {k: v for k, v in groups.items()}, wanted)
        n += 1
    return n


@dataclass(frozen=True)
class Unit:
    """One report's view of the run: ``kind`` (``desa``/``kabupaten``) and ``code`` of one round and
    catalogue, in one language."""

    run: Run
    kind: str
    code: str
    round: int
    catalogue: Catalogue
    lang: str = "id"
    png_figures: bool = False
    _cache: dict = field(default_factory=dict, repr=False, compare=False, hash=False)

    def rows(self, table: str, sort=None, ascending: bool | list = True) -> pd.DataFrame:
        """This unit's rows of a report table (empty when the run has none), without the key columns,
        sorted by ``sort`` when there are rows."""
        rows = self._rows(table)
        return rows.sort_values(sort, ascending=ascending).reset_index(drop=True) if sort and len(rows) else rows

    def _rows(self, table: str) -> pd.DataFrame:
        if table not in self._cache:
            pre = _PRELOADED.get((self.run.id, table))
            if pre is not None and pre[2] is not None and self._partition_values not in pre[2]:
                pre = None  # preloaded for other kabupaten only: read from the run
            if pre is not None:
                df, index, _ = pre
                rows = index.get((self.catalogue.id, int(self.round), self.kind, self.code))
                self._cache[table] = (df.iloc[rows] if rows is not None else df.iloc[:0]).drop(
                    columns=list(KEY)).reset_index(drop=True)
            elif not self.run.has_table(table):
                self._cache[table] = pd.DataFrame()
            else:
                f = [("catalogue", "==", self.catalogue.id), ("round", "==", int(self.round)),
                     ("kind", "==", self.kind), ("unit", "==", self.code), *self._partition]
                self._cache[table] = self.run.table(table, filters=f).drop(columns=list(KEY)).reset_index(drop=True)
        return self._cache[table]

    @property
    def _partition_values(self) -> tuple:
        """The partition of the report tables this unit's rows are in (:func:`pk2d.partitions.of_area`)."""
        from ..partitions import of_area

        return of_area(self.kind, self.code)

    @property
    def _partition(self) -> list[tuple]:
        """The filter that reads only that partition (a province's: its own and its kabupaten's)."""
        prov, kab = self._partition_values
        return [("kode_provinsi", "==", prov)] if kab is None else [("kode_kabupaten", "==", kab)]

    @property
    def facts(self) -> pd.Series:
        f = self.rows("report_facts")
        return f.iloc[0]

    def L(self, key: str, **values) -> str:  # noqa: N802 - short, used everywhere
        """A text of the catalogue (``report.<key>`` unless the key has a dot) in the unit's language."""
        return t(key if "." in key else f"report.{key}", self.lang, **values)

    def fragment(self, template: str, **context) -> Fragment:
        return Fragment(template, context, self.lang)

    @property
    def synthetic(self) -> bool:
        """Every raw input of the run is a SINTETIS file (the shipped sample): reports say so at the top."""
        names = [k.split("/", 1)[-1] for k in self.run.record("clean").inputs if k.startswith("raw/")]
        return bool(names) and all(n.upper().startswith("SINTETIS") for n in names)

    def image(self, ax, alt: str):
        """A figure of this report (:func:`pk2d.plots.image`; with a PNG copy when the unit asks for one)."""
        from .. import plots

        return plots.image(ax, alt, png=self.png_figures)

    # names in the unit's language
    def dim_name(self, d) -> str:
        return d.name_en if self.lang == "en" else d.name_id

    def ind_name(self, i) -> str:
        return i.name_en if self.lang == "en" else i.name_id

    def category_label(self, code, unit: str = "area") -> str:
        for c in self.catalogue.categories[unit]:
            if int(code) == c.code:
                return c.label(self.lang)
        return self.L("fam_unscored") if unit == "family" else "-"


def open_unit(kind: str, code: str, *, round: int | None = None, catalogue=None, lang: str = defaults.LANG,
              processed_dir=None, run_id: str | None = None, png_figures: bool = False) -> Unit:
    """The unit of a report, on the current run of ``processed_dir`` (checked: a stale run stops with
    :class:`~pk2d.errors.StaleRunError`) or on the pinned run ``run_id`` a batch opened.
    ``png_figures``: figures also carry a PNG copy (for the Word document)."""
    pdir = Path(processed_dir) if processed_dir else paths.PROCESSED_DIR
    run = open_run(pdir, run_id=run_id, check=run_id is None)
    cat = run.catalogue(catalogue)
    code = str(code).strip()
    if round is None:  # the latest round this area was surveyed in (kabupaten survey different years)
        mine = run.table("report_units", columns=["round"], filters=[("kind", "==", kind), ("unit", "==", code),
                                                                      ("catalogue", "==", cat.id)])
        rnd = int(mine["round"].max()) if len(mine) else run.latest_round()
    else:
        rnd = run.round_or_latest(round)
    unit = Unit(run, kind, code, rnd, cat, lang_of(lang), bool(png_figures))
    if unit.rows("report_facts").empty:
        units = run.table("report_units", columns=["kind", "unit", "round", "catalogue"],
                          filters=[("kind", "==", kind), ("round", "==", rnd), ("catalogue", "==", cat.id)])
        known = ", ".join(sorted(units["unit"])[:5]) or "-"
        raise AreaNotFoundError(kind, code, f"no {cat.id} estimate for round {rnd} in this run",
                                fix=f"Use a surveyed {kind} code (e.g. {known}) and round.")
    return unit


# --- pieces shared by the sections ------------------------------------------------------------------
def cutoff_rule(categories, lang: str = "id") -> str:
    """'Rendah 0 sampai < 50, Sedang 50 sampai < 75, Baik ≥ 75'."""
    parts = []
    for i, c in enumerate(categories):
        lo = number(c.lower, 0 if float(c.lower).is_integer() else 2, lang)
        if i + 1 < len(categories):
            hv = categories[i + 1].lower
            hi = number(hv, 0 if float(hv).is_integer() else 2, lang)
            parts.append(f"{c.label(lang)} {t('report.m_range', lang, lo=lo, hi=hi)}")
        else:
            parts.append(f"{c.label(lang)} {t('report.m_range_top', lang, lo=lo)}")
    return ", ".join(parts)


def estimate_text(value, low, high, census: bool, *, digits: int = 2, lang: str = "id", reliability=None,
                  n_psu=None) -> str:
    """A value with its uncertainty: the census mark, the words that its standard error cannot be
    estimated (never an interval), or the 95% CI with the reliability (a code of :data:`pk2d.reliability.CODES`).

    >>> estimate_text(73.9865, 73.9865, 73.9865, True), estimate_text(73.98, 71.2, 76.4, False, lang="en")
    ('73,99 (sensus: tanpa galat sampling)', '73.98 (95% CI 71.20–76.40)')
    >>> estimate_text(76.95, 76.95, 76.95, False, reliability="no_se", n_psu=1)
    '76,95 (galat baku tidak dapat diestimasi (hanya 1 PSU))'
    >>> estimate_text(10.0, 4.1, 15.9, False, reliability="care", digits=1)
    '10,0 (SK 95% 4,1–15,9; hati-hati)'
    """
    v = number(value, digits, lang)
    if census or reliability == "census":
        return f"{v} ({t('report.census_mark', lang)})"
    if reliability == "no_se":
        return f"{v} ({no_se_text(n_psu, lang)})"
    flag = f"; {reliability_label(reliability, lang)}" if reliability in CODES else ""
    return f"{v} ({t('report.ci95', lang)} {span(low, high, digits, lang)}{flag})"


# --- reliability flags (codes from the report tables: pk2d.report.tables.with_reliability) ----------
def reliability_label(code, lang: str = "id") -> str:
    """The short label of a reliability code ('layak', 'hati-hati', ...; '-' without one).

    >>> reliability_label("care"), reliability_label("census", "en"), reliability_label(None)
    ('hati-hati', 'census', '-')
    """
    return t(f"reliability.{code}" if code in CODES else "reliability.none", lang)


def no_se_text(n_psu=None, lang: str = "id") -> str:
    """'galat baku tidak dapat diestimasi (hanya 1 PSU)', or without the number of PSUs where it is not known."""
    if n_psu is not None and not missing(n_psu) and 0 < float(n_psu) < 2:
        return t("reliability.cannot_psu", lang, n=int(n_psu))
    return t("reliability.cannot", lang)


def interval_text(low, high, code, *, n_psu=None, digits: int = 2, lang: str = "id", signs: bool = False) -> str:
    """The interval cell of an estimate: the census mark, the words that its standard error cannot be
    estimated (``no_se``: never an interval), or the interval.

    >>> interval_text(70.1, 70.1, "no_se", n_psu=1), interval_text(1.0, 3.0, "ok")
    ('galat baku tidak dapat diestimasi (hanya 1 PSU)', '1,00–3,00')
    """
    if code == "census":
        return t("report.census_mark", lang)
    if code == "no_se":
        return no_se_text(n_psu, lang)
    return span(low, high, digits, lang, signs=signs)


#: flags a table sets in bold (besides their words), so that they stand out in print and in greyscale
WEAK = ("no_se", "care", "unreliable")


def add_flags(frame: pd.DataFrame, codes, lang: str = "id", *, column: str | None = None,
              classes: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``frame`` with a reliability column (its words, :func:`reliability_label`) and the cell classes of
    the table (``classes`` extended; weak flags bold)."""
    col = column or t("reliability.column", lang)
    codes = list(codes)
    out = frame.copy()
    out[col] = [reliability_label(c, lang) for c in codes]
    cls = (pd.DataFrame("", index=frame.index, columns=frame.columns) if classes is None else classes.copy())
    cls = cls.reindex(columns=out.columns, fill_value="")
    cls[col] = ["strong" if c in WEAK else "" for c in codes]
    return out, cls


def flags_note(codes, lang: str = "id", *, model: bool = False, note: str = "") -> str:
    """``note`` and the reliability legend: always for model intervals, else where a flag is not census."""
    codes = [c for c in codes if c in CODES]
    if model:
        return f"{note} {t('reliability.legend_model', lang)}".strip()
    if any(c != "census" for c in codes):
        return f"{note} {t('reliability.legend', lang)}".strip()
    return note


def summary_context(u: Unit, f: pd.Series, area: str) -> dict:
    """What the index summary sentence needs: value, category, n, interval, the next cut-off."""
    cats = u.catalogue.categories["area"]
    higher = [c for c in cats if c.lower > f["index"]]
    code = f.get("reliability")
    rel = None
    if code in CODES and code not in ("census", "no_se"):
        rse = f.get("rse", f["se"] / abs(f["index"]) if f["index"] else float("nan"))
        label = reliability_label(code, u.lang)
        rel = label if missing(rse) else t("reliability.with_rse", u.lang, label=label, rse=pct(100 * rse, 1, u.lang))
    return {"no_se": code == "no_se", "cannot": no_se_text(f.get("n_psu"), u.lang), "rel": rel,
            "index_name": u.catalogue.name(u.lang), "area": area, "round": u.round,
            "year": "-" if pd.isna(f.get("year")) else int(f["year"]), "value": number(f["index"], 2, u.lang),
            "category": u.category_label(f["category"]), "census": bool(f["census"]),
            "n": count(f["n_families"], u.lang), "low": number(f["ci_low"], 2, u.lang),
            "high": number(f["ci_high"], 2, u.lang),
            "next": higher[0].label(u.lang) if higher else None,
            "cut": number(higher[0].lower, 0, u.lang) if higher else None,
            "gap": number(higher[0].lower - f["index"], 2, u.lang) if higher else None,
            "top": not higher and not pd.isna(f["index"])}


def methodology(u: Unit, *, name: str) -> Fragment:
    """The method annex: catalogue, cut-offs, aggregation, weights, intervals, robustness, reliability."""
    cat, lang = u.catalogue, u.lang
    st = cat.settings
    settings = u.run.settings("compare")
    sens = u.rows("report_sensitivity")
    me = sens[sens["code"] == u.code] if len(sens) and u.kind == "desa" else pd.DataFrame()
    robust = None
    if len(me):
        r = me.iloc[0]
        robust = {"runs": count(settings.get("n_runs"), lang), "name": name,
                  "share": pct(100 * r["category_robustness"], 0, lang), "lo": number(r["index_p05"], 2, lang),
                  "hi": number(r["index_p95"], 2, lang), "rlo": int(r["rank_p05"]), "rhi": int(r["rank_p95"]),
                  "to": u.L("to")}
    rel = u.rows("report_reliability")
    ov = rel[rel["scope"] == "overall"] if len(rel) else rel
    return u.fragment(
        "methodology", catalogue_name=cat.name(lang), catalogue_id=cat.id, version=cat.version,
        k=len(cat.indicators), d=len(cat.dimensions), official=cat.official_list_public,
        note=cat.note_en if lang == "en" else cat.note_id,
        area_rule=cutoff_rule(cat.categories["area"], lang), family_rule=cutoff_rule(cat.categories["family"], lang),
        order_key=f"report.order_{st['aggregation_order']}", method_key=f"report.method_{st['aggregation_method']}",
        na_key=f"report.na_{st['not_applicable']}",
        weights=", ".join(f"{u.dim_name(d)} {number(d.weight * 100, 0, lang)}%" for d in cat.dimensions),
        n_boot=count(settings.get("n_boot"), lang), robust=robust, targets=_targets(cat, lang),
        robust_villages=_robust_table(u) if u.kind != "desa" and len(sens) else None,
        runs=count(settings.get("n_runs"), lang), driver=driver(u),
        alpha=number(ov["alpha"].iloc[0], 2, lang) if len(ov) else None,
        alpha_n=count(ov["n_families"].iloc[0], lang) if len(ov) else None,
        sensitive=sensitive_list(u) or None, min_cell=defaults.MIN_CELL, mark=t("report.suppressed", lang,
                                                                               min=defaults.MIN_CELL))


def sensitive_list(u: Unit) -> str:
    """'E8 Tidak ada pekerja anak (5-17 tahun), P1 ...': the catalogue's sensitive indicators."""
    return ", ".join(f"{i.id} {u.ind_name(i)}" for i in u.catalogue.indicators if i.sensitive)


def sensitive_note(u: Unit) -> str:
    """The note of a table with hidden figures of sensitive indicators."""
    return u.L("sensitive_note", list=sensitive_list(u), min=defaults.MIN_CELL,
               mark=u.L("suppressed", min=defaults.MIN_CELL))


def _targets(cat: Catalogue, lang: str) -> dict:
    """The targets a report states: the indicators with a national target, and the default for the rest."""
    default = cat.raw.get("default_target") or {"value": 80, "source": "pk2d_default"}
    src = cat.target_sources.get(default.get("source"), {})
    listed = [f"{i.id} {pct(i.target, 0, lang)} ({cat.target_source_text(i, lang)})" for i in cat.indicators
              if i.target_source != default.get("source")]
    return {"targets": "; ".join(listed) or "-", "default": pct(float(default.get("value", 80)), 0, lang),
            "default_source": src.get("en" if lang == "en" else "id", default.get("source"))}


def _robust_table(u: Unit) -> Table:
    s = u.rows("report_sensitivity", sort="rank")
    lang = u.lang
    cols = [u.L("col_village"), u.L("col_rank"), "P5–P95", f"{u.L('col_index')} P5–P95", "%"]
    frame = pd.DataFrame({cols[0]: s["name"].astype(str).to_numpy(), cols[1]: [str(int(x)) for x in s["rank"]],
                          cols[2]: [f"{int(a)}–{int(b)}" for a, b in zip(s["rank_p05"], s["rank_p95"])],
                          cols[3]: [span(a, b, 2, lang) for a, b in zip(s["index_p05"], s["index_p95"])],
                          cols[4]: [pct(100 * x, 0, lang) for x in s["category_robustness"]]})
    return Table(frame, numeric=tuple(cols[1:]), data=s)


def driver(u: Unit) -> dict | None:
    """The method choice whose options differ most in the share of categories kept (for one sentence)."""
    drivers = u.rows("report_drivers")
    if drivers.empty:
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
    if best is None:
        return None
    ch, oa, a, ob, b = best[1]
    options = group("option", u.lang)
    return {"choice": u.L(f"choice_{ch}"), "oa": options.get(oa, oa), "a": pct(100 * a, 0, u.lang),
            "ob": options.get(ob, ob), "b": pct(100 * b, 0, u.lang)}


def quality(u: Unit) -> tuple[Fragment, Table, Table]:
    """Rows received, used and rejected in the round's files behind this kabupaten, and why rows were
    rejected. Aggregates only: no row numbers, no values, no messages."""
    q, rj = u.rows("report_quality"), u.rows("report_rejects")
    cols = [u.L("col_table"), u.L("col_rows"), u.L("col_kept"), u.L("col_rejected"), u.L("col_dupes")]
    frame = pd.DataFrame({cols[0]: [u.L(f"t_{x}") for x in q.get("table", [])],
                          cols[1]: [count(x, u.lang) for x in q.get("rows", [])],
                          cols[2]: [count(x, u.lang) for x in q.get("kept", [])],
                          cols[3]: [count(x, u.lang) for x in q.get("rejected", [])],
                          cols[4]: [count(x, u.lang) for x in q.get("dupes", [])]})
    table = Table(frame, numeric=tuple(cols[1:]), data=q)
    if len(rj):
        rules = group("rule", u.lang)
        rc = [u.L("col_table"), u.L("col_rule"), u.L("col_count")]
        rejects = Table(pd.DataFrame({rc[0]: [u.L(f"t_{x}") for x in rj["table"]],
                                      rc[1]: [rules.get(x, str(x).replace("_", " ")) for x in rj["rule"]],
                                      rc[2]: [count(x, u.lang) for x in rj["n"]]}), numeric=(rc[2],), data=rj)
    else:
        rejects = Table(pd.DataFrame({u.L("col_rule"): [u.L("q_none")]}), data=rj)
    n_files = int(q["n_files"].max()) if len(q) else 0
    f = u.facts
    missing = None
    if u.kind == "desa" and "n_missing" in f:
        missing = {"k": count(f["n_missing"], u.lang), "n": count(f["n_families"], u.lang)}
    intro = u.fragment("quality", round=u.round, n_files=n_files, missing=missing,
                       intro_key="report.q_intro_province" if u.kind == "provinsi" else "report.q_intro")
    return intro, table, rejects


def provenance(u: Unit, parameters: dict | None = None, *, now: dt.datetime | None = None) -> dict:
    """Where the report comes from, all of it from the run record: pk2d version, run id, the hashes of
    the data and of the catalogue the index used, the seeds and draws, the parameters (no folders),
    and the time of rendering in WITA."""
    from zoneinfo import ZoneInfo

    run = u.run
    clean, index, compare = (run.record(s) for s in ("clean", "index", "compare"))
    when = (now or dt.datetime.now(dt.timezone.utc)).astimezone(ZoneInfo(TIMEZONE)).replace(microsecond=0)
    params = {k: v for k, v in (parameters or {}).items()
              if not k.endswith("_dir") and k != "run_id" and not (isinstance(v, str) and ("/" in v or "\\" in v))}
    return {"pk2d_version": __version__, "run_id": run.id, "code": index.code.get("fingerprint", "")[:16],
            "data_files": {"families/": clean.sha256("families"), "scores/": index.sha256("scores")},
            "raw_inputs": len([k for k in clean.inputs if k.startswith("raw/")]),
            "catalogue": {"id": u.catalogue.id, "version": u.catalogue.version, "sha256": u.catalogue.sha256},
            "seed": compare.settings.get("seed"), "n_boot": compare.settings.get("n_boot"),
            "n_runs": compare.settings.get("n_runs"), "parameters": params, "rendered_at": when.isoformat(),
            "rendered_text": datetime_text(when, u.lang), "timezone": TIMEZONE}


def provenance_table(prov: dict, lang: str = "id") -> Table:
    def L(k):
        return t(f"report.{k}", lang)
    c = prov["catalogue"]
    rows = [(L("p_version"), prov["pk2d_version"]), (L("p_run"), prov["run_id"]),
            (L("p_rendered"), prov["rendered_text"]),
            (L("p_catalogue"), f"{c['id']} {c['version']}: {c['sha256']}"),
            *[(f"{L('p_file')}: {name}", h) for name, h in prov["data_files"].items()],
            (L("p_draws"), t("report.p_draws_value", lang, seed=prov["seed"], n_boot=count(prov["n_boot"], lang),
                             n_runs=count(prov["n_runs"], lang))),
            (L("p_parameters"), " · ".join(f"{k}: {v}" for k, v in prov["parameters"].items()) or "-")]
    frame = pd.DataFrame(rows, columns=["", " "])
    classes = pd.DataFrame([("", "mono" if len(str(v)) >= 40 else "") for _, v in rows], columns=["", " "])
    return Table(frame, header=False, classes=classes)


def fact_table(rows: list[tuple[str, str]]) -> Table:
    """A two-column fact table (heading cell, value)."""
    return Table(pd.DataFrame(rows, columns=["", " "]), header=False)


class AnnexSections:
    """The closing sections every report has (data quality, method annex, provenance); the report class
    sets ``unit``, ``name`` and ``lang``."""

    unit: Unit
    name: str
    lang: str

    @cached_property
    def _quality(self):
        return quality(self.unit)

    @property
    def quality_intro(self) -> Fragment:
        return self._quality[0]

    @property
    def quality(self) -> Table:
        return self._quality[1]

    @property
    def rejects(self) -> Table:
        return self._quality[2]

    @cached_property
    def methodology(self) -> Fragment:
        return methodology(self.unit, name=self.name)

    def provenance(self, parameters: dict | None = None, **kw) -> dict:
        return provenance(self.unit, parameters, **kw)

    def provenance_table(self, parameters: dict | None = None) -> Table:
        return provenance_table(self.provenance(parameters), self.lang)

    @cached_property
    def provenance_intro(self) -> Fragment:
        return self.unit.fragment("heading", key="report.s_provenance")
