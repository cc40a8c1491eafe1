"""Compare villages, evaluate change, draft the action plan.

All functions take the family scores of ONE catalogue
(:func:`pk2d.pipeline.load_scores`) and return tidy DataFrames.

Uncertainty. A desa lokus is a census: its index has no *sampling* error. To
say whether two villages really differ, or where a village would rank if its
families' conditions were measured again, pk2d uses a model-based view: the
families of a village are treated as draws from the process that generates
that village's conditions, clustered by RT. Hence

* league-table intervals and **rank intervals**: bootstrap of families
  within RT (stratified by RT, so every RT keeps its size);
* differences (focus village vs the rest of its kecamatan/kabupaten, change
  between rounds, difference-in-differences): OLS with **cluster-robust
  standard errors by RT** (statsmodels), p-values adjusted for multiple
  comparisons (Holm by default, via ``statsmodels.stats.multitest``).

Effect sizes: Cohen's *d* for scores (difference / pooled SD), Cohen's *h*
for shares (``2 asin sqrt p1 - 2 asin sqrt p2``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import statsmodels.api as sm
from statsmodels.stats.multitest import multipletests

from .catalogue import Catalogue, load_catalogue
from .score import categorize

MODEL_ASSUMPTIONS = {
    "id": ("Model: skor keluarga = rata-rata desa + galat; galat boleh berkorelasi di dalam RT yang sama "
           "(galat baku robust-klaster per RT) dan variansnya boleh berbeda; keluarga di RT berbeda "
           "dianggap saling bebas. Perbandingan semua pasangan memakai koreksi Holm; Tukey HSD "
           "(mengasumsikan varians sama dan keluarga saling bebas) ditampilkan sebagai pembanding."),
    "en": ("Model: family score = village mean + error; errors may be correlated within an RT "
           "(cluster-robust standard errors by RT) and heteroscedastic; families in different RT are "
           "independent. All-pairs comparisons use Holm's correction; Tukey HSD (assumes equal variances "
           "and independent families) is shown for reference."),
}
DID_ASSUMPTIONS = {
    "id": ("Selisih-dalam-selisih (DiD): perubahan di desa lokus dikurangi perubahan rata-rata desa lain di "
           "kabupaten. Sah bila tanpa intervensi desa lokus akan berubah sejajar dengan desa lain (tren "
           "paralel), tidak ada limpahan intervensi ke desa pembanding, dan komposisi keluarga tidak "
           "berubah karena intervensi. Dengan satu desa lokus, galat baku per RT mengukur ketidakpastian "
           "keluarga di dalam desa, bukan guncangan tingkat desa."),
    "en": ("Difference-in-differences: change in the focus village minus the average change of the other "
           "villages of the kabupaten. Valid if, without the interventions, the focus village would have "
           "moved in parallel with the others (parallel trends), interventions did not spill over to "
           "comparison villages, and family composition did not change because of them. With one treated "
           "village, RT-clustered errors capture family-level noise, not village-level shocks."),
}


def _codes(frame: pd.DataFrame, col: str) -> np.ndarray:
    return pd.factorize(frame[col])[0]


def _shares(scores: pd.DataFrame, cat: Catalogue) -> pd.DataFrame:
    """Indicator values as float 0/1 (NaN = not applicable or unanswered)."""
    ids = [i.id for i in cat.indicators]
    return scores[ids].astype("float64")


# --- league table with rank intervals -------------------------------------------------
def bootstrap_means(values: np.ndarray, group: np.ndarray, stratum: np.ndarray, *, n_boot: int = 999,
                    seed: int = 1, weight: np.ndarray | None = None, n_groups: int | None = None) -> np.ndarray:
    """Bootstrap replicates (n_boot x groups) of group means, resampling rows within strata.

    Every stratum (RT) keeps its size; rows with NaN values are dropped first.
    Vectorised: one (n_boot x n) index draw, then ``bincount`` per replicate.
    """
    n_groups = int(group.max()) + 1 if n_groups is None else n_groups
    ok = ~np.isnan(values)
    values, group, stratum = values[ok], group[ok], stratum[ok]
    w = np.ones(len(values)) if weight is None else weight[ok]
    order = np.argsort(stratum, kind="stable")
    values, group, stratum, w = values[order], group[order], stratum[order], w[order]
    _, start, size = np.unique(stratum, return_index=True, return_counts=True)
    s_of = np.repeat(np.arange(len(start)), size)
    rng = np.random.default_rng(seed)
    out = np.empty((n_boot, n_groups))
    for b0 in range(0, n_boot, 100):  # blocks keep memory flat for large n
        nb = min(100, n_boot - b0)
        idx = start[s_of] + (rng.random((nb, len(values))) * size[s_of]).astype(np.int64)
        for j in range(nb):
            pick = idx[j]
            num = np.bincount(group, weights=values[pick] * w[pick], minlength=n_groups)
            den = np.bincount(group, weights=w[pick], minlength=n_groups)
            out[b0 + j] = num / den
    return out


def rank_desc(matrix: np.ndarray) -> np.ndarray:
    """Ranks along axis 1, 1 = highest value (ties share the best rank).

    >>> rank_desc(np.array([[5.0, 5.0, 3.0]])).tolist()
    [[1, 1, 3]]
    """
    from scipy.stats import rankdata

    return rankdata(-np.asarray(matrix, dtype=float), method="min", axis=1).astype(int)


def league_table(scores: pd.DataFrame, catalogue: Catalogue | str = "ikk", *, round: int = 1,
                 n_boot: int = 999, seed: int = 1, level: float = 0.95) -> pd.DataFrame:
    """Every village: index, bootstrap interval, category, rank and rank interval, dimensions.

    ``scores`` should hold the villages to rank (e.g. one kabupaten). ``rank``
    is 1 for the highest index; ``rank_low``/``rank_high`` bound the ranks the
    village takes in the central ``level`` share of bootstrap replicates.
    """
    cat = load_catalogue(catalogue)
    s = scores[scores["putaran"] == round].reset_index(drop=True)
    g, villages = pd.factorize(s["kode_desa"])
    w = s["bobot"].to_numpy(float) if "bobot" in s and s["bobot"].notna().all() else None
    rt = _codes(s, "kode_rt")
    y = s["indeks"].to_numpy(float)
    reps = bootstrap_means(y, g, rt, n_boot=n_boot, seed=seed, weight=w, n_groups=len(villages))
    ok = ~np.isnan(y)  # a family with no indicator answered has no index: left out, as in the bootstrap
    wt = np.where(ok, w if w is not None else 1.0, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        est = np.bincount(g, weights=np.where(ok, y, 0.0) * wt, minlength=len(villages)) / np.bincount(
            g, weights=wt, minlength=len(villages))
    a = (1 - level) / 2
    ranks = rank_desc(reps)
    out = pd.DataFrame({
        "code": villages, "name": s.groupby(g)["nama_desa"].first().to_numpy(),
        "kode_kecamatan": s.groupby(g)["kode_kecamatan"].first().to_numpy(),
        "nama_kecamatan": s.groupby(g)["nama_kecamatan"].first().to_numpy(),
        "n_families": np.bincount(g), "n_rt": s.groupby(g)["kode_rt"].nunique().to_numpy(),
        "index": est, "boot_se": reps.std(axis=0, ddof=1),
        "ci_low": np.quantile(reps, a, axis=0), "ci_high": np.quantile(reps, 1 - a, axis=0),
        "rank": rank_desc(est[None, :])[0],
        "rank_low": np.quantile(ranks, a, axis=0, method="lower").astype(int),
        "rank_high": np.quantile(ranks, 1 - a, axis=0, method="higher").astype(int),
    })
    codes = categorize(out["index"], cat.categories["area"])
    labels = {c.code: c for c in cat.categories["area"]}
    out["category"] = codes
    out["category_label"] = [labels[c].label_id if c in labels else None for c in codes]
    out["category_label_en"] = [labels[c].label_en if c in labels else None for c in codes]
    dims = s.groupby(g)[[f"dim_{d.id}" for d in cat.dimensions]].mean().to_numpy()
    for j, d in enumerate(cat.dimensions):
        out[f"dim_{d.id}"] = dims[:, j]
    return out.sort_values("rank").reset_index(drop=True)


# --- focus village vs kecamatan / kabupaten ---------------------------------------------
def cluster_diff(y: np.ndarray, x: np.ndarray, clusters: np.ndarray, level: float = 0.95) -> dict:
    """OLS of y on [1, x] with cluster-robust SE: the difference (x=1 minus x=0).

    Rows with NaN ``y`` are dropped. Returns estimate, se, ci, p and counts.
    """
    ok = ~np.isnan(y)
    y, x, c = y[ok], x[ok], clusters[ok]
    n1, n0 = int(x.sum()), int((1 - x).sum())
    if n1 < 2 or n0 < 2 or len(np.unique(c)) < 3:
        return {"diff": np.nan, "se": np.nan, "ci_low": np.nan, "ci_high": np.nan, "p": np.nan,
                "n_focus": n1, "n_ref": n0}
    fit = sm.OLS(y, sm.add_constant(x, has_constant="add")).fit(cov_type="cluster", cov_kwds={"groups": c})
    lo, hi = fit.conf_int(alpha=1 - level)[1]
    return {"diff": fit.params[1], "se": fit.bse[1], "ci_low": lo, "ci_high": hi, "p": fit.pvalues[1],
            "n_focus": n1, "n_ref": n0}


def cohens_d(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    pooled = np.sqrt(((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (len(a) + len(b) - 2))
    return float((a.mean() - b.mean()) / pooled) if pooled > 0 else np.nan


def cohens_h(p1: float, p2: float) -> float:
    return float(2 * np.arcsin(np.sqrt(p1)) - 2 * np.arcsin(np.sqrt(p2)))


def focus_comparison(scores: pd.DataFrame, catalogue: Catalogue | str = "ikk", *, focus: str, round: int = 1,
                     adjust: str = "holm", level: float = 0.95) -> pd.DataFrame:
    """Focus village vs the OTHER villages of its kecamatan and of its kabupaten.

    One row per reference (``kecamatan``/``kabupaten``) and component (index,
    each dimension, each indicator): values, difference (points; percentage
    points for indicators), cluster-robust interval and p-value, ``p_adj``
    adjusted across all components of one reference, and the effect size.
    A reference without other surveyed villages gives no rows.
    """
    cat = load_catalogue(catalogue)
    s = scores[scores["putaran"] == round].reset_index(drop=True)
    fam = s[s["kode_desa"] == focus]
    if fam.empty:
        raise ValueError(f"focus village {focus} has no families in round {round}")
    shares = _shares(s, cat) * 100
    comps = [("index", "indeks", cat.name_id)] + [("dimension", f"dim_{d.id}", d.name_id) for d in cat.dimensions]
    rows = []
    for ref, col in (("kecamatan", "kode_kecamatan"), ("kabupaten", "kode_kabupaten")):
        area = fam[col].iloc[0]
        sub = (s[col] == area).to_numpy()
        if s.loc[sub, "kode_desa"].nunique() < 2:
            continue
        x = (s.loc[sub, "kode_desa"] == focus).to_numpy(float)
        clusters = _codes(s[sub], "kode_rt")
        block = []
        for ctype, column, name in comps:
            y = s.loc[sub, column].to_numpy(float)
            r = cluster_diff(y, x, clusters, level)
            r.update(component_type=ctype, component_id=column.removeprefix("dim_"), name=name,
                     focus_value=np.nanmean(y[x == 1]), ref_value=np.nanmean(y[x == 0]),
                     effect_size=cohens_d(y[x == 1], y[x == 0]), effect="d")
            block.append(r)
        for ind in cat.indicators:
            y = shares.loc[sub, ind.id].to_numpy(float)
            r = cluster_diff(y, x, clusters, level)
            p1, p0 = np.nanmean(y[x == 1]) / 100, np.nanmean(y[x == 0]) / 100
            r.update(component_type="indicator", component_id=ind.id, name=ind.name_id, focus_value=p1 * 100,
                     ref_value=p0 * 100, effect_size=cohens_h(p1, p0), effect="h", agency=ind.agency)
            block.append(r)
        df = pd.DataFrame(block)
        df.insert(0, "reference", ref)
        df.insert(1, "reference_code", area)
        ok = df["p"].notna()
        df["p_adj"] = np.nan
        if ok.any():
            df.loc[ok, "p_adj"] = multipletests(df.loc[ok, "p"], method=adjust)[1]
        df["significant"] = df["p_adj"] < (1 - level)
        rows.append(df)
    cols = ["reference", "reference_code", "component_type", "component_id", "name", "focus_value", "ref_value",
            "diff", "se", "ci_low", "ci_high", "p", "p_adj", "significant", "effect_size", "effect",
            "n_focus", "n_ref", "agency"]
    return pd.concat(rows, ignore_index=True).reindex(columns=cols) if rows else pd.DataFrame(columns=cols)


# --- model-based comparison of all villages ----------------------------------------------
def village_model(scores: pd.DataFrame, *, round: int = 1, column: str = "indeks", adjust: str = "holm",
                  level: float = 0.95, max_villages: int = 60) -> pd.DataFrame:
    """All-pairs village differences from ``column ~ village`` with RT-clustered errors.

    p-values are adjusted across all pairs (``adjust``; Holm controls the
    family-wise error rate). ``tukey_p_adj`` gives Tukey's HSD under the
    classical assumptions (equal variances, independent families) for
    comparison. Limited to ``max_villages`` (pairs grow quadratically).
    """
    from statsmodels.stats.multicomp import pairwise_tukeyhsd

    s = scores[(scores["putaran"] == round) & scores[column].notna()].reset_index(drop=True)
    g, villages = pd.factorize(s["kode_desa"], sort=True)
    k = len(villages)
    if k < 2 or k > max_villages:
        return pd.DataFrame()
    X = np.eye(k)[g]
    fit = sm.OLS(s[column].to_numpy(float), X).fit(cov_type="cluster", cov_kwds={"groups": _codes(s, "kode_rt")})
    ia, ib = np.triu_indices(k, 1)
    L = np.zeros((len(ia), k))
    L[np.arange(len(ia)), ia], L[np.arange(len(ia)), ib] = 1, -1
    tt = fit.t_test(L)
    ci = np.asarray(tt.conf_int(alpha=1 - level))
    out = pd.DataFrame({"village_a": villages[ia], "village_b": villages[ib],
                        "diff": np.asarray(tt.effect).ravel(), "se": np.asarray(tt.sd).ravel(),
                        "ci_low": ci[:, 0], "ci_high": ci[:, 1], "p": np.asarray(tt.pvalue).ravel()})
    out["p_adj"] = multipletests(out["p"], method=adjust)[1]
    out["significant"] = out["p_adj"] < (1 - level)
    names = s.groupby("kode_desa")["nama_desa"].first()
    out.insert(1, "name_a", names.reindex(out["village_a"]).to_numpy())
    out.insert(3, "name_b", names.reindex(out["village_b"]).to_numpy())
    tk = pairwise_tukeyhsd(s[column].to_numpy(float), g, alpha=1 - level)
    # Tukey's pairs come in the order of itertools.combinations(sorted groups) = triu order
    assert list(tk.groupsunique) == list(range(k))
    out["tukey_p_adj"] = np.asarray(tk.pvalues)
    return out


# --- strengths, weaknesses, action plan ---------------------------------------------------
def indicator_gaps(scores: pd.DataFrame, catalogue: Catalogue | str = "ikk", *, round: int = 1) -> pd.DataFrame:
    """Per village and indicator: share met (%), kabupaten share (%), gap and families affected.

    ``families_affected`` = families the indicator applies to that do not
    meet it; ``share_affected`` is relative to all families of the village.
    The kabupaten share is over all its surveyed families (village included).
    """
    cat = load_catalogue(catalogue)
    s = scores[scores["putaran"] == round]
    rows = []
    for ind in cat.indicators:
        v = s[ind.id].astype("float64")
        tab = pd.DataFrame({"kode_desa": s["kode_desa"], "kode_kabupaten": s["kode_kabupaten"], "v": v,
                            "miss": (v == 0).astype(int), "app": v.notna().astype(int)})
        by = tab.groupby(["kode_kabupaten", "kode_desa"], sort=False).agg(
            share=("v", "mean"), n_applicable=("app", "sum"), families_affected=("miss", "sum"),
            n_families=("v", "size")).reset_index()
        kab = tab.groupby("kode_kabupaten")["v"].mean().rename("kab_share")
        by = by.merge(kab, on="kode_kabupaten")
        by["indicator"], by["name"], by["dimension"], by["agency"] = ind.id, ind.name_id, ind.dimension, ind.agency
        rows.append(by)
    out = pd.concat(rows, ignore_index=True)
    out["share"] *= 100
    out["kab_share"] *= 100
    out["gap"] = out["share"] - out["kab_share"]
    out["share_affected"] = 100 * out["families_affected"] / out["n_families"]
    return out


def problems(scores: pd.DataFrame, catalogue: Catalogue | str = "ikk", *, round: int = 1) -> pd.DataFrame:
    """Every village's problems (*permasalahan*): the indicators where it is below the catalogue's target
    or below its kabupaten, each saying which rule flagged it, ranked by the families that must change.

    Per village and flagged indicator: ``share``, ``target``, ``kab_share`` (%), ``n_applicable``,
    ``families_affected`` (applicable families not meeting it), ``to_target`` = the families that must
    come to meet it for the village to reach the target (``ceil(target% * n_applicable) - met``: size
    and gap together), ``to_kab`` the same for the kabupaten share, ``rule`` (``target``,
    ``kabupaten`` or ``target+kabupaten``), ``priority`` (1 = most families to reach the target, then
    most to reach the kabupaten). A village below no target and no kabupaten share has no row.
    """
    cat = load_catalogue(catalogue)
    g = indicator_gaps(scores, cat, round=round)
    target = {i.id: i.target for i in cat.indicators}
    g["target"] = g["indicator"].map(target)
    met = g["n_applicable"] - g["families_affected"]
    eps = 1e-9  # 0.8 * 384 = 307.2000000001 must round up to 308, not 309
    g["to_target"] = np.maximum(0, np.ceil(g["target"] / 100 * g["n_applicable"] - eps) - met).astype("int64")
    g["to_kab"] = np.maximum(0, np.ceil(g["kab_share"] / 100 * g["n_applicable"] - eps) - met).astype("int64")
    below_target = (g["n_applicable"] > 0) & (g["to_target"] > 0)
    below_kab = (g["n_applicable"] > 0) & (g["gap"] < 0) & (g["families_affected"] > 0)
    g["rule"] = np.select([below_target & below_kab, below_target], ["target+kabupaten", "target"], "kabupaten")
    out = g[below_target | below_kab].sort_values(["kode_desa", "to_target", "to_kab", "gap"],
                                                  ascending=[True, False, False, True]).copy()
    out["priority"] = out.groupby("kode_desa").cumcount() + 1
    return out.reset_index(drop=True)


def action_plan(scores: pd.DataFrame, catalogue: Catalogue | str = "ikk", *, round: int = 1,
                top: int = 5) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(problems, strengths, agency plan) for every village.

    Problems: :func:`problems`. Strengths: the ``top`` indicators most above the kabupaten share.
    The agency plan (the draft *rencana tindak lanjut*) groups the problems by responsible agency:
    its indicators (in priority order), the families that must change to reach the targets, the
    families affected (a family missing two indicators counts twice) and its first priority.
    """
    from .catalogue import agency_name

    cat = load_catalogue(catalogue)
    weak = problems(scores, cat, round=round)
    gaps = indicator_gaps(scores, cat, round=round)
    strong = gaps[gaps["gap"] > 0].sort_values(["kode_desa", "gap"], ascending=[True, False])
    strong = strong.groupby("kode_desa", sort=False).head(top).copy()
    plan = weak.groupby(["kode_desa", "agency"], sort=False).agg(
        indicators=("indicator", lambda x: ", ".join(x)), to_target=("to_target", "sum"),
        families_affected=("families_affected", "sum"), top_priority=("priority", "min"),
        n_problems=("indicator", "size")).reset_index().sort_values(["kode_desa", "top_priority"])
    plan["agency_name"] = [agency_name(a) for a in plan["agency"]]
    return weak.reset_index(drop=True), strong.reset_index(drop=True), plan.reset_index(drop=True)


