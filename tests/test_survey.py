"""Tests of pk2d.survey against published values, samplics, an independent loop and hand sums.

NHANES II fixture: tests/fixtures/nhanes2_subset.csv.gz (see nhanes2_README.md).
Design everywhere: strata ``stratid``, PSU ``psuid`` (nested in stratum), weight ``finalwgt``.
"""
from __future__ import annotations

import doctest
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import pk2d.survey as survey
from pk2d.errors import Pk2dError
from pk2d.survey import survey_mean, survey_ratio

FIXTURE = Path(__file__).parent / "fixtures" / "nhanes2_subset.csv.gz"
DESIGN = {"weight": "finalwgt", "strata": "stratid", "psu": "psuid"}


@pytest.fixture(scope="module")
def nhanes() -> pd.DataFrame:
    return pd.read_csv(FIXTURE)


def textbook(data, y, x=None, *, domain=lambda row: True, weight=None, strata=None, psu=None,
             lonely="fail"):
    """Deliberately naive reference: explicit loops over rows, strata and PSUs (no pandas/numpy).

    Ratio R = sum(w y)/sum(w x) over valid domain rows; z_i = w_i (y_i - R x_i)/sum(w x) for
    those rows and 0 for every other row; PSU totals over the FULL design; per stratum
    n_h/(n_h-1) * sum_j (z_hj - mean_h)^2; a lonely stratum adds z^2 ("adjust") or 0 ("remove").
    """
    rows = data.to_dict("records")

    def parts(row):
        w = 1.0 if weight is None else float(row[weight])
        yy = float(row[y])
        xx = 1.0 if x is None else float(row[x])
        valid = domain(row) and not math.isnan(yy) and not math.isnan(xx)
        return w, yy, xx, valid

    num = den = 0.0
    for row in rows:
        w, yy, xx, valid = parts(row)
        if valid:
            num += w * yy
            den += w * xx
    ratio = num / den
    psu_totals: dict = {}
    for i, row in enumerate(rows):
        key = (None if strata is None else row[strata], i if psu is None else row[psu])
        w, yy, xx, valid = parts(row)
        psu_totals[key] = psu_totals.get(key, 0.0) + (w * (yy - ratio * xx) / den if valid else 0.0)
    by_stratum: dict = {}
    for (h, _), total in psu_totals.items():
        by_stratum.setdefault(h, []).append(total)
    var = 0.0
    for totals in by_stratum.values():
        n_h = len(totals)
        if n_h == 1:
            assert lonely != "fail"
            var += totals[0] ** 2 if lonely == "adjust" else 0.0
            continue
        mean = sum(totals) / n_h
        var += n_h / (n_h - 1) * sum((t - mean) ** 2 for t in totals)
    return ratio, math.sqrt(var)


# ---------------------------------------------------------------- NHANES II: published values

def test_nhanes2_zinc_matches_published_reference(nhanes):
    # Published R survey / Stata `svy: mean zinc` on NHANES II: 87.182067, SE 0.494483 (9189 obs).
    r = survey_mean(nhanes, "zinc", **DESIGN)
    assert len(r) == 1
    assert r.estimate[0] == pytest.approx(87.182067, abs=1e-6)
    assert r.se[0] == pytest.approx(0.494483, abs=1e-6)
    assert r.n[0] == 9189
    assert r.df[0] == 62 - 31
    t = stats.t.ppf(0.975, 31)
    assert r.ci_low[0] == pytest.approx(r.estimate[0] - t * r.se[0], rel=1e-12)
    assert r.ci_high[0] == pytest.approx(r.estimate[0] + t * r.se[0], rel=1e-12)
    assert not r.census[0]
    assert list(r.columns) == ["n", "estimate", "se", "ci_low", "ci_high", "df", "n_psu", "census", "rse", "reliability"]


