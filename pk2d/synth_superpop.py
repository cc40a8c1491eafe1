"""Super-population mode of the synthetic generator: fresh draws around known village levels.

:func:`pk2d.synth.synthesize` calibrates every village to its target in every round, so the
village means it writes barely vary beyond the planted programme effect, and nothing it writes
can show whether an interval covers 95 %. This module draws every round afresh from a generating
model whose parameters are known, so that the true value of everything pk2d estimates can be
computed (:func:`truth`) and the coverage of pk2d's intervals measured
(``benchmarks/coverage.py``). It reuses the household structure, the answer model and the item
probabilities of :mod:`pk2d.synth` (``model`` block of ``pk2d/data/synth_villages.yaml``); it
adds no rule of the data contract of its own.

Model (latent scale, logit units)
    Family f of RT r in village v, round t: ``theta = m[v,t] + s[v,t] + u[r,t] + e[f,t]``.

    * ``m[v,t]``: the village's level in round t, fixed parameters (below);
    * ``u[r,t] ~ N(0, rt_sd^2)``: the RT effect, drawn afresh every round (``rt_persistence``
      rho > 0 makes it AR(1) across rounds with the same marginal variance);
    * ``e[f,t] ~ N(0, family_sd^2)``: the family effect, a fresh family every round;
    * ``s[v,t] ~ N(0, village_round_sd^2)``: an optional village-by-round shock (default 0).

    Every binary good outcome j (a family answer or a member attribute) is good with probability
    ``sigmoid(logit(p0_j) + b_j * theta)`` (:class:`pk2d.synth._Model`): ``p0_j`` is the item's
    difficulty, ``b_j`` its slope. The households (members, ages, relationships) are drawn
    afresh every round by :func:`pk2d.synth._new_households`, the answers by
    :func:`pk2d.synth._answers`; :func:`pk2d.score.score_families` computes every index.
Levels, trend, programme effect
    ``scale="index"`` (default): the parameters are in IKK points. A village's expected index
    in round t (1-based) is ``level + trend * (t - 1) + effect * D[v,t]``, ``D = 1`` for a desa
    lokus in every round whose year is at least ``lokus year + effect_lag`` (default lag 1: the
    round of the lokus year is its baseline, as in ``synth_villages.yaml``). The latent level
    is ``m[v,t] = G_s^-1(that)``, where ``G_s(m) = E[indeks | theta ~ N(m, s^2)]`` and
    ``s^2 = rt_sd^2 + family_sd^2 + village_round_sd^2``. Parallel trends then hold on the index
    scale and the true difference-in-differences equals the planted effect.
    ``scale="latent"``: the same three parameters are latent (logit) values,
    ``m[v,t] = level + trend (t-1) + effect D``; the expected index is ``G_s(m)`` and the true
    change and DiD follow from it (a latent effect's index-point equivalent).
The truth (:func:`truth`)
    A family's index depends on its theta, its household and its item draws only, all
    independent of the other families, so ``E[village mean] = G_s(m)``. ``G_s`` is computed
    once by Monte Carlo: one large pool of households with common random numbers (fixed seed),
    scored by the real engine on a grid of m (step 0.1), then interpolated monotonically
    (PCHIP) and inverted. Its Monte-Carlo error is ``Truth.mc_se`` (at most about 0.05 points for the
    default pool of 100,000 families). From it: each village's expected index per round, the
    true change between rounds, the true DiD of any desa lokus against any set of comparison
    villages (comparison changes weighted by village population, as the pooled regression
    weights them), and the true rank of each village (1 = highest) among any set of villages.
Census and sample (:func:`draw_population`, :func:`pk2d.synth_sample.draw_sample`)
    A population is every family of every village in every round (a census, like the
    programme's desa lokus surveys). A sample is a stratified three-stage sample of it: strata
    = kecamatan, a desa lokus its own take-all stratum (self-representing); villages by simple
    random sampling without replacement within the stratum (the same villages in every round: a
    panel of PSUs), then RTs within each selected village, then families within each selected
    RT, both drawn afresh every round. Weight = inverse inclusion probability
    ``(M_h/m_h) (N_v/n_v) (K_r/k_r)``. Design columns, named as in ``pk2d/contract.yaml``:
    ``bobot``, ``strata``, ``psu`` (the village), ``ssu`` (the RT, ``kode_rt``), ``populasi_psu``
    (villages in the stratum; the raw files' alias ``fpc1``), ``populasi_ssu`` (RTs in the village;
    ``fpc2``); and ``populasi_keluarga`` (families in the RT: the third stage, which the contract
    does not name).

>>> sp = example(n_villages=4)
>>> sp.villages[["kode_desa", "level", "n_rt"]].head(2).to_dict("records")
[{'kode_desa': '63.02.01.2001', 'level': 64.0, 'n_rt': 8}, {'kode_desa': '63.02.01.2002', 'level': 71.0, 'n_rt': 9}]
"""
from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from . import paths
from .synth_places import SynthError, _load

