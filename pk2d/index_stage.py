"""The index stage, kabupaten by kabupaten: score each partition, estimate its areas, add up the province.

One task per kabupaten of the clean stage's partitioned ``families``/``members``
(:mod:`pk2d.partitions`) reads that kabupaten only, computes the family features once and scores
them for every catalogue (:func:`pk2d.score.score_families`), and writes its kabupaten's part of
three tables: ``scores``, and, for every census round, ``areas`` and ``area_components`` of the levels
that lie inside one kabupaten (:data:`TASK_LEVELS`: RT, desa, kecamatan and the kabupaten itself,
from the census totals of :func:`pk2d.areas.census_sums`). It returns those totals added up to the
kabupaten (:func:`pk2d.areas.roll_up`): one row per round, whatever its size. The command adds them up
to each province (:data:`TOP_LEVELS`, :func:`pk2d.areas.areas_from_census_sums`, exactly: the totals
are counts and sums), so for a census it holds a few rows per kabupaten, never the families or the RTs.

A **sample** round (weights, strata, PSUs: any family with a weight under ``design="auto"``, every
round under ``design="sample"``) is estimated on its whole design by the command
(:func:`pk2d.areas.estimate_areas`: Taylor linearisation, every area a domain of the full design,
lonely PSUs, calibration), from the scores of that round, since a sample survey is small beside a
census (the command holds that round's scores, of its catalogue's columns); its rows join their
kabupaten's parts. The same functions run for either engine
(:mod:`pk2d.engine`), in the same order, so the two give the same files.

>>> TASK_LEVELS, TOP_LEVELS
(('rt', 'desa', 'kecamatan', 'kabupaten'), ('provinsi',))
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from . import partitions
from .areas import LEVELS

#: the levels a kabupaten's task estimates whole: every one of their areas lies inside one kabupaten
#: (the clean stage checks that each code starts with its parent's)
TASK_LEVELS = LEVELS[:LEVELS.index("kabupaten") + 1]
#: the levels the command adds up from the tasks' kabupaten totals
TOP_LEVELS = LEVELS[len(TASK_LEVELS):]
#: the tables of the stage partitioned by kabupaten (the rows of a province itself in its partition
#: with no kabupaten, :data:`pk2d.partitions.NULL_VALUE`)
TABLES = ("scores", "areas", "area_components")


def sample_rounds(families_dir: str | Path, design: str) -> list[int]:
    """The rounds estimated on their whole design by the command: those with any family weight
    (``bobot``) under ``design="auto"``, every round under ``"sample"``, none under ``"census"``.
    Read from the clean stage's families a batch at a time (memory bounded, whatever the size)."""
    if design == "census":
        return []
    where = None if design == "sample" else "bobot"
    return sorted(int(r) for r in partitions.distinct(families_dir, "putaran", where_valid=where))


def tasks(run, catalogues: Sequence, out_dir: Path, *, design: str, level: float = 0.95) -> list[dict]:
    """One task of :func:`score_partition` per kabupaten of the run's clean stage, in partition order."""
    from .catalogue import to_record

    records = [to_record(c) for c in catalogues]
    members = {tuple(p["values"].values()): p["path"] for p in run.partitions("members")}
    sample = sample_rounds(run.path("families"), design)
    out = []
    for p in run.partitions("families"):
        values = tuple(p["values"].values())
        out.append({"families": str(run.path("families")), "members": str(run.path("members")),
                    "part": p["values"], "family_file": str(p["path"]),
                    "member_file": str(members[values]) if values in members else None,
                    "catalogues": records, "out": str(out_dir), "design": design, "level": level,
                    "sample_rounds": sample})
    return out


def score_partition(task: dict) -> dict:
    """One kabupaten: its parts of :data:`TABLES` written under ``task["out"]``, and its census totals.

    ``task``: ``families``/``members`` (the datasets' folders), ``part`` (the partition's values),
    ``family_file`` and ``member_file`` (its part files; ``member_file`` None when it has no members),
    ``catalogues`` (catalogue records, :func:`pk2d.catalogue.to_record`), ``out`` (the stage's folder),
    ``design``, ``level`` (of the intervals) and ``sample_rounds`` (rounds left to the command). Returns
    ``{"rows", "parts": {table: {"file", "size", "schema"}}, "sums": {catalogue id: kabupaten totals},
    "rounds": {catalogue id: {round: families}}}`` (``size``: of the part file, checked by the command).
    """
    from .areas import areas_from_census_sums, census_sums, roll_up
    from .catalogue import from_record
    from .features import family_features
    from .score import score_families

    fam = partitions.read(task["families"], paths=[task["family_file"]])
    mem = partitions.read(task["members"], paths=[task["member_file"]] if task["member_file"] else [])
    feats = family_features(fam, mem)  # the same for every catalogue
    sample = set(task["sample_rounds"])
    frames, areas, comps, sums, rounds = [], [], [], {}, {}
    for record in task["catalogues"]:
        cat = from_record(record)
        s = score_families(fam, mem, cat, features=feats)
        rounds[cat.id] = {int(r): int(n) for r, n in s["putaran"].value_counts(sort=False).sort_index().items()}
        census = s[~s["putaran"].isin(sample)] if sample else s
        if len(census):
            rt = census_sums(census, cat)
            est = areas_from_census_sums(rt, cat, levels=TASK_LEVELS, level=task["level"], design=task["design"])
            areas.append(est.areas)
            comps.append(est.components)
            sums[cat.id] = roll_up(rt, "kabupaten")
        s.insert(0, "catalogue", cat.id)
        frames.append(s)
    out = Path(task["out"])
    scores = pd.concat(frames, ignore_index=True)
    parts = {"scores": partitions.write_task_part(scores, out / "scores")}
    for name, found in (("areas", areas), ("area_components", comps)):
        if found:
            parts[name] = partitions.write_task_part(conform(pd.concat(found, ignore_index=True), name), out / name,
                                                     list(task["part"].values()))
    return {"rows": len(scores), "sums": sums, "rounds": rounds, "parts": parts}


