"""Mapping files (pk2d.mapping): another system's export, cleaned through a mapping, gives exactly the
tables the contract's own files give; every mistake of a mapping is a clear message naming the mapping,
the entry and the fix; templates and messages never carry a personal value.

The re-coded export is built here from the shipped sample (Kotabaru 2023, round 1): headers renamed,
yes/no answers written 1/2, a code column and relationships in a system's own codes, region codes and
the kecamatan split apart, the interview date in three columns, the round and year left out (constants).
"""
from __future__ import annotations

import csv
import fnmatch
import io
import json
import re
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from pk2d import cleaning, cli, parse, paths, rawio, store
from pk2d.errors import InputFileError, MappingError
from pk2d.io import sha256_file
from pk2d.mapping import load_mapping

KEY = "kunci-pemetaan-uji"
SAMPLE = paths.RAW_DIR / "SINTETIS_kotabaru_2023_putaran1"
FIXTURES = Path(__file__).parent / "fixtures" / "clean"
BKKBN = paths.PACKAGE_DIR / "data" / "mappings" / "bkkbn_pk.yaml"
STEM = "desa_2023_putaran1"
SPECS = {t: {c["name"]: c for c in rawio.columns(t)} for t in rawio.TABLES}
YESNO = {t: [c for c, s in SPECS[t].items() if s["type"] == "yesno"] for t in rawio.TABLES}
WATER = {"ledeng": "A1", "air_kemasan": "A2", "sumur_terlindung": "A3", "mata_air_terlindung": "A4",
         "sumur_tak_terlindung": "A5", "sungai": "A6", "air_hujan": "A7", "lainnya": "A8"}
RELATION = {"kepala": "KK", "pasangan": "IS", "anak": "AN", "menantu": "MN", "cucu": "CU", "orang_tua": "OT",
            "famili_lain": "FL", "lainnya": "LN"}


def _sample(table: str) -> pd.DataFrame:
    return pd.read_csv(f"{SAMPLE}_{table}.csv", dtype=str, keep_default_na=False)


def _one_two(values: pd.Series) -> pd.Series:
    """Yes/no answers as 1/2 (every answer of the sample is a yes/no the contract reads)."""
    v = parse.parse_yesno(values.replace("", None))
    assert (v.notna() | (values == "")).all()
    return v.map({True: "1", False: "2"}).fillna("").astype("str")


def _codes(values: pd.Series, table: str, col: str, system: dict) -> pd.Series:
    got = parse.parse_code(values, SPECS[table][col]).map(system)
    assert got.notna().all()
    return got


def _yaml_map(d: dict) -> str:
    return "{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in d.items()) + "}"


