"""Coverage of pk2d's 95 % intervals, measured on the synthetic super-population.

    .venv/bin/python benchmarks/coverage.py                              # 500 replications, both modes
    .venv/bin/python benchmarks/coverage.py --reps 50 --mode census --jobs 2 --out /tmp/cov.csv

Each replication draws the rounds of one kabupaten afresh from :mod:`pk2d.synth_superpop`
(villages with fixed true levels, fresh RT effects, families and answers every round, a common
trend and a planted programme effect for the desa lokus), scores the families with pk2d's own
:func:`pk2d.score.score_families`, computes pk2d's intervals and records whether each covers its
truth (computed once, before the replications, by :func:`pk2d.synth_superpop.truth`):

* census mode (every family of every village observed):
  - village index: the league-table interval of :func:`pk2d.compare.league_table`; truth = the
    village's expected index under the model in that round;
  - rank: the league table's rank interval; truth = the rank of the expected index (share of
    villages whose true rank lies inside their interval);
  - change between rounds 1 and 2 (:func:`pk2d.compare.change_over_rounds`, the index row);
    truth = the change of the expected index;
  - difference-in-differences of each desa lokus (:func:`pk2d.compare.difference_in_differences`,
    the comparisons of :func:`pk2d.compare_stage.evaluations`); truth = the model's DiD (the
    planted effect: the model has parallel trends on the index scale).
* sample mode (a stratified three-stage sample of the same kind of population: kecamatan strata,
  2 villages per kecamatan, the desa lokus self-representing; 4 RTs per village, 8 families per RT):
  - village index as a domain, design-based (:func:`village_domain`, one function for every
    engine): the pipeline's own :func:`pk2d.areas.estimate_areas`; ``pk2d.design.Design`` with all
    three stages (when it imports); :func:`pk2d.survey.survey_mean` with ``psu`` = the village and
    with the RT as the PSU. Truth = the village's finite-population mean in that round (what a
    design-based interval targets) and, on separate rows, the model's expected index;
  - the league table's interval and rank interval among the sampled villages, change and DiD
    as in census mode, on the weighted sample.

Prints the coverage table (observed coverage, its Monte-Carlo standard error over replications,
mean width, mean bias, and the ratio of the reported SE to the SD of the estimate over
replications) and the wall time, and writes the table as CSV (``--out``; a temporary file by
default). Nothing here is a test: no coverage is asserted anywhere.
"""
from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one thread per worker
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import multiprocessing as mp  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pk2d import compare as cp  # noqa: E402
from pk2d import compare_stage  # noqa: E402,F401  (imported before the workers fork: one code version)
from pk2d import synth_sample as SS, synth_superpop as SP  # noqa: E402
from pk2d.areas import estimate_areas  # noqa: E402
from pk2d.catalogue import load_catalogue  # noqa: E402
from pk2d.survey import survey_mean  # noqa: E402

LEVEL = 0.95
#: the sample design of sample mode
DESIGN = SS.SampleDesign(villages_per_stratum=2, rts_per_village=4, families_per_rt=8, lokus_certain=True)
_STATE: dict = {}


# --------------------------------------------------------------- design engine ---
def design_engine():
    """``pk2d.design.Design`` when it exists and imports, else None (and the reason)."""
    try:
        from pk2d.design import Design  # noqa: PLC0415
    except Exception as exc:  # noqa: BLE001 (absent or broken: measure the others)
        return None, f"{type(exc).__name__}: {exc}"
    return Design, ""


ENGINES = {
    "areas": "estimate_areas (pipeline design)",
    "design3": "Design, 3 stages with fpc",
    "survey_psu": "survey_mean (psu = village)",
    "survey_ssu": "survey_mean (psu = RT)",
}


