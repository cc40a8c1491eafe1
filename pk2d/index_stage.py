"""The index stage, kabupaten by kabupaten: score each partition, add up its totals, estimate the areas.

One task per kabupaten of the clean stage's partitioned ``families``/``members``
(:mod:`pk2d.partitions`) reads that kabupaten only, scores it for every catalogue
(:func:`pk2d.score.score_families`), writes its part of the ``scores`` table, and returns its census
totals per RT (:func:`pk2d.areas.census_sums`): about a megabyte per kabupaten, whatever its size. The
areas of a census round (every desa lokus, the national family census) are then combined from those
totals exactly (:func:`pk2d.areas.areas_from_census_sums`); a sample round (weights, strata, PSUs) is
estimated on its whole design (:func:`pk2d.areas.estimate_areas`: Taylor linearisation, domains of the
full design, lonely PSUs, calibration, as the design engine does them) from the scores of that round,
since a sample survey is small beside a census. The same functions run for either engine
(:mod:`pk2d.engine`), in the same order, so the two give the same files.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from . import partitions


def score_partition(task: dict) -> dict:
    """One kabupaten: its scores part file written under ``task["scores"]``, and its census totals.

    ``task``: ``families``/``members`` (the datasets' folders), ``part`` (the partition's values),
    ``family_file`` and ``member_file`` (its part files; ``member_file`` None when it has no members),
    ``catalogues`` (catalogue records, :func:`pk2d.catalogue.to_record`) and ``scores`` (the folder
    of the scores dataset being written). Returns ``{"file", "size", "schema", "rows", "sums": {catalogue id:
    census totals}}`` (``size``: of the part file, checked by the command).
    """
    from .areas import census_sums
    from .catalogue import from_record
    from .score import score_families

    fam = partitions.read(task["families"], paths=[task["family_file"]])
    mem = partitions.read(task["members"], paths=[task["member_file"]] if task["member_file"] else [])
    frames, sums = [], {}
    for record in task["catalogues"]:
        cat = from_record(record)
        s = score_families(fam, mem, cat)
        sums[cat.id] = census_sums(s, cat)
        s.insert(0, "catalogue", cat.id)
        frames.append(s)
    scores = pd.concat(frames, ignore_index=True)
    rel, schema = partitions.write_part(scores, task["scores"])
    size = (Path(task["scores"]) / rel).stat().st_size
    return {"file": rel.as_posix(), "size": size, "schema": schema, "rows": len(scores), "sums": sums}


def tasks(run, catalogues: Sequence, scores_dir: Path) -> list[dict]:
    """One task of :func:`score_partition` per kabupaten of the run's clean stage, in partition order."""
    from .catalogue import to_record

    records = [to_record(c) for c in catalogues]
    members = {tuple(p["values"].values()): p["path"] for p in run.partitions("members")}
    out = []
    for p in run.partitions("families"):
        values = tuple(p["values"].values())
        out.append({"families": str(run.path("families")), "members": str(run.path("members")),
                    "part": p["values"], "family_file": str(p["path"]),
                    "member_file": str(members[values]) if values in members else None,
                    "catalogues": records, "scores": str(scores_dir)})
    return out


def estimate(results: list[dict], cat, scores_dir: Path, *, design: str, lonely_psu: str):
    """The areas of one catalogue, round by round: a census from the partitions' totals, a sample on the
    scores of its round. Returns an :class:`pk2d.areas.AreaEstimates` like :func:`estimate_areas`."""
    from .areas import AreaEstimates, areas_from_census_sums, estimate_areas

    sums = pd.concat([r["sums"][cat.id] for r in results], ignore_index=True)
    weighted = sums.groupby("putaran", sort=True)["n_weighted"].sum()
    areas, comps, designs, settings = [], [], {}, None
    for rnd, n_weighted in weighted.items():
        census = design == "census" or (design == "auto" and n_weighted == 0)
        if census:
            est = areas_from_census_sums(sums[sums["putaran"] == rnd], cat, design=design)
        else:
            s = partitions.read(scores_dir, filters=[("catalogue", "==", cat.id), ("putaran", "==", int(rnd))])
            est = estimate_areas(s, cat, design=design, lonely_psu=lonely_psu)
        areas.append(est.areas)
        comps.append(est.components)
        designs.update(est.settings["designs"])
        settings = settings or est.settings
    return AreaEstimates(pd.concat(areas, ignore_index=True), pd.concat(comps, ignore_index=True),
                         {**settings, "designs": designs})
