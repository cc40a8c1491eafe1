"""Synthetic PK2D survey exports (SINTETIS), calibrated to known village IKK values.

:func:`synthesize` writes census exports (every family of each village) in the raw
format of ``pk2d/contract.yaml``: one families and one members file per kabupaten and survey
round, deterministic for a given seed. The villages, the targets and every model parameter
are data in ``pk2d/data/synth_villages.yaml``. Names, NIK and No. KK are invented.

Latent model
    Family f in village v, RT r has a latent quality ``theta_f = mu_v + u_r + e_f``
    with ``u_r ~ N(0, rt_spread_v)`` and ``e_f ~ N(0, sd_keluarga)`` (logit units).
    Every binary *good* outcome j -- a family answer (own latrine, no domestic
    violence, ...) or a member attribute feeding an indicator (birth certificate,
    JKN, school, child labour, age at first marriage, ...) -- is good with
    probability ``p_j = sigmoid(logit(p0_j) + b_j * theta_f)``: ``p0_j`` is its rate at
    theta = 0 (possibly by age), ``b_j`` its slope (``model.items``). Income and floor
    area are lognormal: ``log x = log median + sd * z + slope * theta``. The household
    structure (members, ages, sexes, relationships, adults' marital status,
    disability) does not depend on theta, so which indicators apply to a family is
    fixed while its answers move with theta.
Common random numbers
    Per round every uniform and normal is drawn once; an outcome is ``U < p_j(theta)``.
    Every IKK indicator is then non-decreasing in theta, and the village IKK is a
    non-decreasing (step) function of mu_v.
Calibration
    For each round, mu_v of all villages of a kabupaten is found at once by a vectorised root
    search (secant steps, then Illinois regula falsi inside the bracket, see :func:`_calibrate`)
    on ``logit(IKK_v(mu_v)/100) - logit(target_v/100)``. Every step regenerates the
    answers from the fixed random numbers and scores them with the real engine
    (:func:`pk2d.score.score_families`; village IKK = mean family ``indeks``,
    family-first, census). The targets are met on the clean-format data within
    :data:`CALIBRATION_TOL` points (default sample) or 0.02 (scale mode), or within half
    of one family's step (<= 10/n_kk points) when such a step straddles the target. A
    village with a ``published`` figure meets that year's target to two decimals: its
    random numbers are redrawn until it does (:func:`_calibrate_exact`). Dirt is added
    afterwards, to the text tables only, so the cleaning stage rejects a few dozen rows
    and the targets still hold within about 0.3 points; none of it that the cleaning
    rejects touches a village with a published figure, so its cleaned KK count and IKK
    equal the published ones.
Rounds
    Round k+1 keeps ``retained`` of the families (same No. KK, NIK, birth dates; RT
    effects persist, ``e_f`` has correlation ``rho_putaran``); some members leave,
    babies are born, new families replace the lost ones; interviews ~12 months later.
    Birth certificates, immunisation and marriages never revert.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import paths
from .synth_export import _choice, _dirt, _raw_tables, _write, write_lokus, write_regions
from .synth_households import _finish, _logit, _new_households, _next_round, _sig
from .synth_places import SEX, SynthError, _load, _name_list, _sample_villages, _scale_plan

#: the sample's calibration: each village within this of its target, so that a published figure
#: (two decimals) is reproduced exactly
CALIBRATION_TOL = 0.004
ROLES = ["kepala", "pasangan", "anak", "menantu", "cucu", "orang_tua", "famili_lain", "lainnya"]
STATUS = ["belum_kawin", "kawin", "cerai_hidup", "cerai_mati"]
SCHOOL = ["belum_sekolah", "masih_sekolah", "tidak_sekolah_lagi"]
WATER = ["ledeng", "air_kemasan", "sumur_terlindung", "mata_air_terlindung",
         "sumur_tak_terlindung", "sungai", "air_hujan", "lainnya"]
HOUSE = ["milik_sendiri", "sewa", "menumpang", "dinas", "lainnya"]
FLOOR = ["keramik", "semen", "kayu", "bambu", "tanah"]
# Family yes/no answers: column, model item (the good answer), asks about something bad, applies to.
FAMILY_YESNO = [
    ("buku_nikah", "buku_nikah", False, "kawin"), ("pasangan_serumah", "pasangan_serumah", False, "kawin"),
    ("makan_2x_sehari", "makan_2x_sehari", False, None), ("makanan_beragam", "makanan_beragam", False, None),
    ("balita_stunting", "tidak_stunting", True, "balita"),
    ("kamar_tidur_terpisah", "kamar_tidur_terpisah", False, "anak"),
    ("jamban_sehat", "jamban_sehat", False, None), ("punya_tabungan", "punya_tabungan", False, None),
    ("mampu_biaya_sekolah", "mampu_biaya_sekolah", False, "usia_sekolah"),
    ("akses_internet", "akses_internet", False, None), ("kdrt", "tidak_kdrt", True, None),
    ("konflik_keluarga", "tidak_konflik", True, None), ("keputusan_bersama", "keputusan_bersama", False, "kawin"),
    ("waktu_bersama", "waktu_bersama", False, None), ("ikut_parenting", "ikut_parenting", False, "anak"),
    ("masalah_hukum", "tidak_masalah_hukum", True, None), ("kegiatan_sosial", "kegiatan_sosial", False, None),
    ("ibadah_bersama", "ibadah_bersama", False, None), ("rekreasi_bersama", "rekreasi_bersama", False, None),
    ("perempuan_berorganisasi", "perempuan_berorganisasi", False, None),
    ("lansia_terawat", "lansia_terawat", False, "lansia"),
    ("disabilitas_terlayani", "disabilitas_terlayani", False, "disabilitas"),
    ("pus_ber_kb", "pus_ber_kb", False, "pus"),
]
FAMILY_U = [c for _, c, _, _ in FAMILY_YESNO] + ["air_layak", "rumah_milik", "lantai_bukan_tanah", "jkn_keluarga",
                                                 "air_jenis", "rumah_jenis", "lantai_jenis"]
MEMBER_U = ["jkn_individu", "sekolah", "sekolah_jenis", "kerja", "nikah"]  # per round; akta/imunisasi: per person

@dataclass(frozen=True)
class SynthResult:
    """What :func:`synthesize` wrote.

    ``counts``: data rows per file name; ``calibration``: kode_kabupaten, round, tahun, kode_desa,
    nama_desa, target, achieved (clean data, before dirt), mu, n_kk; ``dirt``: ``"<label>/<putaran>"``
    -> dirt kind -> rows injected (cells for ``ejaan_ya_tidak``); ``timings``: seconds per stage.
    """
    files: list[Path]
    counts: dict[str, int]
    calibration: pd.DataFrame
    dirt: dict[str, dict[str, int]]
    timings: dict[str, float] = field(default_factory=dict)


# ------------------------------------------------------------------ model ---
class _Model:
    """Item probabilities of the latent model (``model`` block of the villages file)."""

    def __init__(self, cfg: dict):
        self.cfg = cfg
        self.items = {}
        for name, (p0, slope) in cfg["items"].items():
            if isinstance(p0, dict):
                ages = np.array(sorted(p0), dtype=float)
                p0 = (ages, _logit(np.array([p0[a] for a in sorted(p0)], dtype=float)))
            else:
                p0 = _logit(float(p0))
            self.items[name] = (p0, float(slope))

    def coef(self, name: str, age=None, sex=None, female_name: str | None = None):
        """Intercept (an array when it depends on age or sex) and slope of item ``name``."""
        a, b = self.items[name]
        if isinstance(a, tuple):
            a = a[1][np.clip(np.searchsorted(a[0], age, side="right") - 1, 0, None)]
        if female_name is not None:
            af, bf = self.coef(female_name, age)
            a, b = np.where(sex == 1, af, a), np.where(sex == 1, bf, b)
        return a, b

    def p(self, name: str, theta):
        a, b = self.items[name]
        return 1.0 / (1.0 + np.exp(-(a + b * theta)))

    def member_coefs(self, age, sex) -> dict:
        """Per-member (intercept, slope) of the member items; fixed within a round."""
        return {"akta": self.coef("akta", age), "imunisasi": self.coef("imunisasi"),
                "jkn": self.coef("jkn_individu"), "sekolah": self.coef("sekolah", age),
                "anak_kerja": self.coef("tidak_kerja_anak", age),
                "kerja": self.coef("kerja_l", age, sex, "kerja_p"),
                "nikah_anak": self.coef("tidak_nikah_anak_l", age, sex, "tidak_nikah_anak_p"),
                "kawin_dini": self.coef("tidak_kawin_dini_l", age, sex, "tidak_kawin_dini_p")}


# --------------------------------------------------------------- answers ---
def _text(codes, names) -> pd.api.extensions.ExtensionArray:
    """Strings ``names[codes]`` as a pyarrow-backed pandas array (cheap for the scorer to compare)."""
    taken = pc.take(pa.array(names, pa.large_string()), pa.array(np.asarray(codes, np.int32)))
    return pd.Series(taken, dtype="str").array


def _id_text(numbers):
    return pd.Series(pc.cast(pa.array(np.asarray(numbers, np.int64)), pa.large_string()), dtype="str").array


def _bool(values, applies=None):
    values = np.asarray(values, dtype=bool)
    mask = np.zeros(len(values), bool) if applies is None else ~np.asarray(applies, dtype=bool)
    return pd.arrays.BooleanArray(values & ~mask, mask)


def _answers(fam, per, theta, R, model: _Model, putaran: int):
    """Clean-format families and members for latent values ``theta`` (fixed draws ``R``)."""
    cfg, U, W = model.cfg, R["U"], R["W"]
    F = len(fam)
    out = {"id_keluarga": fam["id_keluarga"].array, "putaran": np.full(F, putaran),
           "kode_desa": fam["kode_desa"].array, "rt": fam["rt"].to_numpy()}
    good = {name: U[:, j] < model.p(name, theta) for j, name in enumerate(FAMILY_U[:-3])}
    for col, item, negative, applies in FAMILY_YESNO:
        val = ~good[item] if negative else good[item]
        out[col] = _bool(val, None if applies is None else fam[applies].to_numpy())
    if "jenis" not in R:  # the kind of water source, tenure, floor inside good/bad: fixed per round
        ua, ur, ul = U[:, -3], U[:, -2], U[:, -1]
        R["jenis"] = (_choice(cfg["air_layak_jenis"], ua), 4 + _choice(cfg["air_tak_layak_jenis"], ua),
                      1 + _choice(cfg["rumah_lain"], ur), _choice(cfg["lantai_jenis"], ul))
    air_ok, air_bad, house_other, floor_kind = R["jenis"]
    water = np.where(good["air_layak"], air_ok, air_bad)
    out["sumber_air_minum"] = _text(water, WATER)
    house = np.where(good["rumah_milik"], 0, house_other)
    out["status_rumah"] = _text(house, HOUSE)
    floor = np.where(good["lantai_bukan_tanah"], floor_kind, 4)
    out["jenis_lantai"] = _text(floor, FLOOR)
    for col, key, z in (("luas_lantai_m2", "luas_lantai", 0), ("pendapatan_bulanan", "pendapatan", 1)):
        c = cfg[key]
        x = np.clip(np.exp(np.log(c["median"]) + c["sd"] * W[:, z] + c["slope"] * theta), c["min"], c["max"])
        out[col] = np.round(x / c["round_to"]) * c["round_to"] if "round_to" in c else np.round(x * 2) / 2
    families = pd.DataFrame(out)
    # members: one uniform per item and person (sekolah also drives child labour)
    f, age, sex, role = (per[c].to_numpy() for c in ("f", "age", "sex", "role"))
    th = theta[f]
    uj, us, ut, uk, un = (R["V"][:, j] for j in range(len(MEMBER_U)))
    ua, ui = per["u_akta"].to_numpy(), per["u_imun"].to_numpy()  # kept across rounds: no sudden catch-up
    if "coef" not in R:  # fixed within a round
        R["coef"] = model.member_coefs(age, sex)
    C = R["coef"]
    akta = per["akta0"].to_numpy() | (ua < _sig(C["akta"], th))
    imun = per["imun0"].to_numpy() | (ui < _sig(C["imunisasi"], th))
    jkn = good["jkn_keluarga"][f] | (uj < _sig(C["jkn"], th))
    in_school = us < _sig(C["sekolah"], th)
    school = np.select([age < 5, age < 7, age <= 17, age <= 22],
                       [0, (ut < 0.4).astype(int), np.where(in_school, 1, np.where(ut < 0.1, 0, 2)),
                        np.where(ut < 0.25, 1, 2)], np.where((age >= 60) & (ut < 0.12), 0, 2))
    child_work = us > _sig(C["anak_kerja"], th)
    adult_work = uk < _sig(C["kerja"], th)
    work = np.where(age < 5, False, np.where(age <= 17, child_work, adult_work))
    # marital status (girls/boys 15-18 may be married) and age at first marriage
    fixed_st, fixed_ukp = per["status"].to_numpy(), per["ukp_fixed"].to_numpy()
    q_child = 1 - _sig(C["nikah_anak"], th)
    child = fixed_st == -1
    status = np.where(child, ((un < q_child) & (age >= 15) & (age <= 18)).astype(int), fixed_st)
    q_early = 1 - _sig(C["kawin_dini"], th)
    early = np.minimum(15 + (4 * un / np.maximum(q_early, 1e-12)).astype(int), age)
    ukp = np.where(child, age, np.where(un < q_early, early, per["ukp_late"].to_numpy())).astype(float)
    ukp = np.where(np.isnan(fixed_ukp), ukp, fixed_ukp)
    wife, head = fam["wife"].to_numpy(), fam["head"].to_numpy()
    hw, ww = head[wife >= 0], wife[wife >= 0]
    own = np.isnan(fixed_ukp[hw])  # a husband married when his wife did
    ukp[hw[own]] = np.clip(ukp[ww[own]] + age[hw[own]] - age[ww[own]], 17, age[hw[own]])
    ukp = np.where(status == 0, np.nan, np.minimum(ukp, age))  # never after the current age
    if "hubungan" not in R:  # fixed within a round
        R["hubungan"], R["jenis_kelamin"] = _text(role, ROLES), _text(sex, SEX)
    members = pd.DataFrame({
        "id_keluarga": per["id_keluarga"].array, "id_anggota": per["id_anggota"].array,
        "putaran": np.full(len(per), putaran), "hubungan": R["hubungan"],
        "jenis_kelamin": R["jenis_kelamin"], "umur": age, "status_kawin": _text(status, STATUS),
        "usia_kawin_pertama": pd.array(ukp, dtype="Float64"), "akta_kelahiran": _bool(akta),
        "status_sekolah": _text(school, SCHOOL), "bekerja": _bool(work),
        "disabilitas": _bool(per["dis"].to_numpy()), "jaminan_kesehatan": _bool(jkn),
        "imunisasi_lengkap": _bool(imun, age < 5)})
    return families, members


# ----------------------------------------------------------- calibration ---
def _draws(F, P, rng):
    """The round's common random numbers, drawn once and reused by every calibration step."""
    return {"U": rng.random((F, len(FAMILY_U)), dtype=np.float32), "W": rng.normal(size=(F, 2)),
            "V": rng.random((P, len(MEMBER_U)), dtype=np.float32)}


