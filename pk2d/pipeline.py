"""The pipeline, stage by stage: clean -> index -> (compare -> reports).

Each stage is a function that reads the previous stage's files and writes its
own, so the CLI (``pk2d index``) and the notebooks (``02_indices.ipynb``)
call the same code and give identical results. :func:`run` executes the stage
notebooks in order with papermill, keeping executed copies for audit.
"""
from __future__ import annotations

import datetime as dt
import sys
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
    sheets = {}
    for cat_id in result.areas["catalogue"].unique():
        a = result.areas[result.areas["catalogue"] == cat_id]
        c = result.components[result.components["catalogue"] == cat_id]
        sheets[f"{cat_id.upper()} wilayah"] = a.rename(columns=AREA_HEADERS_ID)
        sheets[f"{cat_id.upper()} komponen"] = c.rename(columns=AREA_HEADERS_ID)
    notes = [{"Indeks": k, "Pengaturan": key, "Nilai": str(v)} for k, s in result.settings.items() for key, v in s.items()]
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


# --- running the stage notebooks -------------------------------------------------
STAGE_NOTEBOOKS = ("01_clean.ipynb", "02_indices.ipynb")


def run(*, raw_dir=paths.RAW_DIR, processed_dir=paths.PROCESSED_DIR, executed_dir=paths.EXECUTED_DIR,
        notebooks: Sequence[str] = STAGE_NOTEBOOKS, kernel_name: str = "python3") -> list[Path]:
    """Execute the stage notebooks in order with papermill; return the executed copies."""
    import papermill as pm

    executed_dir = Path(executed_dir)
    executed_dir.mkdir(parents=True, exist_ok=True)
    params = {"raw_dir": str(Path(raw_dir).resolve()), "processed_dir": str(Path(processed_dir).resolve())}
    done = []
    for nb in notebooks:
        src = paths.NOTEBOOKS_DIR / nb
        out = executed_dir / nb
        print(f"[pk2d run] {nb} ...", file=sys.stderr, flush=True)
        pm.execute_notebook(str(src), str(out), parameters=params, kernel_name=kernel_name,
                            cwd=str(paths.NOTEBOOKS_DIR), progress_bar=False)
        done.append(out)
    return done
