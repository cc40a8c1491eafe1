"""Statistical audit of the index (what COINr does, for IKK): reliability,
structure, and uncertainty/sensitivity over the method choices the official
documents leave open.

>>> import pandas as pd
>>> round(cronbach_alpha(pd.DataFrame({"a": [1, 0, 1, 1], "b": [1, 0, 1, 0], "c": [1, 0, 0, 1]})), 4)
0.6316
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from types import MappingProxyType

import numpy as np
import pandas as pd

from .areas import composite_from_shares
from .catalogue import Catalogue, load_catalogue
from .compare import rank_desc
from .score import aggregate, categorize

PUBLISHED_ALPHA = 0.50  # Puspitawati et al., IKK 2021 provinces
NEAR_CONSTANT = 0.95  # share met above this (or below 1 - this) barely varies
DUPLICATE_R = 0.90


def cronbach_alpha(items: pd.DataFrame) -> float:
    """Cronbach's alpha from the (pairwise-complete) covariance matrix.

    ``alpha = k/(k-1) * (1 - sum(var_i) / sum(cov_ij over all i, j))``.
    """
    cov = items.astype("float64").cov()
    k = cov.shape[0]
    if k < 2:
        return float("nan")
    total = cov.to_numpy().sum()
    return float(k / (k - 1) * (1 - np.trace(cov.to_numpy()) / total)) if total > 0 else float("nan")


def reliability(scores: pd.DataFrame, catalogue: Catalogue | str = "ikk") -> pd.DataFrame:
    """Cronbach's alpha per dimension and overall, with the published IKK figure for comparison."""
    cat = load_catalogue(catalogue)
    x = scores[[i.id for i in cat.indicators]].astype("float64")
    rows = [{"scope": d.id, "name": d.name_id, "k": len(cat.indicators_of(d.id)),
             "alpha": cronbach_alpha(x[[i.id for i in cat.indicators_of(d.id)]])} for d in cat.dimensions]
    rows.append({"scope": "overall", "name": cat.name_id, "k": len(cat.indicators), "alpha": cronbach_alpha(x)})
    out = pd.DataFrame(rows)
    out["published_alpha"] = np.where(out["scope"] == "overall", PUBLISHED_ALPHA if cat.id == "ikk" else np.nan, np.nan)
    return out


def structure(scores: pd.DataFrame, catalogue: Catalogue | str = "ikk") -> dict[str, pd.DataFrame]:
    """Indicator statistics, correlations, PCA summary and flags.

    Returns ``indicators`` (share met, n, correlation with own dimension and
    with the index, flags), ``correlations`` (indicator x indicator, pairwise)
    and ``pca`` (eigenvalues and variance explained of the correlation matrix).
    """
    cat = load_catalogue(catalogue)
    ids = [i.id for i in cat.indicators]
    x = scores[ids].astype("float64")
    corr = x.corr()
    rows = []
    for ind in cat.indicators:
        v = x[ind.id]
        share = v.mean()
        r_dim = v.corr(scores[f"dim_{ind.dimension}"])
        r_idx = v.corr(scores["indeks"])
        others = corr[ind.id].drop(ind.id).abs()
        dup = others[others > DUPLICATE_R]
        flags = []
        if np.isnan(share) or v.notna().sum() < 30:
            flags.append("n<30")
        elif share > NEAR_CONSTANT or share < 1 - NEAR_CONSTANT:
            flags.append("hampir konstan / barely varies")
        if not dup.empty:
            flags.append("duplikat / duplicates " + ",".join(dup.index))
        if r_dim is not None and not np.isnan(r_dim) and r_dim < 0:
            flags.append("korelasi negatif dengan dimensi / negative with its dimension")
        rows.append({"indicator": ind.id, "name": ind.name_id, "dimension": ind.dimension,
                     "n_applicable": int(v.notna().sum()), "share_met": 100 * share, "r_dimension": r_dim,
                     "r_index": r_idx, "flags": "; ".join(flags)})
    c = corr.fillna(0.0).to_numpy(copy=True)
    np.fill_diagonal(c, 1.0)
    ev, vec = np.linalg.eigh(c)
    order = ev.argsort()[::-1]
    ev, vec = ev[order], vec[:, order]
    pca = pd.DataFrame({"component": np.arange(1, len(ev) + 1), "eigenvalue": ev,
                        "variance_share": ev / ev.sum(), "cumulative": np.cumsum(ev) / ev.sum()})
    loadings = pd.DataFrame(vec[:, :3] * np.sqrt(np.maximum(ev[:3], 0)), index=ids, columns=["PC1", "PC2", "PC3"])
    return {"indicators": pd.DataFrame(rows), "correlations": corr, "pca": pca, "loadings": loadings}