def _subset(fam, per, R, keep_v):
    """The families of the villages ``keep_v`` (mask), their members and random numbers."""
    fm = keep_v[fam["v"].to_numpy()]
    pm = fm[per["f"].to_numpy()]
    fidx, pidx = np.cumsum(fm) - 1, np.cumsum(pm) - 1
    sf, sp = fam[fm].reset_index(drop=True), per[pm].reset_index(drop=True)
    sf["head"] = pidx[sf["head"].to_numpy()]
    sf["wife"] = np.where(sf["wife"] >= 0, pidx[sf["wife"].to_numpy()], -1)
    sp["f"] = fidx[sp["f"].to_numpy()]
    return sf, sp, {"U": R["U"][fm], "W": R["W"][fm], "V": R["V"][pm]}


def _calibrate(fam, per, R, model, targets, putaran, max_iter, tol):
    """mu per village so that the mean family ``indeks`` equals the target (all villages at once).

    Root search on g(mu) = logit(IKK/100) - logit(target/100), which is close to linear:
    start at mu = (logit(target/100) - 1.43) / 0.68 (the typical relation) and take a Newton
    step with that slope; a village not yet bracketed then extrapolates by secant (at most 3
    units per step, within [-8, 8]); a bracketed one takes Illinois regula falsi steps. A
    village is done when within ``tol``, or when its bracket is narrower than 1e-5: then one
    family's answer flips inside it, a step of 20/n_kk IKK points at most, and the best side
    is kept (error <= 10/n_kk). Once fewer villages are left, only their families are
    regenerated and scored.
    """
    from .score import score_families  # noqa: PLC0415 (the real index engine)
    nv = len(targets)

    def evaluate(mu, part):
        f_, p_, r_ = part
        v = f_["v"].to_numpy()
        fc, mc = _answers(f_, p_, mu[v] + f_["u"].to_numpy() + f_["e"].to_numpy(), r_, model, putaran)
        s = score_families(fc, mc, "ikk")["indeks"].to_numpy(dtype=float, na_value=np.nan)
        n = np.bincount(v, minlength=nv)
        d = np.bincount(v, weights=np.nan_to_num(s), minlength=nv) / np.where(n > 0, n, np.nan) - targets
        return d, _logit(np.clip((d + targets) / 100, 1e-6, 1 - 1e-6)) - _logit(targets / 100), fc, mc

    lo, hi, glo, ghi = np.full(nv, -8.0), np.full(nv, 8.0), np.full(nv, np.nan), np.full(nv, np.nan)
    best, err, dbest, side = np.zeros(nv), np.full(nv, np.inf), np.zeros(nv), np.zeros(nv)
    x_prev = g_prev = None
    x, steps, full = np.clip((_logit(targets / 100) - 1.43) / 0.68, -6, 6), 0, (fam, per, R)
    part, size = full, np.bincount(fam["v"].to_numpy(), minlength=nv)
    for steps in range(1, max_iter + 2):  # steps = evaluations
        d, g, fc, mc = evaluate(x, part)
        act = ~np.isnan(d)
        better = act & (np.abs(d) < err)
        best, err, dbest = np.where(better, x, best), np.where(better, np.abs(d), err), np.where(better, d, dbest)
        done = (err <= tol) | (hi - lo < 1e-5)
        if done.all() or steps > max_iter:
            break
        left = act & (g < 0)  # Illinois: halve the far end's value when the same end moves twice
        right = act & (g >= 0)
        ghi = np.where(left & (side == -1), ghi / 2, ghi)
        glo = np.where(right & (side == 1), glo / 2, glo)
        lo, glo = np.where(left, x, lo), np.where(left, g, glo)
        hi, ghi = np.where(right, x, hi), np.where(right, g, ghi)
        side = np.where(left, -1, np.where(right, 1, side))
        if x_prev is None:  # Newton step with the typical slope of logit(IKK/100) in mu
            sec = x - g / 0.68
        else:
            sec = x - g * (x - x_prev) / np.where(g != g_prev, g - g_prev, np.nan)
        sec = np.where(np.isfinite(sec), np.clip(sec, x - 3, x + 3), x - np.sign(g) * 0.25)
        bracketed = ~np.isnan(glo) & ~np.isnan(ghi)
        falsi = lo - glo * (hi - lo) / (ghi - glo)
        falsi = np.where((falsi > lo) & (falsi < hi), falsi, (lo + hi) / 2)
        nxt = np.where(bracketed, falsi, np.clip(sec, lo + 1e-9, hi - 1e-9))
        x_prev, g_prev, x = x, g, np.where(done, x, nxt)
        if size[~done].sum() < 0.85 * len(part[0]):
            part = _subset(fam, per, R, ~done)
    if (err > 0.5 + 20 / np.maximum(size, 1)).any():  # beyond what one family's answers can explain
        raise SynthError(f"round {putaran}: village IKK targets not reached (worst miss {err.max():.2f} points).",
                         fix="use targets between about 20 and 98")
    if part is not full or not np.array_equal(best, x):  # same random numbers: same data as when scored
        fc, mc = _answers(fam, per, best[fam["v"].to_numpy()] + fam["u"].to_numpy() + fam["e"].to_numpy(),
                          R, model, putaran)
    return best, dbest + targets, fc, mc, steps


