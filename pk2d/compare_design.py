"""The design every comparison uses, one for models and bootstrap alike.

* **Sample** (families carry weights ``bobot``): the survey design of the contract's columns
  (:func:`pk2d.design.design_from_scores`); several rounds are independent samples, so each
  round's strata and PSUs are kept apart. Differences are weighted regressions with the design's
  variance (R's ``svyglm``).
* **Census** (a desa lokus surveyed in full): a model-based view: families are draws from the
  process behind their village, correlated within their RT; the "design" is RT clusters with
  weight 1, stratified by village (the villages are given, not sampled: each village's RTs are
  its own clusters, with its own ``n/(n-1)``), without a finite population correction (the
  process, not the families counted, is what a comparison is about).

Intervals use Student's t with the design's degrees of freedom (clusters minus strata, minus the
coefficients beyond one: R's ``svyglm`` residual df), never the normal quantile: a village has
6-12 RTs; a contrast of one village against the rest takes the df of the smaller side
(:func:`few_clusters`). Rank intervals come from a Rao-Wu rescaling bootstrap of the SAME clusters (in each
stratum ``n_h - 1`` clusters drawn with replacement, weights times ``n_h / (n_h - 1)``), whose
variance equals the with-replacement linearised one of those clusters.

>>> import pandas as pd
>>> f = pd.DataFrame({"putaran": [1] * 4, "kode_desa": "d", "kode_rt": ["a", "a", "b", "c"],
...                   "indeks": [1.0, 2.0, 3.0, 4.0]})
>>> model_design(f)
Design(4 rows; 1 stage: kode_rt (3 units); strata kode_desa; weights 1; lonely_psu adjust)
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse, stats

from .design import DESIGN_COLUMNS, Design, design_from_scores

__all__ = ["model_design", "design_diff", "few_clusters", "cluster_bootstrap_means", "is_sample"]


def is_sample(frame: pd.DataFrame) -> bool:
    """Do the families carry sampling weights?"""
    w = DESIGN_COLUMNS["weights"]
    return w in frame.columns and bool(frame[w].notna().any())


def model_design(frame: pd.DataFrame) -> Design:
    """The design of a comparison over ``frame`` (one or several rounds): see the module docstring."""
    if is_sample(frame):
        rounds = frame["putaran"].astype(str) if "putaran" in frame else pd.Series("1", index=frame.index)
        f = frame.copy()
        f[DESIGN_COLUMNS["strata"]] = rounds + "|" + (frame[DESIGN_COLUMNS["strata"]].astype(str)
                                                      if DESIGN_COLUMNS["strata"] in frame else "")
        psu = DESIGN_COLUMNS["ids"][0]
        if psu in frame and frame[psu].notna().any():
            f[psu] = rounds + "|" + frame[psu].astype(str)
        return design_from_scores(f, "sample", lonely_psu="adjust")
    return Design(frame, ids="kode_rt", strata="kode_desa", lonely_psu="adjust")


def design_diff(design: Design, y: np.ndarray, x: np.ndarray, *, level: float = 0.95) -> dict:
    """``y ~ 1 + x`` on the design (rows with NaN ``y`` leave the fit, not the design).

    Returns the coefficient of ``x`` (the difference x=1 minus x=0) with ``se``, a t interval,
    ``p`` and ``df``, and the row counts.
    """
    n1 = int(np.sum((x == 1) & ~np.isnan(y)))
    n0 = int(np.sum((x == 0) & ~np.isnan(y)))
    empty = {"diff": np.nan, "se": np.nan, "ci_low": np.nan, "ci_high": np.nan, "p": np.nan, "df": np.nan,
             "n_focus": n1, "n_ref": n0}
    if n1 < 2 or n0 < 2:
        return empty
    data = pd.DataFrame({"__y": y, "__x": x})
    fit = design.with_data(data).regress("__y", ["__x"], level=level)
    r = few_clusters(design, fit.iloc[1], x == 1, ~np.isnan(y), level)
    if not r["df"] >= 1:
        return empty
    return {"diff": r["estimate"], "se": r["se"], "ci_low": r["ci_low"], "ci_high": r["ci_high"], "p": r["p"],
            "df": r["df"], "n_focus": n1, "n_ref": n0}


def few_clusters(design: Design, coef: pd.Series, treated: np.ndarray, valid: np.ndarray, level: float) -> dict:
    """A coefficient's interval with the few-treated-clusters correction.

    A contrast between a group and the rest rests on the clusters of the SMALLER side: with one
    desa lokus of 10 RTs against 130 other RTs, a cluster-robust SE behaves like an estimate from
    10 clusters, not 140. The degrees of freedom are ``min(design residual df, G_small - 1)``
    with ``G_small`` the units of the smaller side at the village stage (:func:`_village_stage`: RTs
    in a census and when villages are PSUs) (measured by simulation: ``benchmarks/coverage.py``).
    """
    # the clusters the contrast rests on: the village stage of the bootstrap (RTs in a census; in
    # a sample with villages as PSUs, the RTs of the village)
    st = design.stages[_village_stage(design)]
    g1 = len(np.unique(st.unit[treated & valid]))
    g0 = len(np.unique(st.unit[~treated & valid]))
    df = float(min(coef["df"], min(g1, g0) - 1))
    est, se = float(coef["estimate"]), float(coef["se"])
    if not df >= 1 or not np.isfinite(se):
        return {"estimate": est, "se": se, "ci_low": np.nan, "ci_high": np.nan, "p": np.nan, "df": df}
    t = stats.t.ppf(0.5 + level / 2, df)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = float(2 * stats.t.sf(abs(est / se), df)) if se > 0 else (0.0 if est != 0 else 1.0)
    return {"estimate": est, "se": se, "ci_low": est - t * se, "ci_high": est + t * se, "p": p, "df": df}


def _clusters(design: Design, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Cluster and stratum of every row for the bootstrap: the units the variance rests on.

    Census: RT within village (the village is the stratum, so every village keeps its RTs).
    Sample: the first stage whose units lie inside one village, two or more per village (the RTs
    when villages are PSUs, the PSUs when they are RTs), resampled within stratum and village.
    """
    village = pd.factorize(frame["kode_desa"])[0]
    if design.census or not is_sample(frame):
        return pd.factorize(frame["kode_rt"])[0], village
    # a sample: the village stage, resampled within (stratum, village): the village is given, as
    # in the conditional village estimates
    st = design.stages[_village_stage(design)]
    return st.unit, pd.factorize(pd.MultiIndex.from_arrays([st.stratum, village]))[0]


