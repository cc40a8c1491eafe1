"""End to end on the shipped synthetic sample: clean -> index -> compare.

Runs the stages once into a temporary folder (module fixture) and checks the
calibration against the published figures, privacy of every processed file,
the row accounting, and the action plan and evaluation against direct counts.
"""
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pk2d import paths
from pk2d.pipeline import build_compare, build_index, clean, load_scores
from pk2d.rawio import discover

PONDOK_LABU = "Pondok Labu"
SANGSANG = "Sangsang"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("processed")
    res = clean(paths.RAW_DIR, out, key=b"test-key")
    idx = build_index(out)
    cmp = build_compare(out, n_boot=199, n_runs=100)
    return out, res, idx, cmp


def _focus(cmp) -> str:
    return cmp.lokus["kode_desa"].iloc[0]


def _desa(idx, name, rnd=1, cat="ikk"):
    a = idx.areas
    return a[(a.catalogue == cat) & (a.level == "desa") & (a["round"] == rnd) & (a.name == name)].iloc[0]


def test_calibration_reproduces_published_figures(built):
    _, _, idx, _ = built
    pl, ss = _desa(idx, PONDOK_LABU), _desa(idx, SANGSANG)
    assert abs(pl["index"] - 73.98) <= 1.0, pl["index"]
    assert abs(ss["index"] - 81.78) <= 1.0, ss["index"]
    assert pl["category_label"] == "Cukup Responsif Gender dan Hak Anak"
    assert ss["category_label"] == "Responsif Gender dan Hak Anak"
    assert bool(pl["census"]) and pl["se"] == 0 and pl["n_families"] <= 384


def test_row_accounting_adds_up(built):
    out, res, _, _ = built
    log = res.log
    for table, acc in log["accounting"].items():
        assert acc["raw"] == acc["kept"] + acc["rejected"] + acc["exact_duplicates_removed"], table
    assert log["accounting"]["keluarga"]["kept"] == len(res.families)
    assert log["accounting"]["anggota"]["kept"] == len(res.members)
    assert "created_utc" not in log  # no wall-clock time: the same files give the same log
    assert log["accounting"]["keluarga"]["rejected"] > 0 and log["accounting"]["anggota"]["exact_duplicates_removed"] > 0


def _raw_identifiers():
    ids = set()
    for pair in discover(paths.RAW_DIR):
        for f in (pair.keluarga, pair.anggota):
            text = Path(f).read_text(encoding="utf-8-sig", errors="replace")
            ids.update(re.findall(r"(?<!\d)\d{16}(?!\d)", text))
    return ids


def test_no_personal_data_in_any_processed_file(built):
    out, _, _, _ = built
    ids = _raw_identifiers()
    assert len(ids) > 10_000  # NIK and No. KK of the sample
    names = set()
    for pair in discover(paths.RAW_DIR):
        sep = ";" if "putaran2" in pair.keluarga.name else ","
        f = pd.read_csv(pair.keluarga, sep=sep, dtype=str, encoding="utf-8-sig")
        names.update(v for v in f.iloc[:, 14].dropna() if len(v) > 8)
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in files)
    digits = re.compile(rb"(?<!\d)\d{16}(?!\d)")
    for p in files:
        data = p.read_bytes()
        found = {m.decode() for m in digits.findall(data)} & ids
        assert not found, f"{p.name} holds raw identifiers"
        for n in list(names)[:300]:
            assert n.encode() not in data, f"{p.name} holds a name"


def test_action_plan_matches_direct_count(built):
    out, _, _, cmp = built
    scores = load_scores("ikk", out)
    pri = cmp.table("priorities")
    pl = pri[(pri["round"] == 1) & (pri["kode_desa"] == _focus(cmp)) & (pri["catalogue"] == "ikk")]
    assert 1 <= len(pl) <= 5 and pl["agency"].notna().all()
    s1 = scores[(scores.putaran == 1) & (scores.kode_desa == _focus(cmp))]
    for r in pl.itertuples():
        assert r.families_affected == int((s1[r.indicator].astype("float64") == 0).sum())


def test_did_recovers_the_known_improvement(built):
    _, _, _, cmp = built
    truth = yaml.safe_load((paths.REFERENCE_DIR / "synth_villages.yaml").read_text())
    did = cmp.did
    d = did[(did["catalogue"] == "ikk") & (did["focus"] == _focus(cmp)) & (did["component_id"] == "indeks")].iloc[0]
    assert (d["before_round"], d["round"]) == (1, 2)
    effect = _known_effect(truth, _focus(cmp))
    assert d["ci_low"] <= effect <= d["ci_high"], (effect, d.to_dict())


def _known_effect(truth, focus):
    """The effect built into the synthetic second round (pk2d/data/synth_villages.yaml)."""
    eff = truth["known_effects"]
    assert eff["desa_lokus"]["kode_desa"] == focus
    return eff["desa_lokus"]["effect"] - eff["other_villages"]
