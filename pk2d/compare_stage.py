"""The compare stage over the whole run: every catalogue, kabupaten, round and desa lokus.

One task per kabupaten (:func:`compare_kabupaten`, on the engine of :mod:`pk2d.engine`) reads that
kabupaten's scores, areas and families only, runs the statistics of :mod:`pk2d.compare` and
:mod:`pk2d.audit` per round, the change between consecutive rounds and the difference-in-differences
of every desa lokus, builds the report tables of its villages and of the kabupaten
(:func:`pk2d.report.tables.build`), and writes its part of every table. The command then builds
the province units' report tables from the areas above the RT level and the few rows per village the
tasks hand back (:func:`compute`), and writes them in each province's partition without a kabupaten.
So the command never holds a family, and a task holds one kabupaten. Every table is a dataset
partitioned by province and kabupaten (:mod:`pk2d.partitions`); :meth:`pk2d.store.Run.table` reads it
whole or by kabupaten. The comparison tables have the columns ``catalogue`` and ``kabupaten`` (and
``round`` where it belongs to one); the report tables the key of :mod:`pk2d.report.tables`.

Random draws: each kabupaten, round and analysis has its own stream
``numpy.random.default_rng([seed, kabupaten number, round, analysis])`` (analysis 1:
the league bootstrap, 2: the sensitivity runs), so results for one kabupaten do
not depend on which other kabupaten are in the run, and two analyses never
share draws.

>>> stream(20240710, "63.02", 2, BOOTSTRAP)
[20240710, 6302, 2, 1]
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from . import audit as au
from . import compare as cp

TABLES = ("league", "focus_vs", "pairs", "gaps", "problems", "problem_rts", "strengths", "agency_plan", "intervention_families",
          "sensitivity", "sensitivity_drivers", "reliability", "indicator_audit", "change", "did")
#: published in the analysts' workbook (never the family ids)
WORKBOOK = ("league", "focus_vs", "gaps", "problems", "strengths", "agency_plan", "sensitivity",
            "sensitivity_drivers", "reliability", "indicator_audit", "change", "did")


BOOTSTRAP, SENSITIVITY = 1, 2


def stream(seed: int, kabupaten: str, round: int, analysis: int) -> list[int]:
    """The random stream of one kabupaten, round and analysis (``numpy.random.default_rng`` takes the list)."""
    return [int(seed), int("".join(ch for ch in str(kabupaten) if ch.isdigit()) or 0), int(round), int(analysis)]


def _lokus_in(lokus: pd.DataFrame, kabupaten: str) -> list[str]:
    return list(dict.fromkeys(lokus.loc[lokus["kode_kabupaten"] == kabupaten, "kode_desa"]))


def compare_kabupaten(task: dict) -> dict:
    """One kabupaten, every catalogue (one task of the compare stage, :mod:`pk2d.engine`).

    ``task``: ``processed_dir``, ``run_id`` (the run being compared), ``kabupaten``, ``part`` (its
    partition's values), ``catalogues`` (ids), ``lokus`` (records), ``n_boot``, ``n_runs``, ``seed``,
    ``context`` (:func:`pk2d.report.tables.build`), ``rejects`` (:func:`pk2d.report.tables.rejects_by_file`)
    and ``out`` (the stage's folder). Reads that kabupaten's scores, areas and families only, and writes
    its part of every comparison and report table under ``out``. Returns ``{"parts": {table: {"file",
    "size", "schema", "empty"}}, "audit": {catalogue: {round: ...}}, "province": {catalogue: {"did",
    "problems", "cells", "years"}}}``: what the province's report tables need (a few rows per village).
    """
    from . import partitions
    from .pipeline import load_scores
    from .report import disclosure
    from .report import tables as rtables
    from .store import open_run

    run = open_run(task["processed_dir"], run_id=task["run_id"], check=False)
    lokus = pd.DataFrame(task["lokus"], columns=["kode_kabupaten", "kode_desa", "nama_desa", "tahun"])
    kab, part = task["kabupaten"], task["part"]
    mine = [("kode_kabupaten", "==", kab)]
    tables: dict[str, list[pd.DataFrame]] = defaultdict(list)
    audit, province, data = {}, {}, {}
    areas = _areas_of(run, part)
    for cid in task["catalogues"]:
        cat = run.catalogue(cid)
        s = load_scores(cat.id, run=run, filters=mine)
        frames = _compare(s, cat, kab, lokus, task, audit.setdefault(cat.id, {}))
        for name, parts in frames.items():
            tables[name].extend(parts)
        data[cat.id] = {"scores": s, "areas": areas["areas"][areas["areas"]["catalogue"] == cat.id],
                        "components": areas["components"][areas["components"]["catalogue"] == cat.id]}
        cells = disclosure.indicator_cells(cat, s)[0]
        years = s.groupby(["putaran", "tahun"]).size().rename("n").reset_index()
        province[cat.id] = {"did": _concat(frames.get("did")), "problems": _concat(frames.get("problems")),
                            "cells": cells, "years": years}
    cmp = {name: pd.concat(parts, ignore_index=True) for name, parts in tables.items() if parts}
    families = run.table("families", columns=["putaran", "kode_desa", "kode_kabupaten", "tanggal_wawancara"],
                         filters=mine)
    cats = [run.catalogue(c) for c in task["catalogues"]]
    report = rtables.build(cats, data, families, cmp, lokus, run.json("cleaning_log"), task["rejects"], task["context"])
    values, out = list(part.values()), Path(task["out"])
    return {"parts": {**{name: partitions.write_task_part(_tidy(df), out / name, values) for name, df in cmp.items()},
                      **{name: partitions.write_task_part(df, out / name, values) for name, df in report.items()}},
            "audit": audit, "province": province}


def _concat(frames) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _areas_of(run, part: dict) -> dict[str, pd.DataFrame]:
    """A kabupaten's rows of ``areas`` and ``area_components``, with its province's own rows (every
    catalogue and round)."""
    from . import partitions

    out = {}
    for name, key in (("areas", "areas"), ("area_components", "components")):
        here = [p["path"] for p in run.partitions(name)
                if p["values"] == part or p["values"] == {**part, "kode_kabupaten": None}]
        out[key] = partitions.read(run.path(name), paths=here)
    return out


def _compare(s: pd.DataFrame, cat, kab: str, lokus: pd.DataFrame, task: dict, kab_audit: dict
             ) -> dict[str, list[pd.DataFrame]]:
    """Every comparison table of one kabupaten and catalogue (``s``: its scores, every round), and its
    audit (PCA, flags, sensitivity settings) per round in ``kab_audit``."""
    seed, n_boot, n_runs = task["seed"], task["n_boot"], task["n_runs"]
    frames: dict[str, list[pd.DataFrame]] = defaultdict(list)
    rounds = sorted(int(r) for r in s["putaran"].unique())
    focus = [f for f in _lokus_in(lokus, kab) if f in set(s["kode_desa"])]

    def add(name, df, rnd=None):
        df = df.assign(catalogue=cat.id, kabupaten=kab)
        frames[name].append(df if rnd is None else df.assign(round=int(rnd)))

    for rnd in rounds:
        sr = s[s["putaran"] == rnd]
        add("league", cp.league_table(s, cat, round=rnd, n_boot=n_boot, seed=stream(seed, kab, rnd, BOOTSTRAP)), rnd)
        for f in focus:
            if f in set(sr["kode_desa"]):
                add("focus_vs", cp.focus_comparison(s, cat, focus=f, round=rnd).assign(focus=f), rnd)
        add("pairs", cp.village_model(s, round=rnd), rnd)
        add("gaps", cp.indicator_gaps(s, cat, round=rnd), rnd)
        pri, strong, plan = cp.action_plan(s, cat, round=rnd)
        add("problems", pri, rnd)
        add("problem_rts", cp.problem_rts(s, pri, round=rnd), rnd)
        add("strengths", strong, rnd)
        add("agency_plan", plan, rnd)
        add("intervention_families", cp.intervention_families(s, pri, round=rnd), rnd)
        sens = au.sensitivity(s, cat, round=rnd, n_runs=n_runs, seed=stream(seed, kab, rnd, SENSITIVITY))
        add("sensitivity", sens.summary, rnd)
        add("sensitivity_drivers", sens.drivers, rnd)
        rel = au.reliability(sr, cat).assign(n_families=len(sr))
        add("reliability", rel, rnd)
        st = au.structure(sr, cat)
        add("indicator_audit", st["indicators"], rnd)
        kab_audit[str(rnd)] = {
            "pca": st["pca"].head(5).to_dict(orient="records"),
            "flags": st["indicators"].query("flags != ''")[["indicator", "flags"]].to_dict(orient="records"),
            "sensitivity_settings": sens.settings}
    for before, after in zip(rounds, rounds[1:]):
        add("change", cp.change_over_rounds(s, cat, before=before, after=after).assign(before_round=before), after)
    for row in evaluations(s, lokus[lokus["kode_kabupaten"] == kab]):
        pair = s[s["putaran"].isin([row["before"], row["after"]]) & s["kode_desa"].isin([row["focus"], *row["controls"]])]
        did = [{"component_id": "indeks", **cp.difference_in_differences(
            pair, focus=row["focus"], before=row["before"], after=row["after"])}]
        did += [{"component_id": d.id, **cp.difference_in_differences(
            pair, focus=row["focus"], before=row["before"], after=row["after"], column=f"dim_{d.id}")}
            for d in cat.dimensions]
        did = pd.DataFrame(did).drop(columns=["assumptions_id", "assumptions_en"], errors="ignore")
        add("did", did.assign(before_round=row["before"], lokus_year=row["year"]), row["after"])
    return dict(frames)


def compute(run, cats, lokus: pd.DataFrame, writer, *, n_boot: int, n_runs: int, seed: int,
            progress: bool = False, engine=None) -> None:
    """Compute every comparison and report table (one task of ``engine``, an open :mod:`pk2d.engine`
    engine, per kabupaten: :func:`compare_kabupaten`; default in this process), then the province units'
    report tables, the audit and the analysts' workbook; write them with ``writer``."""
    from . import partitions
    from .engine import LocalEngine, check_written, one_blas_thread
    from .io import write_excel
    from .report import tables as rtables

    out = writer.directory()
    kabs = [p["values"] for p in run.partitions("scores")]
    context = {"seed": int(seed), "n_boot": int(n_boot), "n_runs": int(n_runs),
               "design": run.settings("index").get("design")}  # as report.digests.run_context reads it back
    log = run.json("cleaning_log")
    rejects = rtables.rejects_by_file(run.path("rejects"))
    task = {"processed_dir": str(run.processed_dir), "run_id": run.id, "catalogues": [c.id for c in cats],
            "lokus": lokus.to_dict(orient="records"), "n_boot": int(n_boot), "n_runs": int(n_runs), "seed": int(seed),
            "context": context, "rejects": rejects, "out": str(out)}
    results = (engine or LocalEngine()).map(compare_kabupaten, [{**task, "kabupaten": p["kode_kabupaten"], "part": p}
                                                                 for p in kabs])
    parts: dict[str, list[dict]] = defaultdict(list)
    for res in results:
        for name, info in res["parts"].items():
            parts[name].append(info)
    for name, infos in parts.items():
        check_written(out / name, {i["file"]: i["size"] for i in infos})
    with one_blas_thread():
        _province(run, cats, lokus, results, parts, log, rejects, context, out)
    for name in dict.fromkeys([*TABLES, *parts]):  # every comparison table exists, possibly empty (one round: no
        # change, no DiD); a report table only when a unit has rows in it
        infos = parts.get(name, [])
        schemas = [i["schema"] for i in infos] or [_empty_schema()]
        partitions.write_schema(out / name, schemas, own=False, empty=[i["empty"] for i in infos] or None)
    audit = {"catalogues": {c.id: {r_kab["kode_kabupaten"]: res["audit"][c.id] for r_kab, res in zip(kabs, results)}
                            for c in cats}}
    writer.write_json("audit.json", audit)
    sheets = {}
    for name in WORKBOOK:  # a table of a million rows or more is in its Parquet dataset only
        if partitions.count(out / name) < 1_000_000:
            sheets[name] = partitions.read(out / name)
    write_excel(sheets, writer.path("compare.xlsx"))


def _province(run, cats, lokus, results, parts, log, rejects, context, out) -> None:
    """The province units' report tables, from the areas above the RT level and the few rows per village
    each task handed back, written in each province's partition without a kabupaten (their part files
    added to ``parts``)."""
    from . import partitions
    from .report import tables as rtables

    areas = partitions.read(run.path("areas"), filters=[("level", "!=", "rt")])
    prov = {c.id: {k: _concat([r["province"][c.id][k] for r in results if len(r["province"][c.id][k])])
                   for k in ("did", "problems", "cells", "years")} for c in cats}
    years = {c.id: _modes(prov[c.id]["years"]) for c in cats}
    cells = {c.id: prov[c.id]["cells"] if len(prov[c.id]["cells"]) else None for c in cats}
    top = rtables.build_province(cats, {c.id: areas[areas["catalogue"] == c.id] for c in cats},
                                 {c.id: {k: prov[c.id][k] for k in ("did", "problems")} for c in cats}, lokus, years,
                                 log, rejects, cells, context)
    for name, df in top.items():
        for code, idx in df.groupby("unit", sort=True).indices.items():
            parts[name].append(partitions.write_task_part(df.iloc[idx].reset_index(drop=True), out / name,
                                                          [str(code), None]))


def _empty_schema():
    """The schema of a table no task wrote a row of: its key columns."""
    import pyarrow as pa

    return pa.Table.from_pandas(pd.DataFrame({"catalogue": pd.Series(dtype="str"), "kabupaten": pd.Series(dtype="str"),
                                              "round": pd.Series(dtype="int64")}), preserve_index=False).schema


def _modes(years: pd.DataFrame) -> dict[int, int]:
    """Round -> the survey year most of its families were interviewed in (the first such year on a tie),
    from the tasks' counts of (``putaran``, ``tahun``)."""
    if not len(years):
        return {}
    n = years.groupby(["putaran", "tahun"])["n"].sum().reset_index().sort_values(["putaran", "n", "tahun"],
                                                                                  ascending=[True, False, True])
    return {int(r): int(y) for r, y in n.drop_duplicates("putaran")[["putaran", "tahun"]].itertuples(index=False)}


def evaluations(scores: pd.DataFrame, lokus: pd.DataFrame) -> list[dict]:
    """The difference-in-differences evaluations of one kabupaten: for each desa lokus, its baseline (the
    last round surveyed in or before the year it became lokus) against each later round, with the
    comparison villages that are surveyed in both rounds and not yet desa lokus by the later round
    (never-treated and not-yet-treated villages; a balanced panel of villages).

    >>> s = pd.DataFrame({"putaran": [1, 1, 1, 2, 2, 2], "tahun": [2023] * 3 + [2024] * 3,
    ...                   "kode_desa": ["A", "B", "C"] * 2})
    >>> lk = pd.DataFrame({"kode_desa": ["A", "B"], "tahun": [2023, 2024]})
    >>> [(e["focus"], e["before"], e["after"], e["controls"]) for e in evaluations(s, lk)]
    [('A', 1, 2, ['C'])]
    """
    year = scores.groupby("putaran")["tahun"].agg(lambda x: int(x.mode().iloc[0]))
    seen = scores.groupby("kode_desa")["putaran"].agg(lambda x: set(int(r) for r in x))
    first_year = lokus.groupby("kode_desa")["tahun"].min()
    out = []
    for f, y in lokus[["kode_desa", "tahun"]].drop_duplicates().itertuples(index=False):
        if f not in seen.index:
            continue
        base = [r for r in sorted(seen[f]) if year[r] <= int(y)]
        if not base:
            continue  # no survey in or before the year it became lokus: no baseline
        before = base[-1]
        for after in sorted(r for r in seen[f] if r > before):
            controls = sorted(v for v, rs in seen.items() if v != f and {before, after} <= rs
                              and not (v in first_year.index and first_year[v] <= year[after]))
            if controls:
                out.append({"focus": f, "year": int(y), "before": before, "after": after, "controls": controls})
    # one evaluation per village and later round: the one from its latest designation
    best: dict = {}
    for e in out:
        k = (e["focus"], e["after"])
        if k not in best or e["year"] > best[k]["year"]:
            best[k] = e
    return list(best.values())


def _tidy(df: pd.DataFrame) -> pd.DataFrame:
    """catalogue, kabupaten, round first; object columns of mixed content as strings (Parquet-safe)."""
    front = [c for c in ("catalogue", "kabupaten", "round") if c in df.columns]
    df = df[front + [c for c in df.columns if c not in front]]
    for c in df.columns:
        if df[c].dtype == object:
            kinds = {type(v) for v in df[c].dropna()}
            if len(kinds) > 1:
                df[c] = df[c].map(lambda v: v if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
    return df.reset_index(drop=True)
