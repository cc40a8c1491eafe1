"""Which reports exist in a run, and rendering them: village, district and province reports and the index page.

:func:`report_units` lists the :class:`~pk2d.render.unit.ReportUnit` of a run
(from its ``report_units`` table, with each unit's data digest), and
:func:`build_reports` renders them with :func:`pk2d.render.batch.render_units`
on the run it opened and pinned: every report of a batch comes from that one
run, verified against its recorded hashes, even if a stage commits a newer
run meanwhile.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .. import defaults, paths
from ..errors import AreaNotFoundError, ReportError
from ..store import Run, open_run, pinned
from ..text import lang_of, t

VILLAGE_TEMPLATE = "10_village_report.ipynb"
DISTRICT_TEMPLATE = "11_district_report.ipynb"
PROVINCE_TEMPLATE = "12_province_report.ipynb"


def reports_dir(lang: str = "id") -> Path:
    """Default output folder: ``reports/`` for Bahasa Indonesia, ``reports/en/`` for English."""
    return paths.REPORTS_DIR if lang_of(lang) == "id" else paths.REPORTS_DIR / "en"


def _units_table(run: Run, catalogue, rnd: int | None):
    """The units of one catalogue: of round ``rnd``, or each area in the latest round it was surveyed in
    (``rnd=None``: kabupaten survey different years; every area's newest report is the default)."""
    cat = run.catalogue(catalogue)
    u = run.table("report_units", filters=[("catalogue", "==", cat.id)])
    if rnd is not None:
        return cat, u[u["round"] == rnd].reset_index(drop=True)
    return cat, u.sort_values("round").groupby(["kind", "unit"], sort=False).tail(1).reset_index(drop=True)


def report_units(run: Run, *, villages: Sequence[str] | None = None, kabupaten: str | None = None,
                 round: int | None = None, catalogue=None, lang: str = defaults.LANG, district: bool = True,
                 province: bool | str = False, notebooks_dir: str | Path | None = None) -> list:
    """The report units of ``run`` for one catalogue and round (default: each area's latest round): the
    named ``villages`` (or every village, of ``kabupaten`` when given) and, with ``district``, their
    kabupaten; ``province``: also the report of each province (``True``) or of the one named
    (e.g. ``"63"``; alone when neither villages nor a kabupaten are asked for)."""
    from ..render.unit import ReportUnit

    rnd = None if round is None else run.round_or_latest(round)
    cat, u = _units_table(run, catalogue, rnd)
    nb_dir = Path(notebooks_dir) if notebooks_dir else paths.NOTEBOOKS_DIR
    base = {"catalogue": cat.id, "lang": lang_of(lang), "processed_dir": str(run.processed_dir), "run_id": run.id}
    provs = _provinces(run, cat, province, nb_dir, base, ReportUnit)
    if isinstance(province, str) and not villages and not kabupaten:
        return provs
    desa = u[u["kind"] == "desa"].sort_values("unit")
    if villages:
        wanted = [str(x).strip() for x in villages]
        missing = [x for x in wanted if x not in set(desa["unit"])]
        if missing:
            raise AreaNotFoundError("desa", ", ".join(missing), f"not surveyed in {_in_round(rnd)} ({cat.id})",
                                    fix="Use the 10-digit village codes that `pk2d index` lists, e.g. "
                                        f"{', '.join(desa['unit'].head(3)) or '-'}.")
        desa = desa[desa["unit"].isin(wanted)]
    elif kabupaten:
        desa = desa[desa["kabupaten"] == kabupaten]
        if desa.empty:
            raise AreaNotFoundError("kabupaten", kabupaten, f"has no surveyed village in {_in_round(rnd)} ({cat.id})",
                                    fix="Use a kabupaten code such as 63.02.")
    units = [ReportUnit("desa", r.unit, str(r.name), nb_dir / VILLAGE_TEMPLATE,
                        {"village": r.unit, "round": int(r.round), **base}, digest=str(r.digest))
             for r in desa.itertuples(index=False)]
    if district:
        kabs = u[(u["kind"] == "kabupaten") & u["unit"].isin(set(desa["kabupaten"]))].sort_values("unit")
        units += [ReportUnit("kabupaten", r.unit, str(r.name), nb_dir / DISTRICT_TEMPLATE,
                             {"kabupaten": r.unit, "round": int(r.round), **base}, digest=str(r.digest))
                  for r in kabs.itertuples(index=False)]
    return units + provs


def _provinces(run: Run, cat, province: bool | str, nb_dir: Path, base: dict, ReportUnit) -> list:  # noqa: N803
    """The province units asked for (``True``: every province of the run; a code: that one, or an error)."""
    if province is False or province is None:
        return []
    p = run.table("report_units", filters=[("catalogue", "==", cat.id), ("kind", "==", "provinsi")])
    p = p.sort_values("round").groupby("unit").tail(1).sort_values("unit")
    if isinstance(province, str):
        code = province.strip()
        if code not in set(p["unit"]):
            raise AreaNotFoundError("provinsi", code, f"has no surveyed kabupaten in this run ({cat.id})",
                                    fix=f"Use a province code of the run: {', '.join(p['unit']) or '-'}.")
        p = p[p["unit"] == code]
    return [ReportUnit("provinsi", r.unit, str(r.name), nb_dir / PROVINCE_TEMPLATE, {"provinsi": r.unit, **base},
                       digest=str(r.digest)) for r in p.itertuples(index=False)]


def _in_round(rnd: int | None) -> str:
    return f"round {rnd}" if rnd is not None else "any round"


def index_rows(run: Run, *, round: int | None = None, catalogue=None, lang: str = defaults.LANG,
               kabupaten: str | None = None) -> tuple[list[dict], list[dict], list[dict]]:
    """(village rows, district rows, province rows) for :func:`pk2d.render.index_page.write_index` (each
    area in its latest round unless ``round`` is given)."""
    rnd = None if round is None else run.round_or_latest(round)
    cat, u = _units_table(run, catalogue, rnd)
    labels = {c.code: c.label(lang_of(lang)) for c in cat.categories["area"]}
    desa = u[u["kind"] == "desa"].sort_values("unit")
    if kabupaten:
        desa = desa[desa["kabupaten"] == kabupaten]
    rows = [{"code": r.unit, "name": str(r.name), "kecamatan": str(r.kecamatan_name), "kabupaten": str(r.kabupaten),
             "index": float(r.index), "category": labels.get(int(r.category), ""), "n": int(r.n_families),
             "round": int(r.round)} for r in desa.itertuples(index=False)]
    kabs = u[u["kind"] == "kabupaten"].sort_values("unit")
    provs = u[u["kind"] == "provinsi"].sort_values("unit")
    return (rows, [{"code": r.unit, "name": str(r.name)} for r in kabs.itertuples(index=False)],
            [{"code": r.unit, "name": str(r.name)} for r in provs.itertuples(index=False)])


def build_reports(processed_dir=None, out_dir=None, *, villages: Sequence[str] | None = None,
                  kabupaten: str | None = None, round: int | None = None, catalogue=None,
                  lang: str = defaults.LANG, formats: Sequence[str] = defaults.FORMATS, jobs: int = defaults.JOBS,
                  force: bool = False, retry_failed: bool = False, all_units: bool = False, district: bool | None = None,
                  province: bool | str | None = None, progress: bool = True, notebooks_dir: str | Path | None = None, pdf_engine: str = "auto",
                  kernel_mode: str = "auto", engine="local", workers: int | None = None, scheduler: str | None = None):
    """Render village and district reports of the current run and write ``out_dir/index.html``.

    The run is opened with every check (a catalogue edited after indexing, changed raw inputs or
    code stop here with :class:`~pk2d.errors.StaleRunError` and the command to run) and pinned for
    the batch. ``villages=None`` with ``all_units`` renders every village of the round (of
    ``kabupaten`` when given), their district reports and (without ``kabupaten``) the province
    reports; ``province="63"`` renders that province's report (alone unless villages are named). Returns the
    :class:`~pk2d.render.results.RenderSummary`; the index page is written also when the batch is
    interrupted. ``engine``/``workers``/``scheduler`` (:mod:`pk2d.engine`): ``"dask"`` renders on the workers
    of a cluster (``jobs`` is then one report per worker at a time).
    """
    from ..engine import open_engine
    from ..render.batch import render_units
    from ..render.index_page import write_index

    if not villages and not all_units and not kabupaten and not province:
        raise ReportError("batch", "no report asked for",
                          fix="Name villages (--village CODE), a province (--province 63) or use --all.")
    if province is None:
        province = bool(all_units and not kabupaten and not villages)
    pdir = Path(processed_dir) if processed_dir else paths.PROCESSED_DIR
    lang = lang_of(lang)
    out = Path(out_dir) if out_dir else reports_dir(lang)
    open_run(pdir, check=False, require=())  # a clear message when there is no run at all
    with pinned(pdir) as run:  # pinned first, then checked: nothing of it can be collected meanwhile
        run.check(deep=True)
        rnd = None if round is None else run.round_or_latest(round)
        units = report_units(run, villages=villages, kabupaten=kabupaten, round=rnd, catalogue=catalogue, lang=lang,
                             district=(not villages) if district is None else district, province=province,
                             notebooks_dir=notebooks_dir)
        with open_engine(engine, workers=workers, scheduler=scheduler) as eng:
            return render_units(units, out_dir=out, formats=formats, jobs=jobs, force=force, retry_failed=retry_failed,
                                progress=progress, pdf_engine=pdf_engine, kernel_mode=kernel_mode, engine=eng,
                                preload=("pk2d.report.sections:preload", str(run.processed_dir), run.id),
                                on_done=lambda _: _index(run, out, rnd, catalogue, lang, write_index))


def _index(run, out, rnd, catalogue, lang, write_index) -> None:
    cat = run.catalogue(catalogue)
    rows, kabs, provs = index_rows(run, round=rnd, catalogue=catalogue, lang=lang)
    when = f"{t('index_page.round', lang)} {rnd}" if rnd is not None else t("index_page.latest_round", lang)
    note = f"{cat.name(lang)} · {when} · {cat.note_en if lang == 'en' else cat.note_id}"
    write_index(rows, out, districts=kabs, provinces=provs, lang=lang, note=note)
