"""Exports of the field tools (KoboToolbox XLSX and CSV, ODK Central CSV) read as they come.

Round trip: a round of the synthetic sample written in each tool's export shape (pk2d.synth_tools,
following the tools' documented conventions, with edited submissions and the tools' personal
metadata) must clean to exactly the families and members of the native files, and score the same.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from pk2d import cleaning, paths, synth_tools, tools
from pk2d.errors import InputFileError
from pk2d.score import score_families

FAM = paths.RAW_DIR / "SINTETIS_tabalong_2023_putaran1_keluarga.csv"
MEM = paths.RAW_DIR / "SINTETIS_tabalong_2023_putaran1_anggota.csv"
REGIONS = paths.RAW_DIR / "SINTETIS_wilayah.csv"
KEY, TODAY = b"kunci-alat", "2026-12-01"


def _clean(raw: Path, out: Path):
    shutil.copy(REGIONS, raw)
    return cleaning.clean(raw, out, key=KEY, today=TODAY)


def _sorted(df: pd.DataFrame, cols) -> pd.DataFrame:
    return df.sort_values(cols, kind="stable").reset_index(drop=True)


@pytest.fixture(scope="module")
def native(tmp_path_factory):
    d = tmp_path_factory.mktemp("native")
    raw = d / "raw"
    raw.mkdir()
    shutil.copy(FAM, raw)
    shutil.copy(MEM, raw)
    return _clean(raw, d / "out")


# the XLSX shape once (openpyxl is slow), the CSV shapes with and without group paths, names and labels
VARIANTS = [("kobo-xlsx", True, False)] + [
    (s, g, lab) for s in ("kobo-csv", "odk-csv") for g, lab in ((True, False), (False, True))]
SMALL = Path(__file__).parent / "fixtures" / "corpus" / "cases" / "a01_base" / "raw"
SMALL_FAM, SMALL_MEM = SMALL / "desa_2023_putaran1_keluarga.csv", SMALL / "desa_2023_putaran1_anggota.csv"


@pytest.mark.parametrize("shape,groups,labels", VARIANTS,
                         ids=[f"{s}-{'groups' if g else 'flat'}-{'labels' if lab else 'names'}" for s, g, lab in VARIANTS])
def test_an_export_cleans_to_the_same_families_members_and_scores(shape, groups, labels, native, tmp_path):
    files = synth_tools.export_round(FAM, MEM, tmp_path / "raw", shape, groups=groups, labels=labels, edited=3)
    res = _clean(tmp_path / "raw", tmp_path / "out")
    pd.testing.assert_frame_equal(_sorted(res.families, ["id_keluarga"]), _sorted(native.families, ["id_keluarga"]))
    pd.testing.assert_frame_equal(_sorted(res.members, ["id_keluarga", "id_anggota"]),
                                  _sorted(native.members, ["id_keluarga", "id_anggota"]))
    s_tool = _sorted(score_families(res.families, res.members), ["id_keluarga"])
    s_nat = _sorted(score_families(native.families, native.members), ["id_keluarga"])
    pd.testing.assert_frame_equal(s_tool, s_nat)
    # three families edited twice: their two older versions (and their members) are superseded
    acc, ref = res.log["accounting"], native.log["accounting"]
    assert acc["keluarga"]["superseded"] == 6 and acc["keluarga"]["kept"] == ref["keluarga"]["kept"]
    assert acc["anggota"]["superseded"] > 0
    assert acc["keluarga"]["raw"] == sum(acc["keluarga"][k] for k in ("kept", "rejected", "exact_duplicates_removed",
                                                                      "superseded"))
    kinds = {x["format"] for x in res.log["inputs"]}
    assert kinds == {shape}, kinds
    assert "superseded by an edit" in res.summary()
    # the tools' personal columns are named in the log and their values are nowhere
    dropped = {c for x in res.log["inputs"] for c in x.get("personal_metadata_dropped", [])}
    assert {"deviceid", "phonenumber"} <= {c.split("/")[-1].split("-")[-1] for c in dropped}
    _no_tool_personal_values(files, tmp_path / "out")


def _no_tool_personal_values(files, out: Path) -> None:
    values = set()
    for f in files:
        if f.suffix == ".xlsx":
            for ws in openpyxl.load_workbook(f, read_only=True).worksheets:
                rows = list(ws.iter_rows(values_only=True))
                for name in ("deviceid", "phonenumber", "username", "lokasi", "_submitted_by", "SubmitterName"):
                    if name in rows[0]:
                        values |= {str(r[rows[0].index(name)]) for r in rows[1:] if r[rows[0].index(name)]}
        else:
            df = pd.read_csv(f, sep=None, engine="python", dtype=str)
            for name in ("deviceid", "phonenumber", "username", "lokasi", "SubmitterName", "DeviceID"):
                if name in df:
                    values |= set(df[name].dropna())
    assert values, "the export has personal metadata to look for"
    text = []
    for p in out.rglob("*"):
        if p.is_file():
            text.append(pd.read_parquet(p).to_csv() if p.suffix == ".parquet" else p.read_text(errors="replace"))
    found = [v for v in values if any(v in t for t in text)]
    assert not found, f"{len(found)} personal metadata values in the outputs"


def test_exports_are_found_beside_native_files(tmp_path):
    raw = tmp_path / "raw"
    synth_tools.export_round(SMALL_FAM, SMALL_MEM, raw, "odk-csv")
    shutil.copy(SMALL_FAM, raw)
    shutil.copy(SMALL_MEM, raw)
    from pk2d import rawio

    pairs = rawio.discover(raw)
    assert sorted(p.tool.kind if p.tool else "native" for p in pairs) == ["native", "odk-csv"]


def test_a_kobo_workbook_without_its_members_sheet_is_refused(tmp_path):
    raw = tmp_path / "raw"
    [xlsx] = synth_tools.export_round(SMALL_FAM, SMALL_MEM, raw, "kobo-xlsx")
    wb = openpyxl.load_workbook(xlsx)
    del wb["anggota"]
    wb.save(xlsx)
    with pytest.raises(InputFileError, match="no members sheet") as info:
        tools.find_exports(raw)
    assert "Perbaikan / fix" in str(info.value)


def test_an_odk_export_without_its_repeat_file_is_refused(tmp_path):
    raw = tmp_path / "raw"
    main, rep = synth_tools.export_round(SMALL_FAM, SMALL_MEM, raw, "odk-csv")
    rep.unlink()
    with pytest.raises(InputFileError, match="no members file"):
        tools.find_exports(raw)


def test_members_pointing_at_no_family_are_refused_with_the_column(tmp_path):
    raw = tmp_path / "raw"
    main, rep = synth_tools.export_round(SMALL_FAM, SMALL_MEM, raw, "kobo-csv")
    df = pd.read_csv(rep, sep=";", dtype=str, keep_default_na=False)
    df.loc[3, "_parent_index"] = "999999"
    df.to_csv(rep, sep=";", index=False)
    [exp] = tools.find_exports(raw)
    with pytest.raises(InputFileError, match="_parent_index") as info:
        tools.read_export(exp)
    assert "row 5" in str(info.value)


def test_metadata_and_personal_metadata_rules():
    assert tools.is_metadata("_submission__uuid") and tools.is_metadata("meta-instanceID")
    assert tools.is_metadata("SET-OF-anggota") and not tools.is_metadata("keluarga/no_kk")
    assert tools.is_personal_metadata("deviceid") and tools.is_personal_metadata("_lokasi_latitude")
    assert tools.is_personal_metadata("titik", pd.Series(["-3.123456 116.123456 12.0 4.5"] * 3))
    assert not tools.is_personal_metadata("wilayah/rt", pd.Series(["1", "2"]))


def test_the_reader_drops_the_form_s_helper_fields():
    from pk2d import form

    assert set(form.HELPERS) <= tools.METADATA
    assert all(tools.is_metadata(h) for h in form.HELPERS)


def test_an_odk_central_edit_keeps_the_first_key_and_the_current_version(tmp_path, native):
    """ODK Central exports one row per submission: KEY stays the first version's instance id after an
    edit, meta-instanceID is the current version's, meta-deprecatedID the replaced one (== KEY)."""
    raw = tmp_path / "raw"
    main, rep = synth_tools.export_round(SMALL_FAM, SMALL_MEM, raw, "odk-csv", edited=0)
    df = pd.read_csv(main, dtype=str, keep_default_na=False)
    df.loc[0, "meta-deprecatedID"] = df.loc[0, "KEY"]  # the first family was edited once
    df.loc[0, "meta-instanceID"] = "uuid:00000000-0000-4000-a000-000000000001"
    df.to_csv(main, index=False)
    res = _clean(raw, tmp_path / "out")
    assert len(res.families) == 10 and "superseded" not in res.log["accounting"]["keluarga"]
