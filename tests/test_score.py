"""Family scoring checked against values worked out by hand (tests/_families.py)."""
import numpy as np
import pandas as pd
import pytest

from pk2d.catalogue import load_catalogue
from pk2d.score import evaluate_rule, score_families
from tests._families import families, members

# Family KA, indicators (1 met, 0 not, - not applicable):
#   legalitas  L1 1  L2 0 (child aged 3 has no birth certificate)  L3 1       -> 2/3
#   fisik      F1 1  F2 1 (no stunting)  F3 1  F4 0 (wife no JKN)  F5 0  F6 1 -> 4/6
#   ekonomi    E1 1  E2 1 (40 m2 / 4 = 10 >= 7.2)  E3 1  E4 0 (500k < 650k)
#              E5 1  E6 0  E7 1  E8 1                                      -> 6/8
#   sos-psi    P1 1  P2 1  P3 1  P4 0  P5 -  P6 1                          -> 4/5
#   sos-bud    B1 1  B2 1  B3 0  B4 1  B5 -  B6 -                          -> 3/4
#   IKK = (66.667 + 66.667 + 75 + 80 + 75) / 5 = 72.6667
# Family KB (widow, 70, alone, disabled):
#   legalitas  all -                                   -> dimension left out
#   fisik      F1 1  F4 1  F6 0                        -> 2/3
#   ekonomi    E1 1  E2 0 (earth floor)  E3 0  E4 0  E5 0  E6 0   -> 1/6
#   sos-psi    P1 1  P3 1  P6 1                        -> 3/3
#   sos-bud    B1 1  B2 1  B3 1  B5 1  B6 0            -> 4/5
#   IKK = (66.667 + 16.667 + 100 + 80) / 4 = 65.8333
KA = {"L1": 1, "L2": 0, "L3": 1, "F1": 1, "F2": 1, "F3": 1, "F4": 0, "F5": 0, "F6": 1,
      "E1": 1, "E2": 1, "E3": 1, "E4": 0, "E5": 1, "E6": 0, "E7": 1, "E8": 1,
      "P1": 1, "P2": 1, "P3": 1, "P4": 0, "P5": None, "P6": 1,
      "B1": 1, "B2": 1, "B3": 0, "B4": 1, "B5": None, "B6": None}
KB = {"L1": None, "L2": None, "L3": None, "F1": 1, "F2": None, "F3": None, "F4": 1, "F5": None, "F6": 0,
      "E1": 1, "E2": 0, "E3": 0, "E4": 0, "E5": 0, "E6": 0, "E7": None, "E8": None,
      "P1": 1, "P2": None, "P3": 1, "P4": None, "P5": None, "P6": 1,
      "B1": 1, "B2": 1, "B3": 1, "B4": None, "B5": 1, "B6": 0}


@pytest.fixture(scope="module")
def scores():
    return score_families(families(), members(), "ikk")


@pytest.mark.parametrize("row,expected", [(0, KA), (1, KB)])
def test_each_indicator_by_hand(scores, row, expected):
    for ind, want in expected.items():
        got = scores.loc[row, ind]
        if want is None:
            assert pd.isna(got), f"{ind} should be not applicable"
            assert not scores.loc[row, f"berlaku_{ind}"], ind
        else:
            assert got == want, f"{ind}: {got} != {want}"


def test_dimensions_and_index_by_hand(scores):
    a, b = scores.iloc[0], scores.iloc[1]
    assert a["dim_legalitas"] == pytest.approx(200 / 3)
    assert a["dim_ekonomi"] == pytest.approx(75.0)
    assert a["dim_sosial_psikologi"] == pytest.approx(80.0)
    assert a["indeks"] == pytest.approx((200 / 3 + 200 / 3 + 75 + 80 + 75) / 5)
    assert np.isnan(b["dim_legalitas"])
    assert b["indeks"] == pytest.approx((200 / 3 + 100 / 6 + 100 + 80) / 4)
    assert list(scores["kategori_label"]) == ["Sedang", "Sedang"]