def village_domain(scores: pd.DataFrame, engine: str) -> pd.DataFrame:
    """Design-based interval of every village as a domain of the whole sample design, one round.

    The one place that knows the design engines:

    * ``"areas"``: what the pipeline reports, :func:`pk2d.areas.estimate_areas` at the desa level
      (the design it builds from the contract's columns: with ``pk2d.design``,
      ``design_from_scores`` = ``bobot``, ``strata``, ``psu`` + ``ssu``, ``populasi_psu`` +
      ``populasi_ssu``);
    * ``"design3"``: ``pk2d.design.Design`` declared with all three stages,
      ``ids=[psu, ssu, id_keluarga]``, ``fpc=[populasi_psu, populasi_ssu, populasi_keluarga]``;
    * ``"survey_psu"``: :func:`pk2d.survey.survey_mean` with weight, strata and the design's PSU (the
      village): one stage, with replacement;
    * ``"survey_ssu"``: the same with the RT as the PSU (RTs as ultimate clusters).

    Returns ``kode_desa, estimate, se, ci_low, ci_high``.
    """
    cols = ["kode_desa", "estimate", "se", "ci_low", "ci_high"]
    if engine == "areas" and _STATE.get("fast_areas"):
        # the index rows of estimate_areas, computed alone (checked identical by check_shortcuts)
        from pk2d.design import design_from_scores  # noqa: PLC0415

        res = design_from_scores(scores, "auto").mean("indeks", by="kode_desa", level=LEVEL)
        return res[cols]
    if engine == "areas":
        a = estimate_areas(scores, _STATE.get("cat", "ikk"), levels=("desa",), level=LEVEL).areas
        return a.rename(columns={"code": "kode_desa", "index": "estimate"})[cols]
    if engine == "design3":
        Design, why = design_engine()
        if Design is None:
            raise RuntimeError(why)
        ids, fpc = zip(*SP.STAGES)
        res = Design(scores, ids=list(ids), strata="strata", weights="bobot", fpc=list(fpc)).mean(
            "indeks", by="kode_desa", level=LEVEL)
        return pd.DataFrame(res)[cols]
    psu = {"survey_psu": "psu", "survey_ssu": "ssu"}[engine]
    res = survey_mean(scores, "indeks", by="kode_desa", weight="bobot", strata="strata", psu=psu,
                      level=LEVEL, lonely_psu="adjust")
    return res[cols]


# --------------------------------------------------------------- one replication ---
def _rec(out, **kw):
    out.append(kw)


class FinitePopulation:
    """The truths a design-based interval targets: the values of the drawn population itself
    (every family of every village, scored by pk2d), for one replication of sample mode."""

    def __init__(self, pop_scores: pd.DataFrame, truth: SP.Truth):
        self.s = pop_scores
        self.mean = pop_scores.groupby(["putaran", "kode_desa"])["indeks"].mean()
        self.controls = {(e["focus"], e["before"], e["after"]): e["controls"] for e in truth.evaluations()}

    def expected(self):
        return self.mean

    def change(self, before, after):
        m = self.mean.unstack(0)
        return m[after] - m[before]

    def ranks(self, t, villages):
        e = self.mean.loc[t].loc[list(villages)]
        return pd.Series(cp.rank_desc(e.to_numpy()[None, :])[0], index=e.index)

    def did(self, focus, before, after, controls):
        """Focus change minus the change of the pooled families of every comparison village of the
        population (the villages the sample's weighted comparison villages stand for)."""
        pool = self.controls[(focus, before, after)]
        c = self.s[self.s["kode_desa"].isin(pool)].groupby("putaran")["indeks"].mean()
        return float((self.mean[(after, focus)] - self.mean[(before, focus)]) - (c[after] - c[before]))


def _truths(truth, fp):
    return [("model", truth)] + ([("finite population", fp)] if fp is not None else [])


def _league(out, scores, truth, mode, rep, seed, villages, n_boot, cat, fp=None):
    for t in sorted(scores["putaran"].unique()):
        t = int(t)
        lt = cp.league_table(scores, cat, round=t, n_boot=n_boot, seed=[seed, rep, t, 1], level=LEVEL)
        se = lt["se"] if "se" in lt else lt["boot_se"]  # the SE the interval is built from
        codes = lt["code"].tolist()
        for label, tr in _truths(truth, fp):
            e = tr.expected().loc[t]
            rk = tr.ranks(t, codes if villages is not None else e.index)
            for r, s_ in zip(lt.itertuples(index=False), se):
                _rec(out, mode=mode, kind="village index", method="league_table", truth=label,
                     rep=rep, unit=f"{r.code}/{t}", estimate=r.index, se=s_, lo=r.ci_low, hi=r.ci_high,
                     true=e[r.code])
                _rec(out, mode=mode, kind="rank", method="league_table", truth=label, rep=rep,
                     unit=f"{r.code}/{t}", estimate=r.rank, se=np.nan, lo=r.rank_low, hi=r.rank_high,
                     true=rk[r.code])


def change_index(scores: pd.DataFrame, cat, *, fast: bool | None = None) -> pd.DataFrame:
    """The index rows of :func:`pk2d.compare.change_over_rounds` (rounds 1 -> 2).

    ``fast``: the dimension and indicator columns are blanked (NaN) first, so that their
    regressions stop at once and only the index's runs; every component is its own regression on
    the same design, so the index rows are the same (:func:`check_shortcuts` checks it).
    """
    fast = _STATE.get("fast_change", False) if fast is None else fast
    if fast:
        blank = [i.id for i in cat.indicators] + [f"dim_{d.id}" for d in cat.dimensions]
        scores = scores.assign(**{c: np.nan for c in blank})
    ch = cp.change_over_rounds(scores, cat, before=1, after=2, level=LEVEL)
    return ch[ch["component_type"] == "index"].reset_index(drop=True)