def recode_export(fam: pd.DataFrame, mem: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """The two tables as another system exports them, and the mapping (YAML) back to the contract."""
    f = fam.copy()
    assert (f["kode_kabupaten"].str[:2] == f["kode_provinsi"]).all()
    f.insert(0, "KODE_KAB", f["kode_kabupaten"].str.replace(".", "", regex=False))  # 6302 -> 63 + 63.02
    f.insert(1, "KECAMATAN", f["kode_kecamatan"] + " - " + f["nama_kecamatan"])
    day = f["tanggal_wawancara"].str.split("-", expand=True)
    f["TGL"], f["BLN"], f["THN"] = day[2], day[1], day[0]
    f = f.drop(columns=["putaran", "tahun", "kode_provinsi", "kode_kabupaten", "kode_kecamatan", "nama_kecamatan",
                        "tanggal_wawancara"])
    f["sumber_air_minum"] = _codes(f["sumber_air_minum"], "keluarga", "sumber_air_minum", WATER)
    ren_f = {"no_kk": "NoKartu", "nik_kepala": "NIK KRT", "nama_kepala": "Nama KRT", "rt": "RTNum",
             "sumber_air_minum": "AIR"}
    m = mem.copy()
    m["hubungan"] = _codes(m["hubungan"], "anggota", "hubungan", RELATION)
    m["jenis_kelamin"] = _codes(m["jenis_kelamin"], "anggota", "jenis_kelamin", {"L": "A", "P": "B"})
    ren_m = {"no_kk": "NOKARTU", "nik": "NOINDUK", "nama": "NAMALENGKAP", "hubungan": "K.03", "jenis_kelamin": "K.04",
             "tanggal_lahir": "TGLLHR", "umur": "USIATH", "status_kawin": "K.07", "usia_kawin_pertama": "K.08",
             "status_sekolah": "K.10"}  # no header of the members file is the contract's any more
    for frame, table, ren, fmt in ((f, "keluarga", ren_f, "Q.{:02d}"), (m, "anggota", ren_m, "K.{}")):
        for i, c in enumerate(YESNO[table]):
            frame[c] = _one_two(frame[c])
            ren[c] = fmt.format(i + 20 if table == "anggota" else i + 1)
    yes_no = {t: "\n".join(f'      {c}: {{"1": Ya, "2": Tidak}}' for c in YESNO[t]) for t in rawio.TABLES}
    text = f"""pk2d_mapping: 1
description: A re-coded export of the sample
files: {{keluarga: "*keluarga*", anggota: "*anggota*"}}
tables:
  keluarga:
    columns: {_yaml_map({v: k for k, v in ren_f.items()})}
    recode:
      sumber_air_minum: {_yaml_map({v: k for k, v in WATER.items()})}
{yes_no["keluarga"]}
    split:
      KODE_KAB: {{into: [kode_provinsi, kode_kabupaten], widths: [2, 4]}}
      KECAMATAN: {{into: [kode_kecamatan, nama_kecamatan], sep: " - "}}
    join:
      tanggal_wawancara: {{from: [TGL, BLN, THN], format: "{{0}}/{{1}}/{{2}}"}}
    constants: {{putaran: 1, tahun: 2023}}
  anggota:
    columns: {_yaml_map({v: k for k, v in ren_m.items()})}
    recode:
      hubungan: {_yaml_map({v: k for k, v in RELATION.items()})}
      jenis_kelamin: {{A: L, B: P}}
{yes_no["anggota"]}
formats: {{dates: dmy}}
"""
    return f.rename(columns=ren_f), m.rename(columns=ren_m), text


def _write(folder: Path, fam: pd.DataFrame, mem: pd.DataFrame) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    fam.to_csv(folder / f"{STEM}_keluarga.csv", index=False)
    mem.to_csv(folder / f"{STEM}_anggota.csv", index=False)
    return folder


def _clean(raw: Path, out: Path, capsys, *extra) -> tuple[int, str]:
    code = cli.main(["clean", "--raw", str(raw), "--processed", str(out), *map(str, extra)])
    cap = capsys.readouterr()
    return code, cap.out + cap.err


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """The sample's round as shipped, and re-coded by another system with its mapping."""
    d = tmp_path_factory.mktemp("mapping")
    fam, mem = _sample("keluarga"), _sample("anggota")
    rf, rm, text = recode_export(fam, mem)
    (d / "mapping.yaml").write_text(text, encoding="utf-8")
    return {"dir": d, "orig": _write(d / "orig", fam, mem), "recoded": _write(d / "recoded", rf, rm),
            "mapping": d / "mapping.yaml", "fam": fam, "mem": mem}


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("PK2D_KEY", KEY)


# ------------------------------------------------------------- the worked round trip ---
def test_a_recoded_export_cleaned_with_its_mapping_gives_the_same_tables(exports, tmp_path, capsys, key):
    code, printed = _clean(exports["orig"], tmp_path / "a", capsys)
    assert code == 0, printed
    code, printed = _clean(exports["recoded"], tmp_path / "b", capsys, "--mapping", exports["mapping"])
    assert code == 0, printed
    a, b = store.open_run(tmp_path / "a", check=False), store.open_run(tmp_path / "b", check=False)
    assert len(a.table("families")) > 4000 and len(a.table("members")) > 15000
    pd.testing.assert_frame_equal(b.table("families"), a.table("families"))
    pd.testing.assert_frame_equal(b.table("members"), a.table("members"))
    # every later rule applied unchanged: the same rows rejected, for the same reasons
    rej = [pd.read_csv(r.path("rejects"))[["table", "row", "column", "rule"]] for r in (a, b)]
    assert len(rej[0]) > 10
    pd.testing.assert_frame_equal(rej[1], rej[0])
    assert b.json("cleaning_log")["accounting"] == a.json("cleaning_log")["accounting"]
    assert "Pemetaan kolom (mapping) mapping.yaml" in printed and "applied" in printed


def test_the_log_and_the_run_record_the_mapping_and_a_changed_mapping_recomputes(exports, tmp_path, capsys, key):
    mapping = tmp_path / "mine.yaml"
    mapping.write_text(exports["mapping"].read_text(encoding="utf-8"), encoding="utf-8")
    out = tmp_path / "p"
    assert _clean(exports["recoded"], out, capsys, "--mapping", mapping)[0] == 0
    run = store.open_run(out, check=False)
    digest = sha256_file(mapping)
    log = run.json("cleaning_log")
    assert log["mapping"]["file"] == "mine.yaml" and log["mapping"]["sha256"] == digest
    assert log["mapping"]["applied_to"] == [f"{STEM}_anggota.csv", f"{STEM}_keluarga.csv"]
    assert {x["file"]: x.get("mapping") for x in log["inputs"]} == dict.fromkeys(log["mapping"]["applied_to"],
                                                                                "mine.yaml")
    assert run.record("clean").inputs["mapping/mine.yaml"] == digest
    first = run.record("clean").generation
    code, printed = _clean(exports["recoded"], out, capsys, "--mapping", mapping)
    assert code == 0 and printed.startswith("(tidak berubah / up to date)"), printed
    mapping.write_text(mapping.read_text(encoding="utf-8").replace("A re-coded export", "Edited"), encoding="utf-8")
    code, printed = _clean(exports["recoded"], out, capsys, "--mapping", mapping)
    assert code == 0 and not printed.startswith("(tidak berubah"), printed
    run = store.open_run(out, check=False)
    assert run.record("clean").inputs["mapping/mine.yaml"] == sha256_file(mapping) != digest
    assert run.json("cleaning_log")["mapping"]["sha256"] == sha256_file(mapping)
    assert run.record("clean").generation != first  # the log changed with it


def test_pipeline_clean_passes_the_mapping_object_through(exports, tmp_path):
    from pk2d.pipeline import clean

    res = clean(exports["recoded"], tmp_path / "p", key=KEY, mapping=exports["mapping"])
    assert res.log["mapping"]["file"] == "mapping.yaml" and len(res.families) > 4000


# ------------------------------------------------------------------ mistakes of a mapping ---
def _mapping(tmp_path: Path, body: str, name: str = "m.yaml") -> Path:
    p = tmp_path / name
    p.write_text("pk2d_mapping: 1\n" + body, encoding="utf-8")
    return p


def _error(fn, *args) -> MappingError:
    with pytest.raises(MappingError) as info:
        fn(*args)
    return info.value


@pytest.mark.parametrize("body, key, words", [
    ("tables:\n  keluarga:\n    columns: {P01: ibadah_bersamaa}\n", 'tables.keluarga.columns.P01',
     ['"ibadah_bersamaa"', "not a column of the keluarga table", "did you mean 'ibadah_bersama'"]),
    ("tables:\n  keluarga:\n    columns: {P01: akta_kelahiran}\n", "tables.keluarga.columns.P01",
     ["it is a column of the anggota table"]),
    ('tables:\n  keluarga:\n    columns: {"P.01": ibadah_bersama, "p01": rekreasi_bersama}\n',
     'tables.keluarga.columns.p01', ['"P.01" and "p01" are the same header']),
    ("tables:\n  keluarga:\n    columns: {P01: ibadah_bersama, P02: ibadah_bersama}\n", "tables.keluarga.columns.P02",
     ["'ibadah_bersama' is made twice"]),
    ("tables:\n  keluarga:\n    colums: {P01: ibadah_bersama}\n", "tables.keluarga.colums",
     ["unknown key 'colums'", "did you mean 'columns'"]),
    ("tables:\n  keluarga: {}\nformat: {decimal: ','}\n", "format", ["unknown key 'format'", "'formats'"]),
    ("tables:\n  keluarga:\n    columns: {P01: ibadah_bersama}\n    recode: {ibadah_bersama: {'1': Iya}}\n",
     'tables.keluarga.recode.ibadah_bersama["1"]', ['"Iya" is not a value the contract reads', "Ya, Tidak"]),
    ("tables:\n  keluarga:\n    columns: {AIR: sumber_air_minum}\n    recode: {sumber_air_minum: {A1: pdam_kota}}\n",
     "tables.keluarga.recode.sumber_air_minum.A1", ['"pdam_kota"', "ledeng, air_kemasan"]),
    ("tables:\n  keluarga:\n    recode: {ibadah_bersama: {'1': Ya}}\n", "tables.keluarga.recode.ibadah_bersama",
     ["does not make from a header", 'map its header under columns']),
    ("tables:\n  keluarga:\n    columns: {NAMA: nama_kepala}\n    recode: {nama_kepala: {x: y}}\n",
     "tables.keluarga.recode.nama_kepala", ["personal data"]),
    ("tables:\n  keluarga:\n    split: {KW: {into: [kode_provinsi, kode_kabupaten], widths: [4, 2]}}\n",
     "tables.keluarga.split.KW.widths", ["increasing prefix lengths"]),
    ("tables:\n  keluarga:\n    split: {KW: {into: [kode_provinsi, kode_kabupaten], widths: [2, 4], sep: '.'}}\n",
     "tables.keluarga.split.KW", ["exactly one of widths"]),
    ("tables:\n  keluarga:\n    join: {tanggal_wawancara: {from: [D, M, Y], format: '{0}/{1}'}}\n",
     "tables.keluarga.join.tanggal_wawancara.format", ['"Y" is not used']),
    ("tables:\n  keluarga:\n    join: {tanggal_wawancara: {from: [D, M], format: '{0}/{2}'}}\n",
     "tables.keluarga.join.tanggal_wawancara.format", ["only the places {0}..{1}"]),
    ("tables:\n  keluarga:\n    constants: {putaran: satu}\n", "tables.keluarga.constants.putaran",
     ['"satu" is not a value the contract reads']),
    ("tables:\n  keluarga:\n    columns: {P01: ibadah_bersama, P01: rekreasi_bersama}\n", None,
     ["not valid YAML at line 4", "'P01' is listed twice"]),
    ("tables: {}\n", "tables", ["no table"]),
    ("formats: {decimal: ';'}\ntables:\n  keluarga: {}\n", "formats.decimal", ['";" is not one of ",", "."']),
])
def test_every_mistake_of_a_mapping_is_named_with_its_entry_and_fix(tmp_path, body, key, words):
    err = _error(load_mapping, _mapping(tmp_path, body))
    text = str(err)
    assert text.startswith(f"Mapping {tmp_path / 'm.yaml'}") and err.key == key, text
    assert "Perbaikan / fix:" in text
    for w in words:
        assert w in text, (w, text)


def test_a_file_that_is_no_mapping(tmp_path):
    assert "pk2d_mapping: 1" in str(_error(load_mapping, _write_text(tmp_path / "x.yaml", "tables: {}\n")))
    assert "does not exist" in str(_error(load_mapping, tmp_path / "none.yaml"))


def _write_text(p: Path, text: str) -> Path:
    p.write_text(text, encoding="utf-8")
    return p


def _fixture_rows(name: str) -> list[dict]:
    with open(FIXTURES / name, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _csv(path: Path, records: list[dict], *, header: list[str] | None = None, extra_lines=()) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header or list(records[0]))
    for r in records:
        w.writerow(list(r.values()))
    for line in extra_lines:
        buf.write(line + "\n")
    path.write_text(buf.getvalue(), encoding="utf-8")
    return path


def _pk_families(tmp_path: Path, answers: list[str]) -> Path:
    """The good families fixture with ibadah_bersama as P.01 holding ``answers`` (one per row)."""
    recs = _fixture_rows("good_keluarga.csv")
    for r, a in zip(recs, answers):
        r["ibadah_bersama"] = a
    head = ["P.01" if h == "ibadah_bersama" else h for h in recs[0]]
    return _csv(tmp_path / f"{STEM}_keluarga.csv", recs, header=head)


def test_answers_neither_the_recode_nor_the_contract_reads_are_listed_with_counts(tmp_path):
    m = load_mapping(_mapping(tmp_path, "tables:\n  keluarga:\n    columns: {P.01: ibadah_bersama}\n"
                              "    recode: {ibadah_bersama: {'1': Ya, '2': Tidak}}\n"))
    path = _pk_families(tmp_path, ["3", "9", "3"])
    err = _error(rawio.read_table, path, "keluarga", m)
    text = str(err)
    assert err.key == "tables.keluarga.recode.ibadah_bersama"
    assert f"file {path.name}, column 'ibadah_bersama' (header \"P.01\")" in text
    assert '2 answer(s)' in text and '"3" (2 rows), "9" (1 row)' in text and "null" in text
    # answers the contract reads on its own pass; listed ones are recoded; null is missing
    path = _pk_families(tmp_path, ["Ya", "2", "1"])
    assert rawio.read_table(path, "keluarga", m).data["ibadah_bersama"].tolist() == ["Ya", "Tidak", "Ya"]
    m = load_mapping(_mapping(tmp_path, "tables:\n  keluarga:\n    columns: {P.01: ibadah_bersama}\n"
                              "    recode: {ibadah_bersama: {'1': Ya, '9': null}}\n"))
    got = rawio.read_table(_pk_families(tmp_path, ["9", "1", "0"]), "keluarga", m).data["ibadah_bersama"]
    assert got.isna().tolist() == [True, False, False]


def test_a_mapped_header_missing_from_the_file_is_named(tmp_path):
    m = load_mapping(_mapping(tmp_path, "tables:\n  keluarga:\n    columns: {P.01: ibadah_bersama, P.09: kdrt}\n"))
    err = _error(rawio.read_table, _pk_families(tmp_path, ["1", "1", "1"]), "keluarga", m)
    assert f'file {STEM}_keluarga.csv: mapped header(s) "P.09" not in the file' in str(err)
    assert "Perbaikan / fix: correct the header in the mapping" in str(err)


def test_a_column_the_file_has_and_the_mapping_makes_too(tmp_path):
    m = load_mapping(_mapping(tmp_path, "tables:\n  keluarga:\n    columns: {P.01: ibadah_bersama}\n"))
    recs = _fixture_rows("good_keluarga.csv")
    path = _csv(tmp_path / f"{STEM}_keluarga.csv", [r | {"x": "ya"} for r in recs],
                header=[*recs[0], "P.01"])
    assert "is the contract column 'ibadah_bersama' already" in str(_error(rawio.read_table, path, "keluarga", m))


def test_the_cli_says_a_mapping_mistake_in_one_paragraph_exit_2(tmp_path, capsys, key):
    raw = tmp_path / "raw"
    raw.mkdir()
    _pk_families(raw, ["3", "1", "1"])
    _csv(raw / f"{STEM}_anggota.csv", _fixture_rows("good_anggota.csv"))
    bad = _mapping(tmp_path, "tables:\n  keluarga:\n    columns: {P.01: ibadah_bersama}\n"
                             "    recode: {ibadah_bersama: {'1': Ya}}\n")
    code, printed = _clean(raw, tmp_path / "p", capsys, "--mapping", bad)
    assert code == 2 and "Traceback" not in printed and '"3" (1 row)' in printed, printed
    assert printed.startswith("pk2d clean: Mapping ") and not (tmp_path / "p" / store.RUN_FILE).exists()
    other = _mapping(tmp_path, "files: {keluarga: '*bkkbn*'}\ntables:\n  keluarga: {}\n", "o.yaml")
    code, printed = _clean(raw, tmp_path / "p", capsys, "--mapping", other)
    assert code == 2 and "applies to none of the exports" in printed, printed


def test_personal_values_never_appear_in_a_mapping_message(tmp_path):
    recs = _fixture_rows("good_keluarga.csv")
    m = load_mapping(_mapping(tmp_path, "tables:\n  keluarga:\n    columns: {KK: no_kk, NAMA: nama_kepala}\n"))
    path = _csv(tmp_path / f"{STEM}_keluarga.csv", recs, header=[{"no_kk": "KK", "nama_kepala": "NAMA_X"}.get(h, h)
                                                                 for h in recs[0]])
    text = str(_error(rawio.read_table, path, "keluarga", m))
    assert '"NAMA" not in the file' in text
    assert not any(r[c] in text for r in recs for c in ("no_kk", "nik_kepala", "nama_kepala"))


# ------------------------------------------------------------------- reading with a mapping ---
def test_repeated_header_rows_and_blank_rows_stay_counted_with_a_mapping(tmp_path):
    m = load_mapping(_mapping(tmp_path, "tables:\n  keluarga:\n    columns: {P.01: ibadah_bersama}\n"
                              "    recode: {ibadah_bersama: {'1': Ya, '2': Tidak}}\n    constants: {dusun: Dusun I}\n"))
    recs = _fixture_rows("good_keluarga.csv")
    for r in recs:
        r["ibadah_bersama"] = "1"
    head = ["P.01" if h == "ibadah_bersama" else h for h in recs[0]]
    recs = [{k: v for k, v in r.items() if k != "dusun"} for r in recs]
    head = [h for h in head if h != "dusun"]
    path = _csv(tmp_path / f"{STEM}_keluarga.csv", recs, header=head,
                extra_lines=["," * (len(head) - 1), ",".join(head)])
    raw = rawio.read_table(path, "keluarga", m)
    assert len(raw.data) == 3 and raw.info["blank_rows_skipped"] == 1 and raw.info["header_rows_skipped"] == 1
    assert raw.data["dusun"].tolist() == ["Dusun I"] * 3 and raw.info["mapping"] == "m.yaml"


def test_an_xlsx_export_renamed_throughout_is_found_by_the_mapping(tmp_path):
    import openpyxl

    recs = _fixture_rows("good_anggota.csv")
    names = {c: f"COL{i}" for i, c in enumerate(recs[0])}
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Data anggota keluarga"])  # a title row above the header
    ws.append(list(names.values()))
    for r in recs:
        ws.append(list(r.values()))
    wb.save(tmp_path / f"{STEM}_anggota.xlsx")
    with pytest.raises(InputFileError, match="no header row"):
        rawio.read_table(tmp_path / f"{STEM}_anggota.xlsx", "anggota")
    m = load_mapping(_mapping(tmp_path, "tables:\n  anggota:\n    columns: "
                              + _yaml_map({v: k for k, v in names.items()}) + "\n"))
    raw = rawio.read_table(tmp_path / f"{STEM}_anggota.xlsx", "anggota", m)
    assert raw.data["nik"].tolist() == [r["nik"] for r in recs] and raw.info["header_row"] == 2
    assert raw.data["_row"].tolist()[0] == 3


def test_a_mapping_s_formats_win_over_what_the_values_say(tmp_path):
    recs = _fixture_rows("good_keluarga.csv")
    recs[0]["luas_lantai_m2"] = "12.500"  # 12,5 m2 with a decimal dot, or 12.500 m2 with a thousands dot?
    raw = tmp_path / "raw"
    raw.mkdir()
    _csv(raw / f"{STEM}_keluarga.csv", recs)
    _csv(raw / f"{STEM}_anggota.csv", _fixture_rows("good_anggota.csv"))
    with pytest.raises(InputFileError, match="2.333"):
        cleaning.clean(raw, tmp_path / "a", key=KEY.encode(), today="2024-12-31")
    m = _mapping(tmp_path, "files: {keluarga: '*keluarga*'}\ntables:\n  keluarga: {}\nformats: {decimal: '.'}\n")
    res = cleaning.clean(raw, tmp_path / "b", key=KEY.encode(), today="2024-12-31", mapping=m)
    assert res.families["luas_lantai_m2"].iloc[0] == 12.5
    conv = {x["file"]: x["conventions"] for x in res.log["inputs"]}[f"{STEM}_keluarga.csv"]
    assert conv["decimal"] == "." and conv["evidence"]["decimal_evidence"] == "stated"


# ----------------------------------------------------------------------- pk2d map --init ---
def _secrets(fam: pd.DataFrame, mem: pd.DataFrame) -> tuple[set[str], set[str]]:
    """Identifiers and birth dates (as substrings), names (as words) of the input."""
    ids = set(fam["no_kk"]) | set(fam["nik_kepala"]) | set(mem["no_kk"]) | set(mem["nik"])
    days = {d for d in mem["tanggal_lahir"] if d}
    dates = days | {f"{d[8:]}/{d[5:7]}/{d[:4]}" for d in days}
    names = set(fam["nama_kepala"]) | set(mem["nama"])
    return {v for v in ids | dates if v}, {v for v in names if v}


def test_map_init_writes_a_template_that_loads_matches_and_holds_nothing_personal(exports, tmp_path, capsys):
    fam = exports["fam"].iloc[:40]
    mem = exports["mem"][exports["mem"]["no_kk"].isin(set(fam["no_kk"]))]
    ren = {"no_kk": "NOKARTU", "nama": "PERSON", "tanggal_lahir": "TGLLHR", "jenis_kelamin": "K.04"}
    folder = _write(tmp_path / "raw", fam, mem.rename(columns=ren))
    ids, names = _secrets(fam, mem)
    for table in rawio.TABLES:
        out = tmp_path / f"{table}.yaml"
        code = cli.main(["map", "--init", str(folder / f"{STEM}_{table}.csv"), "--out", str(out)])
        printed = capsys.readouterr()
        assert code == 0, printed.err
        text = out.read_text(encoding="utf-8")
        header = list(fam.columns) if table == "keluarga" else [ren.get(c, c) for c in mem.columns]
        want = {h: h for h in header if h not in ren.values()}  # the sample's headers are the contract's names
        assert dict(load_mapping(out).tables[table].columns) == want
        assert load_mapping(out).files[table] == (f"*{table}*",)
        leaked = [v for v in ids if v in text] + [n for n in names if re.search(rf"\b{re.escape(n)}\b", text, re.I)]
        assert leaked == [], f"{len(leaked)} personal values in the template"
    assert '# "PERSON": ???   # not a contract header; values not shown' in text
    assert '# "TGLLHR": ???   # not a contract header; values not shown' in text
    assert '# ???:   # header "K.04"' in text and re.search(r'#   "P": \?\?\?   # \d+ rows', text)
    assert re.search(r'#   "Kepala Keluarga": "kepala"   # \d+ rows; the contract reads it so already', text)
    assert "required: no_kk, nama, jenis_kelamin;" in text
    assert cli.main(["map", "--init", str(folder / f"{STEM}_anggota.csv"), "--out", str(out)]) == 2
    assert "exists already" in capsys.readouterr().err
    assert cli.main(["map", "--check", str(out)]) == 0 and "valid (sha256" in capsys.readouterr().out


# ---------------------------------------------------------------- the shipped BKKBN mapping ---
def test_the_shipped_bkkbn_mapping_loads_says_what_is_unverified_and_is_installed():
    m = load_mapping(BKKBN)
    fam, mem = m.tables["keluarga"], m.tables["anggota"]
    assert dict(fam.columns) == {"P.01": "ibadah_bersama", "P.02": "buku_nikah", "P.03": "konflik_keluarga",
                                 "P.05": "makanan_beragam"}
    assert dict(mem.columns) == {"K.09": "akta_kelahiran", "K.15": "jaminan_kesehatan"}
    assert all(dict(fam.recode[c]) == {"1": "Ya", "2": "Tidak"} for c in fam.columns.values())
    assert "UNVERIFIED" in m.description and "not public" in m.description
    lines = BKKBN.read_text(encoding="utf-8").splitlines()
    for line in lines:  # every code not public is marked, and every assumed answer code
        if re.match(r'\s+"(P|K)\.\d+": \w+', line) and "(public code" not in line:
            assert "# unverified:" in line, line
        if re.match(r"\s+\w+: \{\"1\"", line):
            assert "# unverified:" in line, line
    globs = tomllib.loads((paths.PROJECT_DIR / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert any(fnmatch.fnmatch("data/mappings/bkkbn_pk.yaml", g) for g in globs["pk2d"])


def test_a_pendataan_keluarga_style_export_cleans_with_the_shipped_mapping(tmp_path):
    fam, mem = _fixture_rows("good_keluarga.csv"), _fixture_rows("good_anggota.csv")
    ref = tmp_path / "ref"
    ref.mkdir()
    _csv(ref / f"{STEM}_keluarga.csv", fam)
    _csv(ref / f"{STEM}_anggota.csv", mem)
    pk = {"ibadah_bersama": "P.01", "buku_nikah": "P.02", "konflik_keluarga": "P.03", "makanan_beragam": "P.05"}
    k = {"akta_kelahiran": "K.09", "jaminan_kesehatan": "K.15"}
    yn = {True: "1", False: "2"}
    raw = tmp_path / "raw"
    raw.mkdir()
    f2 = [{pk.get(c, c): (yn[parse.parse_yesno(pd.Series([v])).iloc[0]] if c in pk and v else v)
           for c, v in r.items()} for r in fam]
    m2 = [{k.get(c, c): ({True: "1", False: "3"} if c == "jaminan_kesehatan" else yn)[
        parse.parse_yesno(pd.Series([v])).iloc[0]] if c in k and v else v for c, v in r.items()} for r in mem]
    _csv(raw / f"{STEM}_keluarga.csv", f2)
    _csv(raw / f"{STEM}_anggota.csv", m2)
    a = cleaning.clean(ref, tmp_path / "a", key=KEY.encode(), today="2024-12-31")
    b = cleaning.clean(raw, tmp_path / "b", key=KEY.encode(), today="2024-12-31", mapping=BKKBN)
    pd.testing.assert_frame_equal(b.families, a.families)
    pd.testing.assert_frame_equal(b.members, a.members)
    assert b.log["mapping"]["file"] == "bkkbn_pk.yaml"


def test_a_recoded_code_column_reads_zero_padded_codes_by_the_recode_not_the_contract(tmp_path):
    """'04' is this system's code 4 (anak), never the contract's own numbered code 4 (menantu)."""
    recs = _fixture_rows("good_anggota.csv")
    heads = [j for j, r in enumerate(recs) if r["hubungan"] == "kepala"]
    others = [j for j in range(len(recs)) if j not in heads]
    for j in heads:
        recs[j]["hubungan"] = "01"
    recs[others[0]]["hubungan"] = "04"
    path = _csv(tmp_path / f"{STEM}_anggota.csv", recs, header=["HUB" if h == "hubungan" else h for h in recs[0]])
    m = load_mapping(_mapping(tmp_path, "tables:\n  anggota:\n    columns: {HUB: hubungan}\n"
                              "    recode: {hubungan: {'1': kepala, '2': pasangan, '4': anak}}\n"))
    got = rawio.read_table(path, "anggota", m).data["hubungan"].astype("str").tolist()
    assert got[others[0]] == "anak" and all(got[j] == "kepala" for j in heads)
    recs[others[0]]["hubungan"] = "5"  # a code the recode does not list: refused, not read as the contract's 5
    path = _csv(tmp_path / f"{STEM}_anggota.csv", recs, header=["HUB" if h == "hubungan" else h for h in recs[0]])
    assert '"5" (1 row)' in str(_error(rawio.read_table, path, "anggota", m))
