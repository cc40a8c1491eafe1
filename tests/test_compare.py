"""Comparison, ranks, multiple testing, DiD and the action plan on data with known answers."""
import numpy as np
import pandas as pd
import pytest

from pk2d import compare
from tests._scores import make_scores

A, B, C = "63.02.06.2001", "63.02.06.2002", "63.02.07.2003"


def test_built_in_difference_found_and_null_not_found():
    # E6 (savings): 80 % in A vs 40 % elsewhere; B1: 70 % everywhere
    s = make_scores({A: {"E6": 0.8}, B: {"E6": 0.4}, C: {"E6": 0.4}}, seed=11)
    res = compare.focus_comparison(s, focus=A)
    kab = res[res["reference"] == "kabupaten"].set_index("component_id")
    assert kab.loc["E6", "significant"] and kab.loc["E6", "diff"] == pytest.approx(
        kab.loc["E6", "focus_value"] - kab.loc["E6", "ref_value"])
    assert 25 < kab.loc["E6", "diff"] < 55 and kab.loc["E6", "effect_size"] > 0.5
    assert not kab.loc["B1", "significant"]
    assert kab.loc["B1", "p_adj"] >= kab.loc["B1", "p"]
    # kecamatan reference = the other village of A's kecamatan only (B), C is elsewhere
    kec = res[res["reference"] == "kecamatan"]
    assert (kec["n_ref"].iloc[0], kab["n_ref"].iloc[0]) == (200, 400)


def test_holm_adjustment_by_hand():
    s = make_scores({A: {"E6": 0.8}, B: {"E6": 0.4}}, seed=5)
    res = compare.focus_comparison(s, focus=A)
    res = res[res["reference"] == "kabupaten"].dropna(subset=["p"])
    p = res["p"].to_numpy()
    m = len(p)
    order = np.argsort(p)
    adj = np.maximum.accumulate(np.minimum(1, (m - np.arange(m)) * p[order]))
    expected = np.empty(m)
    expected[order] = adj
    assert res["p_adj"].to_numpy() == pytest.approx(expected)


def test_cluster_robust_difference_matches_sandwich_by_hand():
    y = np.array([1.0, 2, 3, 4, 6, 5, 8, 9, 7, 10])
    x = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1.0])
    cl = np.array([0, 0, 1, 1, 2, 3, 3, 4, 4, 5])
    r = compare.cluster_diff(y, x, cl)
    assert r["diff"] == pytest.approx(7.8 - 3.2)
    # R svyglm on svydesign(ids = ~cl): (X'X)^-1 [G/(G-1) sum_g (s_g - sbar)(s_g - sbar)'] (X'X)^-1 with
    # s_g = X_g'u_g (sbar = 0 at the solution); no (N-1)/(N-K) factor. t with min(G - 1 + 1 - 2 = 4,
    # clusters of the smaller side - 1 = 3 - 1) = 2 df (the few-clusters rule)
    X = np.column_stack([np.ones(10), x])
    u = y - X @ np.linalg.lstsq(X, y, rcond=None)[0]
    bread = np.linalg.inv(X.T @ X)
    meat = sum(np.outer(X[cl == g].T @ u[cl == g], X[cl == g].T @ u[cl == g]) for g in np.unique(cl))
    V = bread @ meat @ bread * 6 / 5
    assert r["se"] == pytest.approx(np.sqrt(V[1, 1]), rel=1e-12)
    assert r["df"] == 2
    t = 4.302652729749464  # qt(0.975, 2)
    assert r["ci_low"] == pytest.approx(r["diff"] - t * r["se"], rel=1e-12)


def test_rank_intervals():
    assert compare.rank_desc(np.array([[3.0, 1, 2]])).tolist() == [[1, 3, 2]]
    # far apart villages: ranks certain; two nearly equal villages: ranks overlap
    s = make_scores({A: {i: 0.95 for i in ["L1"]}, B: {}, C: {}}, seed=2,
                    n=150)
    s.loc[s["kode_desa"] == A, "indeks"] = 95.0
    t = compare.league_table(s, n_boot=300)
    top = t.iloc[0]
    assert top["code"] == A and (top["rank_low"], top["rank_high"]) == (1, 1)
    assert top["ci_low"] == top["ci_high"] == 95.0
    rest = t.iloc[1:]
    assert (rest["rank_low"] == 2).all() and (rest["rank_high"] == 3).all()