def _village_stage(design: Design) -> int:
    """The first stage whose units lie inside one village each, two or more per village and round
    (0 when the data name no villages or no stage qualifies)."""
    cached = design.__dict__.get("_village_stage")
    if cached is not None:
        return cached
    stage = 0
    if "kode_desa" in design.data.columns:
        # a village within one round (several rounds of a sample are separate samples)
        keys = [design.data["kode_desa"]] + ([design.data["putaran"]] if "putaran" in design.data.columns else [])
        village = pd.factorize(pd.MultiIndex.from_arrays(keys) if len(keys) > 1 else keys[0])[0]
        for s, st in enumerate(design.stages):
            nested = (pd.Series(village).groupby(st.unit).nunique() == 1).all()
            if nested and pd.Series(st.unit).groupby(village).nunique().min() >= 2:
                stage = s
                break
    design.__dict__["_village_stage"] = stage  # same rows, same answer (with_data keeps it)
    return stage


def cluster_bootstrap_means(design: Design, frame: pd.DataFrame, y: np.ndarray, group: np.ndarray, *,
                            n_boot: int = 999, seed: int = 1) -> np.ndarray:
    """Rao-Wu bootstrap replicates (n_boot x groups) of the weighted means of ``y`` per group.

    Rows with NaN ``y`` leave the means. A stratum with a single cluster keeps it (weight 1) in
    every replicate: its variability cannot be resampled (the linearised SE says so too).
    """
    cluster, stratum = _clusters(design, frame)
    n_groups = int(group.max()) + 1
    ok = ~np.isnan(y)
    w = np.where(ok, design.weights, 0.0)
    yy = np.where(ok, y, 0.0)
    n_cl = int(cluster.max()) + 1
    cells = sparse.csr_matrix((w, (cluster, group)), shape=(n_cl, n_groups))
    cells_y = sparse.csr_matrix((w * yy, (cluster, group)), shape=(n_cl, n_groups))
    stratum_of = np.zeros(n_cl, dtype=np.int64)
    stratum_of[cluster] = stratum
    rng = np.random.default_rng(seed)
    mult = np.empty((n_boot, n_cl))
    for h in np.unique(stratum_of):
        members = np.flatnonzero(stratum_of == h)
        nh = len(members)
        if nh == 1:
            mult[:, members] = 1.0
            continue
        counts = rng.multinomial(nh - 1, np.full(nh, 1.0 / nh), size=n_boot)
        mult[:, members] = counts * nh / (nh - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(cells_y.T @ mult.T).T / np.asarray(cells.T @ mult.T).T