# Reference values computed with samplics 0.6.1 (PyPI), TaylorEstimator(PopParam.mean or .ratio)
# .estimate(y, samp_weight=finalwgt, stratum=stratid, psu=psuid, domain=<by>, remove_nan=True)
# on this same file; (estimate, se, ci_low, ci_high) with its t(31) interval, full precision.
SAMPLICS = {
    ("zinc", None, None): {None: (87.1820670506954, 0.49448268618504,
                                  86.1735629632107, 88.19057113818)},
    ("zinc", None, "race"): {
        1: (87.4953889193077, 0.47919633060507, 86.5180615595748, 88.4727162790405),
        2: (85.0857443309065, 1.16520869262503, 82.7092855344397, 87.4622031273732),
        3: (83.5709102186042, 1.58546272005664, 80.3373376822885, 86.80448275492)},
    ("zinc", None, "region"): {
        1: (87.2253475149343, 0.423129490641676, 86.3623692292037, 88.0883258006648),
        2: (87.3366734872968, 0.781444863394797, 85.7429061807857, 88.9304407938079),
        3: (86.2893965521635, 0.771523021621975, 84.715864975361, 87.8629281289659),
        4: (87.905498065444, 1.52256106484529, 84.8002143007324, 91.0107818301557)},
    ("highbp", None, None): {None: (0.368743298310302, 0.01432012274579,
                                    0.339537215416222, 0.397949381204381)},
    ("highbp", None, "race"): {
        1: (0.360819270214429, 0.01533946352748, 0.329534228089632, 0.392104312339225),
        2: (0.435142041869525, 0.02118877742296, 0.391927245402695, 0.478356838336356),
        3: (0.393049817969177, 0.05689304042634, 0.277015697013288, 0.509083938925067)},
    ("diabetes", None, None): {None: (0.03428525679025, 0.001819726372991,
                                      0.03057390038377, 0.03799661319673)},
    ("diabetes", None, "region"): {
        1: (0.0315320086061, 0.002814916931351, 0.02579094767412, 0.03727306953808),
        2: (0.03369220181524, 0.00268250669464, 0.02822119334147, 0.039163210289),
        3: (0.04102351142908, 0.004891242291313, 0.031047757006368, 0.0509992658518),
        4: (0.030433965227412, 0.003442838204768, 0.02341225041502, 0.0374556800398)},
    ("highlead", None, "race"): {  # samplics' race-3 interval goes below 0; ours is clipped
        1: (0.05851487757123, 0.005590052835882, 0.04711388964638, 0.06991586549608),
        2: (0.09651825752846, 0.01989631681671, 0.05593945184701, 0.137097063209911),
        3: (0.04925443873273, 0.02498187495762, 0.0, 0.100205308624988)},
    ("zinc", "highbp", None): {None: (235.086771576474, 9.79203415154828,
                                      215.115786256818, 255.057756896129)},
    ("highlead", "highbp", "race"): {
        1: (0.165697294051416, 0.01624867661762, 0.132557899603643, 0.198836688499189),
        2: (0.202542645846737, 0.04983124970846, 0.10091114201559, 0.304174149677885),
        3: (0.116894590397603, 0.0480363804003, 0.01892374665499, 0.214865434140219)},
}


def _estimate(data, y, x, by, **kwargs):
    if x is None:
        return survey_mean(data, y, by=by, **kwargs)
    return survey_ratio(data, y, x, by=by, **kwargs)


@pytest.mark.parametrize("case", list(SAMPLICS), ids=lambda c: "-".join(str(p) for p in c))
def test_nhanes2_matches_samplics_and_textbook_loop(nhanes, case):
    y, x, by = case
    result = _estimate(nhanes, y, x, by, **DESIGN)
    expected = SAMPLICS[case]
    assert len(result) == len(expected)
    for _, row in result.iterrows():
        key = None if by is None else row[by]
        est, se, low, high = expected[key]
        assert row.estimate == pytest.approx(est, rel=1e-10, abs=1e-12)
        assert row.se == pytest.approx(se, rel=1e-9)
        in_domain = (lambda r: True) if by is None else (lambda r, k=key: r[by] == k)
        ref_est, ref_se = textbook(nhanes, y, x, domain=in_domain, **DESIGN)
        assert row.estimate == pytest.approx(ref_est, rel=1e-12)
        assert row.se == pytest.approx(ref_se, rel=1e-9)
        valid = nhanes[y].notna() & (True if x is None else nhanes[x].notna())
        mask = valid if by is None else valid & (nhanes[by] == key)
        assert row.n == mask.sum()
        # samplics' interval uses the whole design's df (31); pk2d uses the domain's, as R's
        # degf(subset(des, ...)): PSUs minus strata holding rows of the domain.
        inside = nhanes[mask]
        df_domain = inside.groupby(["stratid", "psuid"]).ngroups - inside["stratid"].nunique()
        assert row.df == df_domain
        if df_domain == 31:
            assert row.ci_low == pytest.approx(low, rel=1e-9, abs=1e-12)
            assert row.ci_high == pytest.approx(high, rel=1e-9)
        half = stats.t.ppf(0.975, df_domain) * se
        binary = nhanes[y].dropna().isin([0, 1]).all() and x is None
        lo, hi = (max(est - half, 0.0), min(est + half, 1.0)) if binary else (est - half, est + half)
        assert row.ci_low == pytest.approx(lo, rel=1e-9, abs=1e-12)
        assert row.ci_high == pytest.approx(hi, rel=1e-9)