def check_shortcuts(sp, tr, cat) -> str:
    """Run the full pk2d functions and the shortcuts on one census and one sample draw; use a
    shortcut only where its numbers are identical."""
    pop = SP.draw_population(sp, tr, seed=[0, 0])
    census = SS.score(pop.families, pop.members, cat)
    sample = SS.draw_sample(pop, sp, DESIGN, seed=[0, 1])
    sample = SS.score(sample.families, sample.members, cat)
    num = ["change", "se", "ci_low", "ci_high"]
    ok_change = all(np.allclose(change_index(s, cat, fast=False)[num], change_index(s, cat, fast=True)[num],
                                rtol=1e-12, atol=1e-12, equal_nan=True) for s in (census, sample))
    ok_areas = False
    try:
        _STATE["fast_areas"] = False
        full = village_domain(sample[sample["putaran"] == 1], "areas").sort_values("kode_desa")
        _STATE["fast_areas"] = True
        fast = village_domain(sample[sample["putaran"] == 1], "areas").sort_values("kode_desa")
        ok_areas = np.allclose(full.iloc[:, 1:], fast.iloc[:, 1:], rtol=1e-12, atol=1e-12, equal_nan=True)
    except Exception:  # noqa: BLE001 (no pk2d.design.design_from_scores: the full call)
        ok_areas = False
    _STATE["fast_change"], _STATE["fast_areas"] = ok_change, ok_areas
    return (f"shortcuts: change_over_rounds index rows alone {'identical, used' if ok_change else 'differ, full calls'}; "
            f"estimate_areas desa index alone {'identical, used' if ok_areas else 'differ, full calls'}")


def _change_and_did(out, scores, truth, mode, rep, villages, cat, fp=None):
    ch = change_index(scores, cat)
    evs = truth.evaluations(villages)
    dids = []
    for ev in evs:
        pair = scores[scores["putaran"].isin([ev["before"], ev["after"]])
                      & scores["kode_desa"].isin([ev["focus"], *ev["controls"]])]
        dids.append(cp.difference_in_differences(pair, focus=ev["focus"], before=ev["before"], after=ev["after"],
                                                 level=LEVEL))
    for label, tr in _truths(truth, fp):
        true = tr.change(1, 2)
        for r in ch.itertuples(index=False):
            _rec(out, mode=mode, kind="change r1->r2", method="change_over_rounds", truth=label, rep=rep,
                 unit=r.kode_desa, estimate=r.change, se=r.se, lo=r.ci_low, hi=r.ci_high, true=true[r.kode_desa])
        for ev, d in zip(evs, dids):
            _rec(out, mode=mode, kind="DiD (desa lokus)", method="difference_in_differences", truth=label, rep=rep,
                 unit=f"{ev['focus']}/{ev['before']}->{ev['after']}", estimate=d["estimate"], se=d["se"],
                 lo=d["ci_low"], hi=d["ci_high"], true=tr.did(ev["focus"], ev["before"], ev["after"], ev["controls"]),
                 df=d.get("df", np.nan))


def census_rep(rep: int) -> list[dict]:
    """Census mode: every family of every village; truths of the model (a census has no sampling
    error, so its finite-population values are the estimates themselves)."""
    sp, tr, a, cat = _STATE["sp"], _STATE["truth"], _STATE["args"], _STATE["cat"]
    pop = SP.draw_population(sp, tr, seed=[a.seed, 1, rep])
    scores = SS.score(pop.families, pop.members, cat)
    out: list[dict] = []
    _league(out, scores, tr, "census", rep, a.seed, None, a.n_boot, cat)
    _change_and_did(out, scores, tr, "census", rep, None, cat)
    return out


