"""Tests of the super-population mode of the synthetic generator (pk2d.synth_superpop).

Small configurations and small Monte-Carlo pools keep them fast; the truths they check are hand
computations from the model's parameters (index scale) or quadrature of its item probabilities.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pk2d import synth_sample as SS, synth_superpop as SP
from pk2d.synth_places import SynthError

POOL = 3000  # families in the truth pool of these tests (the simulation uses 100,000)


def _villages(levels, n_rt=3, kk=10, kecamatan=None):
    kecamatan = kecamatan or ["63.02.01"] * len(levels)
    return pd.DataFrame({"kode_desa": [f"{k}.{2001 + i}" for i, k in enumerate(kecamatan)],
                         "nama_desa": [f"Desa {i}" for i in range(len(levels))],
                         "kode_kecamatan": kecamatan, "nama_kecamatan": [f"Kec {k[-2:]}" for k in kecamatan],
                         "level": levels, "n_rt": n_rt, "kk_per_rt": kk})


@pytest.fixture(scope="module")
def tiny():
    """Three villages A, B, C (C desa lokus 2023, effect 4 points from 2024), trend 1 point."""
    vil = _villages([70.0, 75.0, 80.0])
    sp = SP.SuperPopulation(vil, years=(2023, 2024), trend=1.0, lokus=((vil["kode_desa"][2], 2023, 4.0),))
    return sp, SP.truth(sp, pool=POOL, icc=False)


@pytest.fixture(scope="module")
def sampled():
    """Two kecamatan of four villages (two sampled in each) and a self-representing desa lokus."""
    kec = ["63.02.01"] * 4 + ["63.02.02"] * 4 + ["63.02.01"]
    vil = _villages([66.0, 70.0, 74.0, 78.0, 68.0, 72.0, 76.0, 80.0, 73.0], n_rt=6, kk=12, kecamatan=kec)
    vil["n_rt"] = [5, 6, 7, 8, 5, 6, 7, 8, 6]
    sp = SP.SuperPopulation(vil, years=(2023, 2024), lokus=((vil["kode_desa"].iloc[-1], 2023, 3.0),))
    tr = SP.truth(sp, pool=POOL, icc=False)
    return sp, tr, SP.draw_population(sp, tr, seed=11)


# ------------------------------------------------------------------ truth ---
def test_true_values_are_the_hand_computation(tiny):
    sp, tr = tiny
    a, b, c = sp.villages["kode_desa"]
    hand = {(1, a): 70.0, (1, b): 75.0, (1, c): 80.0, (2, a): 71.0, (2, b): 76.0, (2, c): 85.0}
    e = tr.expected()
    for key, value in hand.items():
        assert e[key] == pytest.approx(value, abs=1e-6)
    t = tr.index.set_index(["putaran", "kode_desa"])
    assert t.loc[(2, c), "treated"] and not t.loc[(1, c), "treated"] and not t.loc[(2, a), "treated"]
    # each latent level is the one whose expected index (the model's curve) is the target
    for s, curve in tr.curves.items():
        rows = tr.index
        assert curve(rows["latent"].to_numpy()) == pytest.approx(rows["expected"].to_numpy(), abs=1e-6)
        assert np.all(np.diff(curve.values) > 0)  # IKK increases with the latent level
    assert tr.change(1, 2).to_dict() == pytest.approx({a: 1.0, b: 1.0, c: 5.0}, abs=1e-6)
    assert tr.did(c, 1, 2, [a, b]) == pytest.approx(4.0, abs=1e-6)  # (85 - 80) - (1 + 1) / 2
    assert tr.ranks(1).to_dict() == {a: 3, b: 2, c: 1} and tr.ranks(2, [a, b]).to_dict() == {a: 2, b: 1}
    (ev,) = tr.evaluations()  # pk2d.compare_stage.evaluations: C from its lokus year, A and B compared
    assert (ev["focus"], ev["before"], ev["after"], ev["controls"], ev["did"]) == (c, 1, 2, [a, b], pytest.approx(4.0))
    assert 0 < tr.mc_se < 0.5


def test_latent_scale_truth_follows_the_curve(tiny):
    """scale='latent': the parameters are logit values; the truths are the curve's values and their
    differences (a latent effect's index-point equivalent), weighted by village size in the DiD."""
    vil = _villages([-0.5, 0.0, 0.5], kk=[10, 20, 30])
    sp = SP.SuperPopulation(vil, years=(2023, 2024), trend=0.1, scale="latent",
                            lokus=((vil["kode_desa"][0], 2023, 0.4),))
    tr = SP.truth(sp, pool=POOL, icc=False)
    a, b, c = vil["kode_desa"]
    (curve,) = tr.curves.values()
    e = tr.expected()
    assert e[(1, b)] == pytest.approx(float(curve(0.0))) and e[(2, a)] == pytest.approx(float(curve(-0.5 + 0.1 + 0.4)))
    ch = {v: e[(2, v)] - e[(1, v)] for v in (a, b, c)}
    assert tr.did(a, 1, 2, [b, c]) == pytest.approx(ch[a] - (60 * ch[b] + 90 * ch[c]) / 150)
    assert 2.0 < tr.did(a, 1, 2, [b, c]) < 8.0  # 0.4 logit is a few index points


def test_answers_follow_the_item_probabilities():
    """An item that applies to every family (own latrine, F6) is met with probability
    E[sigmoid(logit(p0) + b theta)], theta ~ N(m, rt_sd^2 + family_sd^2) (Gauss-Hermite), and the
    village mean index over fresh draws is the truth."""
    vil = _villages([0.3], n_rt=100, kk=40)
    sp = SP.SuperPopulation(vil, years=(2023, 2024), trend=0.0, scale="latent")
    tr = SP.truth(sp, pool=POOL, icc=False)
    pop = SP.draw_population(sp, tr, seed=5)
    cfg = sp.config()["model"]["items"]["jamban_sehat"]
    a, b = np.log(cfg[0] / (1 - cfg[0])), cfg[1]
    x, w = np.polynomial.hermite_e.hermegauss(40)
    s = float(sp.total_sd[0])
    share = float(np.sum(w / (1 + np.exp(-(a + b * (0.3 + s * x))))) / np.sqrt(2 * np.pi))
    got = pop.families["jamban_sehat"].astype(float).mean()
    n, n_rt = len(pop.families), 200
    se = np.sqrt(share * (1 - share) / n + (0.25 * b * sp.rt_sd) ** 2 / n_rt)  # families + RT effects
    assert abs(got - share) < 4 * se
    scores = SS.score(pop.families, pop.members)
    rt_means = scores.groupby(["putaran", "kode_rt"])["indeks"].mean()
    se = np.hypot(rt_means.std(ddof=1) / np.sqrt(len(rt_means)), tr.mc_se)  # RTs are the independent units
    assert abs(scores["indeks"].mean() - tr.expected()[(1, vil["kode_desa"][0])]) < 4 * se


# ------------------------------------------------------------------ draws ---
def test_fresh_draws_vary_between_rounds(tiny):
    sp0, tr = tiny
    pop = SP.draw_population(sp0, tr, seed=3)
    means = SS.score(pop.families, pop.members).groupby(["kode_desa", "putaran"])["indeks"].mean().unstack()
    e = tr.index.pivot(index="kode_desa", columns="putaran", values="expected")
    # new families, new RT effects and answers every round: the village means move beyond the truth's change
    assert ((means[2] - means[1]) - (e[2] - e[1])).abs().min() > 0.01
    assert not set(pop.families.loc[pop.families["putaran"] == 1, "id_keluarga"]) & set(
        pop.families.loc[pop.families["putaran"] == 2, "id_keluarga"])
    u = pop.rts.pivot(index="kode_rt", columns="putaran", values="u")
    assert not np.allclose(u[1], u[2])
    sizes = pop.rts.pivot(index="kode_rt", columns="putaran", values="n_families")
    assert (sizes[1] != sizes[2]).any() and (sizes > 0).all().all()
    assert (pop.families.groupby(["putaran", "kode_desa"]).size() == 30).all()
    # persistent RT effects: same marginal SD, correlated across rounds
    wide = SP.SuperPopulation(_villages([72.0] * 4, n_rt=50), rt_persistence=0.9)
    trw = SP.truth(wide, pool=POOL, icc=False)
    uw = SP.draw_population(wide, trw, seed=1).rts.pivot(index="kode_rt", columns="putaran", values="u")
    assert np.corrcoef(uw[1], uw[2])[0, 1] > 0.8 and 0.2 < uw[2].std() < 0.4


def test_same_seed_same_draws_other_seed_differs(tiny, sampled):
    sp, tr = tiny
    p1, p2, p3 = (SP.draw_population(sp, tr, seed=s) for s in ([1, 2], [1, 2], [1, 3]))
    pd.testing.assert_frame_equal(p1.families, p2.families)
    pd.testing.assert_frame_equal(p1.members, p2.members)
    assert not p1.families["id_keluarga"].equals(p3.families["id_keluarga"])
    sps, _, pop = sampled
    s1, s2, s3 = (SS.draw_sample(pop, sps, seed=s) for s in (4, 4, 5))
    pd.testing.assert_frame_equal(s1.families, s2.families)
    assert not np.array_equal(s1.mask, s3.mask)


def test_the_planted_effect_shows_up_on_average(tiny):
    """Over replications the difference-in-differences of the village means (the point estimate of
    pk2d.compare.difference_in_differences) averages to the planted 4 points."""
    sp, tr = tiny
    a, b, c = sp.villages["kode_desa"]
    did = []
    for rep in range(30):
        pop = SP.draw_population(sp, tr, seed=[9, rep])
        m = SS.score(pop.families, pop.members).groupby(["putaran", "kode_desa"])["indeks"].mean()
        did.append((m[(2, c)] - m[(1, c)]) - ((m[(2, a)] + m[(2, b)]) - (m[(1, a)] + m[(1, b)])) / 2)
    did = np.array(did)
    assert abs(did.mean() - 4.0) < 3 * did.std(ddof=1) / np.sqrt(len(did))
    assert did.std(ddof=1) > 0.5  # the village means really vary


# ----------------------------------------------------------------- sample ---
def test_sample_design_and_weights(sampled):
    sp, tr, pop = sampled
    s = SS.draw_sample(pop, sp, SS.SampleDesign(villages_per_stratum=2, rts_per_village=3, families_per_rt=5), seed=1)
    f = s.families
    lokus = sp.lokus[0][0]
    assert set(f.loc[f["kode_desa"] == lokus, "strata"]) == {f"SR.{lokus}"}
    assert f.groupby("strata")["psu"].nunique().to_dict() == {"63.02.01": 2, "63.02.02": 2, f"SR.{lokus}": 1}
    assert (f.groupby(["putaran", "psu"])["ssu"].nunique() == 3).all()
    per_rt = f.groupby(["putaran", "ssu"]).agg(n=("id_keluarga", "size"), K=("populasi_keluarga", "first"))
    assert (per_rt["n"] == np.minimum(per_rt["K"], 5)).all()
    # weight = product of the stages' inverse sampling fractions
    hand = (f["populasi_psu"] / np.where(f["strata"].str.startswith("SR."), 1, 2)) * (f["populasi_ssu"] / 3) * (
        f["populasi_keluarga"] / np.minimum(f["populasi_keluarga"], 5))
    assert np.allclose(f["bobot"], hand)
    assert set(s.villages.loc[s.villages["selected"], "kode_desa"]) == set(f["psu"])
    # the members are exactly the sampled families' members
    key = set(zip(f["putaran"], f["id_keluarga"]))
    assert set(zip(s.members["putaran"], s.members["id_keluarga"])) == key
    scores = SS.score(f, s.members)
    assert {"bobot", "strata", "psu", *SP.DESIGN_COLUMNS} <= set(scores.columns)


def test_weights_sum_to_the_population_per_stratum(sampled):
    """E[sum of weights] = families in the stratum's population (Horvitz-Thompson), within the
    Monte-Carlo error of 150 samples."""
    sp, tr, pop = sampled
    stratum = {c: (f"SR.{c}" if c == sp.lokus[0][0] else k) for c, k in zip(sp.villages["kode_desa"],
                                                                          sp.villages["kode_kecamatan"])}
    N = pop.families.assign(h=pop.families["kode_desa"].map(stratum)).groupby(["putaran", "h"]).size()
    sums = pd.DataFrame([SS.draw_sample(pop, sp, seed=[2, r]).families.groupby(["putaran", "strata"])["bobot"].sum()
                         for r in range(150)])
    mean, se = sums.mean(), sums.std(ddof=1) / np.sqrt(len(sums))
    z = (mean - N.reindex(mean.index).to_numpy()) / se.replace(0, np.nan)
    assert (z.abs().fillna(0) < 4).all(), z
    assert (sums.std() > 0).all()  # a real sample: the totals vary


def test_raw_exports_go_through_the_clean_stage(tiny, sampled, tmp_path):
    """write_raw -> pk2d.cleaning.clean -> score gives the fast path's village means and weights."""
    from pk2d.cleaning import clean

    sp, tr = tiny
    pop = SP.draw_population(sp, tr, seed=8)
    SS.write_raw(pop, sp, tmp_path / "raw")
    res = clean(tmp_path / "raw", tmp_path / "out", key=b"k", today="2026-01-01")
    assert len(res.families) == len(pop.families) and len(res.rejects) == 0
    by = ["putaran", "kode_desa"]
    fast = SS.score(pop.families, pop.members).groupby(by)["indeks"].mean()
    slow = SS.score(res.families, res.members).groupby(by)["indeks"].mean()
    pd.testing.assert_series_equal(fast, slow, check_exact=False, atol=1e-9)
    sps, _, popu = sampled
    s = SS.draw_sample(popu, sps, seed=3)
    SS.write_raw(popu, sps, tmp_path / "raw_s", sample=s)
    res = clean(tmp_path / "raw_s", tmp_path / "out_s", key=b"k", today="2026-01-01")
    got = res.families.groupby(by)["bobot"].sum()
    pd.testing.assert_series_equal(got, s.families.groupby(by)["bobot"].sum(), check_exact=False, rtol=1e-9)
    assert set(res.families["psu"]) == set(s.families["psu"])


def test_bad_parameters_are_clear():
    with pytest.raises(SynthError, match="lacks"):
        SP.SuperPopulation(_villages([70.0]).drop(columns="level"))
    with pytest.raises(SynthError, match="not villages"):
        SP.SuperPopulation(_villages([70.0]), lokus=(("63.99.01.2001", 2023, 1.0),))
    with pytest.raises(SynthError, match="scale"):
        SP.SuperPopulation(_villages([70.0]), scale="points")