def test_nhanes2_two_by_columns_match_textbook_loop(nhanes):
    result = survey_mean(nhanes, "zinc", by=["region", "race"], **DESIGN)
    assert list(result.columns[:2]) == ["region", "race"]
    assert len(result) == 12  # every region x race combination occurs
    assert list(zip(result.region, result.race)) == sorted(zip(result.region, result.race))
    for _, row in result.iterrows():
        key = (row.region, row.race)
        est, se = textbook(nhanes, "zinc", domain=lambda r: (r["region"], r["race"]) == key,
                           **DESIGN)
        assert row.estimate == pytest.approx(est, rel=1e-12)
        assert row.se == pytest.approx(se, rel=1e-9)


def test_nhanes2_domain_keeps_full_design(nhanes):
    # race 3 lives in only 37 of the 62 PSUs: on its rows alone some strata keep one PSU.
    full = survey_mean(nhanes, "zinc", by="race", **DESIGN).set_index("race")
    alone = nhanes[nhanes.race == 3]
    with pytest.raises(ValueError, match="only one PSU"):
        survey_mean(alone, "zinc", **DESIGN)
    removed = survey_mean(alone, "zinc", **DESIGN, lonely_psu="remove")
    assert removed.estimate[0] == pytest.approx(full.estimate[3], rel=1e-12)
    assert full.se[3] - removed.se[0] > 0.01  # 1.5855 vs 1.5673
    # With n_h = 2 a zero-padded PSU gives 2*((z/2)^2 + (z/2)^2) = z^2, which is what
    # "adjust" adds for a lonely PSU: here (only) the two routes agree.
    adjusted = survey_mean(alone, "zinc", **DESIGN, lonely_psu="adjust")
    assert adjusted.se[0] == pytest.approx(full.se[3], rel=1e-12)


# ---------------------------------------------------------------- hand-computed tiny design

TINY = pd.DataFrame({
    "h": ["A", "A", "A", "B", "B", "B"],
    "p": [1, 1, 2, 1, 2, 2],  # PSU codes reused across strata: nested in stratum
    "w": [1.0, 1.0, 2.0, 2.0, 1.0, 1.0],
    "y": [2.0, 4.0, 6.0, 1.0, 3.0, 5.0],
    "g": ["x", "u", "x", "x", "u", "u"],
})
TINY_DESIGN = {"weight": "w", "strata": "h", "psu": "p"}


def test_tiny_hand_computed_mean():
    # sum w = 8, sum w y = 2+4+12+2+3+5 = 28 -> mean 3.5.
    # z = w (y - 3.5)/8; PSU totals: A1 = (-1.5+0.5)/8 = -0.125, A2 = 2*2.5/8 = 0.625,
    #                                B1 = 2*(-2.5)/8 = -0.625, B2 = (-0.5+1.5)/8 = 0.125.
    # Stratum A: mean 0.25, deviations +-0.375 -> 2/1 * 0.28125 = 0.5625; stratum B the same.
    # var = 1.125, se = sqrt(1.125); df = 4 PSUs - 2 strata = 2.
    r = survey_mean(TINY, "y", **TINY_DESIGN)
    assert r.estimate[0] == pytest.approx(3.5, abs=1e-15)
    assert r.se[0] == pytest.approx(math.sqrt(1.125), rel=1e-14)
    assert (r.n[0], r.df[0]) == (6, 2)
    t = 4.30265272974946  # qt(0.975, 2)
    assert r.ci_low[0] == pytest.approx(3.5 - t * math.sqrt(1.125), rel=1e-12)
    assert r.ci_high[0] == pytest.approx(3.5 + t * math.sqrt(1.125), rel=1e-12)