def sample_rep(rep: int) -> list[dict]:
    """Sample mode: a three-stage sample of a fresh population; truths of the model and of the
    drawn population (the finite-population values a design-based interval targets)."""
    sp, tr, a, cat = _STATE["sp"], _STATE["truth"], _STATE["args"], _STATE["cat"]
    pop = SP.draw_population(sp, tr, seed=[a.seed, 2, rep])
    sample = SS.draw_sample(pop, sp, DESIGN, seed=[a.seed, 2, rep, 1])
    fp = FinitePopulation(SS.score(pop.families, pop.members, cat), tr)
    scores = SS.score(sample.families, sample.members, cat)
    chosen = sample.villages.loc[sample.villages["selected"], "kode_desa"].tolist()
    out: list[dict] = []
    for engine in _STATE["engines"]:
        label = ENGINES[engine]
        for t in sorted(scores["putaran"].unique()):
            try:
                res = village_domain(scores[scores["putaran"] == t], engine)
            except Exception as exc:  # noqa: BLE001 (a failing engine is reported, not fatal)
                _rec(out, mode="sample", kind="village index", method=label, truth="finite population", rep=rep,
                     unit=f"error/{t}", estimate=np.nan, se=np.nan, lo=np.nan, hi=np.nan, true=np.nan,
                     error=f"{type(exc).__name__}: {exc}"[:200])
                continue
            for r in res.itertuples(index=False):
                for kind, truth_ in _truths(tr, fp):
                    _rec(out, mode="sample", kind="village index", method=label, truth=kind, rep=rep,
                         unit=f"{r.kode_desa}/{t}", estimate=r.estimate, se=r.se, lo=r.ci_low, hi=r.ci_high,
                         true=truth_.expected()[(t, r.kode_desa)])
    _league(out, scores, tr, "sample", rep, a.seed, chosen, a.n_boot, cat, fp)
    _change_and_did(out, scores, tr, "sample", rep, chosen, cat, fp)
    return out


def _run(task):
    mode, rep = task
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return (census_rep if mode == "census" else sample_rep)(rep)


def _init(state):
    _STATE.update(state)
    _STATE["cat"] = load_catalogue("ikk")


# --------------------------------------------------------------- summary ---
def summarise(rec: pd.DataFrame) -> pd.DataFrame:
    """One row per interval kind, mode, method and truth: coverage with its Monte-Carlo SE (over
    replications: the units of one replication are not independent), mean width, mean bias, and
    ``se_over_sd`` = RMS of the reported SE / SD of (estimate - truth) over replications, per unit,
    averaged over units (1 = the SE is right). ``failed``: intervals that came out undefined (NaN)."""
    rows = []
    keys = ["kind", "mode", "method", "truth"]
    for key, g in rec.groupby(keys, sort=False):
        ok = g[["lo", "hi", "true"]].notna().all(axis=1)
        gg = g[ok].assign(covered=lambda d: (d["lo"] <= d["true"]) & (d["true"] <= d["hi"]))
        per_rep = gg.groupby("rep")["covered"].mean()
        R = per_rep.size
        err = gg.assign(err=gg["estimate"] - gg["true"]).groupby("unit")
        sd = err["err"].std()  # the true SE of each interval's estimator around its truth
        rms_se = np.sqrt(err["se"].apply(lambda x: np.mean(np.square(x))))
        ratio = (rms_se / sd).replace([np.inf, -np.inf], np.nan).mean() if gg["se"].notna().any() else np.nan
        rows.append(dict(zip(keys, key)) | {
            "replications": R, "intervals": int(len(gg)), "failed": int((~ok).sum()), "nominal": LEVEL,
            "coverage": gg["covered"].mean() if len(gg) else np.nan,
            "mc_se": per_rep.std(ddof=1) / np.sqrt(R) if R > 1 else np.nan,
            "mean_width": (gg["hi"] - gg["lo"]).mean(), "mean_bias": (gg["estimate"] - gg["true"]).mean(),
            "se_over_sd": ratio})
    return pd.DataFrame(rows)


def print_table(tab: pd.DataFrame) -> None:
    print(f"\n{'interval':<17} {'mode':<6} {'method':<33} {'truth':<17} {'reps':>4} {'n':>6} {'NaN':>5} "
          f"{'nominal':>7} {'coverage':>8} {'(MC SE)':>7} {'width':>6} {'bias':>6} {'SE/SD':>5}")
    for r in tab.itertuples(index=False):
        cov = "   -" if np.isnan(r.coverage) else f"{r.coverage:>8.1%}"
        mc = "" if np.isnan(r.mc_se) else f"{r.mc_se:.1%}"
        print(f"{r.kind:<17} {r.mode:<6} {r.method:<33} {r.truth:<17} {r.replications:>4} {r.intervals:>6} "
              f"{r.failed:>5} {r.nominal:>7.0%} {cov:>8} {mc:>7} {r.mean_width:>6.2f} {r.mean_bias:>6.2f} "
              f"{r.se_over_sd:>5.2f}")