#: the step (logit units) of the grid of latent levels the truth curve is computed on, and its default pool
GRID_STEP = 0.1
DEFAULT_POOL = 100_000
TRUTH_SEED = 20240710
#: the design columns of a sample (``bobot, strata, psu`` and these); :func:`score` copies to the
#: scores those :func:`pk2d.score.score_families` does not keep
DESIGN_COLUMNS = ("ssu", "populasi_psu", "populasi_ssu", "populasi_keluarga")
#: per stage: the unit column and its population-size column (villages, RTs, families)
STAGES = (("psu", "populasi_psu"), ("ssu", "populasi_ssu"), ("id_keluarga", "populasi_keluarga"))
VILLAGE_COLUMNS = ("kode_desa", "nama_desa", "kode_kecamatan", "nama_kecamatan", "level", "n_rt", "kk_per_rt")


# ----------------------------------------------------------- parameters ---
@dataclass(frozen=True)
class SuperPopulation:
    """The generating model of one kabupaten (see the module docstring).

    ``villages``: one row per village with ``kode_desa, nama_desa, kode_kecamatan, nama_kecamatan,
    level, n_rt, kk_per_rt`` and optionally ``rt_sd`` (the village's RT effect SD). The village has
    ``n_rt * kk_per_rt`` families in every round, spread unevenly over its RTs (each RT about 0.6 to
    1.4 times ``kk_per_rt``, drawn afresh every round). ``years``: one survey round per year,
    numbered 1, 2, ... (``putaran``). ``lokus``: ``(kode_desa, lokus year, effect)`` triples.
    """

    villages: pd.DataFrame = field(compare=False)
    years: tuple[int, ...] = (2023, 2024)
    trend: float = 0.5
    lokus: tuple[tuple[str, int, float], ...] = ()
    scale: str = "index"
    effect_lag: int = 1
    rt_sd: float = 0.30
    family_sd: float = 0.65
    rt_persistence: float = 0.0
    village_round_sd: float = 0.0
    kode_kabupaten: str = "63.02"
    villages_file: str | Path = paths.REFERENCE_DIR / "synth_villages.yaml"

    def __post_init__(self):
        vil = pd.DataFrame(self.villages).reset_index(drop=True)
        missing = [c for c in VILLAGE_COLUMNS if c not in vil]
        if missing:
            raise SynthError(f"super-population: the villages table lacks {missing}.",
                             fix=f"give every village {', '.join(VILLAGE_COLUMNS)}")
        if vil["kode_desa"].duplicated().any() or len(vil) == 0:
            raise SynthError("super-population: village codes must be unique (and at least one village).")
        if self.scale not in ("index", "latent"):
            raise SynthError(f"super-population: scale must be 'index' or 'latent', not {self.scale!r}.")
        if (vil["n_rt"] < 1).any() or (vil["kk_per_rt"] < 1).any():
            raise SynthError("super-population: every village needs n_rt >= 1 and kk_per_rt >= 1.")
        if not -1 < self.rt_persistence < 1 or min(self.rt_sd, self.family_sd, self.village_round_sd) < 0:
            raise SynthError("super-population: SDs must be >= 0 and -1 < rt_persistence < 1.")
        unknown = {c for c, _, _ in self.lokus} - set(vil["kode_desa"])
        if unknown:
            raise SynthError(f"super-population: desa lokus {sorted(unknown)} are not villages of the kabupaten.")
        if "rt_sd" not in vil:
            vil["rt_sd"] = self.rt_sd
        vil["n_kk"] = (vil["n_rt"] * vil["kk_per_rt"]).astype(int)
        for c in ("kode_desa", "nama_desa", "kode_kecamatan", "nama_kecamatan"):
            vil[c] = vil[c].astype(str)
        vil["kode_kabupaten"] = self.kode_kabupaten
        object.__setattr__(self, "villages", vil)
        object.__setattr__(self, "years", tuple(int(y) for y in self.years))
        object.__setattr__(self, "lokus", tuple((str(c), int(y), float(e)) for c, y, e in self.lokus))

    @property
    def rounds(self) -> tuple[int, ...]:
        return tuple(range(1, len(self.years) + 1))

    @property
    def total_sd(self) -> np.ndarray:
        """Per village: the SD of theta around m (RT, family and village-round parts)."""
        rt = self.villages["rt_sd"].to_numpy(float)
        return np.sqrt(rt**2 + self.family_sd**2 + self.village_round_sd**2)

    def config(self) -> dict:
        """The villages file's shared blocks (model, names, export styles), family SD set to ours."""
        return _config(str(self.villages_file), self.family_sd)

    def lokus_table(self) -> pd.DataFrame:
        """``kode_kabupaten, kode_desa, nama_desa, tahun`` (the desa lokus list pk2d reads)."""
        names = self.villages.set_index("kode_desa")["nama_desa"]
        return pd.DataFrame({"kode_kabupaten": self.kode_kabupaten, "kode_desa": [c for c, _, _ in self.lokus],
                             "nama_desa": [names[c] for c, _, _ in self.lokus],
                             "tahun": [y for _, y, _ in self.lokus]},
                            columns=["kode_kabupaten", "kode_desa", "nama_desa", "tahun"])

    def parameters(self) -> pd.DataFrame:
        """Per village and round: the parameter value (``level + trend (t-1) + effect D``, on
        ``scale``) and whether the programme effect is on (``treated``)."""
        vil = self.villages
        effect = {c: (y, e) for c, y, e in self.lokus}
        rows = []
        for t, year in zip(self.rounds, self.years):
            for v in vil.itertuples(index=False):
                y, e = effect.get(v.kode_desa, (None, 0.0))
                on = y is not None and year >= y + self.effect_lag
                rows.append({"kode_desa": v.kode_desa, "putaran": t, "tahun": year, "lokus": y is not None,
                             "lokus_year": y, "treated": bool(on),
                             "parameter": float(v.level) + self.trend * (t - 1) + (e if on else 0.0)})
        return pd.DataFrame(rows)