def problem_rts(scores: pd.DataFrame, problems: pd.DataFrame, *, round: int = 1) -> pd.DataFrame:
    """Where each village's problems are: applicable families not meeting each problem indicator, per RT
    (``kode_desa, indicator, kode_rt, rt, n_not_met, n_applicable``; counts, no family id)."""
    s = scores[scores["putaran"] == round]
    parts = []
    for ind, g in problems.groupby("indicator", sort=False):
        v = s[ind].astype("float64")
        t = pd.DataFrame({"kode_desa": s["kode_desa"], "kode_rt": s["kode_rt"], "rt": s["rt"],
                          "n_not_met": (v == 0).astype("int64"), "n_applicable": v.notna().astype("int64")})
        t = t[t["kode_desa"].isin(set(g["kode_desa"]))]
        parts.append(t.groupby(["kode_desa", "kode_rt", "rt"], sort=True, observed=True)[["n_not_met", "n_applicable"]]
                     .sum().reset_index().assign(indicator=ind))
    cols = ["kode_desa", "indicator", "kode_rt", "rt", "n_not_met", "n_applicable"]
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)


def intervention_families(scores: pd.DataFrame, problems: pd.DataFrame, *, round: int = 1) -> pd.DataFrame:
    """Pseudonymous family ids per village and problem indicator (families not meeting it).

    For village cadres planning visits: kept in ``data/processed/`` only (``pk2d interventions``
    exports one village's list), never in anything published.
    """
    s = scores[scores["putaran"] == round]
    parts = []
    for p in problems.itertuples():
        hit = s[(s["kode_desa"] == p.kode_desa) & (s[p.indicator].astype("float64") == 0)]
        parts.append(pd.DataFrame({"kode_desa": p.kode_desa, "kode_rt": hit["kode_rt"], "priority": p.priority,
                                   "indicator": p.indicator, "agency": p.agency, "id_keluarga": hit["id_keluarga"]}))
    cols = ["kode_desa", "kode_rt", "priority", "indicator", "agency", "id_keluarga"]
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)


