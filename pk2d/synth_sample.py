"""Samples of a synthetic super-population (:mod:`pk2d.synth_superpop`): a stratified three-stage
design drawn from a :class:`~pk2d.synth_superpop.Population`, its families scored, and its raw
export files written like a district's.

>>> SampleDesign().rts_per_village
4
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .synth_superpop import DESIGN_COLUMNS, Population, SuperPopulation, _seq


# ------------------------------------------------------------- sample ---
@dataclass(frozen=True)
class SampleDesign:
    """A stratified three-stage sample: ``villages_per_stratum`` villages of each kecamatan (all when
    it has no more), ``rts_per_village`` RTs of each selected village, ``families_per_rt`` families
    of each selected RT (all when it has no more), each stage by simple random sampling without
    replacement. ``lokus_certain``: every desa lokus is its own take-all stratum."""

    villages_per_stratum: int = 2
    rts_per_village: int = 4
    families_per_rt: int = 8
    lokus_certain: bool = True


@dataclass(frozen=True)
class Sample:
    """A sample of a :class:`Population`: ``families`` and ``members`` (clean format, the families
    with the design columns ``bobot, strata, psu`` and :data:`DESIGN_COLUMNS`), ``villages`` (per
    village: ``strata``, ``M_h``, ``m_h``, ``selected``) and ``mask`` (the selected rows of the
    population's families, all rounds)."""

    families: pd.DataFrame
    members: pd.DataFrame
    villages: pd.DataFrame
    mask: np.ndarray = field(repr=False)


def _pick(groups: np.ndarray, n_take, rng) -> np.ndarray:
    """Simple random sample without replacement of ``n_take[g]`` items of each group (a mask;
    every item of a group with fewer)."""
    key = rng.random(len(groups))
    order = np.lexsort((key, groups))
    g = groups[order]
    start = np.searchsorted(g, g)
    rank = np.empty(len(groups), dtype=np.int64)
    rank[order] = np.arange(len(groups)) - start
    return rank < np.asarray(n_take)[groups]


def draw_sample(pop: Population, sp: SuperPopulation, design: SampleDesign = SampleDesign(), seed=0) -> Sample:
    """A sample of ``pop`` (see the module docstring and :class:`SampleDesign`); deterministic for
    a seed. The villages are selected once for every round; RTs and families afresh each round."""
    rng = np.random.default_rng(_seq(seed))
    vil = sp.villages
    lokus = {c for c, _, _ in sp.lokus}
    sr = vil["kode_desa"].isin(lokus).to_numpy() & design.lokus_certain
    strata = np.where(sr, "SR." + vil["kode_desa"], vil["kode_kecamatan"])
    h, labels = pd.factorize(pd.Series(strata))
    M = np.bincount(h)
    m = np.minimum(M, np.where(pd.Series(labels).str.startswith("SR.").to_numpy(), M,
                               design.villages_per_stratum))
    selected = _pick(h, m, rng)
    villages = pd.DataFrame({"kode_desa": vil["kode_desa"], "strata": strata, "M_h": M[h], "m_h": m[h],
                             "selected": selected})
    sel = dict(zip(vil["kode_desa"], selected))
    stratum, Mh, mh = (dict(zip(vil["kode_desa"], x)) for x in (strata, M[h], m[h]))
    F = pop.families
    mask = np.zeros(len(F), dtype=bool)
    cols = {c: np.full(len(F), np.nan) for c in ("bobot", "populasi_psu", "populasi_ssu", "populasi_keluarga")}
    rts = pop.rts
    for t in sorted(F["putaran"].unique()):
        r = rts[(rts["putaran"] == t) & rts["kode_desa"].map(sel).to_numpy(bool)].reset_index(drop=True)
        rv, rlab = pd.factorize(r["kode_desa"])
        N_v = np.bincount(rv)
        n_v = np.minimum(N_v, design.rts_per_village)
        take_rt = _pick(rv, n_v, rng)
        r = r.assign(N_v=N_v[rv], n_v=n_v[rv])[take_rt]
        rt_key = dict(zip(r["kode_rt"], range(len(r))))
        in_round = (F["putaran"] == t).to_numpy()
        pos = F.loc[in_round, "kode_rt"].map(rt_key)
        keep = pos.notna().to_numpy()
        idx = np.flatnonzero(in_round)[keep]
        g = pos.to_numpy()[keep].astype(np.int64)
        K = r["n_families"].to_numpy()
        k = np.minimum(K, design.families_per_rt)
        take = _pick(g, k, rng)
        idx, g = idx[take], g[take]
        mask[idx] = True
        code = F["kode_desa"].to_numpy()[idx]
        M1 = np.array([Mh[c] for c in code], dtype=float)
        m1 = np.array([mh[c] for c in code], dtype=float)
        cols["bobot"][idx] = (M1 / m1) * (r["N_v"].to_numpy()[g] / r["n_v"].to_numpy()[g]) * (K[g] / k[g])
        cols["populasi_psu"][idx], cols["populasi_ssu"][idx], cols["populasi_keluarga"][idx] = (
            M1, r["N_v"].to_numpy()[g], K[g])
    fam = F[mask].copy()
    fam["bobot"] = cols["bobot"][mask]
    fam["strata"] = fam["kode_desa"].map(stratum).astype(str)
    fam["psu"] = fam["kode_desa"].astype(str)
    fam["ssu"] = fam["kode_rt"].astype(str)
    for c in ("populasi_psu", "populasi_ssu", "populasi_keluarga"):
        fam[c] = cols[c][mask]
    fam = fam.reset_index(drop=True)
    mem = _members_of(pop.members, fam)
    return Sample(fam, mem, villages, mask)


def _members_of(members: pd.DataFrame, families: pd.DataFrame) -> pd.DataFrame:
    key = pd.MultiIndex.from_frame(families[["putaran", "id_keluarga"]].astype({"id_keluarga": "str"}))
    mk = pd.MultiIndex.from_frame(members[["putaran", "id_keluarga"]].astype({"id_keluarga": "str"}))
    return members[mk.isin(key)].reset_index(drop=True)


# ------------------------------------------------------------ scoring ---
def score(families: pd.DataFrame, members: pd.DataFrame, catalogue="ikk") -> pd.DataFrame:
    """:func:`pk2d.score.score_families`, with the sample's extra design columns
    (:data:`DESIGN_COLUMNS`) copied to the scores (the row order is the families')."""
    from .score import score_families

    s = score_families(families, members, catalogue)
    for c in DESIGN_COLUMNS:
        if c in families and c not in s:
            s[c] = families[c].to_numpy()
    return s


# ----------------------------------------------------------- raw files ---
def _take(fam, per, famc, memc, fmask):
    """The families ``fmask`` of one round's internal tables, their members re-indexed."""
    pm = fmask[per["f"].to_numpy()]
    fidx, pidx = np.cumsum(fmask) - 1, np.cumsum(pm) - 1
    sf, sp_ = fam[fmask].reset_index(drop=True), per[pm].reset_index(drop=True)
    sf["head"] = pidx[sf["head"].to_numpy()]
    sf["wife"] = np.where(sf["wife"] >= 0, pidx[np.maximum(sf["wife"].to_numpy(), 0)], -1)
    sp_["f"] = fidx[sp_["f"].to_numpy()]
    return sf, sp_, famc[fmask].reset_index(drop=True), memc[pm].reset_index(drop=True)


def write_raw(pop: Population, sp: SuperPopulation, out_dir, *, sample: Sample | None = None) -> list[Path]:
    """Write the population (or ``sample``, with those of its design columns the contract knows)
    as the raw exports of ``pk2d/contract.yaml`` (CSV style of odd rounds, no dirt) and the desa
    lokus list, so that :func:`pk2d.pipeline.clean` reads them. Returns the files written."""
    import pyarrow as pa

    from . import rawio
    from .io import atomic_path
    from .synth_export import _raw_tables, _write
    from .synth_places import _name_list

    cfg = sp.config()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    style = cfg["export"]["csv"]
    names = _name_list(cfg)
    files = []
    offset = 0
    for part in pop.parts:
        fam, per, famc, memc = part["fam"], part["per"], part["famc"], part["memc"]
        n = len(fam)
        if sample is not None:
            fmask = sample.mask[offset:offset + n]
            fam, per, famc, memc = _take(fam, per, famc, memc, fmask)
            design = pop.families.iloc[offset:offset + n][fmask].reset_index(drop=True)
            sf = sample.families[sample.families["putaran"] == part["putaran"]].set_index("id_keluarga")
            design = sf.loc[design["id_keluarga"].to_numpy()]
        offset += n
        rng = np.random.default_rng([part["putaran"], 99])
        kel, ang, _ = _raw_tables(fam, per, famc, memc, sp.villages, names, part["putaran"], part["tahun"],
                                  style, rng, 0.0)
        if sample is not None:  # the design columns the contract knows, as text
            known = {c["name"] for c in rawio.columns("keluarga")}
            for c in ("bobot", "strata", "psu", *DESIGN_COLUMNS):
                if c in known and c in design:
                    x = design[c]
                    # fixed 12 decimals: pk2d reads "6.375" (a dot and three digits) as 6375, Indonesian style
                    text = [f"{v:.12f}" for v in x] if pd.api.types.is_float_dtype(x) else x.astype(str).tolist()
                    kel = kel.append_column(c, pa.array(text, pa.string()))
        stem = f"SINTETIS_superpop_{part['tahun']}_putaran{part['putaran']}"
        for table, data in (("keluarga", kel), ("anggota", ang)):
            files.append(_write(data, out / f"{stem}_{table}.csv", style))
    path = out / "SINTETIS_desa_lokus.csv"
    with atomic_path(path) as tmp:
        sp.lokus_table().to_csv(tmp, index=False)
    return files + [path]
