"""Area estimates: hand-computed census values for both aggregation orders, and
the sample-design path checked against an independent ratio linearisation."""
import numpy as np
import pandas as pd
import pytest

from pk2d.areas import estimate_areas
from pk2d.catalogue import load_catalogue
from pk2d.score import score_families
from tests._families import families, members


def _village(order):
    cat = load_catalogue("ikk").with_settings(aggregation_order=order)
    s = score_families(families(), members(), cat)
    return estimate_areas(s, cat), s


def test_family_first_census_by_hand():
    est, _ = _village("family_first")
    desa = est.areas.query("level == 'desa'").iloc[0]
    # mean of the two family indices 72.6667 and 65.8333 (tests/test_score.py)
    assert desa["index"] == pytest.approx(((200 / 3 * 2 + 75 + 80 + 75) / 5 + (200 / 3 + 100 / 6 + 180) / 4) / 2)
    assert desa["se"] == 0 and desa["ci_low"] == desa["index"] == desa["ci_high"]
    assert bool(desa["census"]) and desa["n_families"] == 2
    assert desa["category_label"] == "Cukup Responsif Gender dan Hak Anak"
    assert set(est.areas["level"]) == {"rt", "desa", "kecamatan", "kabupaten", "provinsi"}


def test_indicator_first_census_by_hand():
    est, _ = _village("indicator_first")
    desa = est.areas.query("level == 'desa'").iloc[0]
    # shares over applicable families (see comments): legalitas (1+0+1)/3, fisik 4/6,
    # ekonomi 4.5/8, sos-psi (P5 applies to nobody) 4/5, sos-bud 4.5/6
    expected = 100 * (2 / 3 + 4 / 6 + 4.5 / 8 + 4 / 5 + 4.5 / 6) / 5
    assert desa["index"] == pytest.approx(expected)
    comp = est.components.query("level == 'desa' and component_id == 'ekonomi'").iloc[0]
    assert comp["estimate"] == pytest.approx(100 * 4.5 / 8)
    b3 = est.components.query("level == 'desa' and component_id == 'B3'").iloc[0]
    assert b3["estimate"] == pytest.approx(50.0) and b3["n_applicable"] == 2
    p5 = est.components.query("level == 'desa' and component_id == 'P5'").iloc[0]
    assert p5["n_applicable"] == 0 and np.isnan(p5["estimate"])


def _sample_scores(n_per=40, seed=3):
    """Many families in two villages, 4 strata x 3 PSUs, unequal weights."""
    rng = np.random.default_rng(seed)
    base_f, base_m = families(), members()
    fams, mems = [], []
    for i in range(n_per * 2):
        f, m = families(ids=(f"A{i}", f"B{i}")), members(ids=(f"A{i}", f"B{i}"))
        desa = "63.02.06.2001" if i < n_per else "63.02.06.2002"
        f["kode_desa"] = desa
        f["kode_rt"] = desa + ".001"
        flip = rng.random(len(f)) < 0.5
        f.loc[flip, "jamban_sehat"] = ~f.loc[flip, "jamban_sehat"]
        f.loc[rng.random(len(f)) < 0.4, "punya_tabungan"] = True
        f["bobot"] = rng.uniform(5, 30, len(f))
        f["strata"] = f"S{i % 4}"
        f["psu"] = f"S{i % 4}-P{i % 3}"  # PSU codes are unique across strata (the contract)
        fams.append(f)
        mems.append(m)
    return pd.concat(fams, ignore_index=True), pd.concat(mems, ignore_index=True)


def _reference_ratio_se(y, w, strata, psu, dom):
    """Textbook loop: linearised SE of a domain ratio sum(w y d)/sum(w d), with-replacement PSUs."""
    N = sum(wi for wi, di in zip(w, dom) if di)
    R = sum(wi * yi for wi, yi, di in zip(w, y, dom) if di) / N
    totals = {}
    for yi, wi, h, j, di in zip(y, w, strata, psu, dom):
        z = wi * (yi - R) / N if di else 0.0
        totals.setdefault(h, {}).setdefault(j, 0.0)
        totals[h][j] += z
    var = 0.0
    for h, ps in totals.items():
        vals = list(ps.values())
        m = sum(vals) / len(vals)
        var += len(vals) / (len(vals) - 1) * sum((v - m) ** 2 for v in vals)
    return R, var ** 0.5


def test_sample_design_family_first_matches_loop_reference():
    f, m = _sample_scores()
    s = score_families(f, m, "ikk")
    est = estimate_areas(s, "ikk", levels=("desa",))
    assert not est.areas["census"].any()
    row = est.areas.query("code == '63.02.06.2002'").iloc[0]
    dom = (s["kode_desa"] == "63.02.06.2002").tolist()
    R, se = _reference_ratio_se(s["indeks"].tolist(), s["bobot"].tolist(), s["strata"].tolist(),
                                s["psu"].tolist(), dom)
    assert row["index"] == pytest.approx(R) and row["se"] == pytest.approx(se, rel=1e-9)
    assert row["ci_low"] < row["index"] < row["ci_high"]


