"""The pipeline, stage by stage: clean -> index -> (compare -> reports).

Each stage is a function that reads the previous stage's files and writes its
own, so the CLI (``pk2d index``) and the notebooks (``02_indices.ipynb``)
call the same code and give identical results. :func:`run` executes the stage
notebooks in order with papermill, keeping executed copies for audit.
"""
from __future__ import annotations

import datetime as dt
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd

from . import __version__, paths
from .areas import AreaEstimates, estimate_areas
from .catalogue import load_catalogue
from .errors import MissingInputError
from .io import sha256_file, write_excel, write_json, write_parquet
from .score import ID_COLUMNS, score_families

DEFAULT_CATALOGUES = ("ikk", "ibangga")

AREA_HEADERS_ID = {
    "catalogue": "Indeks", "round": "Putaran", "level": "Tingkat", "code": "Kode wilayah",
    "name": "Nama wilayah", "parent_code": "Kode induk", "n_families": "Jumlah keluarga (n)",
    "index": "Nilai indeks", "se": "Galat baku", "ci_low": "Batas bawah SK 95%",
    "ci_high": "Batas atas SK 95%", "census": "Sensus (tanpa galat sampling)",
    "category": "Kode kategori", "category_label": "Kategori", "category_label_en": "Kategori (EN)",
    "component_type": "Jenis komponen", "component_id": "Kode komponen", "estimate": "Nilai",
    "n_applicable": "Keluarga yang relevan (n)",
}


@dataclass(frozen=True)
class IndexResult:
    scores: pd.DataFrame
    areas: pd.DataFrame
    components: pd.DataFrame
    settings: dict


def load_processed(processed_dir: str | Path = paths.PROCESSED_DIR) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The clean stage's ``families.parquet`` and ``members.parquet``."""
    processed_dir = Path(processed_dir)
    out = []
    for name in ("families.parquet", "members.parquet"):
        p = processed_dir / name
        if not p.exists():
            raise MissingInputError(p, "The index stage", fix="Run `pk2d clean` (or `make run`) first.")
        out.append(pd.read_parquet(p))
    return out[0], out[1]


def build_index(processed_dir: str | Path = paths.PROCESSED_DIR, *,
                catalogues: Sequence[str] = DEFAULT_CATALOGUES, out_dir: str | Path | None = None,
                design: str = "auto") -> IndexResult:
    """Score families and estimate areas for each catalogue; write the outputs.

    Writes ``scores.parquet`` (one row per catalogue, family and round),
    ``areas.parquet``, ``area_components.parquet``, ``indeks.xlsx`` and
    ``index_settings.json`` (catalogue hashes and settings, input hashes).
    """
    processed_dir = Path(processed_dir)
    out_dir = Path(out_dir or processed_dir)
    families, members = load_processed(processed_dir)
    scores, areas, comps, settings = [], [], [], {}
    for name in catalogues:
        cat = load_catalogue(name)
        s = score_families(families, members, cat)
        est: AreaEstimates = estimate_areas(s, cat, design=design)
        s.insert(0, "catalogue", cat.id)
        scores.append(s)
        areas.append(est.areas)
        comps.append(est.components)
        settings[cat.id] = {**est.settings, "catalogue_file": str(cat.source), "catalogue_version": cat.version,
                            "official_list_public": cat.official_list_public, "note_id": cat.note_id,
                            "note_en": cat.note_en}
    result = IndexResult(pd.concat(scores, ignore_index=True), pd.concat(areas, ignore_index=True),
                         pd.concat(comps, ignore_index=True), settings)
    write_parquet(result.scores, out_dir / "scores.parquet")
    write_parquet(result.areas, out_dir / "areas.parquet")
    write_parquet(result.components, out_dir / "area_components.parquet")
    write_excel(_workbook(result), out_dir / "indeks.xlsx")
    write_json(out_dir / "index_settings.json", {
        "pk2d_version": __version__, "created": dt.datetime.now().isoformat(timespec="seconds"),
        "inputs": {n: sha256_file(processed_dir / n) for n in ("families.parquet", "members.parquet")},
        "catalogues": settings})
    return result