def code_versions() -> str:
    """sha256 (12 hex digits) of the pk2d files whose intervals are measured: they change in parallel."""
    import hashlib  # noqa: PLC0415

    names = ("compare.py", "compare_design.py", "design.py", "survey.py", "areas.py", "estimators.py",
             "synth_superpop.py")
    return " ".join(f"{n}:{hashlib.sha256((ROOT / 'pk2d' / n).read_bytes()).hexdigest()[:12]}"
                    for n in names if (ROOT / "pk2d" / n).is_file())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=500)
    ap.add_argument("--mode", choices=("census", "sample", "both"), default="both")
    ap.add_argument("--seed", type=int, default=20240710)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--n-boot", type=int, default=999, help="league-table bootstrap replicates (pk2d's default 999)")
    ap.add_argument("--pool", type=int, default=SP.DEFAULT_POOL, help="families of the Monte-Carlo truth pool")
    ap.add_argument("--village-round-sd", type=float, default=0.0,
                    help="SD (logit) of a village-by-round shock (default 0: none; see pk2d.synth_superpop)")
    ap.add_argument("--rt-persistence", type=float, default=0.0, help="AR(1) correlation of RT effects across rounds")
    ap.add_argument("--out", type=Path, default=None, help="CSV of the coverage table (default: a temporary file)")
    ap.add_argument("--records", type=Path, default=None, help="also write every interval (CSV)")
    a = ap.parse_args(argv)
    clock = time.perf_counter()
    code = code_versions()
    sp = SP.example(village_round_sd=a.village_round_sd, rt_persistence=a.rt_persistence)
    tr = SP.truth(sp, pool=a.pool)
    t_truth = time.perf_counter() - clock
    Design, why = design_engine()
    engines = ["areas"] + (["design3"] if Design is not None else []) + ["survey_psu", "survey_ssu"]
    print(f"super-population: {len(sp.villages)} villages, {int(sp.villages['n_rt'].sum())} RTs, "
          f"{int(sp.villages['n_kk'].sum())} families per round, rounds {sp.years}, trend {sp.trend} points, "
          f"desa lokus {[(c, y, e) for c, y, e in sp.lokus]}; RT SD {sp.rt_sd}, family SD {sp.family_sd}, village-round "
          f"SD {sp.village_round_sd} (logit), RT persistence {sp.rt_persistence}; "
          f"implied intra-RT correlation of the index {tr.icc:.3f}; truth MC SE <= {tr.mc_se:.3f} points "
          f"({tr.pool:,} families, {t_truth:.0f} s)")
    print(f"sample design: {DESIGN}; design engine: "
          f"{'pk2d.design.Design' if Design is not None else 'pk2d.design not available (' + why + ')'}")
    modes = ["census", "sample"] if a.mode == "both" else [a.mode]
    tasks = [(m, r) for r in range(a.reps) for m in modes]
    _init({"sp": sp, "truth": tr, "args": a, "engines": engines})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        print(check_shortcuts(sp, tr, _STATE["cat"]))
    state = {k: _STATE[k] for k in ("sp", "truth", "args", "engines", "fast_change", "fast_areas")}
    records: list[dict] = []
    done = 0
    if a.jobs > 1:
        with mp.get_context("fork").Pool(a.jobs, initializer=_init, initargs=(state,)) as pool:
            for res in pool.imap_unordered(_run, tasks, chunksize=2):
                records += res
                done += 1
                if done % max(1, len(tasks) // 10) == 0:
                    print(f"  {done}/{len(tasks)} replications, {time.perf_counter() - clock:.0f} s", flush=True)
    else:
        for task in tasks:
            records += _run(task)
            done += 1
            if done % max(1, len(tasks) // 10) == 0:
                print(f"  {done}/{len(tasks)} replications, {time.perf_counter() - clock:.0f} s", flush=True)
    rec = pd.DataFrame(records)
    if "error" in rec and rec["error"].notna().any():
        for (method, msg), n in rec.groupby(["method", "error"]).size().items():
            print(f"  {method}: {n} rounds failed: {msg}")
    tab = summarise(rec)
    tab["n_boot"], tab["seed"], tab["code"] = a.n_boot, a.seed, code
    if code_versions() != code:
        print("WARNING: pk2d files changed during the run; the workers use the versions imported at the start")
    print_table(tab)
    out = a.out or Path(tempfile.mkdtemp(prefix="pk2d-coverage-")) / "coverage.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    tab.to_csv(out, index=False)
    if a.records:
        rec.to_csv(a.records, index=False)
    wall = time.perf_counter() - clock
    print(f"\nn_boot {a.n_boot}, seed {a.seed}, jobs {a.jobs}; code measured: {code}")
    print(f"coverage table written to {out}")
    print(f"wall time {wall:.0f} s ({wall / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