def test_sample_design_indicator_first_se_matches_numeric_jacobian():
    """The pseudo-value SE equals the delta method with a numerical Jacobian."""
    f, m = _sample_scores()
    cat = load_catalogue("ikk").with_settings(aggregation_order="indicator_first")
    s = score_families(f, m, cat)
    est = estimate_areas(s, cat, levels=("desa",))
    row = est.areas.query("code == '63.02.06.2001'").iloc[0]
    ids = [i.id for i in cat.indicators]
    d = s["kode_desa"] == "63.02.06.2001"
    X = s[ids].astype("float64").to_numpy(na_value=np.nan)
    w = s["bobot"].to_numpy()

    def composite(Rk):
        dims = []
        for dim in cat.dimensions:
            k = [j for j, i in enumerate(cat.indicators) if i.dimension == dim.id and not np.isnan(Rk[j])]
            dims.append(np.mean(Rk[k]))
        return 100 * np.mean(dims)

    A = np.array([np.sum(w[d] * ~np.isnan(X[d, k])) for k in range(len(ids))])
    Rk = np.array([np.nansum(w[d] * X[d, k]) / A[k] if A[k] > 0 else np.nan for k in range(len(ids))])
    assert row["index"] == pytest.approx(composite(Rk))
    # delta method: gradient by finite differences, influence of each ratio, loop variance
    grad = np.zeros(len(ids))
    for k in range(len(ids)):
        if np.isnan(Rk[k]):
            continue
        e = np.zeros(len(ids)); e[k] = 1e-6
        grad[k] = (composite(Rk + e) - composite(Rk - e)) / 2e-6
    z = np.zeros(len(s))
    for k in range(len(ids)):
        if grad[k] == 0:
            continue
        pres = d.to_numpy() & ~np.isnan(X[:, k])
        z += np.where(pres, w * (np.nan_to_num(X[:, k]) - Rk[k]) / A[k], 0.0) * grad[k]
    var = 0.0
    for h in s["strata"].unique():
        in_h = (s["strata"] == h).to_numpy()
        tot = pd.Series(z[in_h]).groupby(s.loc[in_h, "psu"].to_numpy()).sum().to_numpy()
        var += len(tot) / (len(tot) - 1) * np.sum((tot - tot.mean()) ** 2)
    assert row["se"] == pytest.approx(np.sqrt(var), rel=1e-5)


@pytest.mark.parametrize("order", ["family_first", "indicator_first"])
@pytest.mark.parametrize("rule", ["reweight", "zero", "full"])
def test_census_sums_of_partitions_give_estimate_areas(rule, order):
    """Totals of partitions cut anywhere (even through an RT) combine into every column and row of
    estimate_areas for a census: the in-process estimator is the independent reference here."""
    from pk2d.areas import areas_from_census_sums, census_sums

    f, m = _sample_scores(n_per=10)
    cat = load_catalogue("ikk").with_settings(not_applicable=rule, aggregation_order=order)
    s = score_families(f, m, cat).drop(columns=["bobot"], errors="ignore")
    whole = estimate_areas(s, cat)
    parts = [census_sums(p, cat) for p in (s.iloc[:37], s.iloc[37:90], s.iloc[90:])]
    got = areas_from_census_sums(pd.concat(parts, ignore_index=True), cat, design="auto")
    assert len(got.areas) == len(whole.areas) > 0 and len(got.components) == len(whole.components)
    pd.testing.assert_frame_equal(got.areas, whole.areas, check_exact=False, rtol=1e-12, atol=1e-12)
    pd.testing.assert_frame_equal(got.components, whole.components, check_exact=False, rtol=1e-12, atol=1e-12)
    assert got.settings == whole.settings


@pytest.mark.parametrize("order", ["family_first", "indicator_first"])
@pytest.mark.parametrize("rule", ["reweight", "zero", "full"])
def test_totals_rolled_up_to_a_level_give_the_levels_above_it(rule, order):
    """What the index stage's tasks hand the command (their totals added up to the kabupaten) gives the
    province rows of estimate_areas on all the scores; the same from the desa up."""
    from pk2d.areas import LEVELS, areas_from_census_sums, census_sums, roll_up

    f, m = _sample_scores(n_per=10)
    cat = load_catalogue("ikk").with_settings(not_applicable=rule, aggregation_order=order)
    s = score_families(f, m, cat).drop(columns=["bobot"], errors="ignore")
    whole = estimate_areas(s, cat)
    sums = census_sums(s, cat)
    for level in ("kabupaten", "desa"):
        up = roll_up(sums, level)
        assert len(up) == s.groupby(["putaran", LEVELS_CODE[level]]).ngroups
        levels = LEVELS[LEVELS.index(level):]
        got = areas_from_census_sums(up, cat, levels=levels, design="auto")
        got.areas["name"] = got.areas["name"].astype("str")  # RT names make the whole column "string"
        want_a = whole.areas[whole.areas["level"].isin(levels)].reset_index(drop=True).astype({"name": "str"})
        want_c = whole.components[whole.components["level"].isin(levels)].reset_index(drop=True)
        pd.testing.assert_frame_equal(got.areas, want_a, check_exact=False, rtol=1e-12, atol=1e-12)
        pd.testing.assert_frame_equal(got.components, want_c, check_exact=False, rtol=1e-12, atol=1e-12)
        assert got.settings["designs"] == whole.settings["designs"]


LEVELS_CODE = {"kabupaten": "kode_kabupaten", "desa": "kode_desa"}
