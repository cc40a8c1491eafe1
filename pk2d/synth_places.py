"""Where the synthetic families live and what they are called: the villages (the sample's, from
``pk2d/data/synth_villages.yaml``, or a scale set of any size) and the names drawn for people.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import yaml

from . import paths
from .errors import Pk2dError

SEX = ["L", "P"]


class SynthError(Pk2dError):
    """The villages file or the arguments of :func:`pk2d.synth.synthesize` cannot be used."""


# -------------------------------------------------------------- villages ---
def _load(villages_file) -> dict:
    try:
        with open(villages_file, encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except OSError as exc:
        raise SynthError(f"villages file {villages_file} cannot be read ({exc.strerror}).",
                         fix="pass villages_file= pointing at a file shaped like pk2d/data/synth_villages.yaml")


def _sample_villages(cfg: dict, rounds: int) -> pd.DataFrame:
    vil = pd.DataFrame(cfg["villages"])
    if (vil["targets"].map(len) < rounds).any():
        raise SynthError(f"villages file: every village needs {rounds} targets (one per round).",
                         fix="add the missing round targets, or ask for fewer rounds")
    for k in range(rounds):
        vil[f"target_{k + 1}"] = vil["targets"].map(lambda t: float(t[k]))
    vil["kode_kabupaten"] = cfg["kode_kabupaten"]
    if "dusun" not in vil:
        vil["dusun"] = None
    vil["published"] = pd.to_numeric(vil["published"], errors="coerce") if "published" in vil else np.nan
    return vil.drop(columns=["targets"])


def _scale_villages(cfg: dict, n_families: int, rounds: int, rng) -> pd.DataFrame:
    """The villages of a scale set: about ``kk_per_village`` families each (``n_kk`` sums to
    ``n_families``), ``villages_per_kabupaten`` per kabupaten of the region list (the villages
    file's first), all of them when there are too few; ``villages_per_kecamatan`` per kecamatan,
    more in a kabupaten that would otherwise need a kecamatan number above 99."""
    sc = cfg["scale"]
    nv = max(1, round(n_families / sc["kk_per_village"]))
    size = rng.uniform(0.6, 1.4, nv)
    n_kk = np.floor(size / size.sum() * n_families).astype(int)
    n_kk[: n_families - n_kk.sum()] += 1
    kabs = [k for k, lvl in pd.read_csv(paths.REGIONS_FILE, dtype=str)[["kode", "tingkat"]].values
            if lvl == "kabupaten"]
    kabs = [cfg["kode_kabupaten"]] + [k for k in kabs if k != cfg["kode_kabupaten"]]
    n_kab = min(len(kabs), -(-nv // sc["villages_per_kabupaten"]))
    kab = np.arange(nv) * n_kab // nv
    j = np.arange(nv) - np.searchsorted(kab, kab)  # village number inside its kabupaten
    per_kec = np.maximum(sc["villages_per_kecamatan"], -(-np.bincount(kab) // 99))[kab]  # kecamatan 01..99
    kec, desa = j // per_kec + 1, j % per_kec + 1
    w1, w2 = sc["place_words"]
    pick = rng.integers(0, len(w1) * len(w2), nv)
    place = [f"{w1[i % len(w1)]} {w2[i // len(w1)]}" for i in range(len(w1) * len(w2))]
    kname = [sc["kecamatan_kotabaru"][(k - 1) % len(sc["kecamatan_kotabaru"])] if kabs[b] == cfg["kode_kabupaten"]
             else place[(b * 131 + k * 17) % len(place)] for k, b in zip(kec, kab)]
    t1 = np.clip(rng.normal(sc["target_mean"], sc["target_sd"], nv), *sc["target_range"]).round(2)
    vil = pd.DataFrame({
        "kode_kabupaten": [kabs[b] for b in kab],
        "kode_kecamatan": [f"{kabs[b]}.{k:02d}" for b, k in zip(kab, kec)],
        "nama_kecamatan": kname,
        "nama_desa": [place[p] for p in pick],
        "n_kk": n_kk, "n_rt": np.maximum(3, np.round(n_kk / sc["kk_per_rt"])).astype(int),
        "rt_spread": sc["rt_spread"], "dusun": None, "published": np.nan})
    vil["kode_desa"] = [f"{k}.{2000 + d}" for k, d in zip(vil["kode_kecamatan"], desa)]
    for k in range(rounds):
        vil[f"target_{k + 1}"] = np.minimum(t1 + k * sc["trend"], sc["target_range"][1])
    return vil


def _scale_plan(cfg: dict, n_families: int, rounds: int, seed: int) -> list[tuple[str, pd.DataFrame, object]]:
    """The partitions of a scale set: (kode_kabupaten, its villages, its ``SeedSequence``) per kabupaten,
    in the order of :func:`_scale_villages`. The villages are drawn first, for the whole set, from the
    seed's first spawned stream; kabupaten b then draws everything else from child b of the second, so
    its families depend on the seed, its number and its villages only, never on another kabupaten's.

    >>> cfg = _load(paths.REFERENCE_DIR / "synth_villages.yaml")
    >>> [(k, len(v), int(v["n_kk"].sum())) for k, v, _ in _scale_plan(cfg | cfg["kabupaten"][0], 100_000, 1, 1)]
    [('63.02', 111, 49848), ('63.01', 111, 50152)]
    """
    alloc, kab_root = np.random.SeedSequence(seed).spawn(2)
    vil = _scale_villages(cfg, n_families, rounds, np.random.default_rng(alloc))
    codes = list(dict.fromkeys(vil["kode_kabupaten"]))
    return [(code, vil[vil["kode_kabupaten"] == code].reset_index(drop=True), s)
            for code, s in zip(codes, kab_root.spawn(len(codes)))]


def _name_list(cfg) -> list[str]:
    """Every synthetic name: men's two-part and one-part names, then women's."""
    out = []
    for key in SEX:
        a, b = cfg["names"][key]
        out += [f"{x} {y}" for x in a for y in b] + list(a)
    return out


def _names(sex, cfg, rng):
    """Index into :func:`_name_list` per person (one in five has a one-word name)."""
    first, second, single = rng.random(len(sex)), rng.random(len(sex)), rng.random(len(sex)) < 0.2
    out = np.zeros(len(sex), dtype=np.int64)
    offset = 0
    for s, key in enumerate(SEX):
        a, b = cfg["names"][key]
        i = (first * len(a)).astype(int)
        idx = offset + np.where(single, len(a) * len(b) + i, i * len(b) + (second * len(b)).astype(int))
        out = np.where(sex == s, idx, out)
        offset += len(a) * (len(b) + 1)
    return out
