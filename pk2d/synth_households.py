"""The households of the synthetic sample: who lives where, their ids and ages, and how a family
changes from one survey round to the next (:func:`_next_round`). Used by :mod:`pk2d.synth`, which
draws their answers and calibrates them.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .synth_export import _choice, _codes_of
from .synth_places import SEX, _names

STATUS = ["belum_kawin", "kawin", "cerai_hidup", "cerai_mati"]


def _sig(ab, theta):
    return 1.0 / (1.0 + np.exp(-(ab[0] + ab[1] * theta)))


def _logit(p):
    return np.log(p / (1 - p))


def _step(table: dict, x):
    """Value of a step table {from: value} at x (vectorised)."""
    keys = np.array(sorted(table), dtype=float)
    vals = np.array([table[k] for k in sorted(table)], dtype=float)
    return vals[np.clip(np.searchsorted(keys, x, side="right") - 1, 0, None)]


def _bounds(x):
    """(first, last) masks of the runs of equal values in the sorted array ``x``."""
    change = x[1:] != x[:-1]
    return np.r_[True, change][:len(x)], np.r_[change, True][:len(x)]


def _codes(probs: dict, u, names):
    """Codes (positions in ``names``) drawn with the shares ``probs`` {name: share}."""
    return np.array([names.index(k) for k in probs])[_choice(probs, u)]


def _ymd(days):
    """Year, month (1-12), day (1-31) of dates given as days since 1970-01-01."""
    d = np.asarray(days, dtype=np.int64).astype("datetime64[D]")
    y, m = d.astype("datetime64[Y]"), d.astype("datetime64[M]")
    return y.astype(int) + 1970, (m - y).astype(int) + 1, (d - m).astype(int) + 1


def _ages(birth, when):
    """Completed years between two arrays of days since 1970-01-01."""
    (by, bm, bd), (wy, wm, wd) = _ymd(birth), _ymd(when)
    return wy - by - ((wm < bm) | ((wm == bm) & (wd < bd)))


# ------------------------------------------------------------- structure ---
def _assign_rt(v, vil, rng):
    """RT number per family: RTs of unequal size, every RT non-empty."""
    n_rt, n_kk = vil["n_rt"].to_numpy(), np.bincount(v, minlength=len(vil))
    w = rng.uniform(0.6, 1.4, n_rt.sum())
    rv = np.repeat(np.arange(len(vil)), n_rt)
    cum = np.cumsum(w) - np.repeat(np.cumsum(w)[np.cumsum(n_rt) - n_rt] - w[np.cumsum(n_rt) - n_rt], n_rt)
    key = rv + cum / np.repeat(np.bincount(rv, weights=w), n_rt)
    rank = np.arange(len(v)) - np.repeat(np.cumsum(n_kk) - n_kk, n_kk)
    g = np.searchsorted(key, v + (rank + 0.5) / n_kk[v])
    return g - (np.cumsum(n_rt) - n_rt)[v] + 1


def _ids(region6, dates, serial_base, female=0):
    """16-digit numbers: 6 region digits + DDMMYY (DD + 40 for women) + 4-digit serial."""
    y, m, d = _ymd(dates)
    y, d = y % 100, d + 40 * np.asarray(female)
    prefix = region6.astype(np.int64) * 1_000_000 + d * 10_000 + m * 100 + y
    order = np.argsort(prefix, kind="stable")
    sp = prefix[order]
    first = _bounds(sp)[0]
    serial = np.empty(len(sp), dtype=np.int64)
    serial[order] = np.arange(len(sp)) - np.maximum.accumulate(np.where(first, np.arange(len(sp)), 0))
    return prefix * 10_000 + serial_base + serial


def _new_households(nk, vil, cfg, rng, start, batch, issued):
    """Structure of new families (``nk[v]`` in village v) and their members."""
    m = cfg["model"]
    F = int(nk.sum())
    v = np.repeat(np.arange(len(vil)), nk)
    rt = _assign_rt(v, vil, rng)
    n_rt = vil["n_rt"].to_numpy()[v]
    offset = (np.arange(len(vil)) * 7) % 91
    date = start + offset[v] + ((rt - 1 + rng.random(F)) * np.clip(n_rt, 5, 14) / n_rt).astype(int)
    female = (rng.random(F) < m["kepala_perempuan"]).astype(int)
    u = rng.random(F)
    sk = m["status_kepala"]
    st = np.where(female == 1, _codes(sk["P"], u, STATUS), _codes(sk["L"], u, STATUS))
    mean = np.zeros(F)
    sd = np.ones(F)
    for sx, by_status in m["umur_kepala"].items():
        for s, (mu_, sd_) in by_status.items():
            sel = (female == SEX.index(sx)) & (st == STATUS.index(s))
            mean[sel], sd[sel] = mu_, sd_
    hage = np.clip(np.round(mean + sd * rng.normal(size=F)), 20, 85).astype(int)
    has_sp = (female == 0) & (st == 1)
    sage = np.clip(hage - np.round(rng.normal(4, 3.5, F)), 16, 85).astype(int)
    ref = np.where(has_sp, sage, np.where(female == 1, hage, hage - 4))
    nkid = np.where(st == 0, 0, np.minimum(rng.poisson(_step(m["anak_per_umur_ibu"], ref)), 6))
    kf = np.repeat(np.arange(F), nkid)
    lo, hi = np.maximum(19, ref[kf] - 30), np.minimum(42, ref[kf])
    ok = hi >= lo
    kf, lo, hi = kf[ok], lo[ok], hi[ok]
    g = lo + (rng.random(len(kf)) * (hi - lo + 1)).astype(int)
    kage = ref[kf] - g
    min_g = np.full(F, 99)
    np.minimum.at(min_g, kf, g)
    ksex = (rng.random(len(kf)) < 0.49).astype(int)
    kst = np.where(kage < 15, 0, np.where(kage < 19, -1, 0))
    # extended family: the oldest child (20+) married, spouse and grandchildren live in
    o = np.lexsort((kage, kf))
    last = o[_bounds(kf[o])[1]]
    ext = last[(kage[last] >= 20) & (hage[kf[last]] >= 45) & (rng.random(len(last)) < m["keluarga_besar"])]
    kst[ext] = 1
    msex = 1 - ksex[ext]
    mage = np.clip(kage[ext] + np.where(msex == 1, -3, 3) + np.round(rng.normal(0, 2.5, len(ext))), 17, 80).astype(int)
    ncucu = _choice({0: 0.3, 1: 0.45, 2: 0.25}, rng.random(len(ext)))
    cmax = np.minimum(np.minimum(kage[ext], mage) - 19, 12)
    ncucu = np.where(cmax < 0, 0, ncucu)
    cf = np.repeat(np.arange(len(ext)), ncucu)
    cage = (rng.random(len(cf)) * (cmax[cf] + 1)).astype(int)
    # (grand)parents and other relatives
    u = rng.random(F)
    p1, p2 = m["orang_tua"]
    n_ot = (u < p1 + p2).astype(int) + (u < p2)
    of = np.repeat(np.arange(F), n_ot)
    oage = np.maximum(np.maximum(hage, np.where(has_sp, sage, 0))[of] + rng.integers(20, 36, len(of)), 60)
    oage = np.minimum(oage + np.where(oage == 60, rng.integers(0, 10, len(of)), 0), 95)
    two = n_ot[of] == 2
    osex = np.where(two, _bounds(of)[0].astype(int), (rng.random(len(of)) < 0.7).astype(int))
    ff = np.flatnonzero(rng.random(F) < m["famili_lain"])
    fage = rng.integers(8, 41, len(ff))
    fst = np.where(fage < 19, 0, np.array([0, 1, 2])[_choice({0: 0.7, 1: 0.2, 2: 0.1}, rng.random(len(ff)))])
    blocks = [  # fam, role, sex, age, status
        (np.arange(F), 0, female, hage, st), (np.flatnonzero(has_sp), 1, 1, sage[has_sp], 1),
        (kf, 2, ksex, kage, kst), (kf[ext], 3, msex, mage, 1), (kf[ext][cf], 4, rng.integers(0, 2, len(cf)), cage, 0),
        (of, 5, osex, oage, np.where(two, 1, 3)), (ff, 6, rng.integers(0, 2, len(ff)), fage, fst)]
    per = pd.DataFrame({k: np.concatenate([np.broadcast_to(b[i], len(b[0])) for b in blocks])
                        for i, k in enumerate(["f", "role", "sex", "age", "status"])})
    per = per.iloc[np.lexsort((-per["age"].to_numpy(), per["role"].to_numpy(), per["f"].to_numpy()))]
    f = per["f"].to_numpy()
    rank = np.arange(len(f)) - np.searchsorted(f, f)
    per = per[rank < 10].reset_index(drop=True)  # at most 10 members
    f, age, sex = per["f"].to_numpy(), per["age"].to_numpy(), per["sex"].to_numpy()
    n = len(per)
    per["birth"] = date[f] - np.round((age + rng.random(n) * 0.995) * 365.2425).astype(int)
    late = np.where(sex == 1, 19 + rng.exponential(3.5, n), 21 + rng.exponential(4.0, n)).astype(int)
    mother = ((per["role"] == 1) | ((per["role"] == 0) & (sex == 1))).to_numpy()
    late = np.where(mother, np.minimum(late, min_g[f]), late)
    per["ukp_late"] = np.minimum(late, age)
    per["ukp_fixed"] = np.nan
    per["dis"] = rng.random(n) < _step(m["disabilitas"], age)
    per["akta0"] = per["imun0"] = False
    per["u_akta"], per["u_imun"] = rng.random(n, dtype=np.float32), rng.random(n, dtype=np.float32)
    per["umur_saja"] = rng.random(n) < m["umur_saja"]
    region6 = vil["kode_kecamatan"].str.replace(".", "", regex=False).astype(np.int64).to_numpy()
    per["nik"] = _ids(region6[v[f]], per["birth"].to_numpy(), 1 + 2000 * (batch - 1), sex)
    per["nama"] = _names(sex, cfg, rng)
    kk_date = issued[0] + (rng.random(F) * (issued[1] - issued[0])).astype(np.int64)
    fam = pd.DataFrame({"v": v, "rt": rt, "date": date, "e": rng.normal(0, m["sd_keluarga"], F),
                        "kk": _ids(region6[v], kk_date, 1 + 2000 * (batch - 1))})
    return fam, per


def _finish(fam, per):
    """Ages at the interview, row order, and the per-family facts the answers depend on."""
    f = per["f"].to_numpy()
    per["age"] = _ages(per["birth"].to_numpy(), fam["date"].to_numpy()[f])
    per = per.iloc[np.lexsort((-per["age"].to_numpy(), per["role"].to_numpy(), f))].reset_index(drop=True)
    f, age, role, sex = (per[c].to_numpy() for c in ("f", "age", "role", "sex"))
    F = len(fam)
    cnt = lambda mask: np.bincount(f, weights=mask, minlength=F) > 0  # noqa: E731
    head = np.flatnonzero(role == 0)
    fam["head"] = head[np.argsort(f[head])]
    wife = np.flatnonzero((role == 1) & (sex == 1))
    fam["wife"] = -1
    fam.loc[f[wife], "wife"] = wife
    fam["kawin"] = per["status"].to_numpy()[fam["head"]] == 1
    fam["balita"], fam["anak"], fam["usia_sekolah"] = cnt(age < 5), cnt(age < 18), cnt((age >= 7) & (age <= 17))
    fam["lansia"], fam["disabilitas"] = cnt(age >= 60), cnt(per["dis"].to_numpy())
    fam["pus"] = fam["kawin"] & cnt(((role == 0) | (role == 1)) & (sex == 1) & (age >= 15) & (age <= 49))
    return fam, per


# ---------------------------------------------------------------- rounds ---
def _next_round(fam, per, memc, vil, cfg, rng, start, batch):
    """Next round's structure: retained families a year on, births, leavers, new families."""
    m = cfg["model"]
    keep = rng.random(len(fam)) < m["retained"]
    f, age, role = per["f"].to_numpy(), per["age"].to_numpy(), per["role"].to_numpy()
    pl = m["pergi_per_tahun"]
    p_leave = np.select([role <= 1, age >= 70, (role == 2) & (age >= 19)],
                        [0.0, pl["lansia_70"], pl["anak_dewasa"]], pl["lainnya"])
    stay = keep[f] & (rng.random(len(per)) >= p_leave)
    old = per[stay].copy()
    st = _codes_of(memc["status_kawin"], STATUS)[stay]
    old["status"] = np.where((old["role"] == 2) & (st == 0) & (old["age"] >= 14) & (old["age"] <= 18), -1, st)
    old["ukp_fixed"] = memc["usia_kawin_pertama"].to_numpy(dtype=float, na_value=np.nan)[stay]
    old["akta0"] = memc["akta_kelahiran"].to_numpy(dtype=bool, na_value=False)[stay]
    old["imun0"] = memc["imunisasi_lengkap"].to_numpy(dtype=bool, na_value=False)[stay]
    new_index = np.cumsum(keep) - 1
    old["f"] = new_index[old["f"].to_numpy()]
    kept = fam[keep].reset_index(drop=True)[["v", "rt", "date", "e", "kk"]]
    prev = kept["date"].to_numpy()
    kept["date"] = prev + 364 + rng.integers(-3, 4, len(kept))
    rho = m["rho_putaran"]
    kept["e"] = rho * kept["e"] + np.sqrt(1 - rho**2) * rng.normal(0, m["sd_keluarga"], len(kept))
    mothers = old[(old["role"] == 1) & (old["sex"] == 1) & (old["age"] >= 17) & (old["age"] <= 43)]
    size = np.bincount(old["f"].to_numpy(), minlength=len(kept))
    mothers = mothers[(rng.random(len(mothers)) < m["lahir_per_tahun"]) & (size[mothers["f"].to_numpy()] < 10)]
    bf = mothers["f"].to_numpy()
    nb = len(bf)
    gap = (kept["date"].to_numpy()[bf] - prev[bf]).astype(int)
    region6 = vil["kode_kecamatan"].str.replace(".", "", regex=False).astype(np.int64).to_numpy()
    babies = pd.DataFrame({"f": bf, "role": 2, "sex": rng.integers(0, 2, nb), "age": 0, "status": 0,
                           "birth": prev[bf] + (rng.random(nb) * gap).astype(int), "ukp_late": 0,
                           "ukp_fixed": np.nan, "dis": False, "akta0": False, "imun0": False,
                           "u_akta": rng.random(nb, dtype=np.float32), "u_imun": rng.random(nb, dtype=np.float32),
                           "umur_saja": False})
    babies["nik"] = _ids(region6[kept["v"].to_numpy()[bf]], babies["birth"].to_numpy(), 1 + 2000 * (batch - 1),
                         babies["sex"].to_numpy())
    babies["nama"] = _names(babies["sex"].to_numpy(), cfg, rng)
    nk = np.bincount(fam["v"].to_numpy()[~keep], minlength=len(vil))
    nfam, nper = _new_households(nk, vil, cfg, rng, start, batch, (prev.min(), start - 10))
    nper["f"] += len(kept)
    fam2 = pd.concat([kept, nfam[kept.columns]], ignore_index=True)
    return fam2, pd.concat([old[nper.columns], babies[nper.columns], nper], ignore_index=True)