def _calibrate_exact(fam, per, R, model, targets, putaran, tol, exact, rng, attempts: int = 40):
    """:func:`_calibrate`, then for the villages marked ``exact`` (a published figure) whose IKK does
    not round to the target at two decimals: new random numbers for those villages' families and
    members only, and calibrate again (the other villages keep theirs, so their data do not change).
    Deterministic given ``rng``."""
    mu, achieved, famc, memc, steps = _calibrate(fam, per, R, model, targets, putaran, 40, tol)
    fv, pv = fam["v"].to_numpy(), fam["v"].to_numpy()[per["f"].to_numpy()]
    for _ in range(attempts):
        miss = exact & (np.abs(np.round(achieved, 2) - np.round(targets, 2)) > 1e-9)
        if not miss.any():
            break
        fm, pm = miss[fv], miss[pv]
        R = {"U": R["U"].copy(), "W": R["W"].copy(), "V": R["V"].copy()}
        R["U"][fm] = rng.random((int(fm.sum()), R["U"].shape[1]), dtype=np.float32)
        R["W"][fm] = rng.normal(size=(int(fm.sum()), 2))
        R["V"][pm] = rng.random((int(pm.sum()), R["V"].shape[1]), dtype=np.float32)
        mu, achieved, famc, memc, more = _calibrate(fam, per, R, model, targets, putaran, 40, tol)
        steps = steps + more
    else:
        miss = exact & (np.abs(np.round(achieved, 2) - np.round(targets, 2)) > 1e-9)
    if miss.any():
        raise SynthError(f"round {putaran}: a published village figure is not reproduced to two decimals "
                         f"(got {', '.join(f'{a:.4f}' for a in achieved[miss])}).",
                         fix="change the seed or the village's n_kk slightly")
    return mu, achieved, famc, memc, steps


