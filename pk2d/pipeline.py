"""The pipeline, stage by stage: clean -> index -> compare, each recorded in the run (:mod:`pk2d.store`).

Each stage reads what the run recorded of the stage before it, writes its
outputs as a new generation and records them, with every setting it used,
in ``run.json``. A stage whose inputs, settings and code are unchanged is
*up to date* and is not computed again (``force=True`` recomputes; an
unchanged result then writes the same bytes). The CLI (``pk2d index``), the
stage notebooks (``02_indices.ipynb``) and :func:`run` call the same
functions. Reports read the run only (:mod:`pk2d.report`).

>>> from pk2d import pipeline
>>> pipeline.STAGE_NOTEBOOKS
('01_clean.ipynb', '02_indices.ipynb', '03_compare_villages.ipynb')
"""
from __future__ import annotations

import hmac
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd

from . import defaults, paths
from .stage import stage_writer
from .store import Run, open_run

AREA_SHEET_COLUMNS = ("catalogue", "round", "level", "code", "name", "parent_code", "n_families", "index", "se",
                      "ci_low", "ci_high", "census", "df", "n_psu", "rse", "reliability", "category",
                      "category_label", "category_label_en",
                      "component_type", "component_id", "estimate", "n_applicable")


def _rel(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` when both lie in one project (``data/raw`` beside ``data/processed``:
    the record survives moving the project), else absolute."""
    import os

    path, base = Path(path).resolve(), Path(base).resolve()
    try:
        rel = os.path.relpath(path, base)
    except ValueError:  # another drive (Windows)
        return str(path)
    return rel if Path(rel).parts[:3].count("..") <= 2 else str(path)


def _inputs(run: Run, stage: str, names: Sequence[str]) -> dict[str, str]:
    rec = run.record(stage)
    return {f"{stage}/{n}": rec.sha256(n) for n in names}


def _upstream(processed_dir, stages: Sequence[str]) -> Run:
    """The run, checked up to the stages a stage reads (a stale upstream stops with the command)."""
    return open_run(processed_dir, check=False, require=stages).check(require=stages) if stages else None


# --- clean ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cleaned:
    """The clean stage's result: the run it recorded, and readers of its tables."""

    run: Run
    up_to_date: bool

    @property
    def log(self) -> dict:
        return self.run.json("cleaning_log")

    @property
    def families(self) -> pd.DataFrame:
        return self.run.table("families")

    @property
    def members(self) -> pd.DataFrame:
        return self.run.table("members")

    @property
    def rejects(self) -> pd.DataFrame:
        return pd.read_csv(self.run.path("rejects"), dtype={"row": "int64"})

    def summary(self) -> str:
        from .cleaning import summary_text

        head = "(tidak berubah / up to date) " if self.up_to_date else ""
        return head + summary_text(self.log)


def key_fingerprint(key: bytes) -> str:
    """A fingerprint of the pseudonymisation key that reveals nothing about it (recorded in the run, so a
    changed key is seen)."""
    return hmac.new(key, b"pk2d key fingerprint", "sha256").hexdigest()[:16]


def _key_source(key) -> str:
    """Where the key in use comes from, for messages (as :func:`pk2d.cleaning.load_key` chooses it)."""
    if key is not None:
        return "the key given to clean()"
    return paths.KEY_ENV if os.environ.get(paths.KEY_ENV) else f"key file {paths.KEY_FILE}"


def check_key(processed_dir: str | Path, fingerprint: str | None = None, *, source: str | None = None) -> None:
    """Raise :class:`~pk2d.errors.KeyChangedError` when ``processed_dir`` holds a clean stage made with a key
    whose fingerprint (:func:`key_fingerprint`) is not ``fingerprint`` (default: that of the key
    :func:`pk2d.cleaning.load_key` gives); a folder without a clean stage passes. ``source`` says in the
    message where the key in use comes from."""
    from .errors import KeyChangedError
    from .store import current_record

    recorded = current_record(processed_dir).get("stages", {}).get("clean", {}).get("settings", {}).get(
        "key_fingerprint")
    if not recorded:
        return
    if fingerprint is None:
        from .cleaning import load_key

        fingerprint, source = key_fingerprint(load_key()), source or _key_source(None)
    if recorded != fingerprint:
        raise KeyChangedError(Path(processed_dir), recorded, fingerprint, source=source)


def clean(raw_dir: str | Path = paths.RAW_DIR, processed_dir: str | Path = paths.PROCESSED_DIR, *,
          key: bytes | str | None = None, today=None, force: bool = False, new_key: bool = False,
          mapping: str | Path | None = None, engine="local", workers: int | None = None,
          scheduler: str | None = None) -> Cleaned:
    """The clean stage: validate, clean and pseudonymise the exports of ``raw_dir`` into the run.

    ``mapping``: a mapping file (:mod:`pk2d.mapping`) applied to the exports it covers; its sha256 is an
    input of the stage (``mapping/<name>``), so editing it makes the stage compute again.

    ``key``: the pseudonymisation key (default :func:`pk2d.cleaning.load_key`: ``PK2D_KEY`` or the key
    file). When ``processed_dir`` was cleaned with another key, raises
    :class:`~pk2d.errors.KeyChangedError` and changes nothing, since every pseudonymous id would change;
    ``new_key=True`` starts over with the new key on purpose. Raises
    :class:`~pk2d.errors.InputFileError`, and records nothing, if any file is unusable, and
    :class:`~pk2d.errors.OutputFolderError` if ``processed_dir`` cannot be written.

    ``engine``/``workers``/``scheduler``: where the exports are read (:mod:`pk2d.engine`, as in
    :func:`build_index`); the engine changes no result.

    >>> res = clean("data/raw", "data/processed", key=b"secret")  # doctest: +SKIP
    >>> print(res.summary())  # doctest: +SKIP
    """
    from . import cleaning, rawio
    from .io import sha256_file

    raw_dir, pdir = Path(raw_dir), Path(processed_dir)
    files = rawio.input_files(raw_dir)
    if not files:
        rawio.discover(raw_dir)  # raises the clear message (missing folder, no pair, no partner)
    source = _key_source(key)
    key = cleaning.load_key() if key is None else key.encode() if isinstance(key, str) else bytes(key)
    fingerprint = key_fingerprint(key)
    inputs = {f"raw/{p.name}": sha256_file(p) for p in files}
    settings = {"raw_dir": _rel(raw_dir, pdir), "key_fingerprint": fingerprint,
                "contract_version": rawio.load_contract().get("version"),
                "today": str(pd.Timestamp(today or pd.Timestamp.now().date()).date())}
    if mapping is not None:  # validated before anything is locked or written
        from .mapping import load_mapping

        mapping = load_mapping(mapping)
        inputs[f"mapping/{mapping.name}"] = mapping.sha256
        settings["mapping"] = _rel(mapping.path, pdir)
    keyed = ("key_fingerprint", "contract_version", *(("today",) if today is not None else ()))
    with stage_writer(pdir, "clean", inputs=inputs, settings=settings, keyed=keyed, refresh=("raw_dir", "mapping"),
                      force=force) as w:
        if not new_key:  # under the folder lock: the record cannot change between this check and the commit
            check_key(pdir, fingerprint, source=source)
        if not w.up_to_date:
            from .engine import open_engine

            with open_engine(engine, workers=workers, scheduler=scheduler) as eng:
                cleaning.clean(raw_dir, w.directory(), key=key, today=today, mapping=mapping, engine=eng)
    return Cleaned(w.run, w.up_to_date)


# --- index ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class IndexResult:
    """The index stage's result: the run, and its tables (read on first use)."""

    run: Run
    up_to_date: bool

    @property
    def scores(self) -> pd.DataFrame:
        return self.run.table("scores")

    @property
    def areas(self) -> pd.DataFrame:
        return self.run.table("areas")

    @property
    def components(self) -> pd.DataFrame:
        return self.run.table("area_components")

    @property
    def settings(self) -> dict:
        return dict(self.run.settings("index"))


def build_index(processed_dir: str | Path = paths.PROCESSED_DIR, *,
                catalogues: Sequence[str] = defaults.CATALOGUES, design: str = "auto",
                lonely_psu: str = "fail", force: bool = False, engine="local", workers: int | None = None,
                scheduler: str | None = None) -> IndexResult:
    """Score families and estimate areas for each catalogue; record them in the run.

    Writes ``scores/`` (one row per catalogue, family and round), ``areas/`` and ``area_components/``
    (every area of every level: RT to province), each partitioned by province and kabupaten (a
    province's own rows in its partition without a kabupaten), and the analysts' workbook
    ``indeks.xlsx``; records each catalogue's whole content and hash, the design (``design``: auto/census/sample; a sample's
    strata with a single PSU follow ``lonely_psu``, R's rules) and the rounds. Each kabupaten is one
    task of ``engine`` (:mod:`pk2d.engine`: ``"local"``, or ``"dask"`` with ``workers`` or ``scheduler``,
    or an open engine; :mod:`pk2d.index_stage`); the engine changes no result.
    """
    from . import index_stage
    from .catalogue import load_catalogue, to_record
    from .engine import check_written, one_blas_thread, open_engine

    pdir = Path(processed_dir)
    run = _upstream(pdir, ("clean",))
    cats = [load_catalogue(c) for c in catalogues]
    settings = {"catalogues": {c.id: to_record(c) for c in cats}, "design": design, "lonely_psu": lonely_psu}
    inputs = _inputs(run, "clean", ("families", "members"))
    with stage_writer(pdir, "index", inputs=inputs, settings=settings, force=force) as w:
        if not w.up_to_date:
            out = w.directory()
            with open_engine(engine, workers=workers, scheduler=scheduler) as eng:
                work = index_stage.tasks(run, cats, out, design=design)
                results = eng.map(index_stage.score_partition, work)
            if not results:
                from .errors import MissingInputError

                raise MissingInputError(pdir / "clean", "Scoring families", fix="The clean stage kept no family; "
                                        "see its rejects (rejects.csv) and correct the exports.")
            for table in index_stage.TABLES:
                check_written(out / table, {r["parts"][table]["file"]: r["parts"][table]["size"]
                                            for r in results if table in r["parts"]})
            with one_blas_thread():
                done = index_stage.finish(results, cats, out, design=design, lonely_psu=lonely_psu,
                                          sample=work[0]["sample_rounds"])
            w.record_setting("rounds", done["rounds"])
            w.record_setting("estimation", done["settings"])
            from .io import write_excel

            areas, comps, sizes = _workbook_tables(out, cats)
            write_excel(_workbook(areas, comps, cats, sizes), w.path("indeks.xlsx"))
    return IndexResult(w.run, w.up_to_date)


def _workbook_tables(out: Path, cats) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """What :func:`_workbook` shows of the index stage written in ``out``: the areas (without the RT rows
    of a catalogue with more than :data:`pk2d.defaults.WORKBOOK_MAX_ROWS` area rows), the components above
    the RT level, and each catalogue's (area rows, RT rows): read without ever holding the RT rows of a
    province or the nation."""
    from .partitions import count, read

    sizes = {c.id: (count(out / "areas", [("catalogue", "==", c.id)]),
                    count(out / "areas", [("catalogue", "==", c.id), ("level", "==", "rt")])) for c in cats}
    small = [c for c, (n, _) in sizes.items() if n <= defaults.WORKBOOK_MAX_ROWS]
    areas = read(out / "areas", filters=[[("level", "!=", "rt")]] + ([[("catalogue", "in", small)]] if small else []))
    comps = read(out / "area_components", filters=[("level", "!=", "rt")])
    return areas, comps, sizes


def _workbook(areas: pd.DataFrame, components: pd.DataFrame, cats, sizes: dict | None = None
              ) -> dict[str, pd.DataFrame]:
    """Sheets for analysts: areas (long) and, per area, every dimension and indicator (wide), each sorted by
    round, level (RT up to province) and code.

    The wide sheet holds estimates only (points / % of applicable families) for desa and higher
    levels; standard errors, intervals and n per component, and RT-level components, are in
    ``area_components``. A catalogue with more than :data:`pk2d.defaults.WORKBOOK_MAX_ROWS` area rows
    leaves its RT rows out (a note says so); ``sizes``: each catalogue's (area rows, RT rows) when
    ``areas`` was read without them (:func:`_workbook_tables`).
    """
    from .areas import LEVELS
    from .text import t

    def ordered(df):
        rank = df["level"].map({lvl: i for i, lvl in enumerate(LEVELS)})
        return df.assign(_l=rank).sort_values(["round", "_l", "code"], kind="stable").drop(columns="_l")

    heads = {c: t(f"workbook.{c}") for c in AREA_SHEET_COLUMNS}
    sheets, notes = {}, []
    for cat in cats:
        a = areas[areas["catalogue"] == cat.id]
        n, n_rt = (sizes or {}).get(cat.id, (len(a), int((a["level"] == "rt").sum())))
        if n > defaults.WORKBOOK_MAX_ROWS:  # a province or the nation: RTs in the parquet files only
            notes.append({"Indeks": cat.id, "Pengaturan": "RT", "Nilai": t(
                "workbook.rt_left_out", n=int(n_rt), limit=defaults.WORKBOOK_MAX_ROWS)})
            a = a[a["level"] != "rt"]
        c = ordered(components[(components["catalogue"] == cat.id) & (components["level"] != "rt")])
        wide = c.pivot_table(index=["round", "level", "code"], columns="component_id", values="estimate",
                             sort=False).reset_index()
        order = list(dict.fromkeys(c["component_id"]))
        labels = dict(zip(c["component_id"], c["name"]))
        wide = wide[["round", "level", "code", *order]].rename(
            columns={k: f"{k} {labels[k]}" if k != labels[k] else k for k in order})
        sheets[f"{cat.id.upper()} wilayah"] = ordered(a).rename(columns=heads)
        sheets[f"{cat.id.upper()} komponen"] = wide.rename(columns=heads)
    notes = [{"Indeks": cat.id, "Pengaturan": key, "Nilai": str(v)} for cat in cats for key, v in cat.settings.items()
             ] + notes
    notes.append({"Indeks": "-", "Pengaturan": "komponen", "Nilai": t("workbook.components_note")})
    sheets["Metode"] = pd.DataFrame(notes)
    return sheets


def load_processed(processed_dir: str | Path = paths.PROCESSED_DIR) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The clean stage's families and members tables of the run."""
    run = open_run(processed_dir, check=False, require=("clean",))
    return run.table("families"), run.table("members")


def load_scores(catalogue: str = defaults.REPORT_CATALOGUE, processed_dir: str | Path = paths.PROCESSED_DIR,
                *, run: Run | None = None, columns: Sequence[str] | None = None, filters=None) -> pd.DataFrame:
    """Family scores of one catalogue, with only that catalogue's columns (``filters`` as in
    :meth:`pk2d.store.Run.table`, e.g. ``[("kode_kabupaten", "==", "63.02")]``: one partition is read)."""
    from .partitions import column_names
    from .score import columns_for

    run = run or open_run(processed_dir, check=False, require=("index",))
    cat = run.catalogue(catalogue)
    # the other catalogues' columns of the table are empty for this one's rows: not read
    columns = columns_for(cat, [run.catalogue(c) for c in run.catalogue_ids()],
                          columns or column_names(run.path("scores")))
    s = run.table("scores", columns=columns, filters=[("catalogue", "==", cat.id), *(filters or [])])
    return s.reset_index(drop=True)


def family_distribution(catalogue: str = defaults.REPORT_CATALOGUE, round: int | None = None, *,
                        run: Run | None = None, processed_dir: str | Path = paths.PROCESSED_DIR,
                        kabupaten: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """How the families of a round are spread over the index (2-point bins: ``low``, ``high``, ``n``) and
    over the family categories (``category``, ``label``, ``n``), of one ``kabupaten`` or of the whole run,
    counted a kabupaten's part at a time: the memory of one partition, whatever the size of the run.
    ``round``: the latest in the run when None."""
    import numpy as np

    from .score import label_codes

    run = run or open_run(processed_dir, check=False, require=("index",))
    cat = run.catalogue(catalogue)
    rnd = run.round_or_latest(round)
    edges = np.linspace(0, 100, 51)
    hist = np.zeros(len(edges) - 1, dtype=np.int64)
    counts: dict[int, int] = {}
    for part in run.partitions("scores"):
        if kabupaten is not None and part["values"]["kode_kabupaten"] != kabupaten:
            continue
        s = run.table("scores", columns=["indeks", "kategori"], filters=[
            ("catalogue", "==", cat.id), ("putaran", "==", rnd), ("kode_kabupaten", "==", part["values"]["kode_kabupaten"])])
        hist += np.histogram(s["indeks"].dropna().to_numpy(float), bins=edges)[0]
        for code, n in s["kategori"].value_counts().items():
            counts[int(code)] = counts.get(int(code), 0) + int(n)
    codes = [c.code for c in cat.categories["family"] if counts.get(c.code)]
    categories = pd.DataFrame({"category": codes, "label": label_codes(codes, cat.categories["family"]).to_numpy(),
                               "n": [counts[c] for c in codes]})
    return pd.DataFrame({"low": edges[:-1], "high": edges[1:], "n": hist}), categories


# --- compare ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class CompareResult:
    """The compare stage's result: the run, and its tables (read on first use)."""

    run: Run
    up_to_date: bool

    def table(self, name: str) -> pd.DataFrame:
        return self.run.table(name)

    @property
    def did(self) -> pd.DataFrame:
        return self.run.table("did")

    @property
    def audit(self) -> dict:
        return self.run.json("audit")

    @property
    def lokus(self) -> pd.DataFrame:
        return pd.DataFrame(self.run.settings("compare")["lokus"], columns=["kode_kabupaten", "kode_desa",
                                                                           "nama_desa", "tahun"])


def build_compare(processed_dir: str | Path = paths.PROCESSED_DIR, *, catalogues: Sequence[str] | None = None,
                  raw_dir: str | Path | None = None, n_boot: int = defaults.N_BOOT, n_runs: int = defaults.N_RUNS,
                  seed: int = defaults.SEED, force: bool = False, progress: bool = False,
                  engine="local", workers: int | None = None, scheduler: str | None = None) -> CompareResult:
    """Comparison, evaluation, audit and the report tables, for every kabupaten, round and desa lokus.

    ``catalogues`` defaults to every catalogue of the index stage; the desa lokus list is read from
    ``raw_dir`` (default: the raw folder the clean stage read). Each kabupaten and round draws
    from its own random stream (``seed``, kabupaten, round), so adding data for one kabupaten never
    changes another's intervals. Every setting (seed, draws, the desa lokus list) is recorded. Each
    kabupaten is one task of ``engine`` (as in :func:`build_index`); the engine changes no result.
    """
    from . import compare_stage
    from .io import sha256_file
    from .lokus import lokus_files, read_lokus

    pdir = Path(processed_dir)
    run = _upstream(pdir, ("clean", "index"))
    raw = Path(raw_dir) if raw_dir else run._resolve(run.settings("clean")["raw_dir"])
    cats = [run.catalogue(c) for c in (catalogues or run.catalogue_ids())]
    lokus = read_lokus(raw)
    settings = {"catalogues": [c.id for c in cats], "n_boot": int(n_boot), "n_runs": int(n_runs), "seed": int(seed),
                "level": defaults.LEVEL, "top": defaults.TOP, "raw_dir": _rel(raw, pdir) if raw else None,
                "lokus": lokus.to_dict(orient="records"),
                "lokus_files": {p.name: sha256_file(p) for p in lokus_files(raw)}}
    inputs = {**_inputs(run, "clean", ("families", "cleaning_log.json", "rejects.csv")),
              **_inputs(run, "index", ("scores", "areas", "area_components"))}
    with stage_writer(pdir, "compare", inputs=inputs, settings=settings,
                      keyed=[k for k in settings if k not in ("raw_dir", "lokus_files")],
                      refresh=("raw_dir", "lokus_files"), force=force) as w:
        if not w.up_to_date:
            from .engine import open_engine

            with open_engine(engine, workers=workers, scheduler=scheduler) as eng:
                compare_stage.compute(run, cats, lokus, w, n_boot=n_boot, n_runs=n_runs, seed=seed,
                                      progress=progress, engine=eng)
    return CompareResult(w.run, w.up_to_date)


# --- running the stage notebooks -------------------------------------------------
STAGE_NOTEBOOKS = ("01_clean.ipynb", "02_indices.ipynb", "03_compare_villages.ipynb")


def run(*, raw_dir=paths.RAW_DIR, processed_dir=paths.PROCESSED_DIR, executed_dir=paths.EXECUTED_DIR,
        notebooks: Sequence[str] = STAGE_NOTEBOOKS, kernel_name: str = "python3", reports: bool = True,
        jobs: int = defaults.JOBS, out_dir=None, formats: Sequence[str] = defaults.FORMATS, mapping=None,
        engine="local", workers: int | None = None, scheduler: str | None = None):
    """The whole pipeline: the stage notebooks in order (papermill), then every report (``mapping``: a
    mapping file the clean notebook applies, :func:`clean`).

    Each stage that is up to date returns at once; with ``reports`` (default) renders every
    village and district report of the run and ``reports/index.html``. Returns the render summary
    (or None without reports). Before any notebook runs, every folder it writes is checked
    (:class:`~pk2d.errors.OutputFolderError`) and so is the key (:class:`~pk2d.errors.KeyChangedError`:
    ``run`` never starts over with a new key; ``pk2d clean --new-key`` does, on purpose).

    ``engine="dask"`` (:mod:`pk2d.engine`) starts one local cluster of ``workers`` (or joins
    ``scheduler``'s) for the whole run: every stage notebook gets its address and the reports are
    rendered on its workers. The outputs are those of the default engine.
    """
    from .engine import check_options, open_engine

    check_options(engine, workers, scheduler)
    if engine == "local":
        return _run(raw_dir, processed_dir, executed_dir, notebooks, kernel_name, reports, jobs, out_dir, formats,
                    mapping, None)
    with open_engine(engine, workers=workers, scheduler=scheduler) as eng:
        print(f"[pk2d run] engine {eng.describe()}", file=sys.stderr, flush=True)
        return _run(raw_dir, processed_dir, executed_dir, notebooks, kernel_name, reports, jobs, out_dir, formats,
                    mapping, eng)


def _run(raw_dir, processed_dir, executed_dir, notebooks, kernel_name, reports, jobs, out_dir, formats, mapping,
         eng):
    import papermill as pm

    from .execute import execute_notebook
    from .io import ensure_writable_dir
    from .stage import PROCESSED_FOLDER

    executed_dir = Path(executed_dir)
    ensure_writable_dir(processed_dir, PROCESSED_FOLDER)
    ensure_writable_dir(executed_dir, "The executed-notebooks folder")
    if reports:
        from .report.batch import reports_dir

        ensure_writable_dir(out_dir or reports_dir(defaults.LANG), "The reports folder (--out)")
    check_key(processed_dir)
    params = {"raw_dir": str(Path(raw_dir).resolve()), "processed_dir": str(Path(processed_dir).resolve())}
    if mapping is not None:
        from .mapping import load_mapping

        params["mapping"] = str(load_mapping(mapping).path)  # a bad mapping stops here, before any notebook
    if eng is not None:
        params.update(engine="dask", scheduler=eng.address)
    for nb in notebooks:
        t0 = time.perf_counter()
        print(f"[pk2d run] {nb} ...", end="", file=sys.stderr, flush=True)
        declared = pm.inspect_notebook(str(paths.NOTEBOOKS_DIR / nb))
        execute_notebook(paths.NOTEBOOKS_DIR / nb, executed_dir / nb,
                         {k: v for k, v in params.items() if k in declared}, kernel_name=kernel_name)
        print(f" {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    if not reports:
        return None
    from .errors import ReportError
    from .report.batch import build_reports

    summary = build_reports(processed_dir, out_dir, jobs=jobs, formats=formats, all_units=True,
                            engine=eng or "local")
    print(summary.text(all_rows=False), file=sys.stderr)
    if not summary.ok:
        raise ReportError("batch", f"{len(summary.failed)} report(s) failed",
                          fix="See the table above; rerun `pk2d report --all --retry-failed`.")
    return summary
