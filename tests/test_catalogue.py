"""Catalogue loading, validation messages and classification (published figures)."""
import copy

import pytest
import yaml

from pk2d import paths
from pk2d.catalogue import classify, load_catalogue
from pk2d.errors import CatalogueError


def test_ikk_structure_matches_the_published_split():
    cat = load_catalogue("ikk")
    assert len(cat.indicators) == 29
    assert [len(cat.indicators_of(d.id)) for d in cat.dimensions] == [3, 6, 8, 6, 6]
    assert cat.official_list_public is False and "tidak" in cat.note_id


def test_ibangga_structure():
    cat = load_catalogue("ibangga")
    assert len(cat.indicators) == 17 and len(cat.dimensions) == 3
    assert classify(39.99, cat) == "Rentan" and classify(40, cat) == "Berkembang"
    assert classify(70, cat) == "Berkembang" and classify(70.01, cat) == "Tangguh"


@pytest.mark.parametrize("value,label", [
    (49.99, "Kurang Responsif Gender dan Hak Anak"), (50.00, "Cukup Responsif Gender dan Hak Anak"),
    (74.99, "Cukup Responsif Gender dan Hak Anak"), (75.00, "Responsif Gender dan Hak Anak"),
    # published figures, classified as the sources did
    (73.98, "Cukup Responsif Gender dan Hak Anak"), (73.43, "Cukup Responsif Gender dan Hak Anak"),
    (65.16, "Cukup Responsif Gender dan Hak Anak"), (81.78, "Responsif Gender dan Hak Anak"),
    (84.29, "Responsif Gender dan Hak Anak"), (76.80, "Responsif Gender dan Hak Anak"),
])
def test_area_categories(value, label):
    assert classify(value, "ikk", unit="area") == label


def test_family_categories_and_english():
    assert [classify(v, unit="family") for v in (49.99, 50, 74.99, 75)] == ["Rendah", "Sedang", "Sedang", "Baik"]
    assert classify(75, lang="en") == "Responsive to Gender and Child Rights"
    assert classify(float("nan")) is None


def _broken(tmp_path, mutate):
    raw = yaml.safe_load((paths.CATALOGUE_DIR / "ikk.yaml").read_text())
    raw = copy.deepcopy(raw)
    mutate(raw)
    p = tmp_path / "broken.yaml"
    p.write_text(yaml.safe_dump(raw, allow_unicode=True))
    with pytest.raises(CatalogueError) as info:
        load_catalogue(p)
    return str(info.value)


def test_error_dimension_weights_do_not_add_up(tmp_path):
    def m(raw):
        raw["dimensions"][0]["weight"] = 0.3
    msg = _broken(tmp_path, m)
    assert "dimension weights add up to 1.1, not 1" in msg and "broken.yaml" in msg


def test_error_indicator_weights_do_not_add_up(tmp_path):
    def m(raw):
        for ind in raw["indicators"]:
            if ind["dimension"] == "legalitas":
                ind["weight"] = 0.5
    assert "indicator weights add up to 1.5, not 1" in _broken(tmp_path, m)


def test_error_dimension_without_indicators(tmp_path):
    def m(raw):
        raw["indicators"] = [i for i in raw["indicators"] if i["dimension"] != "fisik"]
    assert "[fisik]" in (msg := _broken(tmp_path, m)) and "no indicators" in msg


def test_error_overlapping_cutoffs(tmp_path):
    def m(raw):
        raw["categories"]["area"][2]["lower"] = 40
    assert "overlap" in _broken(tmp_path, m)


def test_error_unknown_parameter_and_operator(tmp_path):
    def m(raw):
        raw["indicators"][0]["rule"] = {"column": "buku_nikah", "op": "equals", "value": True}
    assert "unknown operator 'equals'" in _broken(tmp_path, m)

    def m2(raw):
        raw["indicators"][3]["rule"] = {"column": "x", "op": "ge", "value": "$nope"}
    assert "parameter $nope" in _broken(tmp_path, m2)


def test_error_rule_names_missing_column():
    cat = load_catalogue("ikk")
    with pytest.raises(CatalogueError) as info:
        cat.check_columns(["buku_nikah"])  # the data lacks nearly everything
    assert "names column" in str(info.value) and "registered feature" in str(info.value)


def test_with_settings_is_a_new_validated_catalogue():
    cat = load_catalogue("ikk")
    other = cat.with_settings(aggregation_order="indicator_first")
    assert cat.settings["aggregation_order"] == "family_first"
    assert other.sha256 != cat.sha256
    with pytest.raises(CatalogueError):
        cat.with_settings(not_applicable="ignore")
    w = {d.id: 0.2 for d in cat.dimensions} | {"legalitas": 0.4}
    with pytest.raises(CatalogueError):
        cat.with_settings(dimension_weights=w)


def test_sensitive_is_a_validated_attribute_false_by_default(tmp_path):
    cat = load_catalogue("ikk")
    assert [i.id for i in cat.indicators if i.sensitive] == ["E8", "P1", "P5", "P6", "B6"]
    assert not load_catalogue("ikk").indicators[0].sensitive  # L1: not written, false

    def m(raw):
        raw["indicators"][0]["sensitive"] = "ya"
    msg = _broken(tmp_path, m)
    assert "sensitive must be true or false" in msg and "[L1]" in msg