def synthesize(out_dir, *, seed: int = 20240710, families: int | None = None, dirt: float = 1.0,
               villages_file=paths.REFERENCE_DIR / "synth_villages.yaml", rounds: int | None = None) -> SynthResult:
    """Write synthetic census exports to ``out_dir``: every kabupaten of ``villages_file``, each for its
    survey rounds (``rounds``: the first that many of each; default all), and the desa lokus list.

    ``families=N``: scale mode instead (benchmarks), N families in villages of about 450 KK in the
    first kabupaten's rounds (default one), spread over kabupaten of 200 villages, or over all the
    kabupaten of the region list when N needs more (:func:`pk2d.synth_places._scale_plan`). It is made
    partition by partition: one kabupaten is generated, calibrated and written
    (``SINTETIS_skala<N>_<kode kabupaten>_<tahun>_putaran<k>_keluarga.csv`` and ``..._anggota.csv``)
    before the next is started, so memory follows the largest kabupaten, not N. ``dirt``
    multiplies the dirt rates (0 = clean files). Deterministic for a given seed; each kabupaten draws
    from its own stream, so one kabupaten's files do not depend on the others.
    """
    clock = time.perf_counter()
    cfg = _load(villages_file)
    kabs = cfg.get("kabupaten") or []
    shared = {k: v for k, v in cfg.items() if k != "kabupaten"}
    if not kabs:
        raise SynthError("the villages file lists no kabupaten.", fix="see pk2d/data/synth_villages.yaml")
    if dirt < 0 or (families is not None and int(families) < 1):
        raise SynthError("dirt must be >= 0 and families a positive number.", fix="e.g. families=90000, dirt=1")
    if families is None and rounds is not None:
        for kab in kabs:  # before any file is written
            _check_rounds(kab, int(rounds))
    from .io import ensure_writable_dir

    out_dir = ensure_writable_dir(Path(out_dir), "The synthetic-exports folder (--out)")
    parts = []
    if families is not None:
        cfg = {**shared, **kabs[0]}
        _check_rounds(cfg, int(rounds or 1))
        for code, vil, seq in _scale_plan(cfg, int(families), rounds or 1, seed):  # one kabupaten at a time
            parts.append(_synth_kabupaten(out_dir, cfg, seq, dirt, rounds or 1,
                                          (vil, f"skala{int(families)}_{code.replace('.', '')}")))
    else:
        for i, kab in enumerate(kabs):
            parts.append(_synth_kabupaten(out_dir, {**shared, **kab}, np.random.SeedSequence([seed, i]), dirt,
                                          rounds or len(kab["rounds"])))
    files = [f for p in parts for f in p["files"]]
    counts = {k: v for p in parts for k, v in p["counts"].items()}
    dirt_counts = {k: v for p in parts for k, v in p["dirt"].items()}
    times = {f"{p['label']}_{k}": v for p in parts for k, v in p["times"].items()}
    if families is None:
        files += [write_lokus(out_dir, kabs), write_regions(out_dir, kabs)]
    times["total"] = round(time.perf_counter() - clock, 3)
    return SynthResult(files, counts, pd.concat([p["calibration"] for p in parts], ignore_index=True), dirt_counts,
                       times)