# --- evaluation over rounds ------------------------------------------------------------------
def change_over_rounds(scores: pd.DataFrame, catalogue: Catalogue | str = "ikk", *, before: int = 1,
                       after: int = 2, level: float = 0.95) -> pd.DataFrame:
    """Per village and component: value before/after and the change with an RT-clustered interval."""
    cat = load_catalogue(catalogue)
    s = scores[scores["putaran"].isin([before, after])].reset_index(drop=True)
    shares = _shares(s, cat) * 100
    comps = [("index", "indeks", s["indeks"])] + [("dimension", d.id, s[f"dim_{d.id}"]) for d in cat.dimensions] + [
        ("indicator", i.id, shares[i.id]) for i in cat.indicators]
    post = (s["putaran"] == after).to_numpy(float)
    rows = []
    for code, idx in s.groupby("kode_desa", sort=True).indices.items():
        if len(np.unique(post[idx])) < 2:
            continue
        clusters = _codes(s.iloc[idx], "kode_rt")
        for ctype, cid, col in comps:
            y = col.to_numpy(float)[idx]
            r = cluster_diff(y, post[idx], clusters, level)
            rows.append({"kode_desa": code, "nama_desa": s["nama_desa"].iloc[idx[0]], "component_type": ctype,
                         "component_id": cid, "before": np.nanmean(y[post[idx] == 0]),
                         "after": np.nanmean(y[post[idx] == 1]), "change": r["diff"], "se": r["se"],
                         "ci_low": r["ci_low"], "ci_high": r["ci_high"], "p": r["p"],
                         "n_before": r["n_ref"], "n_after": r["n_focus"]})
    return pd.DataFrame(rows)