def test_tiny_hand_computed_domain_uses_full_design():
    # Domain x = rows (A1,y=2,w=1), (A2,y=6,w=2), (B1,y=1,w=2): sum w = 5, sum w y = 16 -> 3.2.
    # z = w (y - 3.2)/5: A1 = -0.24, A2 = 1.12, B1 = -0.88, B2 = 0 (no domain rows, still a PSU).
    # A: mean 0.44, dev +-0.68 -> 2 * 0.9248 = 1.8496;  B: mean -0.44, dev +-0.44 -> 2 * 0.3872
    # = 0.7744.  var = 2.624.  (Dropping B2 would leave B with one PSU: a different answer.)
    r = survey_mean(TINY, "y", by="g", **TINY_DESIGN).set_index("g")
    assert r.loc["x", "estimate"] == pytest.approx(3.2, abs=1e-14)
    assert r.loc["x", "se"] == pytest.approx(math.sqrt(2.624), rel=1e-13)
    assert r.loc["x", "n"] == 3 and r.loc["u", "n"] == 3
    # Domain u: A1 (4,1), B2 (3,1), (5,1) -> mean 4; every PSU total is 0, so the design cannot
    # measure its variance: no SE of 0 is printed, the estimate is flagged instead.
    assert r.loc["u", "estimate"] == pytest.approx(4.0) and np.isnan(r.loc["u", "se"])
    assert r.loc["u", "reliability"] == "no_se" and np.isnan(r.loc["u", "ci_low"])
    # domain df = PSUs minus strata holding the domain's rows (R's degf of the subset):
    # x: A1, A2, B1 -> 3 - 2 = 1;  u: A1, B2 -> 2 - 2 = 0 (no interval)
    assert r.loc["x", "df"] == 1 and r.loc["u", "df"] == 0


def test_survey_mean_is_ratio_with_unit_denominator():
    ones = TINY.assign(one=1)
    for by in (None, "g"):
        pd.testing.assert_frame_equal(survey_mean(TINY, "y", by=by, **TINY_DESIGN),
                                      survey_ratio(ones, "y", "one", by=by, **TINY_DESIGN))


def test_census_mode():
    r = survey_mean(TINY, "y", by="g", census=True, **TINY_DESIGN)
    assert (r.se == 0).all() and r.census.all()
    assert (r.ci_low == r.estimate).all() and (r.ci_high == r.estimate).all()
    assert list(r.n) == [3, 3]
    assert list(r.estimate) == pytest.approx([4.0, 3.2])
    # a census needs no variance, so a lonely stratum is no error
    lonely = TINY.assign(h=["A", "A", "A", "A", "A", "C"], p=[1, 1, 2, 1, 2, 9])
    assert survey_mean(lonely, "y", census=True, **TINY_DESIGN).se[0] == 0


def test_no_design_is_plain_sample_mean():
    y = np.array([2.0, 4.0, 4.0, 5.0, 7.0, 8.0, 11.0])
    r = survey_mean(pd.DataFrame({"y": y}), "y")
    s = np.std(y, ddof=1)
    assert r.estimate[0] == pytest.approx(y.mean(), rel=1e-14)
    assert r.se[0] == pytest.approx(s / math.sqrt(len(y)), rel=1e-12)
    assert r.df[0] == len(y) - 1
    half = stats.t.ppf(0.9, len(y) - 1) * s / math.sqrt(len(y))
    r80 = survey_mean(pd.DataFrame({"y": y}), "y", level=0.8)
    assert r80.ci_high[0] - r80.estimate[0] == pytest.approx(half, rel=1e-12)


def test_weights_only_matches_textbook():
    d = TINY.assign(y=[1.0, 7.0, 2.0, 9.0, 3.0, 3.5])
    r = survey_mean(d, "y", weight="w")
    est, se = textbook(d, "y", weight="w")
    assert (r.estimate[0], r.se[0]) == (pytest.approx(est, rel=1e-13), pytest.approx(se, rel=1e-12))


