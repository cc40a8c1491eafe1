"""Compare villages, evaluate change, draft the action plan.

All functions take the family scores of ONE catalogue
(:func:`pk2d.pipeline.load_scores`) and return tidy DataFrames.

Uncertainty. A desa lokus is a census: its index has no *sampling* error. To
say whether two villages really differ, or where a village would rank if its
families' conditions were measured again, pk2d uses a model-based view: the
families of a village are draws from the process that generates that
village's conditions, clustered by RT. A sample uses its survey design instead.
Both are one design (:func:`pk2d.compare_design.model_design`), and every
interval rests on it:

* league-table intervals: linearised SE of the village mean on that design,
  t with the village's clusters minus 1 degrees of freedom; **rank
  intervals**: Rao-Wu bootstrap of the SAME clusters (RTs within each village);
* differences (focus village vs the rest of its kecamatan/kabupaten, change
  between rounds, difference-in-differences, all pairs): least squares on the
  design (R ``svyglm``: weighted in a sample, cluster-robust by RT in a
  census), t with the design's residual df, p-values adjusted for multiple
  comparisons (Holm by default, via ``statsmodels.stats.multitest``).

Effect sizes: Cohen's *d* for scores (difference / pooled SD), Cohen's *h*
for shares (``2 asin sqrt p1 - 2 asin sqrt p2``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

from .catalogue import Catalogue, load_catalogue
from .compare_design import cluster_bootstrap_means, design_diff, few_clusters, is_sample, model_design
from .design import Design
from .score import categorize

MODEL_ASSUMPTIONS = {
    "id": ("Model: skor keluarga = rata-rata desa + galat; galat boleh berkorelasi di dalam RT yang sama "
           "(galat baku robust-klaster per RT) dan variansnya boleh berbeda; keluarga di RT berbeda "
           "dianggap saling bebas. Selang kepercayaan memakai distribusi t dengan derajat bebas dari jumlah RT "
           "(bukan distribusi normal), dan selang peringkat berasal dari bootstrap RT yang sama. Perbandingan semua pasangan memakai koreksi Holm; Tukey HSD "
           "(mengasumsikan varians sama dan keluarga saling bebas) ditampilkan sebagai pembanding."),
    "en": ("Model: family score = village mean + error; errors may be correlated within an RT "
           "(cluster-robust standard errors by RT) and heteroscedastic; families in different RT are "
           "independent. Intervals use Student's t with degrees of freedom from the number of RTs (not the "
           "normal quantile), and rank intervals come from a bootstrap of the same RTs. All-pairs comparisons use Holm's correction; Tukey HSD (assumes equal variances "
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


def _shares(scores: pd.DataFrame, cat: Catalogue) -> pd.DataFrame:
    """Indicator values as float 0/1 (NaN = not applicable or unanswered)."""
    ids = [i.id for i in cat.indicators]
    return scores[ids].astype("float64")


# --- league table with rank intervals -------------------------------------------------
def rank_desc(matrix: np.ndarray) -> np.ndarray:
    """Ranks along axis 1, 1 = highest value (ties share the best rank).

    >>> rank_desc(np.array([[5.0, 5.0, 3.0]])).tolist()
    [[1, 1, 3]]
    """
    from scipy.stats import rankdata

    return rankdata(-np.asarray(matrix, dtype=float), method="min", axis=1).astype(int)


def league_table(scores: pd.DataFrame, catalogue: Catalogue | str = "ikk", *, round: int = 1,
                 n_boot: int = 999, seed: int = 1, level: float = 0.95) -> pd.DataFrame:
    """Every village: index with its interval, category, rank and rank interval, dimensions.

    ``scores`` should hold the villages to rank (e.g. one kabupaten). The index interval is
    ``index +/- t_df * se`` with the linearised SE of :func:`pk2d.compare_design.model_design`
    (RT clusters in a census, the survey design in a sample; ``df`` = the village's clusters minus
    1). ``rank`` is 1 for the highest index; ``rank_low``/``rank_high`` bound the ranks the village
    takes in the central ``level`` share of Rao-Wu bootstrap replicates of the same clusters.
    """
    cat = load_catalogue(catalogue)
    s = scores[scores["putaran"] == round].reset_index(drop=True)
    g, villages = pd.factorize(s["kode_desa"])
    des = model_design(s)
    y = s["indeks"].to_numpy(float)
    lin = des.with_data(s.assign(__g=g)).mean("indeks", by="__g", level=level).set_index("__g").reindex(
        range(len(villages)))
    reps = cluster_bootstrap_means(des, s, y, g, n_boot=n_boot, seed=seed)
    est = lin["estimate"].to_numpy()
    a = (1 - level) / 2
    ranks = rank_desc(np.where(np.isnan(reps), est[None, :], reps))
    out = pd.DataFrame({
        "code": villages, "name": s.groupby(g)["nama_desa"].first().to_numpy(),
        "kode_kecamatan": s.groupby(g)["kode_kecamatan"].first().to_numpy(),
        "nama_kecamatan": s.groupby(g)["nama_kecamatan"].first().to_numpy(),
        "n_families": np.bincount(g), "n_rt": s.groupby(g)["kode_rt"].nunique().to_numpy(),
        "index": est, "se": lin["se"].to_numpy(), "df": lin["df"].to_numpy(),
        "boot_se": np.nanstd(reps, axis=0, ddof=1),
        "ci_low": lin["ci_low"].to_numpy(), "ci_high": lin["ci_high"].to_numpy(),
        "reliability": lin["reliability"].to_numpy(),
        "rank": rank_desc(est[None, :])[0],
        "rank_low": np.quantile(ranks, a, axis=0, method="lower").astype(int),
        "rank_high": np.quantile(ranks, 1 - a, axis=0, method="higher").astype(int),
    })
    # a village whose SE cannot be estimated (one RT, one PSU) cannot be placed: every rank is possible
    unknown = out["se"].isna() & out["index"].notna() & ~des.census
    out.loc[unknown, "rank_low"], out.loc[unknown, "rank_high"] = 1, len(villages)
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
def cluster_diff(y: np.ndarray, x: np.ndarray, clusters: np.ndarray, level: float = 0.95,
                 weight: np.ndarray | None = None) -> dict:
    """Difference x=1 minus x=0 from ``y ~ 1 + x`` with a cluster-robust (with-replacement design)
    SE and a t interval with ``clusters - 2`` degrees of freedom, as R's ``svyglm`` with
    ``svydesign(ids = ~cluster)``. Rows with NaN ``y`` leave the fit.
    """
    frame = pd.DataFrame({"c": clusters, "w": 1.0 if weight is None else weight})
    des = Design(frame, ids="c", weights="w", lonely_psu="adjust")
    return design_diff(des, np.asarray(y, float), np.asarray(x, float), level=level)


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
    des = model_design(s)
    comps = [("index", "indeks", cat.name_id)] + [("dimension", f"dim_{d.id}", d.name_id) for d in cat.dimensions]
    rows = []
    for ref, col in (("kecamatan", "kode_kecamatan"), ("kabupaten", "kode_kabupaten")):
        area = fam[col].iloc[0]
        sub = (s[col] == area).to_numpy()
        if s.loc[sub, "kode_desa"].nunique() < 2:
            continue
        x_all = (s["kode_desa"] == focus).to_numpy(float)
        x = x_all[sub]
        block = []
        for ctype, column, name in comps:
            y_all = np.where(sub, s[column].to_numpy(float), np.nan)  # outside the reference: out of the fit
            y = y_all[sub]
            r = design_diff(des, y_all, x_all, level=level)
            r.update(component_type=ctype, component_id=column.removeprefix("dim_"), name=name,
                     focus_value=np.nanmean(y[x == 1]), ref_value=np.nanmean(y[x == 0]),
                     effect_size=cohens_d(y[x == 1], y[x == 0]), effect="d")
            block.append(r)
        for ind in cat.indicators:
            y_all = np.where(sub, shares[ind.id].to_numpy(float), np.nan)
            y = y_all[sub]
            r = design_diff(des, y_all, x_all, level=level)
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
            "diff", "se", "ci_low", "ci_high", "df", "p", "p_adj", "significant", "effect_size", "effect",
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
    dummies = pd.DataFrame(np.eye(k)[g], columns=[f"v{j}" for j in range(k)]).assign(__y=s[column].to_numpy(float))
    fit = model_design(s).with_data(dummies).regress("__y", [f"v{j}" for j in range(k)], level=level,
                                                     intercept=False)
    beta, V, df = fit["estimate"].to_numpy(), fit.attrs["vcov"], float(fit["df"].iloc[0])
    ia, ib = np.triu_indices(k, 1)
    diff = beta[ia] - beta[ib]
    se = np.sqrt(np.clip(V[ia, ia] + V[ib, ib] - 2 * V[ia, ib], 0, None))
    t = stats.t.ppf(0.5 + level / 2, df) if df >= 1 else np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        p = 2 * stats.t.sf(np.abs(diff / se), df) if df >= 1 else np.full(len(diff), np.nan)
    out = pd.DataFrame({"village_a": villages[ia], "village_b": villages[ib], "diff": diff, "se": se,
                        "ci_low": diff - t * se, "ci_high": diff + t * se, "df": df, "p": p})
    out["p_adj"] = multipletests(out["p"].fillna(1.0), method=adjust)[1]
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
    sample = is_sample(s)
    des_all = model_design(s) if sample else None
    rows = []
    for code, idx in s.groupby("kode_desa", sort=True).indices.items():
        if len(np.unique(post[idx])) < 2:
            continue
        # census: the village's own RT clusters; sample: the village as a domain of the full design
        des = des_all if sample else model_design(s.iloc[idx].reset_index(drop=True))
        inside = np.zeros(len(s), dtype=bool)
        inside[idx] = True
        for ctype, cid, col in comps:
            y_all = col.to_numpy(float)
            y = y_all[idx]
            r = (design_diff(des, np.where(inside, y_all, np.nan), post, level=level) if sample
                 else design_diff(des, y, post[idx], level=level))
            rows.append({"kode_desa": code, "nama_desa": s["nama_desa"].iloc[idx[0]], "component_type": ctype,
                         "component_id": cid, "before": np.nanmean(y[post[idx] == 0]),
                         "after": np.nanmean(y[post[idx] == 1]), "change": r["diff"], "se": r["se"],
                         "ci_low": r["ci_low"], "ci_high": r["ci_high"], "df": r["df"], "p": r["p"],
                         "n_before": r["n_ref"], "n_after": r["n_focus"]})
    return pd.DataFrame(rows)


def difference_in_differences(scores: pd.DataFrame, *, focus: str, before: int = 1, after: int = 2,
                              column: str = "indeks", level: float = 0.95) -> dict:
    """DiD of ``column`` for the focus village against the other villages in ``scores``.

    ``y ~ treated + post + treated:post`` by least squares on :func:`pk2d.compare_design.model_design`
    (weighted with the survey design in a sample, RT clusters in a census), t interval with the
    df of :func:`pk2d.compare_design.few_clusters` (the lokus village's clusters minus 1 at most);
    the interaction is the effect. See :data:`DID_ASSUMPTIONS`.
    """
    s = scores[scores["putaran"].isin([before, after]) & scores[column].notna()].reset_index(drop=True)
    treated = (s["kode_desa"] == focus).to_numpy(float)
    post = (s["putaran"] == after).to_numpy(float)
    data = pd.DataFrame({"y": s[column].to_numpy(float), "treated": treated, "post": post,
                         "treated_post": treated * post})
    des = model_design(s)
    fit = des.with_data(data).regress("y", ["treated", "post", "treated_post"], level=level)
    r = few_clusters(des, fit.iloc[3], treated == 1, np.ones(len(s), dtype=bool), level)
    return {"focus": focus, "column": column, "estimate": r["estimate"], "se": r["se"],
            "ci_low": r["ci_low"], "ci_high": r["ci_high"], "p": r["p"], "df": r["df"],
            "n": int(len(s)),
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