@functools.lru_cache(maxsize=4)
def _config(villages_file: str, family_sd: float) -> dict:
    cfg = _load(villages_file)
    shared = {k: v for k, v in cfg.items() if k != "kabupaten"}
    shared = copy.deepcopy(shared)
    shared["model"]["sd_keluarga"] = float(family_sd)
    return shared


def example(n_villages: int = 14, *, years=(2023, 2024), trend: float = 0.5, effects=(4.0, 3.0),
            kk_per_rt: int = 30, **kwargs) -> SuperPopulation:
    """An invented kabupaten (Kotabaru's code) for simulations: kecamatan of three villages, 8-12
    RTs per village, ``kk_per_rt`` families per RT on average, levels 64-83 IKK points a point or
    so apart; the last ``len(effects)`` villages are desa lokus of the first year, each in its own
    kecamatan, with the planted ``effects`` (points). ``kwargs`` go to :class:`SuperPopulation`."""
    levels = [64.0, 71.0, 78.5, 67.5, 74.0, 81.0, 69.0, 75.5, 83.0, 66.0, 72.5, 79.5, 70.0, 76.5, 73.0, 77.5]
    if not 1 <= n_villages <= len(levels):
        raise SynthError(f"example: 1 to {len(levels)} villages, not {n_villages}.")
    words = ["Sungai Rampai", "Tanjung Limau", "Teluk Bakau", "Batu Pinang", "Gunung Jaya", "Muara Baru",
             "Tanah Rumbia", "Bukit Pandan", "Rantau Kupang", "Padang Halaban", "Karang Indah", "Pulau Makmur",
             "Lok Paring", "Banua Raya", "Sungai Langsat", "Tanjung Kelapa"]
    kec_names = ["Pulau Laut Utara", "Kelumpang Hilir", "Pamukan Selatan", "Sampanahan", "Hampang", "Sungai Durian"]
    n_lokus = len(effects)
    rows = []
    for i in range(n_villages):
        n_kec = max(1, -(-(n_villages - n_lokus) // 3))
        k = i // 3 if i < n_villages - n_lokus else (i - (n_villages - n_lokus)) % n_kec
        rows.append({"kode_desa": f"63.02.{k + 1:02d}.{2001 + i}", "nama_desa": words[i],
                     "kode_kecamatan": f"63.02.{k + 1:02d}", "nama_kecamatan": kec_names[k % len(kec_names)],
                     "level": levels[i], "n_rt": 8 + i % 5, "kk_per_rt": kk_per_rt})
    vil = pd.DataFrame(rows)
    lokus = tuple((vil["kode_desa"].iloc[n_villages - n_lokus + j], int(years[0]), float(e))
                  for j, e in enumerate(effects)) if n_lokus and n_villages > n_lokus else ()
    return SuperPopulation(vil, years=tuple(years), trend=trend, lokus=lokus, **kwargs)


# --------------------------------------------------------- households ---
def _households(nk, vil, cfg, rng, year: int, batch: int):
    """Fresh families (``nk[v]`` in village v), their members and the per-family facts, via
    :func:`pk2d.synth._new_households` and :func:`pk2d.synth._finish`."""
    from . import synth as S

    start = int(np.datetime64(f"{year}-06-05", "D").astype(np.int64))
    issued = (int(np.datetime64("2008-01-01", "D").astype(np.int64)), start - 30)
    fam, per = S._new_households(np.asarray(nk, dtype=np.int64), vil, cfg, rng, start, batch, issued)
    fam, per = S._finish(fam, per)
    fam["id_keluarga"] = S._id_text(fam["kk"])
    per["id_keluarga"] = S._id_text(fam["kk"].to_numpy()[per["f"].to_numpy()])
    per["id_anggota"] = S._id_text(per["nik"])
    return fam, per


# -------------------------------------------------------------- truth ---
@dataclass(frozen=True)
class Curve:
    """``G_s(m) = E[indeks | theta ~ N(m, s^2)]`` on a grid (Monte Carlo, common random numbers),
    interpolated monotonically; ``sd``: the SD of the family index at each grid point."""

    s: float
    grid: np.ndarray
    values: np.ndarray
    sd: np.ndarray
    pool: int

    @functools.cached_property
    def _interpolant(self):
        from scipy.interpolate import PchipInterpolator

        return PchipInterpolator(self.grid, self.values)

    def __call__(self, m):
        m = np.asarray(m, dtype=float)
        if (m < self.grid[0] - 1e-9).any() or (m > self.grid[-1] + 1e-9).any():
            raise SynthError("super-population: a latent level lies outside the truth grid.")
        return self._interpolant(m)

    def inverse(self, y):
        """The latent level whose expected index is ``y`` (bisection on the interpolant)."""
        y = np.atleast_1d(np.asarray(y, dtype=float))
        if (y < self.values[0]).any() or (y > self.values[-1]).any():
            raise SynthError("super-population: a target index lies outside the truth grid.")
        lo, hi = np.full(len(y), self.grid[0]), np.full(len(y), self.grid[-1])
        for _ in range(60):  # 2^-60 of the grid's span
            mid = (lo + hi) / 2
            below = self(mid) < y
            lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
        return (lo + hi) / 2


class _Pool:
    """A large pool of households with fixed random numbers, scored at any latent level."""

    def __init__(self, sp: SuperPopulation, size: int, seed: int):
        from . import synth as S
        from .catalogue import load_catalogue

        self.cfg = sp.config()
        self.model = S._Model(self.cfg["model"])
        self.cat = load_catalogue("ikk")
        rng = np.random.default_rng([int(seed), 7])
        kk = max(1, int(round(float(sp.villages["kk_per_rt"].mean()))))
        vil = pd.DataFrame({"n_rt": [max(1, size // kk)], "kode_kecamatan": ["63.02.01"]})
        fam, per = _households([size], vil, self.cfg, rng, sp.years[0], 1)
        fam["kode_desa"] = "pool"
        self.fam, self.per = fam, per
        self.R = S._draws(len(fam), len(per), rng)
        self.z = rng.normal(size=len(fam))
        self.rng = rng

    def scores(self, theta) -> np.ndarray:
        from . import synth as S
        from .score import score_families

        fc, mc = S._answers(self.fam, self.per, np.asarray(theta, dtype=float), self.R, self.model, 1)
        return score_families(fc, mc, self.cat)["indeks"].to_numpy(dtype=float, na_value=np.nan)

    def curve(self, s: float, lo: float, hi: float) -> Curve:
        grid = np.round(np.arange(np.floor(lo / GRID_STEP) * GRID_STEP, hi + GRID_STEP / 2, GRID_STEP), 10)
        vals, sds = [], []
        for m in grid:
            y = self.scores(m + s * self.z)
            vals.append(np.nanmean(y))
            sds.append(np.nanstd(y))
        return Curve(float(s), grid, np.maximum.accumulate(np.array(vals)), np.array(sds), len(self.z))


@dataclass(frozen=True)
class Truth:
    """The true values of a :class:`SuperPopulation` (see the module docstring).

    ``index``: per village and round ``kode_desa, nama_desa, kode_kecamatan, putaran, tahun, lokus,
    treated, latent`` (m), ``expected`` (IKK points), ``rank`` (among all villages, 1 = highest),
    ``n_kk``; ``mc_se``: the largest Monte-Carlo SE of ``expected`` over the grid; ``icc``: the
    intra-RT correlation of the family index implied by the model (one-way ANOVA on a large draw,
    at the kabupaten's mean level), ``curves``: ``G_s`` per distinct s.
    """

    index: pd.DataFrame
    curves: dict = field(compare=False)
    mc_se: float = 0.0
    icc: float | None = None
    pool: int = 0
    seed: int = TRUTH_SEED

    def expected(self) -> pd.Series:
        """Expected index per ``(putaran, kode_desa)``."""
        return self.index.set_index(["putaran", "kode_desa"])["expected"]

    def change(self, before: int, after: int) -> pd.Series:
        """True change of each village's expected index, ``after - before`` (by ``kode_desa``)."""
        e = self.index.pivot(index="kode_desa", columns="putaran", values="expected")
        return (e[after] - e[before]).rename("change")

    def did(self, focus: str, before: int, after: int, controls: Sequence[str]) -> float:
        """True difference-in-differences: the focus village's change minus the comparison villages'
        changes averaged with their population sizes (what the pooled family regression weights)."""
        ch = self.change(before, after)
        n = self.index.drop_duplicates("kode_desa").set_index("kode_desa")["n_kk"]
        controls = list(controls)
        return float(ch[focus] - np.average(ch[controls].to_numpy(), weights=n[controls].to_numpy(float)))

    def ranks(self, putaran: int, villages: Sequence[str] | None = None) -> pd.Series:
        """True rank (1 = highest expected index; ties share the best rank) among ``villages``
        (default all), by ``kode_desa``."""
        from .compare import rank_desc

        e = self.expected().loc[putaran]
        if villages is not None:
            e = e.loc[list(villages)]
        return pd.Series(rank_desc(e.to_numpy()[None, :])[0], index=e.index, name="rank")

    def evaluations(self, villages: Sequence[str] | None = None, lokus: pd.DataFrame | None = None) -> list[dict]:
        """The DiD evaluations pk2d runs (:func:`pk2d.compare_stage.evaluations`) when ``villages``
        (default all) are surveyed in every round, each with its true ``did``."""
        from .compare_stage import evaluations

        t = self.index if villages is None else self.index[self.index["kode_desa"].isin(list(villages))]
        lk = self._lokus if lokus is None else lokus
        out = evaluations(t[["putaran", "tahun", "kode_desa"]], lk)
        for e in out:
            e["did"] = self.did(e["focus"], e["before"], e["after"], e["controls"])
        return out

    @property
    def _lokus(self) -> pd.DataFrame:
        lk = self.index[self.index["lokus"]].drop_duplicates("kode_desa")
        return pd.DataFrame({"kode_desa": lk["kode_desa"], "tahun": lk["lokus_year"].astype(int)})


def truth(sp: SuperPopulation, *, pool: int = DEFAULT_POOL, seed: int = TRUTH_SEED, icc: bool = True) -> Truth:
    """The true expected index of every village and round (and what follows from it), by a large
    Monte-Carlo draw from the model with a fixed seed (see the module docstring)."""
    par = sp.parameters()
    vil = sp.villages
    s_of = dict(zip(vil["kode_desa"], np.round(sp.total_sd, 12)))
    par["s"] = par["kode_desa"].map(s_of)
    P = _Pool(sp, int(pool), seed)
    curves = {}
    for s, rows in par.groupby("s"):
        x = rows["parameter"].to_numpy(float)
        if sp.scale == "latent":
            curves[s] = P.curve(s, x.min() - 0.3, x.max() + 0.3)
            continue
        guess = (np.log(x / (100 - x)) - 1.43) / 0.68  # the typical relation (pk2d.synth._calibrate)
        lo, hi = guess.min() - 0.35, guess.max() + 0.35
        for _ in range(8):
            c = P.curve(s, lo, hi)
            if c.values[0] < x.min() - 0.05 and c.values[-1] > x.max() + 0.05:
                break
            lo, hi = (lo - 1.0 if c.values[0] >= x.min() - 0.05 else lo), (hi + 1.0 if c.values[-1] <= x.max() + 0.05 else hi)
        else:
            raise SynthError("super-population: a village level cannot be reached by the model.",
                             fix="use levels between about 30 and 95 IKK points")
        curves[s] = c
    latent = np.empty(len(par))
    expected = np.empty(len(par))
    for s, idx in par.groupby("s").indices.items():
        x = par["parameter"].to_numpy(float)[idx]
        latent[idx] = x if sp.scale == "latent" else curves[s].inverse(x)
        expected[idx] = curves[s](latent[idx])
    info = vil.set_index("kode_desa")
    out = par.assign(latent=latent, expected=expected,
                     nama_desa=par["kode_desa"].map(info["nama_desa"]),
                     kode_kecamatan=par["kode_desa"].map(info["kode_kecamatan"]),
                     n_kk=par["kode_desa"].map(info["n_kk"]).astype(int))
    from .compare import rank_desc

    out["rank"] = 0
    for t, idx in out.groupby("putaran").indices.items():
        out.loc[out.index[idx], "rank"] = rank_desc(out["expected"].to_numpy()[idx][None, :])[0]
    mc = max(float(np.max(c.sd)) / np.sqrt(c.pool) for c in curves.values())
    r = None
    if icc:
        r = _icc(P, sp, float(np.median(latent)))
    cols = ["kode_desa", "nama_desa", "kode_kecamatan", "putaran", "tahun", "lokus", "lokus_year", "treated",
            "parameter", "latent", "expected", "rank", "n_kk"]
    return Truth(out[cols].reset_index(drop=True), curves, mc, r, int(pool), int(seed))


def _icc(P: _Pool, sp: SuperPopulation, m: float) -> float:
    """Intra-RT correlation of the family index at latent level m (one-way ANOVA estimator) on the
    pool cut into RTs of ``kk_per_rt`` families with the model's RT and family effects."""
    kk = max(2, int(round(float(sp.villages["kk_per_rt"].mean()))))
    n = len(P.z) // kk * kk
    g = np.arange(n) // kk
    rng = np.random.default_rng([P.z.size, 11])
    rt_sd = float(sp.villages["rt_sd"].mean())
    theta = np.full(len(P.z), m)
    theta[:n] += rng.normal(0, rt_sd, g.max() + 1)[g] + rng.normal(0, sp.family_sd, n)
    y = P.scores(theta)[:n]
    ok = ~np.isnan(y)
    y, g = y[ok], g[ok]
    k = np.bincount(g)
    mean_g = np.bincount(g, weights=y) / k
    grand = y.mean()
    msb = np.sum(k * (mean_g - grand) ** 2) / (len(k) - 1)
    msw = np.sum((y - mean_g[g]) ** 2) / (len(y) - len(k))
    n0 = (len(y) - np.sum(k**2) / len(y)) / (len(k) - 1)
    return float((msb - msw) / (msb + (n0 - 1) * msw))


# --------------------------------------------------------- population ---
@dataclass(frozen=True)
class Population:
    """Every family of every village and round, drawn afresh from the model.

    ``families`` and ``members`` are in the clean format (:mod:`pk2d.cleaning`'s output columns,
    ready for :func:`pk2d.score.score_families`); ``rts``: per round and RT ``putaran, kode_desa,
    rt, kode_rt, n_families, u`` (its effect); ``shocks``: per village and round the latent level
    ``m`` and the village-round shock; ``parts``: per round the generator's internal tables (for
    :func:`pk2d.synth_sample.write_raw`).
    """

    families: pd.DataFrame
    members: pd.DataFrame
    rts: pd.DataFrame
    shocks: pd.DataFrame
    parts: list = field(repr=False, compare=False, default_factory=list)


def _seq(seed) -> np.random.SeedSequence:
    return seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)


def draw_population(sp: SuperPopulation, tr: Truth, seed=0) -> Population:
    """One fresh population per round (see the module docstring); deterministic for a seed (an
    int or a sequence of ints, e.g. ``[seed, replication]``)."""
    from . import synth as S
    from .synth_export import _regions

    cfg = sp.config()
    model = S._Model(cfg["model"])
    vil = sp.villages
    nv = len(vil)
    n_rt = vil["n_rt"].to_numpy(int)
    first = np.cumsum(n_rt) - n_rt
    rt_sd = np.repeat(vil["rt_sd"].to_numpy(float), n_rt)
    latent = tr.index.set_index(["putaran", "kode_desa"])["latent"]
    streams = [np.random.default_rng(s) for s in _seq(seed).spawn(1 + 3 * len(sp.rounds))]
    regions = _regions()
    prov = sp.kode_kabupaten[:2]
    fams, mems, rts, shocks, parts = [], [], [], [], []
    u = streams[0].normal(0, rt_sd)
    rho = sp.rt_persistence
    for k, (t, year) in enumerate(zip(sp.rounds, sp.years)):
        structure, effects, draws = streams[1 + 3 * k: 4 + 3 * k]
        if k > 0:
            u = rho * u + np.sqrt(1 - rho**2) * effects.normal(0, rt_sd)
        shock = effects.normal(0, sp.village_round_sd, nv) if sp.village_round_sd > 0 else np.zeros(nv)
        m = latent.loc[t].reindex(vil["kode_desa"]).to_numpy(float)
        fam, per = _households(vil["n_kk"].to_numpy(), vil, cfg, structure, year, t)
        v = fam["v"].to_numpy()
        rtg = first[v] + fam["rt"].to_numpy() - 1
        theta = m[v] + shock[v] + u[rtg] + fam["e"].to_numpy()
        fam["kode_desa"] = pd.Categorical.from_codes(v, vil["kode_desa"])
        fam["dusun"] = None
        R = S._draws(len(fam), len(per), draws)
        famc, memc = S._answers(fam, per, theta, R, model, t)
        area = {"tahun": np.full(len(fam), year), "kode_provinsi": prov, "nama_provinsi": regions[prov],
                "kode_kabupaten": sp.kode_kabupaten, "nama_kabupaten": regions[sp.kode_kabupaten]}
        for c in ("kode_kecamatan", "nama_kecamatan", "nama_desa"):
            area[c] = vil[c].to_numpy()[v]
        head_sex = per["sex"].to_numpy()[fam["head"].to_numpy()]
        front = pd.DataFrame({"id_keluarga": famc["id_keluarga"].to_numpy(), "putaran": t, **area,
                              "kode_desa": vil["kode_desa"].to_numpy()[v], "rt": fam["rt"].to_numpy()})
        front["kode_rt"] = front["kode_desa"] + "." + pd.Series(fam["rt"].to_numpy()).astype(str).str.zfill(3)
        front["jenis_kelamin_kepala"] = np.array(["L", "P"])[head_sex]
        front["tanggal_wawancara"] = fam["date"].to_numpy().astype("datetime64[D]").astype("datetime64[ns]")
        rest = famc.drop(columns=["id_keluarga", "putaran", "kode_desa", "rt"])
        fams.append(pd.concat([front, rest.reset_index(drop=True)], axis=1))
        mems.append(memc)
        size = np.bincount(rtg, minlength=n_rt.sum())
        rts.append(pd.DataFrame({"putaran": t, "kode_desa": np.repeat(vil["kode_desa"].to_numpy(), n_rt),
                                 "rt": np.concatenate([np.arange(1, n + 1) for n in n_rt]),
                                 "n_families": size, "u": u.copy()}))
        shocks.append(pd.DataFrame({"putaran": t, "kode_desa": vil["kode_desa"], "m": m, "shock": shock}))
        parts.append({"fam": fam, "per": per, "famc": famc, "memc": memc, "putaran": t, "tahun": year})
    rts = pd.concat(rts, ignore_index=True)
    rts["kode_rt"] = rts["kode_desa"] + "." + rts["rt"].astype(str).str.zfill(3)
    return Population(pd.concat(fams, ignore_index=True), pd.concat(mems, ignore_index=True), rts,
                      pd.concat(shocks, ignore_index=True), parts)