def test_did_recovers_known_effect_exactly_without_noise():
    rows = []
    for v, base in [(A, 70.0), (B, 60.0), (C, 65.0)]:
        for rnd in (1, 2):
            for rt in range(6):
                for e in (-2.0, 2.0):  # symmetric noise: cell means exact
                    y = base + 0.5 * (rnd == 2) + 4.5 * (v == A and rnd == 2) + e
                    rows.append({"kode_desa": v, "putaran": rnd, "kode_rt": f"{v}.{rt}", "indeks": y})
    d = compare.difference_in_differences(pd.DataFrame(rows), focus=A)
    assert d["estimate"] == pytest.approx(4.5)
    # the noise cancels inside every RT, so the RT-clustered SE is (numerically) 0
    assert d["se"] == pytest.approx(0.0, abs=1e-9) and d["ci_low"] <= 4.5 + 1e-9 and d["ci_high"] >= 4.5 - 1e-9
    # 18 RT clusters (each in both rounds), 4 coefficients: 14; the lokus village's 6 RTs - 1 = 5 is smaller
    assert d["df"] == 5


def test_did_recovers_known_effect_within_interval():
    shift = {(A, 2): 0.25, (B, 2): 0.02, (C, 2): 0.02}
    s = make_scores({A: {}, B: {}, C: {}}, rounds=(1, 2), shift=shift, seed=4, n=300)
    d = compare.difference_in_differences(s, focus=A)
    # each indicator +0.23 in A relative to the others: index +23 points (probabilities clipped at 1 -> a bit less)
    assert d["ci_low"] < 23 < d["ci_high"] + 2 and d["estimate"] > 15


def test_action_plan_counts_match_direct_count():
    s = make_scores({A: {"E6": 0.2, "F4": 0.3, "B3": 0.9}, B: {"E6": 0.6, "F4": 0.7, "B3": 0.5}}, seed=8)
    pri, strong, plan = compare.action_plan(s, top=3)
    pa = pri[pri["kode_desa"] == A]
    assert set(pa["indicator"]) >= {"E6", "F4"}
    for r in pa.itertuples():
        direct = int(((s["kode_desa"] == A) & (s[r.indicator].astype(float) == 0)).sum())
        assert r.families_affected == direct
    assert "B3" in set(strong.loc[strong["kode_desa"] == A, "indicator"])
    agencies = plan[plan["kode_desa"] == A].set_index("agency")
    assert agencies.loc["diskopukm", "families_affected"] == int(((s["kode_desa"] == A) & (s["E6"] == 0)).sum())
    fam = compare.intervention_families(s, pri)
    assert len(fam[(fam["kode_desa"] == A) & (fam["indicator"] == "E6")]) == pa.set_index("indicator").loc["E6", "families_affected"]


def test_village_model_pairs_and_tukey():
    from pk2d.catalogue import load_catalogue
    better = {i.id: 0.85 for i in load_catalogue("ikk").indicators}  # +15 points vs 0.7
    s = make_scores({A: better, B: {}, C: {}}, seed=3)
    m = compare.village_model(s)
    assert len(m) == 3
    ab = m[(m["village_a"] == A) & (m["village_b"] == B)].iloc[0]
    assert ab["diff"] == pytest.approx(s.loc[s.kode_desa == A, "indeks"].mean() - s.loc[s.kode_desa == B, "indeks"].mean())
    assert ab["significant"] and ab["tukey_p_adj"] < 0.05
    bc = m[(m["village_a"] == B) & (m["village_b"] == C)].iloc[0]
    assert not bc["significant"]


def test_league_table_leaves_out_a_family_without_index():
    s = make_scores({A: {}, B: {}}, seed=6, n=50)
    first_a = s.index[s["kode_desa"] == A][0]
    expected = s.loc[(s["kode_desa"] == A) & (s.index != first_a), "indeks"].mean()
    s.loc[first_a, "indeks"] = np.nan
    t = compare.league_table(s, n_boot=50).set_index("code")
    assert t.loc[A, "index"] == pytest.approx(expected)
    assert t.loc[A, "category_label"] is not None


def test_ties_share_the_best_rank():
    assert compare.rank_desc(np.array([[5.0, 5.0, 3.0]])).tolist() == [[1, 1, 3]]


def test_a_village_with_one_rt_gets_no_rank_certainty():
    s = make_scores({A: {}, B: {}, C: {}}, seed=9, n=60)
    s.loc[s["kode_desa"] == A, "kode_rt"] = A + ".001"  # all of A's families in one RT
    t = compare.league_table(s, n_boot=100).set_index("code")
    assert np.isnan(t.loc[A, "se"]) and np.isnan(t.loc[A, "ci_low"]) and t.loc[A, "reliability"] == "no_se"
    assert (t.loc[A, "rank_low"], t.loc[A, "rank_high"]) == (1, 3)
    assert t.loc[B, "se"] > 0