# --- uncertainty and sensitivity ------------------------------------------------------------
@dataclass(frozen=True)
class SensitivityResult:
    summary: pd.DataFrame  # one row per village
    runs: pd.DataFrame  # one row per run and village
    drivers: pd.DataFrame  # per method choice: mean index shift and share of categories kept
    settings: dict


def _village_index(x, applies, g, n_groups, cat, order, na_rule):
    if na_rule != "reweight":  # as pk2d.score.effective_values: missing answers stay NaN
        x = np.where(applies, x, 0.0 if na_rule == "zero" else 1.0)
    if order == "family_first":
        _, comp = aggregate(x, cat)
        ok = ~np.isnan(comp)
        return np.bincount(g[ok], weights=comp[ok], minlength=n_groups) / np.bincount(g[ok], minlength=n_groups)
    present = ~np.isnan(x)
    A = np.stack([np.bincount(g, weights=present[:, k], minlength=n_groups) for k in range(x.shape[1])], 1)
    S = np.stack([np.bincount(g, weights=np.where(present[:, k], x[:, k], 0.0), minlength=n_groups)
                  for k in range(x.shape[1])], 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        R = S / A
    est, _ = composite_from_shares(cat, A, R)
    return 100 * est


def sensitivity(scores: pd.DataFrame, catalogue: Catalogue | str = "ikk", *, round: int = 1, n_runs: int = 500,
                seed: int = 20240710, weight_spread: float = 0.25,
                cut_bands: dict | None = None) -> SensitivityResult:
    """Monte Carlo over the open method choices; distribution of each village's index and rank.

    Each run draws: dimension weights (each nominal weight times U(1 -
    ``weight_spread``, 1 + ``weight_spread``), renormalised); arithmetic or
    geometric aggregation (1/2 each); family-first or indicator-first (1/2
    each); the not-applicable rule (reweight 1/2, zero 1/4, full 1/4); and the
    area cut-offs, each uniform within its band (default for IKK: the
    category-2 bound in [45, 55], the category-3 bound in (73.98, 76.80], the
    range every published figure allows; for other cut-offs, each bound +/- 5). ``category_robustness`` is the
    share of runs in which a village keeps its nominal category.
    """
    cat = load_catalogue(catalogue)
    s = scores[scores["putaran"] == round].reset_index(drop=True)
    g, villages = pd.factorize(s["kode_desa"])
    ids = [i.id for i in cat.indicators]
    x = s[ids].astype("float64").to_numpy(na_value=np.nan)
    applies = s[[f"berlaku_{i}" for i in ids]].to_numpy(dtype=bool)
    cats = cat.categories["area"]
    default_ikk = cat.id == "ikk" and [c.lower for c in cats] == [0.0, 50.0, 75.0]
    bands = cut_bands or ({2: (45.0, 55.0), 3: (73.98 + 1e-6, 76.80)} if default_ikk
                          else {c.code: (c.lower - 5, c.lower + 5) for c in cats[1:]})
    rng = np.random.default_rng(seed)
    nominal = _village_index(x, applies, g, len(villages), cat, cat.settings["aggregation_order"],
                             cat.settings["not_applicable"])
    nominal_cat = categorize(nominal, cats)
    W0 = np.array([d.weight for d in cat.dimensions])
    runs, idx_mat, cat_mat = [], [], []
    for r in range(n_runs):
        w = W0 * rng.uniform(1 - weight_spread, 1 + weight_spread, len(W0))
        w = w / w.sum()
        method = rng.choice(["arithmetic", "geometric"])
        order = rng.choice(["family_first", "indicator_first"])
        na_rule = rng.choice(["reweight", "zero", "full"], p=[0.5, 0.25, 0.25])
        cuts = {code: rng.uniform(*band) for code, band in bands.items()}
        # weights are renormalised by construction, so no re-validation is needed per run
        run_cat = replace(cat, dimensions=tuple(replace(d, weight=float(wi)) for d, wi in zip(cat.dimensions, w)),
                          settings=MappingProxyType({**cat.settings, "aggregation_method": str(method)}))
        vals = _village_index(x, applies, g, len(villages), run_cat, str(order), str(na_rule))
        run_cuts = tuple(type(c)(c.code, cuts.get(c.code, c.lower), c.label_id, c.label_en, c.lower_inclusive)
                         for c in cats)
        idx_mat.append(vals)
        cat_mat.append(categorize(vals, run_cuts))
        runs.append({"run": r, "aggregation_method": method, "aggregation_order": order, "not_applicable": na_rule,
                     **{f"w_{d.id}": wi for d, wi in zip(cat.dimensions, w)},
                     **{f"cut_{k}": v for k, v in cuts.items()}})
    idx_mat, cat_mat = np.array(idx_mat), np.array(cat_mat)
    ranks = rank_desc(idx_mat)
    nominal_rank = rank_desc(nominal[None, :])[0]
    names = s.groupby(g)["nama_desa"].first().to_numpy()
    summary = pd.DataFrame({
        "code": villages, "name": names, "index": nominal, "category": nominal_cat,
        "index_p05": np.quantile(idx_mat, 0.05, axis=0), "index_median": np.median(idx_mat, axis=0),
        "index_p95": np.quantile(idx_mat, 0.95, axis=0), "rank": nominal_rank,
        "rank_p05": np.quantile(ranks, 0.05, axis=0, method="lower").astype(int),
        "rank_median": np.median(ranks, axis=0), "rank_p95": np.quantile(ranks, 0.95, axis=0, method="higher").astype(int),
        "category_robustness": (cat_mat == nominal_cat[None, :]).mean(axis=0),
    }).sort_values("rank").reset_index(drop=True)
    long = pd.DataFrame({"run": np.repeat(np.arange(n_runs), len(villages)), "code": np.tile(villages, n_runs),
                         "index": idx_mat.ravel(), "rank": ranks.ravel(), "category": cat_mat.ravel()})
    long = long.merge(pd.DataFrame(runs), on="run")
    long["shift"] = long["index"] - np.tile(nominal, n_runs)
    long["kept"] = long["category"] == np.tile(nominal_cat, n_runs)
    drivers = pd.concat([long.groupby(f).agg(runs=("run", "nunique"), mean_shift=("shift", "mean"),
                                            category_kept=("kept", "mean")).reset_index()
                         .rename(columns={f: "option"}).assign(choice=f)
                         for f in ("aggregation_method", "aggregation_order", "not_applicable")], ignore_index=True)
    settings = {"n_runs": n_runs, "seed": seed, "weight_spread": weight_spread,
                "cut_bands": {str(k): list(v) for k, v in bands.items()}, "round": round,
                "na_rule_probabilities": {"reweight": 0.5, "zero": 0.25, "full": 0.25}}
    return SensitivityResult(summary, long, drivers[["choice", "option", "runs", "mean_shift", "category_kept"]], settings)
