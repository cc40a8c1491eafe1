"""End to end on the shipped synthetic sample (a small province): clean -> index -> compare.

Reads the session's sample run (tests/conftest.py) and checks the calibration against every
published figure that names a village, privacy of every processed file, the row accounting,
the problems of every village against an independent count from the scores, and the evaluation
of every desa lokus against the effect planted in the sample.
"""
import math
import re
from fractions import Fraction
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pk2d import paths, rawio
from pk2d.catalogue import load_catalogue
from pk2d.pipeline import build_compare, build_index, clean, load_scores
from pk2d.rawio import discover

#: (village, putaran, KK, RT, IKK to two decimals, category code) from shared/domain/ikk-brief.md
PUBLISHED = [("Pondok Labu", 2, 384, 11, 73.98, 2), ("Sangsang", 1, 786, 10, 81.78, 3),
             ("Ampukung", 1, None, None, 84.29, 3),  # Kabupaten Tabalong's 2023 figure (assumption)
             ("Pulau Tanjung", 3, 212, None, None, None)]


@pytest.fixture(scope="module")
def built(sample_run, sample_key):
    """The session's run, opened through the stage functions (each up to date: nothing recomputed)."""
    res = clean(paths.RAW_DIR, sample_run, key=sample_key)
    idx = build_index(sample_run, catalogues=("ikk",))
    cmp = build_compare(sample_run, n_boot=99, n_runs=50)
    assert res.up_to_date and idx.up_to_date and cmp.up_to_date
    return sample_run, res, idx, cmp


def _desa(idx, name, rnd, cat="ikk"):
    a = idx.areas
    return a[(a.catalogue == cat) & (a.level == "desa") & (a["round"] == rnd) & (a.name == name)].iloc[0]


def test_calibration_reproduces_published_figures(built):
    _, _, idx, _ = built
    a = idx.areas
    for name, rnd, n_kk, n_rt, ikk, category in PUBLISHED:
        d = _desa(idx, name, rnd)
        assert bool(d["census"]) and d["se"] == 0
        if n_kk is not None:
            assert d["n_families"] == n_kk, name
        if n_rt is not None:
            rts = a[(a.catalogue == "ikk") & (a.level == "rt") & (a["round"] == rnd) & (a.parent_code == d["code"])]
            assert len(rts) == n_rt, name
        if ikk is not None:
            assert f"{d['index']:.2f}" == f"{ikk:.2f}", (name, d["index"])
            assert d["category"] == category, name


def test_row_accounting_adds_up(built):
    out, res, _, _ = built
    log = res.log
    for table, acc in log["accounting"].items():
        assert acc["raw"] == acc["kept"] + acc["rejected"] + acc["exact_duplicates_removed"], table
    assert log["accounting"]["keluarga"]["kept"] == len(res.families)
    assert log["accounting"]["anggota"]["kept"] == len(res.members)
    assert "created_utc" not in log  # no wall-clock time: the same files give the same log
    assert log["accounting"]["keluarga"]["rejected"] > 0 and log["accounting"]["anggota"]["exact_duplicates_removed"] > 0
    assert set(res.families["kode_kabupaten"]) == {"63.02", "63.09", "63.10"}


def _raw_identifiers_and_names():
    ids, names = set(), set()
    for pair in discover(paths.RAW_DIR):
        for f in (pair.keluarga, pair.anggota):
            text = Path(f).read_text(encoding="utf-8-sig", errors="replace")
            ids.update(re.findall(r"(?<!\d)\d{16}(?!\d)", text))
        kel = rawio.read_table(pair.keluarga, "keluarga").data
        names.update(v for v in kel["nama_kepala"].dropna() if len(v) > 8)
    return ids, names


