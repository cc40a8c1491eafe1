"""pk2d.design beyond the R estimates: weights R produced, replicate weights, flags and clear errors."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pk2d.design import Design, DesignError, design_from_scores
from pk2d.replicate import ReplicateDesign

FIX = Path(__file__).parent / "fixtures" / "survey"


@pytest.fixture(scope="module")
def clus1() -> pd.DataFrame:
    return pd.read_csv(FIX / "apiclus1.csv")


@pytest.fixture(scope="module")
def strat() -> pd.DataFrame:
    return pd.read_csv(FIX / "apistrat.csv")


POP_STYPE = {"E": 4421, "H": 755, "M": 1018}
POP_SCH = {"No": 1072, "Yes": 5122}


def test_calibrated_weights_equal_rs(clus1):
    r = pd.read_csv(FIX / "calibrated_weights.csv")
    assert (r["row"] == clus1["row"]).all()
    des = Design(clus1, ids="dnum", weights="pw")
    assert des.poststratify("stype", POP_STYPE).weights == pytest.approx(r["w_ps"].to_numpy(), rel=1e-12)
    assert des.rake({"stype": POP_STYPE, "sch_wide": POP_SCH}).weights == pytest.approx(r["w_rake"], rel=1e-10)
    conv = des.rake({"stype": POP_STYPE, "sch_wide": POP_SCH}, maxit=100, epsilon=1e-13)
    assert conv.weights == pytest.approx(r["w_rake_conv"], rel=1e-10)
    lin = des.calibrate(["stype", "api99"], {"(Intercept)": 6194, "stypeH": 755, "stypeM": 1018, "api99": 3914069})
    assert lin.weights == pytest.approx(r["w_lin"], rel=1e-10)
    # and the calibrated totals are met (an independent check of the weights)
    for k, v in POP_STYPE.items():
        assert conv.weights[clus1["stype"] == k].sum() == pytest.approx(v, rel=1e-9)


@pytest.mark.parametrize("case, kind, data", [("clus1_jk1", "JK1", "clus1"), ("strat_jkn", "JKn", "strat"),
                                               ("strat_fpc_jkn", "JKn", "strat_fpc")])
def test_jackknife_weights_equal_rs(case, kind, data, clus1, strat):
    frame = clus1 if data == "clus1" else strat
    kwargs = {"ids": "dnum"} if data == "clus1" else {"strata": "stype"}
    if data == "strat_fpc":
        kwargs["fpc"] = "fpc"
    rep = Design(frame, weights="pw", **kwargs).replicates(kind)
    r = pd.read_csv(FIX / f"repw_{case}.csv").filter(like="rep").to_numpy()
    info = pd.read_csv(FIX / "replicates.csv").set_index("case").loc[case]
    # same replicates up to their order: compare the sorted columns
    ours = rep.rep[:, np.lexsort(rep.rep[::-1])]
    theirs = r[:, np.lexsort(r[::-1])]
    assert ours == pytest.approx(theirs, rel=1e-12)
    assert rep.scale == pytest.approx(float(info["scale"]), rel=1e-12)
    rsc = np.array([float(v) for v in str(info["rscales"]).split(";")])
    assert np.sort(rep.rscales) == pytest.approx(np.sort(rsc), rel=1e-12)


def test_bootstrap_replicates_estimate_the_linearised_variance(strat):
    des = Design(strat, strata="stype", weights="pw")
    lin = des.mean("api00").se[0]
    boot = des.replicates("bootstrap", replicates=2000, seed=3).mean("api00").se[0]
    assert boot == pytest.approx(lin, rel=0.08)  # Rao-Wu is unbiased for it; 2000 draws: ~3 % MC error


def test_one_psu_area_is_flagged_not_printed_with_se_zero():
    # a village whose sample holds a single RT: its mean has no design-based SE
    d = pd.DataFrame({"desa": ["a"] * 4 + ["b"] * 6, "rt": ["a1"] * 4 + ["b1", "b1", "b2", "b2", "b3", "b3"],
                      "y": [70.0, 80.0, 75.0, 71.0, 60.0, 65.0, 70.0, 66.0, 59.0, 63.0], "w": 5.0})
    r = Design(d, ids="rt", weights="w").mean("y", by="desa").set_index("desa")
    assert np.isnan(r.loc["a", "se"]) and np.isnan(r.loc["a", "ci_low"])
    assert r.loc["a", "reliability"] == "no_se" and r.loc["a", "n_psu"] == 1
    assert r.loc["a", "estimate"] == pytest.approx(74.0)
    # the other village has three RTs: an SE and an interval with 2 df
    assert r.loc["b", "se"] > 0 and r.loc["b", "df"] == 2 and r.loc["b", "reliability"] == "ok"


def test_rse_flags_follow_the_bps_rule():
    # proportions near 0: RSE large -> care / unreliable
    rng = np.random.default_rng(1)
    d = pd.DataFrame({"psu": np.repeat(np.arange(20), 10)})
    d["rare"] = (rng.random(len(d)) < 0.02).astype(float)
    d["common"] = (rng.random(len(d)) < 0.6).astype(float)
    des = Design(d, ids="psu")
    rare, common = des.mean("rare"), des.mean("common")
    assert common.reliability[0] == "ok"
    assert rare.rse[0] > 0.25 and rare.reliability[0] in ("care", "unreliable")
    assert rare.reliability[0] == ("unreliable" if rare.rse[0] > 0.5 else "care")


def test_proportion_near_zero_stays_inside_the_unit_interval():
    d = pd.DataFrame({"psu": np.repeat(np.arange(10), 20), "y": 0.0})
    d.loc[[3, 57], "y"] = 1.0
    p = Design(d, ids="psu").proportion("y")
    assert 0 < p.ci_low[0] < p.estimate[0] < p.ci_high[0] < 1
    m = Design(d, ids="psu").proportion("y", method="mean")
    assert m.ci_low[0] < 0  # the Wald interval would cross 0; logit does not
    zero = Design(d.assign(y=0.0), ids="psu").proportion("y")
    assert zero.ci_low[0] == 0 and zero.ci_high[0] == pytest.approx(1 - 0.025 ** (1 / 200))


def test_census_has_no_sampling_error():
    d = pd.DataFrame({"rt": [1, 1, 2, 2], "y": [1.0, 2.0, 3.0, 6.0]})
    r = Design(d, ids="rt", census=True).mean("y")
    assert r.se[0] == 0 and r.ci_low[0] == r.ci_high[0] == 3.0 and r.reliability[0] == "census"


@pytest.mark.parametrize("kwargs, frame_change, message", [
    ({"ids": "psu", "strata": "h", "nest": False}, {"psu": [1, 1, 2, 2, 1, 3]}, "lies in more than one stratum"),
    ({"strata": "h", "fpc": "N"}, {"N": [2, 2, 2, 10, 10, 10]}, "population size of 2"),
    ({"strata": "h", "fpc": "N"}, {"N": [0.5, 0.5, 0.5, 20, 20, 20]}, "mixes sampling fractions"),
    ({"strata": "h", "fpc": "N"}, {"N": [10, 11, 10, 20, 20, 20]}, "varies within stratum A"),
    ({"ids": ["psu", "ssu"], "fpc": "N"}, {}, "1 column"),
    ({"ids": "psu", "weights": "w"}, {"w": [1, 1, -1, 1, 1, 1]}, "finite and >= 0"),
])
def test_inconsistent_designs_are_refused_clearly(kwargs, frame_change, message):
    d = pd.DataFrame({"h": ["A", "A", "A", "B", "B", "B"], "psu": [1, 1, 2, 3, 4, 4], "ssu": [1, 2, 1, 1, 1, 2],
                      "y": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "N": 10.0, "w": 1.0})
    for k, v in frame_change.items():
        d[k] = v
    with pytest.raises(DesignError, match=message) as err:
        Design(d, **kwargs)
    assert err.value.exit_code == 2


def test_lonely_stratum_fails_by_default_and_names_it():
    d = pd.DataFrame({"h": ["A", "A", "B"], "y": [1.0, 2.0, 3.0]})
    with pytest.raises(DesignError, match="stratum B has only one PSU at stage 1"):
        Design(d, strata="h").mean("y")
    assert Design(d, strata="h", lonely_psu="remove").mean("y").se[0] > 0


def test_design_from_the_contract_columns():
    f = pd.DataFrame({"bobot": 2.0, "strata": ["k1", "k1", "k2", "k2"], "psu": ["d1", "d2", "d3", "d4"],
                      "populasi_psu": [10.0, 10.0, 8.0, 8.0], "indeks": [60.0, 70.0, 65.0, 75.0]})
    des = design_from_scores(f)
    assert des.columns["fpc"] == ["populasi_psu"] and not des.census
    # stratified SRSWOR by hand: per stratum (1 - n/N) n/(n-1) sum (w y_j - mean)^2 over its PSUs
    r = des.total("indeks")
    v_k1 = (1 - 2 / 10) * (2 / 1) * ((120 - 130) ** 2 + (140 - 130) ** 2)
    v_k2 = (1 - 2 / 8) * (2 / 1) * ((130 - 140) ** 2 + (150 - 140) ** 2)
    assert r.se[0] == pytest.approx(np.sqrt(v_k1 + v_k2), rel=1e-12)
    with pytest.raises(DesignError, match="more than one stratum"):
        design_from_scores(f.assign(psu=["d1", "d2", "d1", "d4"]))
    assert design_from_scores(f.drop(columns="bobot")).census


def test_replicate_design_from_user_weights_matches_formula():
    # three replicates with a stated scale: var = scale * sum (theta_r - mean)^2
    d = pd.DataFrame({"y": [1.0, 2.0, 3.0, 4.0], "w": 1.0, "r1": [0, 2, 1, 1.0], "r2": [2, 0, 1, 1.0],
                      "r3": [1, 1, 0, 2.0]})
    rep = ReplicateDesign(d, weights="w", repweights=["r1", "r2", "r3"], scale=0.5)
    thetas = np.array([(0 + 4 + 3 + 4) / 4, (2 + 0 + 3 + 4) / 4, (1 + 2 + 0 + 8) / 4])
    assert rep.mean("y").se[0] == pytest.approx(np.sqrt(0.5 * ((thetas - thetas.mean()) ** 2).sum()))


def test_clean_stage_refuses_an_inconsistent_design_naming_the_file():
    from pk2d.cleaning import _check_designs
    from pk2d.errors import InputFileError

    fam = pd.DataFrame({"putaran": [1, 1, 1, 1], "bobot": 3.0, "strata": ["k1", "k1", "k2", "k2"],
                        "psu": ["d1", "d2", "d3", "d4"], "populasi_psu": [1.0, 1.0, 9.0, 9.0]})
    files = np.array(["a_keluarga.csv"] * 4)
    with pytest.raises(InputFileError, match=r"a_keluarga.csv: round 1: .*stratum k1 at stage 1 has 2 sampled "
                                             r"units but a population size of 1") as err:
        _check_designs(fam, files)
    assert err.value.column == "populasi_psu" and err.value.exit_code == 2
    _check_designs(fam.assign(populasi_psu=[2.0, 2.0, 9.0, 9.0]), files)  # consistent: no error
    _check_designs(fam.drop(columns=["bobot", "strata", "psu", "populasi_psu"]), files)  # a census


def test_conditional_domains_give_the_within_village_variance():
    # village a: 2 of its 4 RTs sampled (one family each, y = 3 and 5): given the village, the mean 4
    # has the SRSWOR variance (1 - 2/4) * s^2 / 2 with s^2 = 2 -> 0.5. R's svyrecvar multiplies it by
    # the village's sampling fraction 3/30 (unconditional): 0.05.
    d = pd.DataFrame({"desa": ["a", "a", "b", "b", "c", "c"], "rt": [1, 2, 1, 2, 1, 2],
                      "y": [3.0, 5.0, 4.0, 6.0, 8.0, 2.0], "w": [10.0] * 6, "N1": [30] * 6, "N2": [4] * 6})
    kw = dict(ids=["desa", "rt"], weights="w", fpc=["N1", "N2"])
    r_uncond = Design(d, **kw).mean("y", by="desa").set_index("desa")
    r_cond = Design(d, **kw, conditional_domains=True).mean("y", by="desa").set_index("desa")
    assert r_cond.loc["a", "se"] == pytest.approx(np.sqrt(0.5), rel=1e-12)
    assert r_uncond.loc["a", "se"] == pytest.approx(np.sqrt(0.05), rel=1e-12)
    # a domain across villages is not conditioned: both agree
    assert Design(d, **kw, conditional_domains=True).mean("y").se[0] == pytest.approx(
        Design(d, **kw).mean("y").se[0], rel=1e-12)


@pytest.mark.parametrize("rule, se_mean, se_total", [("adjust", 0.39840358602, 1341.43218704090),
                                                     ("average", 0.397487095289, 1328.47653992),
                                                     ("remove", 0.397459080838, 1328.44114301)])
def test_strata_per_stage_match_r(rule, se_mean, se_total):
    # strata at both stages, SSU codes repeated across stage-2 strata (R reads them within their
    # stratum with nest = TRUE); numbers from tests/fixtures/survey/strata_per_stage.R
    d = pd.read_csv(FIX / "strata_per_stage.csv")
    des = Design(d, ids=["psu", "ssu"], strata=["h1", "h2"], fpc=["N1", "N2"], weights="w", lonely_psu=rule)
    assert des.mean("y").estimate[0] == pytest.approx(14.76293041435, rel=1e-10)
    assert des.mean("y").se[0] == pytest.approx(se_mean, rel=1e-9)
    assert des.total("y").se[0] == pytest.approx(se_total, rel=1e-9)


def test_family_stage_column_is_read_as_the_last_stage():
    f = pd.DataFrame({"bobot": 6.0, "strata": ["k", "k", "k", "k"], "psu": ["d1", "d1", "d2", "d2"],
                      "populasi_psu": 5.0, "populasi_keluarga": 12.0, "indeks": [60.0, 70.0, 65.0, 75.0]})
    des = design_from_scores(f)
    assert len(des.stages) == 2 and des.columns["fpc"] == ["populasi_psu", "populasi_keluarga"]
    with pytest.raises(DesignError, match="'populasi_ssu' but no 'ssu'"):
        design_from_scores(f.rename(columns={"populasi_keluarga": "populasi_ssu"}))


def test_sample_comparisons_rest_on_the_rts_of_a_village_psu():
    # villages are PSUs (3 of 6 per stratum), RTs then families sampled within: a focus village's
    # contrast has its own RTs - 1 degrees of freedom, and the bootstrap resamples RTs within villages
    from pk2d.compare_design import cluster_bootstrap_means, design_diff, model_design

    rng = np.random.default_rng(5)
    rows = []
    for h in range(4):
        for v in range(3):
            for r in range(3):
                for _ in range(6):
                    rows.append({"strata": f"k{h}", "psu": f"k{h}v{v}", "ssu": f"k{h}v{v}r{r}", "kode_desa": f"k{h}v{v}",
                                 "kode_rt": f"k{h}v{v}r{r}", "putaran": 1, "populasi_psu": 6.0, "populasi_ssu": 5.0,
                                 "populasi_keluarga": 20.0, "indeks": 60 + 3 * v + rng.normal(0, 5)})
    f = pd.DataFrame(rows)
    f["bobot"] = 2.0 * 5 / 3 * 20 / 6
    des = model_design(f)
    y = f["indeks"].to_numpy()
    r = design_diff(des, y, (f["kode_desa"] == "k0v0").to_numpy(float))
    assert r["df"] == 2  # 3 RTs of the focus village - 1
    g = pd.factorize(f["kode_desa"])[0]
    reps = cluster_bootstrap_means(des, f, y, g, n_boot=400, seed=1)
    assert np.isfinite(reps).all() and (reps.std(0) > 0).all()
