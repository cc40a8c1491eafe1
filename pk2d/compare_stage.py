"""The compare stage over the whole run: every catalogue, kabupaten, round and desa lokus.

:func:`compute` runs the statistics of :mod:`pk2d.compare` and
:mod:`pk2d.audit` per kabupaten and round, the change between consecutive
rounds and the difference-in-differences of every desa lokus, then the
per-unit report tables (:mod:`pk2d.report.tables`), and writes them through
the stage writer of :func:`pk2d.pipeline.build_compare`. Every table has the
columns ``catalogue`` and ``kabupaten`` (and ``round`` where it belongs to one).

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

    ``task``: ``processed_dir``, ``run_id`` (the run being compared), ``kabupaten``, ``catalogues``
    (ids), ``lokus`` (records), ``n_boot``, ``n_runs``, ``seed``. Reads that kabupaten's scores only;
    returns ``{"frames": {catalogue: {table: [frames]}}, "audit": {catalogue: {round: ...}}}``.
    """
    from .pipeline import load_scores
    from .store import open_run

    run = open_run(task["processed_dir"], run_id=task["run_id"], check=False)
    lokus = pd.DataFrame(task["lokus"], columns=["kode_kabupaten", "kode_desa", "nama_desa", "tahun"])
    kab, seed, n_boot, n_runs = task["kabupaten"], task["seed"], task["n_boot"], task["n_runs"]
    out = {"frames": {}, "audit": {}}
    for cid in task["catalogues"]:
        cat = run.catalogue(cid)
        s = load_scores(cat.id, run=run, filters=[("kode_kabupaten", "==", kab)])
        frames: dict[str, list[pd.DataFrame]] = defaultdict(list)
        out["frames"][cat.id] = frames
        kab_audit = out["audit"][cat.id] = {}
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
            add("change", cp.change_over_rounds(s, cat, before=before, after=after).assign(before_round=before),
                after)
        for row in evaluations(s, lokus[lokus["kode_kabupaten"] == kab]):
            pair = s[s["putaran"].isin([row["before"], row["after"]])
                     & s["kode_desa"].isin([row["focus"], *row["controls"]])]
            did = [{"component_id": "indeks", **cp.difference_in_differences(
                pair, focus=row["focus"], before=row["before"], after=row["after"])}]
            did += [{"component_id": d.id, **cp.difference_in_differences(
                pair, focus=row["focus"], before=row["before"], after=row["after"], column=f"dim_{d.id}")}
                for d in cat.dimensions]
            did = pd.DataFrame(did).drop(columns=["assumptions_id", "assumptions_en"], errors="ignore")
            add("did", did.assign(before_round=row["before"], lokus_year=row["year"]), row["after"])
        out["frames"][cat.id] = dict(frames)
    return out


def compute(run, cats, lokus: pd.DataFrame, writer, *, n_boot: int, n_runs: int, seed: int,
            progress: bool = False, engine=None) -> None:
    """Compute every comparison table (one task of ``engine``, an open :mod:`pk2d.engine` engine, per
    kabupaten: :func:`compare_kabupaten`; default in this process) and the report tables; write them with
    ``writer``."""
    from .engine import LocalEngine
    from .io import write_excel
    from .pipeline import load_scores
    from .report import tables as rtables

    kabs = sorted({p["values"]["kode_kabupaten"] for p in run.partitions("scores")})
    task = {"processed_dir": str(run.processed_dir), "run_id": run.id, "catalogues": [c.id for c in cats],
            "lokus": lokus.to_dict(orient="records"), "n_boot": int(n_boot), "n_runs": int(n_runs), "seed": int(seed)}
    results = (engine or LocalEngine()).map(compare_kabupaten, [{**task, "kabupaten": k} for k in kabs])
    frames: dict[str, list[pd.DataFrame]] = defaultdict(list)
    audit: dict = {"catalogues": {c.id: {} for c in cats}}
    for cat in cats:  # catalogue by catalogue, kabupaten by kabupaten, as one process would go
        for kab, res in zip(kabs, results):
            for name, parts in res["frames"][cat.id].items():
                frames[name].extend(parts)
            audit["catalogues"][cat.id][kab] = res["audit"][cat.id]
    scores_by_cat = {cat.id: load_scores(cat.id, run=run) for cat in cats}
    out = {name: pd.concat(parts, ignore_index=True) for name, parts in frames.items() if parts}
    for name in TABLES:  # every table exists, possibly empty (one round: no change, no DiD)
        out.setdefault(name, pd.DataFrame({"catalogue": pd.Series(dtype="str"),
                                           "kabupaten": pd.Series(dtype="str"),
                                           "round": pd.Series(dtype="int64")}))
    for name, df in out.items():
        writer.write_parquet(f"{name}.parquet", _tidy(df))
    writer.write_json("audit.json", audit)
    context = {"seed": int(seed), "n_boot": int(n_boot), "n_runs": int(n_runs),
               "design": run.settings("index").get("design")}  # as tables.run_context reads it back
    for name, df in rtables.build(run, cats, scores_by_cat, out, lokus, context).items():
        writer.write_parquet(f"{name}.parquet", df)
    write_excel({name: out[name] for name in WORKBOOK if len(out[name]) < 1_000_000},
                writer.path("compare.xlsx"))


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