def difference_in_differences(scores: pd.DataFrame, *, focus: str, before: int = 1, after: int = 2,
                              column: str = "indeks", level: float = 0.95) -> dict:
    """DiD of ``column`` for the focus village against the other villages in ``scores``.

    ``y ~ treated + post + treated:post`` by OLS (weighted least squares when every family has a
    ``bobot``) with RT-clustered errors; the interaction is the effect. See :data:`DID_ASSUMPTIONS`.
    """
    s = scores[scores["putaran"].isin([before, after]) & scores[column].notna()].reset_index(drop=True)
    treated = (s["kode_desa"] == focus).to_numpy(float)
    post = (s["putaran"] == after).to_numpy(float)
    X = np.column_stack([np.ones(len(s)), treated, post, treated * post])
    y = s[column].to_numpy(float)
    weighted = "bobot" in s and s["bobot"].notna().all()  # a weighted sample: weighted least squares
    model = sm.WLS(y, X, weights=s["bobot"].to_numpy(float)) if weighted else sm.OLS(y, X)
    fit = model.fit(cov_type="cluster", cov_kwds={"groups": _codes(s, "kode_rt")})
    lo, hi = fit.conf_int(alpha=1 - level)[3]
    return {"focus": focus, "column": column, "estimate": float(fit.params[3]), "se": float(fit.bse[3]),
            "ci_low": float(lo), "ci_high": float(hi), "p": float(fit.pvalues[3]), "n": int(len(s)),
            "n_clusters": int(s["kode_rt"].nunique()), "n_villages": int(s["kode_desa"].nunique()),
            "before": int(before), "after": int(after), "assumptions_id": DID_ASSUMPTIONS["id"],
            "assumptions_en": DID_ASSUMPTIONS["en"]}


def dimension_profile(components: pd.DataFrame, catalogue: Catalogue | str = "ikk", *, units: dict[str, str],
                      round: int = 1) -> pd.DataFrame:
    """Dimension estimates of several areas side by side (from ``area_components``).

    ``units`` maps a column label to an area code, e.g. ``{"Desa": "63.02.06.2001",
    "Kecamatan": "63.02.06", "Kabupaten": "63.02"}``.
    """
    cat = load_catalogue(catalogue)
    c = components[(components["catalogue"] == cat.id) & (components["round"] == round)
                   & (components["component_type"] == "dimension")]
    out = pd.DataFrame({"dimension": [d.id for d in cat.dimensions], "name": [d.name_id for d in cat.dimensions]})
    for label, code in units.items():
        est = c[c["code"] == code].set_index("component_id")["estimate"]
        out[label] = est.reindex(out["dimension"]).to_numpy()
    return out