def _workbook(result: IndexResult) -> dict[str, pd.DataFrame]:
    """Sheets for analysts: areas (long) and, per area, every dimension and indicator (wide).

    The wide sheet holds estimates only (points / % of applicable families) for
    desa and higher levels; standard errors, intervals and n per component,
    and RT-level components, are in ``area_components.parquet``.
    """
    sheets = {}
    for cat_id in result.areas["catalogue"].unique():
        a = result.areas[result.areas["catalogue"] == cat_id]
        c = result.components[(result.components["catalogue"] == cat_id) & (result.components["level"] != "rt")]
        wide = c.pivot_table(index=["round", "level", "code"], columns="component_id", values="estimate",
                             sort=False).reset_index()
        order = list(dict.fromkeys(c["component_id"]))
        labels = dict(zip(c["component_id"], c["name"]))
        wide = wide[["round", "level", "code", *order]].rename(
            columns={k: f"{k} {labels[k]}" if k != labels[k] else k for k in order})
        sheets[f"{cat_id.upper()} wilayah"] = a.rename(columns=AREA_HEADERS_ID)
        sheets[f"{cat_id.upper()} komponen"] = wide.rename(columns=AREA_HEADERS_ID)
    notes = [{"Indeks": k, "Pengaturan": key, "Nilai": str(v)} for k, s in result.settings.items() for key, v in s.items()]
    notes.append({"Indeks": "-", "Pengaturan": "komponen",
                  "Nilai": "Lembar komponen: nilai dimensi (poin) dan indikator (% keluarga yang relevan); "
                           "galat baku, SK 95% dan n ada di area_components.parquet."})
    sheets["Metode"] = pd.DataFrame(notes)
    return sheets


def load_scores(catalogue: str = "ikk", processed_dir: str | Path = paths.PROCESSED_DIR) -> pd.DataFrame:
    """Family scores of one catalogue, with only that catalogue's columns."""
    cat = load_catalogue(catalogue)
    p = Path(processed_dir) / "scores.parquet"
    if not p.exists():
        raise MissingInputError(p, "Loading scores", fix="Run `pk2d index` (or `make run`) first.")
    s = pd.read_parquet(p, filters=[("catalogue", "==", cat.id)])
    own = {i.id for i in cat.indicators} | {f"berlaku_{i.id}" for i in cat.indicators} | {
        f"dim_{d.id}" for d in cat.dimensions}
    # columns of the other catalogues in the file are empty for this one's rows
    foreign = [c for c in s.columns if c not in own and c not in ID_COLUMNS and s[c].isna().all()]
    return s.drop(columns=foreign).reset_index(drop=True)


# --- compare stage -------------------------------------------------------------------
@dataclass(frozen=True)
class CompareResult:
    tables: dict  # name -> DataFrame (all rounds, a ``round`` column)
    did: dict | None
    audit: dict
    focus: str | None


def focus_villages(raw_dir: str | Path = paths.RAW_DIR) -> pd.DataFrame:
    """The desa lokus list (``*desa_lokus*.csv`` in the raw folder: kode_desa, tahun), if any."""
    files = sorted(Path(raw_dir).glob("*desa_lokus*.csv"))
    if not files:
        return pd.DataFrame(columns=["kode_kabupaten", "kode_desa", "tahun"])
    return pd.concat([pd.read_csv(f, dtype=str) for f in files], ignore_index=True)