#: the types of the area tables' number columns, whichever way their rows were estimated (a census's totals
#: or a sample's design), so that the parts of a dataset agree (text columns are text either way)
_TYPES = {"round": "int64", "n_families": "int64", "n_applicable": "int64", "census": "bool", "category": "int64",
          **dict.fromkeys(("index", "estimate", "se", "ci_low", "ci_high", "df", "n_psu", "rse"), "float64")}


def conform(df: pd.DataFrame, table: str) -> pd.DataFrame:
    """``df`` (rows of ``areas`` or ``area_components``) in the table's columns, its numbers in their types."""
    from .areas import AREA_COLUMNS, COMPONENT_COLUMNS

    cols = AREA_COLUMNS if table == "areas" else COMPONENT_COLUMNS
    return pd.DataFrame({c: df[c].astype(_TYPES[c]) if c in _TYPES else df[c] for c in cols})


def finish(results: list[dict], cats: Sequence, out_dir: Path, *, design: str, lonely_psu: str,
           sample: Sequence[int], level: float = 0.95) -> dict:
    """After the tasks: the province rows from their kabupaten totals, every sample round on its whole
    design (``sample``: those rounds), each written to its partitions, and the datasets' schemas.
    Returns ``{"settings": {catalogue id: what the estimation recorded}, "rounds": [...]}``
    (:func:`pk2d.areas.estimation_settings` without the catalogue's own keys)."""
    from .areas import areas_from_census_sums, estimate_areas, estimation_settings
    from .score import columns_for

    out_dir = Path(out_dir)
    partitions.write_schema(out_dir / "scores", [r["parts"]["scores"]["schema"] for r in results],
                            empty=[r["parts"]["scores"]["empty"] for r in results])
    extra: dict[str, list] = {"areas": [], "area_components": []}
    settings, rounds = {}, set()
    columns = partitions.column_names(out_dir / "scores")
    own = {c.id: columns_for(c, cats, columns) for c in cats}
    for cat in cats:
        designs = {}
        found = [r["sums"][cat.id] for r in results if cat.id in r["sums"]]
        if found:
            est = areas_from_census_sums(pd.concat(found, ignore_index=True), cat, levels=TOP_LEVELS, level=level,
                                         design=design)
            extra["areas"].append(_placed(est.areas))
            extra["area_components"].append(_placed(est.components))
            designs.update(est.settings["designs"])
        for rnd in sample:
            s = partitions.read(out_dir / "scores", columns=own[cat.id],
                                filters=[("catalogue", "==", cat.id), ("putaran", "==", rnd)])
            if not len(s):
                continue
            est = estimate_areas(s, cat, design=design, lonely_psu=lonely_psu, level=level)
            extra["areas"].append(_placed(est.areas))
            extra["area_components"].append(_placed(est.components))
            designs.update(est.settings["designs"])
        rounds |= {int(r) for res in results for r in res["rounds"].get(cat.id, {})}
        full = estimation_settings(cat, LEVELS, design, dict(sorted(designs.items(), key=lambda kv: int(kv[0]))),
                                   level)
        settings[cat.id] = {k: v for k, v in full.items() if k not in ("catalogue", "catalogue_sha256")}
    order = {c.id: i for i, c in enumerate(cats)}
    for name, frames in extra.items():
        infos = [(r["parts"][name]["schema"], r["parts"][name]["empty"]) for r in results if name in r["parts"]]
        if frames:
            rows = pd.concat(frames, ignore_index=True)
            keys = rows[list(partitions.PARTITION_BY)]
            for values, idx in keys.groupby(list(partitions.PARTITION_BY), sort=False, dropna=False).indices.items():
                infos.append(_add_rows(out_dir / name, conform(rows.iloc[idx], name), list(values), order))
        partitions.write_schema(out_dir / name, [i[0] for i in infos], own=False, empty=[i[1] for i in infos])
    return {"settings": settings, "rounds": sorted(rounds)}


def _placed(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of a sample round's estimates with the partition each lies in (``kode_provinsi``,
    ``kode_kabupaten``; a province's own rows: no kabupaten, :func:`pk2d.partitions.of_area`)."""
    where = [partitions.of_area(lvl, code) for lvl, code in zip(df["level"], df["code"])]
    return df.assign(kode_provinsi=[w[0] for w in where], kode_kabupaten=[w[1] for w in where])


def _add_rows(folder: Path, rows: pd.DataFrame, values: list, order: dict[str, int]):
    """Write ``rows`` into the partition ``values`` of the dataset at ``folder``, with the rows a task wrote
    there already (one file a partition): catalogue by catalogue (in ``order``), round by round, level by
    level, each group's rows in their order. Returns the part's schema."""
    import pyarrow.parquet as pq

    values = [None if pd.isna(v) else str(v) for v in values]
    target = folder / partitions.part_path(values)
    if target.is_file():
        rows = pd.concat([pq.read_table(target).to_pandas(), rows], ignore_index=True)
    rank = {lvl: i for i, lvl in enumerate(LEVELS)}
    key = pd.DataFrame({"c": rows["catalogue"].map(order), "r": rows["round"], "l": rows["level"].map(rank)})
    rows = rows.iloc[np.lexsort((key["l"].to_numpy(), key["r"].to_numpy(), key["c"].to_numpy()))]
    part = partitions.write_task_part(rows.reset_index(drop=True), folder, values)
    return part["schema"], part["empty"]