def test_not_applicable_rule_zero_and_full():
    cat = load_catalogue("ikk")
    zero = score_families(families(), members(), cat.with_settings(not_applicable="zero"))
    # KA: P5 -> 0 (4/6), B5, B6 -> 0 (3/6); KB: every not-applicable item -> 0
    assert zero.loc[0, "indeks"] == pytest.approx((200 / 3 + 200 / 3 + 75 + 400 / 6 + 50) / 5)
    assert zero.loc[1, "indeks"] == pytest.approx((0 + 200 / 6 + 12.5 + 50 + 400 / 6) / 5)
    full = score_families(families(), members(), cat.with_settings(not_applicable="full"))
    # KB: legalitas 3/3, fisik 5/6, ekonomi 3/8, sos-psi 6/6, sos-bud 5/6
    assert full.loc[1, "indeks"] == pytest.approx((100 + 500 / 6 + 37.5 + 100 + 500 / 6) / 5)


def test_geometric_aggregation():
    cat = load_catalogue("ikk").with_settings(aggregation_method="geometric")
    s = score_families(families(), members(), cat)
    dims = [200 / 3, 200 / 3, 75, 80, 75]
    assert s.loc[0, "indeks"] == pytest.approx(np.exp(np.mean(np.log(dims))))


def test_missing_answer_is_left_out_not_zero():
    fam = families()
    fam.loc[0, "jamban_sehat"] = pd.NA  # KA's F6 unanswered: fisik becomes 3/5
    s = score_families(fam, members(), "ikk")
    assert pd.isna(s.loc[0, "F6"]) and s.loc[0, "berlaku_F6"]
    assert s.loc[0, "dim_fisik"] == pytest.approx(60.0)
    assert s.loc[0, "n_jawaban_kosong"] == 1


def test_rule_logic_three_valued():
    d = pd.DataFrame({"a": pd.array([True, False, None], dtype="boolean"), "x": [1.0, 5.0, 9.0]})
    rule = {"all": [{"column": "a", "op": "eq", "value": True}, {"column": "x", "op": "lt", "value": 6}]}
    # Kleene logic: <NA> & False is False, <NA> | False is <NA>
    assert _l(evaluate_rule(rule, d)) == [True, False, False]
    assert _l(evaluate_rule({"any": rule["all"]}, d)) == [True, True, None]
    assert _l(evaluate_rule({"column": "x", "op": "ge", "value": "$t"}, d, {"t": 5})) == [False, True, True]
    s = pd.DataFrame({"c": ["ledeng", None, "sungai"]})
    assert _l(evaluate_rule({"column": "c", "op": "in", "value": ["ledeng"]}, s)) == [True, None, False]
    assert _l(evaluate_rule({"column": "c", "op": "not_in", "value": ["ledeng"]}, s)) == [False, None, True]


def _l(series):
    return [None if pd.isna(v) else bool(v) for v in series]


def test_ibangga_scores_hand_checked():
    s = score_families(families(), members(), "ibangga")
    # KA ketenteraman: T1 1, T2 1, T3 0 (child 3), T4 0 (wife), T5 1, T6 1 -> 4/6
    # kemandirian: M1 1, M2 1, M3 1, M4 0, M5 1 (child 8), M6 1, M7 1, M8 0 -> 6/8
    # kebahagiaan: H1 1, H2 0, H3 1 -> 2/3
    w = [0.333334, 0.333333, 0.333333]
    assert s.loc[0, "indeks"] == pytest.approx(np.dot(w, [400 / 6, 75, 200 / 3]))
    assert s.loc[0, "kategori_label"] == "Berkembang"


def test_missing_school_status_is_unanswered_not_out_of_school():
    m = members()
    m.loc[2, "status_sekolah"] = None  # KA's child aged 8
    s = score_families(families(), m, "ikk")
    assert pd.isna(s.loc[0, "B4"]) and s.loc[0, "berlaku_B4"]
    assert s.loc[0, "n_jawaban_kosong"] == 1


def test_in_rule_on_numeric_codes():
    d = pd.DataFrame({"x": [1.0, 2.0, None, 4.0]})
    assert _l(evaluate_rule({"column": "x", "op": "in", "value": [1, 2]}, d)) == [True, True, None, False]
