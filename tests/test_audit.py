"""Audit: Cronbach's alpha by hand, flags, and the sensitivity analysis."""
import numpy as np
import pandas as pd
import pytest

from pk2d import audit
from pk2d.catalogue import load_catalogue
from tests._scores import make_scores

A, B, C = "63.02.06.2001", "63.02.06.2002", "63.02.07.2003"


def test_cronbach_alpha_by_hand():
    # items a, b, c over 4 people (sample variances, ddof=1):
    # var a = 0.25, var b = 1/3, var c = 1/3; cov ab = 1/6, cov ac = 1/6, cov bc = 0
    # total = 0.25 + 1/3 + 1/3 + 2*(1/6 + 1/6 + 0) = 1.5833
    # alpha = 3/2 * (1 - 0.9167/1.5833) = 0.631579
    d = pd.DataFrame({"a": [1, 0, 1, 1], "b": [1, 0, 1, 0], "c": [1, 0, 0, 1]})
    # note: the doctest in pk2d.audit uses the same items
    var = 0.25 + 1 / 3 + 1 / 3
    total = var + 2 * (1 / 6 + 1 / 6 + 0)
    assert audit.cronbach_alpha(d) == pytest.approx(1.5 * (1 - var / total))


def test_alpha_of_parallel_items_is_high_and_of_independent_items_low():
    rng = np.random.default_rng(0)
    t = rng.normal(size=500)
    parallel = pd.DataFrame({f"i{k}": (t + 0.3 * rng.normal(size=500) > 0).astype(float) for k in range(6)})
    indep = pd.DataFrame({f"i{k}": (rng.normal(size=500) > 0).astype(float) for k in range(6)})
    assert audit.cronbach_alpha(parallel) > 0.8
    assert abs(audit.cronbach_alpha(indep)) < 0.15


def test_structure_flags_constant_and_duplicate_indicators():
    s = make_scores({A: {"F1": 0.99}, B: {"F1": 0.99}}, seed=1)
    s["E6"] = s["E5"]  # an exact duplicate
    st = audit.structure(s)
    flags = st["indicators"].set_index("indicator")["flags"]
    assert "barely varies" in flags["F1"]
    assert "duplicates E5" in flags["E6"]
    assert st["pca"]["variance_share"].sum() == pytest.approx(1.0)


def test_sensitivity_is_seeded_and_measures_robustness():
    cat = load_catalogue("ikk")
    far = {i.id: 0.97 for i in cat.indicators}
    s = make_scores({A: far, B: {}, C: {i.id: 0.745 for i in cat.indicators}}, seed=2, n=120)
    r1 = audit.sensitivity(s, n_runs=60, seed=7)
    r2 = audit.sensitivity(s, n_runs=60, seed=7)
    pd.testing.assert_frame_equal(r1.summary, r2.summary)
    top = r1.summary.set_index("code")
    assert top.loc[A, "category_robustness"] == 1.0  # ~97: responsive under every choice
    assert (top.loc[A, "rank_p05"], top.loc[A, "rank_p95"]) == (1, 1)
    assert set(r1.runs["aggregation_order"]) == {"family_first", "indicator_first"}
    assert len(r1.runs) == 60 * 3
    # nominal index equals the default pipeline (family-first mean of family indices)
    assert top.loc[B, "index"] == pytest.approx(s.loc[s.kode_desa == B, "indeks"].mean())


def test_sensitivity_bands_follow_edited_cutoffs():
    cat = load_catalogue("ikk")
    cats = {"area": [{"code": 1, "lower": 0, "label_id": "K", "label_en": "K"},
                     {"code": 2, "lower": 60, "label_id": "C", "label_en": "C"},
                     {"code": 3, "lower": 80, "label_id": "R", "label_en": "R"}],
            "family": [dict(code=c.code, lower=c.lower, label_id=c.label_id, label_en=c.label_en)
                       for c in cat.categories["family"]]}
    edited = cat.with_settings(categories=cats)
    s = make_scores({A: {}, B: {}}, seed=2, n=60)
    r = audit.sensitivity(s, edited, n_runs=5)
    assert r.settings["cut_bands"] == {"2": [55.0, 65.0], "3": [75.0, 85.0]}