def test_no_personal_data_in_any_processed_file(built):
    out, _, _, _ = built
    ids, names = _raw_identifiers_and_names()
    assert len(ids) > 30_000 and len(names) > 900  # NIK and No. KK, heads' names of the sample
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in files)
    digits = re.compile(rb"(?<!\d)\d{16}(?!\d)")
    sample_names = sorted(names)[::max(1, len(names) // 300)]
    for p in files:
        data = p.read_bytes()
        found = {m.decode() for m in digits.findall(data)} & ids
        assert not found, f"{p.name} holds raw identifiers"
        for n in sample_names:
            assert n.encode() not in data, f"{p.name} holds a name"


def _independent_problems(scores: pd.DataFrame, cat) -> dict:
    """(kabupaten, round, village, indicator) -> (rule, families affected, to_target), by counting.

    Loops over the scores with exact fractions: the village share and the kabupaten share (its
    families pooled) of applicable families meeting each indicator; a problem when the share is
    below the target or below the kabupaten share (with a family not meeting it)."""
    out = {}
    for (kab, rnd), s in scores.groupby(["kode_kabupaten", "putaran"]):
        for ind in cat.indicators:
            v = s[ind.id].astype("float64")
            met_k, app_k = int((v == 1).sum()), int(v.notna().sum())
            for desa, vv in v.groupby(s["kode_desa"].to_numpy()):
                met, app = int((vv == 1).sum()), int(vv.notna().sum())
                if app == 0:
                    continue
                need = math.ceil(Fraction(str(ind.target)) * app / 100)
                to_target = max(0, need - met)
                below_target = to_target > 0
                below_kab = Fraction(met, app) < Fraction(met_k, app_k) and app - met > 0
                if below_target or below_kab:
                    rule = "target+kabupaten" if below_target and below_kab else "target" if below_target else "kabupaten"
                    out[(kab, int(rnd), desa, ind.id)] = (rule, app - met, to_target)
    return out


def test_problems_of_every_village_match_an_independent_count(built):
    out, _, _, cmp = built
    cat = load_catalogue("ikk")
    scores = load_scores("ikk", out)
    want = _independent_problems(scores, cat)
    got = cmp.table("problems")
    got = got[got["catalogue"] == "ikk"]
    have = {(r.kabupaten, int(r.round), r.kode_desa, r.indicator): (r.rule, int(r.families_affected), int(r.to_target))
            for r in got.itertuples()}
    assert have == want
    # every village of every round has its problems named (the sample meets no target everywhere)
    villages = scores.groupby("putaran")["kode_desa"].nunique().sum()
    assert got.groupby(["round", "kode_desa"]).ngroups == villages
    # ranked by the families that must change to reach the target (then to reach the kabupaten)
    for _, g in got.groupby(["round", "kode_desa"]):
        g = g.sort_values("priority")
        assert list(g["priority"]) == list(range(1, len(g) + 1))
        assert g["to_target"].is_monotonic_decreasing
    plan = cmp.table("agency_plan")
    plan = plan[plan["catalogue"] == "ikk"]
    per_agency = got.groupby(["round", "kode_desa", "agency"])[["to_target", "families_affected"]].sum()
    joined = plan.set_index(["round", "kode_desa", "agency"])[["to_target", "families_affected"]]
    assert per_agency.sort_index().equals(joined.sort_index())


def _planted():
    """(desa lokus, lokus year) -> its planted effect (pk2d/data/synth_villages.yaml)."""
    cfg = yaml.safe_load((paths.REFERENCE_DIR / "synth_villages.yaml").read_text(encoding="utf-8"))
    return {(x["kode_desa"], int(x["tahun"])): float(x["effect"]) for k in cfg["kabupaten"] for x in k["lokus"]}


def test_every_desa_lokus_evaluation_recovers_its_planted_effect(built):
    _, _, _, cmp = built
    did = cmp.did
    did = did[(did["catalogue"] == "ikk") & (did["component_id"] == "indeks")]
    planted = _planted()
    got = {(r.focus, int(r.lokus_year), int(r.before_round), int(r.round)) for r in did.itertuples()}
    # each desa lokus against every later round of its kabupaten, from the round of its lokus year
    assert got == {("63.02.11.2005", 2023, 1, 2), ("63.02.11.2005", 2023, 1, 3), ("63.02.06.2012", 2024, 2, 3),
                   ("63.09.03.2001", 2023, 1, 2), ("63.10.06.2007", 2025, 3, 4)}
    assert {(f, y) for f, y, _, _ in got} == set(planted)
    for r in did.itertuples():
        effect = planted[(r.focus, int(r.lokus_year))]
        assert r.ci_low <= effect <= r.ci_high, (r.focus, r.before_round, r.round, effect, r.estimate)
        assert abs(r.estimate - effect) < 1.0
