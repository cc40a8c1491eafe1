"""Family features computed from the members table (registered, vectorised).

Indicator rules in a catalogue refer to cleaned family columns or to the
features registered here (e.g. ``semua_anak_berakta``: every child under 18
has a birth certificate). All features of all families are derived from one
pass over the members: each member gets a handful of 0/1 flags, and
``numpy.bincount`` sums them per family. No Python loop runs per family or
per person, so a million families take about a second.

A feature over a subset of members ("all children ...") is three-valued:
``False`` when one member of the subset fails, ``<NA>`` when none fails but an
answer is missing, ``True`` otherwise, and ``<NA>`` when the subset is empty
(the indicator's ``applies`` rule makes such families not applicable anyway).

>>> import pandas as pd
>>> fam = pd.DataFrame({"putaran": [1], "id_keluarga": ["K1"],
...                     "pendapatan_bulanan": [3_000_000.0], "luas_lantai_m2": [36.0]})
>>> mem = pd.DataFrame({"putaran": [1, 1], "id_keluarga": ["K1", "K1"],
...     "hubungan": ["kepala", "anak"], "jenis_kelamin": ["L", "P"], "umur": [40, 8],
...     "status_kawin": ["kawin", "belum_kawin"], "usia_kawin_pertama": [25, None],
...     "akta_kelahiran": [True, False], "status_sekolah": ["tidak_sekolah_lagi", "masih_sekolah"],
...     "bekerja": [True, False], "disabilitas": [False, False],
...     "jaminan_kesehatan": [True, True], "imunisasi_lengkap": [None, None]})
>>> f = family_features(fam, mem)
>>> [str(f.loc[0, c]) for c in ["n_anggota", "n_anak", "semua_anak_berakta", "pendapatan_per_kapita"]]
['2', '1', 'False', '1500000.0']
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

KEYS = ["putaran", "id_keluarga"]


@dataclass(frozen=True)
class Feature:
    name: str
    description: str
    func: Callable[[pd.DataFrame], pd.Series]


FEATURES: dict[str, Feature] = {}


def register(name: str, description: str):
    """Register ``func(counts) -> Series`` as family feature ``name``."""

    def deco(func):
        FEATURES[name] = Feature(name, description, func)
        return func

    return deco


def _bool(s: pd.Series) -> pd.Series:
    return s.astype("boolean")


def member_flags(members: pd.DataFrame) -> pd.DataFrame:
    """0/1 flags per member; summed per family by :func:`member_counts`."""
    age = pd.to_numeric(members["umur"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    rel = members["hubungan"].astype("string")
    status = members["status_kawin"].astype("string")
    ukp = pd.to_numeric(members["usia_kawin_pertama"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)

    def isin(a, lo, hi):  # lo <= age <= hi (NaN age -> False)
        return (a >= lo) & (a <= hi)

    def yes(col):
        return _bool(members[col]).fillna(False).to_numpy(dtype=bool)

    def no(col):
        return (~_bool(members[col])).fillna(False).to_numpy(dtype=bool)

    def na(col):
        return _bool(members[col]).isna().to_numpy()

    child = age < 18
    balita = age < 5
    school = isin(age, 7, 17)
    school_7_15 = isin(age, 7, 15)
    is_head = (rel == "kepala").fillna(False).to_numpy(dtype=bool)
    couple = is_head | (rel == "pasangan").fillna(False).to_numpy(dtype=bool)
    ever_married = (status != "belum_kawin").fillna(False).to_numpy(dtype=bool)
    school_status = members["status_sekolah"].astype("string")
    in_school = (school_status == "masih_sekolah").fillna(False).to_numpy(dtype=bool)
    school_na = school_status.isna().to_numpy()
    female = (members["jenis_kelamin"].astype("string") == "P").fillna(False).to_numpy(dtype=bool)
    flags = {
        "n_anggota": np.ones(len(members), dtype=bool),
        "n_anak": child,
        "n_balita": balita,
        "n_usia_sekolah": school,
        "n_7_15": school_7_15,
        "n_anak_5_17": isin(age, 5, 17),
        "n_usia_10_24": isin(age, 10, 24),
        "n_lansia": age >= 60,
        "n_disabilitas": yes("disabilitas"),
        "anak_akta_tidak": child & no("akta_kelahiran"),
        "anak_akta_na": child & na("akta_kelahiran"),
        "akta_tidak": no("akta_kelahiran"),
        "akta_na": na("akta_kelahiran"),
        "balita_imunisasi_tidak": balita & no("imunisasi_lengkap"),
        "balita_imunisasi_na": balita & na("imunisasi_lengkap"),
        "jkn_tidak": no("jaminan_kesehatan"),
        "jkn_na": na("jaminan_kesehatan"),
        "sekolah_tidak": school & ~in_school & ~school_na,
        "sekolah_na": school & school_na,
        "sekolah_7_15_tidak": school_7_15 & ~in_school & ~school_na,
        "sekolah_7_15_na": school_7_15 & school_na,
        "pekerja_anak": isin(age, 5, 17) & yes("bekerja"),
        "kawin_anak": ever_married & ((age < 19) | ((ukp < 19) & (age < 25))),
        "dewasa_bekerja": (age >= 15) & yes("bekerja"),
        "kepala_kawin": is_head & (status == "kawin").fillna(False).to_numpy(dtype=bool),
        "kepala_cerai_hidup": is_head & (status == "cerai_hidup").fillna(False).to_numpy(dtype=bool),
        "istri_usia_subur": couple & female & isin(age, 15, 49),
    }
    return pd.DataFrame(flags)


def member_counts(families: pd.DataFrame, members: pd.DataFrame) -> pd.DataFrame:
    """Sum member flags per family; rows align with ``families`` (same index).

    Members whose (putaran, id_keluarga) is not in ``families`` are ignored
    (the clean stage has already rejected them).
    """
    nf = len(families)
    ids = pd.factorize(pd.concat([families["id_keluarga"], members["id_keluarga"]], ignore_index=True)
                       .astype("string"))[0].astype(np.int64)
    rounds, seen = pd.factorize(pd.concat([families["putaran"], members["putaran"]], ignore_index=True)
                                .astype("int64"))
    key = np.where(ids < 0, -1, ids * max(len(seen), 1) + rounds)  # (id_keluarga, putaran) as one integer
    pos = pd.Index(key[:nf]).get_indexer(key[nf:])
    keep = pos >= 0
    flags = member_flags(members)
    out = {}
    for col in flags.columns:
        v = flags[col].to_numpy()[keep]
        out[col] = np.bincount(pos[keep], weights=v, minlength=len(families)).astype(np.int64)
    return pd.DataFrame(out, index=families.index)


def _all_of(c: pd.DataFrame, fails: str, missing: str, subset: str | None) -> pd.Series:
    res = pd.Series(pd.array(c[fails] == 0, dtype="boolean"), index=c.index)
    res[(c[fails] == 0) & (c[missing] > 0)] = pd.NA
    if subset is not None:
        res[c[subset] == 0] = pd.NA
    return res


@register("semua_anak_berakta", "Every member under 18 has a birth certificate")
def _semua_anak_berakta(c):
    return _all_of(c, "anak_akta_tidak", "anak_akta_na", "n_anak")


@register("semua_anggota_berakta", "Every member has a birth certificate")
def _semua_anggota_berakta(c):
    return _all_of(c, "akta_tidak", "akta_na", "n_anggota")


@register("semua_balita_imunisasi", "Every child under 5 has complete basic immunisation")
def _semua_balita_imunisasi(c):
    return _all_of(c, "balita_imunisasi_tidak", "balita_imunisasi_na", "n_balita")


@register("semua_anggota_jkn", "Every member has health insurance (JKN)")
def _semua_anggota_jkn(c):
    return _all_of(c, "jkn_tidak", "jkn_na", "n_anggota")


@register("semua_anak_sekolah", "Every member aged 7-17 attends school")
def _semua_anak_sekolah(c):
    return _all_of(c, "sekolah_tidak", "sekolah_na", "n_usia_sekolah")


@register("semua_anak_7_15_sekolah", "Every member aged 7-15 attends school")
def _semua_anak_7_15_sekolah(c):
    return _all_of(c, "sekolah_7_15_tidak", "sekolah_7_15_na", "n_7_15")


@register("ada_pekerja_anak", "A member aged 5-17 works")
def _ada_pekerja_anak(c):
    return _bool(c["pekerja_anak"] > 0)


@register("ada_perkawinan_anak", "A member under 19 is or was married, or a member under 25 married before 19")
def _ada_perkawinan_anak(c):
    return _bool(c["kawin_anak"] > 0)


@register("ada_anggota_bekerja", "A member aged 15 or over works")
def _ada_anggota_bekerja(c):
    return _bool(c["dewasa_bekerja"] > 0)


@register("kepala_kawin", "The head of the family is married")
def _kepala_kawin(c):
    return _bool(c["kepala_kawin"] > 0)


@register("kepala_tidak_cerai", "The head of the family is not divorced (cerai hidup)")
def _kepala_tidak_cerai(c):
    return _bool(c["kepala_cerai_hidup"] == 0)


@register("ada_pus", "Couple of reproductive age (married head, wife or female head aged 15-49)")
def _ada_pus(c):
    return _bool((c["kepala_kawin"] > 0) & (c["istri_usia_subur"] > 0))


for _n, _d in [("n_anggota", "Number of members"), ("n_anak", "Members under 18"),
               ("n_balita", "Members under 5"), ("n_usia_sekolah", "Members aged 7-17"),
               ("n_7_15", "Members aged 7-15"), ("n_anak_5_17", "Members aged 5-17"),
               ("n_usia_10_24", "Members aged 10-24"), ("n_lansia", "Members aged 60 or over"),
               ("n_disabilitas", "Members with a disability")]:
    register(_n, _d)(lambda c, _n=_n: c[_n])


def family_features(families: pd.DataFrame, members: pd.DataFrame) -> pd.DataFrame:
    """All registered features plus per-capita income and floor area, aligned with ``families``."""
    counts = member_counts(families, members)
    out = pd.DataFrame({name: f.func(counts) for name, f in FEATURES.items()}, index=families.index)
    n = counts["n_anggota"].where(counts["n_anggota"] > 0)
    out["pendapatan_per_kapita"] = pd.to_numeric(families["pendapatan_bulanan"], errors="coerce") / n
    out["luas_lantai_per_kapita"] = pd.to_numeric(families["luas_lantai_m2"], errors="coerce") / n
    return out


DERIVED = ("pendapatan_per_kapita", "luas_lantai_per_kapita")


def feature_names() -> list[str]:
    """Names a catalogue rule may use besides the cleaned family columns."""
    return [*FEATURES, *DERIVED]