def test_proportion_interval_clipped_to_unit_interval():
    # p = 1/6, se = sqrt(p(1-p)/(n-1)) = 1/6; lower = 1/6 - t(5) / 6 < 0 -> clipped at 0.
    r = survey_mean(pd.DataFrame({"y": [0, 0, 0, 0, 0, 1]}), "y")
    assert r.estimate[0] == pytest.approx(1 / 6) and r.se[0] == pytest.approx(1 / 6)
    assert r.ci_low[0] == 0.0
    assert r.ci_high[0] == pytest.approx(1 / 6 + stats.t.ppf(0.975, 5) / 6)
    hi = survey_mean(pd.DataFrame({"y": [True] * 5 + [False]}), "y")  # bool column works too
    assert hi.estimate[0] == pytest.approx(5 / 6) and hi.ci_high[0] == 1.0
    # a non-0/1 column is never clipped
    assert survey_mean(pd.DataFrame({"y": [0, 0, 0, 0, 0, 2]}), "y").ci_low[0] < 0


def test_missing_values_leave_domain_but_stay_in_design():
    d = TINY.assign(y=[2.0, 4.0, np.nan, 1.0, np.nan, 5.0])
    r = survey_mean(d, "y", **TINY_DESIGN)
    est, se = textbook(d, "y", **TINY_DESIGN)
    assert r.n[0] == 4
    assert r.estimate[0] == pytest.approx(est, rel=1e-14)
    assert r.se[0] == pytest.approx(se, rel=1e-13)
    # identical to the domain "y is observed" of a complete column
    d2 = d.assign(seen=d.y.notna(), y=d.y.fillna(0.0))
    dom = survey_mean(d2, "y", by="seen", **TINY_DESIGN).set_index("seen").loc[True]
    assert dom.estimate == pytest.approx(r.estimate[0]) and dom.se == pytest.approx(r.se[0])
    # dropping the rows would leave strata A and B with one PSU each: the design must be kept
    with pytest.raises(ValueError, match="only one PSU"):
        survey_mean(d.dropna(), "y", **TINY_DESIGN)
    # a domain with nothing observed is reported with n = 0 and no estimate
    empty = survey_mean(d.assign(y=np.where(d.g == "u", np.nan, 1.0)), "y", by="g", **TINY_DESIGN)
    row = empty.set_index("g").loc["u"]
    assert row.n == 0 and math.isnan(row.estimate) and math.isnan(row.se)


# The design of a third-party test suite (flourish_stats), which reports R survey 4.5 output:
# strata 1 (PSUs 11, 12), 2 (lonely PSU 21) and 3 (PSUs 31, 32, 33).
LONELY = pd.DataFrame({
    "h": [1, 1, 1, 2, 2, 3, 3, 3, 3],
    "p": [11, 11, 12, 21, 21, 31, 32, 33, 33],
    "w": [1.0, 2.0, 1.5, 1.0, 0.5, 2.0, 1.0, 1.0, 0.5],
    "y": [3, 5, 4, 10, 8, 1, 2, 6, 4],
})


def test_lonely_psu_rules():
    with pytest.raises(ValueError, match=r"stratum 2 has only one PSU") as err:
        survey_mean(LONELY, "y", **TINY_DESIGN)
    assert isinstance(err.value, Pk2dError) and "lonely_psu='adjust'" in str(err.value)
    # adjust: mean 45/10.5 = 30/7; PSU totals x 73.5: s1 (1, -3), s2 (53), s3 (-46, -16, 11);
    # V = [2*(10 - 4/2) + 53^2 + 1.5*(2493 - 51^2/3)] / 73.5^2 = 5264/5402.25
    # (R: svymean with survey.lonely.psu = "adjust" -> SE 0.987121477399568).
    adj = survey_mean(LONELY, "y", **TINY_DESIGN, lonely_psu="adjust")
    assert adj.estimate[0] == pytest.approx(30 / 7, rel=1e-14)
    assert adj.se[0] == pytest.approx(math.sqrt(5264 / 5402.25), rel=1e-12)
    assert adj.se[0] == pytest.approx(0.987121477399568, rel=1e-12)
    assert adj.df[0] == 6 - 3
    # remove: the lonely stratum contributes nothing: (16 + 2439)/5402.25
    rem = survey_mean(LONELY, "y", **TINY_DESIGN, lonely_psu="remove")
    assert rem.se[0] == pytest.approx(math.sqrt(2455 / 5402.25), rel=1e-12)
    grouped = LONELY.assign(g=list("aabbaabab"))
    for rule in ("adjust", "remove"):
        r = survey_mean(grouped, "y", by="g", **TINY_DESIGN, lonely_psu=rule)
        for _, row in r.iterrows():
            est, se = textbook(grouped, "y", domain=lambda x, k=row.g: x["g"] == k,
                               lonely=rule, **TINY_DESIGN)
            assert row.estimate == pytest.approx(est) and row.se == pytest.approx(se, rel=1e-12)