def build_compare(processed_dir: str | Path = paths.PROCESSED_DIR, *, catalogue: str = "ikk",
                  kabupaten: str | None = None, focus: str | None = None, raw_dir: str | Path = paths.RAW_DIR,
                  n_boot: int = 999, n_runs: int = 500, seed: int = 20240710) -> CompareResult:
    """Comparison, evaluation and audit for one kabupaten; writes ``data/processed/compare/``.

    ``focus`` (desa lokus) defaults to the ``desa_lokus`` list in the raw
    folder; ``kabupaten`` to the focus village's (or the largest) kabupaten.
    Every round is compared; change and difference-in-differences use the
    first and last rounds.
    """
    from . import audit as au
    from . import compare as cp

    processed_dir = Path(processed_dir)
    out = processed_dir / "compare"
    cat = load_catalogue(catalogue)
    scores = load_scores(cat.id, processed_dir)
    if focus is None:
        lokus = focus_villages(raw_dir)
        lokus = lokus[lokus["kode_desa"].isin(scores["kode_desa"])]
        focus = lokus["kode_desa"].iloc[0] if len(lokus) else None
    if kabupaten is None:
        kabupaten = (scores.loc[scores["kode_desa"] == focus, "kode_kabupaten"].iloc[0] if focus
                     else scores["kode_kabupaten"].value_counts().index[0])
    s = scores[scores["kode_kabupaten"] == kabupaten].reset_index(drop=True)
    rounds = sorted(s["putaran"].unique())
    tables: dict[str, list] = {k: [] for k in ("league", "focus_vs", "pairs", "gaps", "priorities", "strengths",
                                               "agency_plan", "intervention_families", "sensitivity", "sensitivity_drivers",
                                               "reliability", "indicator_audit")}
    audit_json = {"catalogue": cat.id, "catalogue_sha256": cat.sha256, "kabupaten": kabupaten, "focus": focus,
                  "rounds": {}}
    for rnd in rounds:
        def add(name, df):
            tables[name].append(df.assign(round=int(rnd)))
        sr = s[s["putaran"] == rnd]
        add("league", cp.league_table(s, cat, round=rnd, n_boot=n_boot, seed=seed))
        if focus:
            add("focus_vs", cp.focus_comparison(s, cat, focus=focus, round=rnd))
        add("pairs", cp.village_model(s, round=rnd))
        add("gaps", cp.indicator_gaps(s, cat, round=rnd))
        pri, strong, plan = cp.action_plan(s, cat, round=rnd)
        add("priorities", pri)
        add("strengths", strong)
        add("agency_plan", plan)
        add("intervention_families", cp.intervention_families(s, pri, round=rnd))
        sens = au.sensitivity(s, cat, round=rnd, n_runs=n_runs, seed=seed)
        add("sensitivity", sens.summary)
        add("sensitivity_drivers", sens.drivers)
        rel = au.reliability(sr, cat)
        add("reliability", rel)
        st = au.structure(sr, cat)
        add("indicator_audit", st["indicators"])
        audit_json["rounds"][int(rnd)] = {
            "reliability": rel.to_dict(orient="records"), "pca": st["pca"].head(5).to_dict(orient="records"),
            "flags": st["indicators"].query("flags != ''")[["indicator", "flags"]].to_dict(orient="records"),
            "sensitivity_settings": sens.settings,
            "category_robustness": dict(zip(sens.summary["code"], sens.summary["category_robustness"]))}
    frames = {k: pd.concat(v, ignore_index=True) for k, v in tables.items() if v}
    did = None
    if len(rounds) >= 2:
        frames["change"] = cp.change_over_rounds(s, cat, before=rounds[0], after=rounds[-1])
        if focus:
            did = {"index": cp.difference_in_differences(s, focus=focus, before=rounds[0], after=rounds[-1])}
            for d in cat.dimensions:
                did[d.id] = cp.difference_in_differences(s, focus=focus, before=rounds[0], after=rounds[-1],
                                                         column=f"dim_{d.id}")
    families = frames.pop("intervention_families")
    for name, df in frames.items():
        write_parquet(df, out / f"{name}.parquet")
    # family ids for village cadres: processed data only, never in anything published
    write_parquet(families, out / "intervention_families.parquet")
    write_json(out / "audit.json", audit_json)
    if did:
        write_json(out / "did.json", did)
    write_excel({name: df for name, df in frames.items() if name != "pairs" or len(df) < 50_000}, out / "compare.xlsx")
    frames["intervention_families"] = families
    return CompareResult(frames, did, audit_json, focus)


# --- running the stage notebooks -------------------------------------------------
STAGE_NOTEBOOKS = ("01_clean.ipynb", "02_indices.ipynb", "03_compare_villages.ipynb")


def run(*, raw_dir=paths.RAW_DIR, processed_dir=paths.PROCESSED_DIR, executed_dir=paths.EXECUTED_DIR,
        notebooks: Sequence[str] = STAGE_NOTEBOOKS, kernel_name: str = "python3", reports: bool = True,
        jobs: int = 2) -> list[Path]:
    """The whole pipeline: stage notebooks in order (papermill), then every report.

    Returns the executed stage notebooks. With ``reports`` (default), renders
    all village reports, the district report and ``reports/index.html``.

    Each notebook gets those of ``raw_dir`` and ``processed_dir`` that its
    ``parameters`` cell declares.
    """
    import papermill as pm

    from .render import execute_notebook

    executed_dir = Path(executed_dir)
    params = {"raw_dir": str(Path(raw_dir).resolve()), "processed_dir": str(Path(processed_dir).resolve())}
    done = []
    for nb in notebooks:
        out = executed_dir / nb
        t0 = time.perf_counter()
        print(f"[pk2d run] {nb} ...", end="", file=sys.stderr, flush=True)
        declared = pm.inspect_notebook(str(paths.NOTEBOOKS_DIR / nb))
        execute_notebook(paths.NOTEBOOKS_DIR / nb, out, {k: v for k, v in params.items() if k in declared},
                         kernel_name=kernel_name)
        print(f" {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
        done.append(out)
    if reports:
        from .errors import ReportError
        from .report import build_reports

        summary = build_reports(processed_dir, jobs=jobs)
        print(summary.text(all_rows=False), file=sys.stderr)
        if not summary.ok:
            raise ReportError("batch", f"{len(summary.failed)} report(s) failed",
                              fix="See the table above; rerun `pk2d report --all --retry-failed`.")
    return done