def _check_rounds(cfg: dict, rounds: int) -> None:
    if not 1 <= rounds <= min(4, len(cfg["rounds"])):
        raise SynthError(f"rounds={rounds}: kabupaten {cfg['kode_kabupaten']} has {len(cfg['rounds'])} round(s) "
                         "in the villages file.", fix="ask for fewer rounds or add rounds to the villages file")


def _synth_kabupaten(out_dir: Path, cfg: dict, seq, dirt: float, rounds: int,
                     scale: tuple[pd.DataFrame, str] | None = None) -> dict:
    """The rounds of one kabupaten: households, calibrated answers, export files. Its random numbers
    come from ``seq`` (a ``SeedSequence``) only. ``scale``: (villages, label) of a scale-set partition
    (:func:`pk2d.synth_places._scale_plan`) instead of the villages of ``cfg``."""
    clock = {"start": time.perf_counter()}
    _check_rounds(cfg, rounds)
    streams = [np.random.default_rng(s) for s in seq.spawn(2 + 4 * rounds)]  # independent; [0] unused
    vil, label = scale if scale is not None else (_sample_villages(cfg, rounds), cfg["label"])
    model, names = _Model(cfg["model"]), _name_list(cfg)
    n_rt = vil["n_rt"].to_numpy()
    u_rt = streams[1].normal(0, np.repeat(vil["rt_spread"].to_numpy(float), n_rt))
    dusun = [None if not isinstance(d, list) else d[(r * len(d)) // n]  # RTs split among the dusun in order
             for d, n in zip(vil["dusun"], n_rt) for r in range(n)]
    files, counts, calib, dirt_counts = [], {}, [], {}
    fam = per = memc = None
    for k in range(1, rounds + 1):
        structure, draws, text, dirty = streams[2 + 4 * (k - 1): 6 + 4 * (k - 1)]
        spec = cfg["rounds"][k - 1]
        putaran = int(spec.get("putaran", k))
        start = int(np.datetime64(str(spec["mulai"]), "D").astype(np.int64))
        if k == 1:
            fam, per = _new_households(vil["n_kk"].to_numpy(), vil, cfg, structure, start, 1,
                                       (int(np.datetime64("2008-01-01", "D").astype(np.int64)), start - 30))
        else:
            fam, per = _next_round(fam, per, memc, vil, cfg, structure, start, k)
        fam, per = _finish(fam, per)
        rtg = (np.cumsum(n_rt) - n_rt)[fam["v"].to_numpy()] + fam["rt"].to_numpy() - 1
        fam["u"], fam["dusun"] = u_rt[rtg], np.asarray(dusun, dtype=object)[rtg]
        fam["id_keluarga"] = _id_text(fam["kk"])
        fam["kode_desa"] = pd.Categorical.from_codes(fam["v"].to_numpy(), vil["kode_desa"])
        per["id_keluarga"] = _id_text(fam["kk"].to_numpy()[per["f"].to_numpy()])
        per["id_anggota"] = _id_text(per["nik"])
        clock[f"structure_{putaran}"] = time.perf_counter()
        targets = vil[f"target_{k}"].to_numpy(float)
        R = _draws(len(fam), len(per), draws)
        exact = (vil["published"] == int(spec["tahun"])).to_numpy()
        mu, achieved, famc, memc, steps = _calibrate_exact(fam, per, R, model, targets, putaran,
                                                            0.02 if scale is not None else CALIBRATION_TOL,
                                                            exact, draws)
        clock[f"calibration_{putaran}"] = time.perf_counter()
        calib.append(pd.DataFrame({"kode_kabupaten": vil["kode_kabupaten"], "round": putaran, "tahun": spec["tahun"],
                                   "kode_desa": vil["kode_desa"], "nama_desa": vil["nama_desa"],
                                   "target": targets, "achieved": achieved, "mu": mu,
                                   "n_kk": np.bincount(fam["v"], minlength=len(vil)), "steps": steps}))
        style = cfg["export"]["csv" if k % 2 else "excel"]
        kel, ang, n_var = _raw_tables(fam, per, famc, memc, vil, names, putaran, spec["tahun"], style, text,
                                      cfg["dirt"]["ejaan_ya_tidak"] * dirt if k % 2 else 0.0)
        kel, ang, dc = _dirt(kel, ang, fam, per, style, cfg["dirt"], dirt, dirty,
                             protected=vil["published"].notna().to_numpy()[fam["v"].to_numpy()])
        dirt_counts[f"{label}/{putaran}"] = {**dc, "ejaan_ya_tidak": n_var}
        for table, data in (("keluarga", kel), ("anggota", ang)):
            path = _write(data, out_dir / f"SINTETIS_{label}_{spec['tahun']}_putaran{putaran}_{table}.csv", style)
            files.append(path)
            counts[path.name] = data.num_rows
        del kel, ang, famc, R  # the next round needs fam, per and memc only
        clock[f"write_{putaran}"] = time.perf_counter()
    times, last = {}, clock["start"]
    for key, t in list(clock.items())[1:]:
        times[key], last = round(t - last, 3), t
    return {"label": label, "files": files, "counts": counts, "calibration": pd.concat(calib, ignore_index=True),
            "dirt": dirt_counts, "times": times}