def test_nhanes2_ratio_lonely_adjust_matches_loop(nhanes):
    # make stratum 1 lonely by merging its two PSUs; compare the rules with the loop
    d = nhanes.assign(psuid=np.where(nhanes.stratid == 1, 1, nhanes.psuid))
    for rule in ("adjust", "remove"):
        r = survey_ratio(d, "zinc", "highbp", by="race", **DESIGN, lonely_psu=rule)
        for _, row in r.iterrows():
            est, se = textbook(d, "zinc", "highbp", domain=lambda x, k=row.race: x["race"] == k,
                               lonely=rule, **DESIGN)
            assert row.estimate == pytest.approx(est, rel=1e-12)
            assert row.se == pytest.approx(se, rel=1e-9)
        for _, row in r.iterrows():
            inside = d[(d.race == row.race) & d.zinc.notna() & d.highbp.notna()]
            assert row.df == inside.groupby(["stratid", "psuid"]).ngroups - inside.stratid.nunique()


# ---------------------------------------------------------------- errors and docs

@pytest.mark.parametrize("kwargs, message", [
    ({"column": "nope"}, r"'nope' not found"),
    ({"column": "y", "by": ["g", "zz"]}, r"\['zz'\] not found"),
    ({"column": "y", "weight": "ww"}, r"\['ww'\] not found"),
    ({"column": "g"}, "outcome column 'g' must be numeric"),
    ({"column": "y", "weight": "g"}, "weight column 'g' must be numeric"),
    ({"column": "y", "level": 1.0}, "level must be strictly between 0 and 1"),
    ({"column": "y", "lonely_psu": "bogus"}, "lonely_psu must be one of"),
])
def test_errors_are_clear_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        survey_mean(TINY, **kwargs)


def test_by_rows_with_missing_key_are_in_no_domain_but_in_the_design():
    d = TINY.assign(g=["x", None, "x", "x", "u", "u"])
    r = survey_mean(d, "y", by="g", **TINY_DESIGN).set_index("g")
    assert list(r.index) == ["u", "x"] and list(r.n) == [2, 3]
    assert r.loc["x", "se"] == pytest.approx(math.sqrt(2.624), rel=1e-13)  # as in the hand example


def test_errors_on_bad_design_values():
    with pytest.raises(ValueError, match="no rows"):
        survey_mean(TINY.iloc[:0], "y")
    with pytest.raises(ValueError, match="weight column 'w' must be finite and >= 0"):
        survey_mean(TINY.assign(w=[1, 1, -1, 1, 1, 1]), "y", weight="w")
    with pytest.raises(ValueError, match="weight column 'w' must be finite"):
        survey_mean(TINY.assign(w=[1, 1, np.nan, 1, 1, 1]), "y", weight="w")
    with pytest.raises(ValueError, match="strata column 'h' has missing values"):
        survey_mean(TINY.assign(h=["A", None, "A", "B", "B", "B"]), "y", **TINY_DESIGN)
    with pytest.raises(ValueError, match="column 'p' has missing values"):
        survey_mean(TINY.assign(p=[1, 1, 2, np.nan, 2, 2]), "y", **TINY_DESIGN)
    with pytest.raises(ValueError, match="denominator column 'g' must be numeric"):
        survey_ratio(TINY, "y", "g")


def test_docstring_examples_run():
    result = doctest.testmod(survey, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 3 and result.failed == 0
