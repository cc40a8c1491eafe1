"""The clean stage: normalisation, one test per cleaning rule, pseudonymisation, outputs.

Every fixture is hand-made: the small CSV files in tests/fixtures/clean/ (good_* has no
dirt at all, dirty_* has every kind of dirt) or one-cell edits of them made in the test.
"""
from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from pk2d import cleaning as clean, parse, rawio
from pk2d import io as pio
from pk2d.errors import InputFileError

FIXTURES = Path(__file__).parent / "fixtures" / "clean"
KEY = b"kunci-uji-pk2d"
TODAY = "2024-12-31"


def rows(name: str) -> list[dict]:
    with open(FIXTURES / name, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def write_csv(path: Path, records: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(records[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(records)
    path.write_text(buf.getvalue(), encoding="utf-8")


def run(tmp_path: Path, fam=None, mem=None, *, stem="desa_2024_putaran1", key=KEY, extra_pairs=()) -> clean.CleanResult:
    """Write the (edited) good fixture pair to tmp_path/raw and clean it into tmp_path/out."""
    raw = tmp_path / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for s, f, m in [(stem, fam, mem), *extra_pairs]:
        write_csv(raw / f"{s}_keluarga.csv", rows("good_keluarga.csv") if f is None else f)
        write_csv(raw / f"{s}_anggota.csv", rows("good_anggota.csv") if m is None else m)
    return clean.clean(raw, tmp_path / "out", key=key, today=TODAY)


def rejected(res: clean.CleanResult) -> set[tuple]:
    return {(r.table, r.row, r.column, r.rule) for r in res.rejects.itertuples()}


# ------------------------------------------------------------ normalisation ---
def test_numbers_decimal_comma_and_thousands():
    got = parse.parse_number(pd.Series(["1.500.000", "12,5", "1.234,5", "12.5", "36", "Rp 2.000.000", "1,500,000",
                                        "1.234.567,89", "-3", "abc", "1.2.3", None]))
    assert got.tolist()[:9] == [1500000, 12.5, 1234.5, 12.5, 36, 2000000, 1500000, 1234567.89, -3]
    assert got.iloc[9:].isna().all()


def test_whole_numbers():
    assert parse.parse_int(pd.Series(["24", "24,0", "24,5", "x"])).tolist() == [24, 24, pd.NA, pd.NA]


def test_dates_in_every_accepted_form():
    got = parse.parse_date(pd.Series(["2024-06-14", "14/06/2024", "14-06-2024", "45457", "2024-06-14 08:30:00",
                                      "31/02/2024", "14 Juni 2024", None]))
    assert [d.strftime("%Y-%m-%d") for d in got.iloc[:5]] == ["2024-06-14"] * 5
    assert got.iloc[5:].isna().all()  # 31 February, month names, missing


def test_codes_are_case_and_space_insensitive():
    spec = next(c for c in rawio.columns("anggota") if c["name"] == "hubungan")
    got = parse.parse_code(pd.Series(["Kepala Keluarga", "KEPALA  keluarga", "1", "01", "2. Istri", "Istri",
                                      "anak_kandung", "pasangan", "tetangga"]), spec)
    assert got.tolist()[:8] == ["kepala"] * 4 + ["pasangan", "pasangan", "anak", "pasangan"]
    assert pd.isna(got.iloc[8])


def test_yes_no_spellings():
    got = parse.parse_yesno(pd.Series(["Ya", "YA", "y", "1", "Tidak", "tdk", "0", "Tidak Ada", "mungkin", None]))
    assert got.tolist() == [True, True, True, True, False, False, False, False, pd.NA, pd.NA]
    assert str(got.dtype) == "boolean"


def test_rt_numbers():
    got = parse.parse_rt(pd.Series(["001", "1", "RT 01", "rt.003", "RT 002/RW 001", "12", "abc", "1234"]))
    assert got.tolist() == [1, 1, 1, 3, 2, 12, pd.NA, pd.NA]


def test_ids_keep_16_digits_only():
    nik = "63020601" + "01240001"  # built, so no 16-digit literal sits in the repository
    got = parse.parse_id16(pd.Series([nik, " 6302 0601 0124 0001", "'" + nik, nik + ".0", "6.30206E+15", "123"]))
    assert got.tolist()[:4] == ["63020601" "01240001"] * 4 and got.iloc[4:].isna().all()


# ------------------------------------------------------------- rule by rule ---
def test_good_fixture_has_no_rejects(tmp_path):
    res = run(tmp_path)
    assert res.rejects.empty
    assert len(res.families) == 3 and len(res.members) == 6


def edited(name: str, i: int, **changes) -> list[dict]:
    out = rows(name)
    out[i].update(changes)
    return out


FAMILY_RULES = [  # (family row edit, (row, column, rule)) -- row numbers as in the file
    ({"nama_desa": ""}, (2, "nama_desa", "wajib_diisi")),
    ({"luas_lantai_m2": "tiga puluh"}, (2, "luas_lantai_m2", "format_tidak_dikenal")),
    ({"jenis_kelamin_kepala": "X"}, (2, "jenis_kelamin_kepala", "kode_tidak_dikenal")),
    ({"luas_lantai_m2": "2,5"}, (2, "luas_lantai_m2", "di_luar_rentang")),
    ({"rt": "0"}, (2, "rt", "di_luar_rentang")),
    ({"tanggal_wawancara": "2024-13-01"}, (2, "tanggal_wawancara", "format_tidak_dikenal")),
    ({"kode_kecamatan": "63.03.06", "kode_desa": "63.03.06.2001"},
     (2, "kode_kecamatan", "kode_wilayah_tidak_konsisten")),
    ({"kode_desa": "63.02.07.2001"}, (2, "kode_desa", "kode_wilayah_tidak_konsisten")),
    ({"nama_desa": "Pondok Labuh"}, (2, "nama_desa", "nama_wilayah_tidak_konsisten")),
    ({"tanggal_wawancara": "2025-01-02"}, (2, "tanggal_wawancara", "tanggal_wawancara_di_masa_depan")),
    ({"tahun": "2021"}, (2, "tahun", "tahun_tidak_cocok")),
]


@pytest.mark.parametrize("edit, expected", FAMILY_RULES, ids=[e[1][2] + ":" + e[1][1] for e in FAMILY_RULES])
def test_family_rule(tmp_path, edit, expected):
    res = run(tmp_path, fam=edited("good_keluarga.csv", 0, **edit))
    assert ("keluarga", *expected) in rejected(res)
    assert len(res.families) == 2  # the family is out ...
    members = res.rejects[res.rejects.table == "anggota"]
    assert set(members.rule) == {"keluarga_ditolak"} and set(members.row) == {2, 3, 4}  # ... with its 3 members


MEMBER_RULES = [  # (member row index, edit, (row, column, rule))
    (2, {"jenis_kelamin": ""}, (4, "jenis_kelamin", "wajib_diisi")),
    (2, {"hubungan": "tetangga"}, (4, "hubungan", "kode_tidak_dikenal")),
    (2, {"akta_kelahiran": "mungkin"}, (4, "akta_kelahiran", "format_tidak_dikenal")),
    (2, {"nik": "63020610092200"}, (4, "nik", "format_tidak_dikenal")),
    (2, {"no_kk": ""}, (4, "no_kk", "anggota_tanpa_kk")),
    (2, {"no_kk": "63020601" "01249999"}, (4, "no_kk", "anggota_tanpa_keluarga")),
    (2, {"tanggal_lahir": "", "umur": ""}, (4, "umur", "umur_tidak_diketahui")),
    (2, {"tanggal_lahir": "2024-07-01"}, (4, "tanggal_lahir", "lahir_setelah_wawancara")),
    (2, {"tanggal_lahir": "1900-01-01"}, (4, "umur", "di_luar_rentang")),
    (2, {"tanggal_lahir": "", "umur": "-1"}, (4, "umur", "di_luar_rentang")),
    (4, {"usia_kawin_pertama": "9"}, (6, "usia_kawin_pertama", "di_luar_rentang")),
    (1, {"usia_kawin_pertama": "45"}, (3, "usia_kawin_pertama", "usia_kawin_melebihi_umur")),
]


@pytest.mark.parametrize("i, edit, expected", MEMBER_RULES, ids=[e[2][2] + ":" + e[2][1] for e in MEMBER_RULES])
def test_member_rule(tmp_path, i, edit, expected):
    res = run(tmp_path, mem=edited("good_anggota.csv", i, **edit))
    assert rejected(res) == {("anggota", *expected)}
    assert len(res.members) == 5 and len(res.families) == 3  # a non-head member goes alone


def test_personal_values_never_appear_in_messages(tmp_path):
    res = run(tmp_path, mem=edited("good_anggota.csv", 2, nik="63020610092200"))
    msg = res.rejects.message.iloc[0]
    assert "63020610092200" not in msg and "tidak ditampilkan" in msg and "'nik'" in msg


def test_no_raw_value_in_any_reject_reason_even_of_a_coded_column(tmp_path):
    """A shifted row puts a name into a coded column: the reason says what it looks like, not what it is."""
    res = run(tmp_path, mem=edited("good_anggota.csv", 2, hubungan="Siti Rahmawati", jenis_kelamin="0812 3456 789"))
    msgs = " ".join(res.rejects.message)
    assert "Siti" not in msgs and "Rahmawati" not in msgs and "3456" not in msgs
    assert "kata-kata" in msgs and "'hubungan'" in msgs


def test_exact_duplicates_are_removed_and_counted_not_rejected(tmp_path):
    fam, mem = rows("good_keluarga.csv"), rows("good_anggota.csv")
    res = run(tmp_path, fam=fam + [dict(fam[1])], mem=mem + [dict(mem[0]), dict(mem[0])])
    assert res.rejects.empty and len(res.families) == 3 and len(res.members) == 6
    assert res.log["accounting"]["keluarga"]["exact_duplicates_removed"] == 1
    assert res.log["accounting"]["anggota"]["exact_duplicates_removed"] == 2


def test_exact_duplicates_compare_normalised_values(tmp_path):
    fam = rows("good_keluarga.csv")
    twin = dict(fam[1], rt="RT 001", kode_desa="6302062001", buku_nikah="YA", tanggal_wawancara="15/06/2024")
    res = run(tmp_path, fam=fam + [twin])
    assert res.rejects.empty and res.log["accounting"]["keluarga"]["exact_duplicates_removed"] == 1


def test_conflicting_duplicate_kk_rejects_all_its_rows_and_members(tmp_path):
    fam = rows("good_keluarga.csv")
    res = run(tmp_path, fam=fam + [dict(fam[1], pendapatan_bulanan="1600000")])
    assert {("keluarga", 3, "no_kk", "kk_ganda_bertentangan"),
            ("keluarga", 5, "no_kk", "kk_ganda_bertentangan"),
            ("anggota", 5, "no_kk", "keluarga_ditolak"), ("anggota", 6, "no_kk", "keluarga_ditolak")} == rejected(res)
    assert "baris" in res.rejects.message.iloc[-1] and ":3, " in res.rejects.message.iloc[-1]
    assert len(res.families) == 2 and len(res.members) == 4


def test_conflicting_duplicate_nik_rejects_those_rows(tmp_path):
    mem = rows("good_anggota.csv")
    res = run(tmp_path, mem=mem + [dict(mem[2], nama="Rizki F.")])
    assert rejected(res) == {("anggota", 4, "nik", "nik_ganda_bertentangan"),
                             ("anggota", 8, "nik", "nik_ganda_bertentangan")}


@pytest.mark.parametrize("hubungan, heads", [("anak", 0), ("kepala", 2)])
def test_family_needs_exactly_one_head(tmp_path, hubungan, heads):
    res = run(tmp_path, mem=edited("good_anggota.csv", 3, hubungan=hubungan) if heads == 0 else
              edited("good_anggota.csv", 4, hubungan=hubungan))
    fam = res.rejects[res.rejects.table == "keluarga"]
    assert fam[["row", "rule"]].values.tolist() == [[3, "kepala_keluarga_tidak_satu"]]
    assert f"punya {heads} kepala" in fam.message.iloc[0]
    assert rejected(res) - {("keluarga", 3, "no_kk", "kepala_keluarga_tidak_satu")} == {
        ("anggota", 5, "no_kk", "keluarga_ditolak"), ("anggota", 6, "no_kk", "keluarga_ditolak")}


def test_file_mixing_rounds_is_a_file_level_error(tmp_path):
    with pytest.raises(InputFileError, match="mixes survey rounds 1, 2"):
        run(tmp_path, fam=edited("good_keluarga.csv", 2, putaran="2"))


# ----------------------------------------------------------- age and output ---
@pytest.mark.parametrize("interview, age", [("2024-06-14", 23), ("2024-06-15", 24)])
def test_age_at_interview_date(tmp_path, interview, age):
    res = run(tmp_path, fam=edited("good_keluarga.csv", 0, tanggal_wawancara=interview),
              mem=edited("good_anggota.csv", 2, tanggal_lahir="2000-06-15", status_sekolah="tidak_sekolah_lagi"))
    assert res.members["umur"].iloc[2] == age


def test_age_given_without_birth_date_is_used(tmp_path):
    res = run(tmp_path, mem=edited("good_anggota.csv", 2, tanggal_lahir="", umur="7"))
    assert res.members["umur"].iloc[2] == 7 and str(res.members["umur"].dtype) == "Int64"


def test_output_tables_have_the_promised_columns_and_types(tmp_path):
    fam = [{k: v for k, v in r.items() if k != "nama_provinsi"} for r in rows("good_keluarga.csv")]
    res = run(tmp_path, fam=fam)
    f, m = res.families, res.members
    answers = [c["name"] for c in rawio.columns("keluarga") if c["name"] not in clean.FAMILY_FRONT
               and not c.get("personal")]
    assert list(f.columns) == clean.FAMILY_FRONT + answers
    assert list(m.columns) == clean.MEMBER_COLUMNS
    assert f.nama_provinsi.tolist() == ["Kalimantan Selatan"] * 3  # filled from wilayah.csv
    assert f.kode_rt.tolist() == ["63.02.06.2001.001", "63.02.06.2001.001", "63.02.06.2001.002"]
    assert str(f.rt.dtype) == "int64" and str(f.tanggal_wawancara.dtype).startswith("datetime64")
    assert str(f.buku_nikah.dtype) == "boolean" and f.bobot.isna().all() and f.psu.isna().all()
    assert str(m.akta_kelahiran.dtype) == "boolean" and m.putaran.tolist() == [1] * 6
    assert not f.duplicated(["putaran", "id_keluarga"]).any()
    folder = tmp_path / "out" / "families"  # a hive dataset any Parquet reader understands
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.parquet")) == [
        "kode_provinsi=63/kode_kabupaten=63.02/part-0.parquet"]
    back = pd.read_parquet(folder)
    assert sorted(back.columns) == sorted(f.columns) and len(back) == 3
    assert back["kode_kabupaten"].astype(str).tolist() == ["63.02"] * 3


# --------------------------------------------------------- pseudonymisation ---
def test_ids_are_keyed_stable_and_not_16_digits(tmp_path):
    a = run(tmp_path / "a")
    b = run(tmp_path / "b")
    c = run(tmp_path / "c", key=b"another-key")
    assert a.families.id_keluarga.tolist() == b.families.id_keluarga.tolist()
    assert a.members.id_anggota.tolist() == b.members.id_anggota.tolist()
    assert not set(a.families.id_keluarga) & set(c.families.id_keluarga)
    assert all(re.fullmatch(r"K[0-9a-f]{16}", i) for i in a.families.id_keluarga)
    assert all(re.fullmatch(r"A[0-9a-f]{16}", i) for i in a.members.id_anggota)
    assert set(a.members.id_keluarga) == set(a.families.id_keluarga)


def test_same_kk_gets_the_same_id_in_every_round(tmp_path):
    fam2 = [dict(r, putaran="2", tahun="2025", tanggal_wawancara="2025-06-14") for r in rows("good_keluarga.csv")]
    res = clean.clean(*_two_rounds(tmp_path, fam2), key=KEY, today="2025-12-31")
    f = res.families
    assert sorted(f.putaran.unique()) == [1, 2]
    assert set(f[f.putaran == 1].id_keluarga) == set(f[f.putaran == 2].id_keluarga)
    assert res.members.groupby("putaran").size().to_dict() == {1: 6, 2: 6}


def _two_rounds(tmp_path, fam2):
    raw = tmp_path / "raw"
    raw.mkdir()
    for stem, fam in (("desa_putaran1", rows("good_keluarga.csv")), ("desa_putaran2", fam2)):
        write_csv(raw / f"{stem}_keluarga.csv", fam)
        write_csv(raw / f"{stem}_anggota.csv", rows("good_anggota.csv"))
    return raw, tmp_path / "out"


def test_no_personal_data_in_any_output_file(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for name in ("dirty_keluarga.csv", "dirty_anggota.csv"):
        (raw / name.replace("dirty", "desa_2024_putaran1")).write_bytes((FIXTURES / name).read_bytes())
    clean.clean(raw, tmp_path / "out", key=KEY, today=TODAY)
    secrets = set()
    for name, cols in (("dirty_keluarga.csv", ["no_kk", "nik_kepala", "nama_kepala"]),
                       ("dirty_anggota.csv", ["no_kk", "nik", "nama", "tanggal_lahir"])):
        for r in rows(name):
            secrets |= {r[c] for c in cols if len(r[c]) >= 5}  # skips only "" and the broken "123"
    assert len(secrets) > 40
    outputs = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert sorted({p.relative_to(tmp_path / "out").parts[0] for p in outputs}) == [
        "cleaning_log.json", "families", "members", "rejects.csv"]
    for path in outputs:
        data = path.read_bytes()
        leaked = [s for s in secrets if s.encode() in data]
        assert not leaked, (path.name, leaked)


def test_load_key_from_environment_or_a_new_private_file(tmp_path, monkeypatch):
    monkeypatch.setenv("PK2D_KEY", "rahasia")
    assert clean.load_key(tmp_path / "k") == b"rahasia" and not (tmp_path / "k").exists()
    monkeypatch.delenv("PK2D_KEY")
    first = clean.load_key(tmp_path / "k")
    assert len(first) == 64 and (tmp_path / "k").stat().st_mode & 0o777 == 0o600
    assert clean.load_key(tmp_path / "k") == first


# ------------------------------------------------------- accounting, writes ---
def test_row_accounting_on_the_dirty_fixture(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for name in ("dirty_keluarga.csv", "dirty_anggota.csv"):
        (raw / name.replace("dirty", "desa_2024_putaran1")).write_bytes((FIXTURES / name).read_bytes())
    res = clean.clean(raw, tmp_path / "out", key=KEY, today=TODAY)
    acc = res.log["accounting"]
    # hand count (see the rows of tests/fixtures/clean/dirty_*.csv)
    assert acc["keluarga"] == {"raw": 11, "kept": 2, "rejected": 8, "exact_duplicates_removed": 1}
    assert acc["anggota"] == {"raw": 20, "kept": 4, "rejected": 15, "exact_duplicates_removed": 1}
    assert res.log["rules"]["anggota"]["keluarga_ditolak"] == 7
    assert res.rejects.groupby("table").row.nunique().to_dict() == {"anggota": 15, "keluarga": 8}
    log = json.loads((tmp_path / "out" / "cleaning_log.json").read_text())
    assert log["accounting"] == acc and log["unknown_columns"] == {"desa_2024_putaran1_keluarga.csv": ["Catatan Kader"]}
    assert [x["sha256"] for x in log["inputs"]] == [pio.sha256_file(raw / x["file"]) for x in log["inputs"]]
    text = res.summary()
    assert "11 baris mentah (raw rows) = 2 disimpan (kept) + 8 ditolak (rejected) + 1 duplikat" in text
    assert "20 baris mentah (raw rows) = 4 disimpan (kept) + 15 ditolak (rejected) + 1 duplikat" in text
    on_disk = pd.read_csv(tmp_path / "out" / "rejects.csv")
    assert list(on_disk.columns) == ["table", "file", "row", "column", "rule", "message"] and len(on_disk) == 25


def test_nothing_is_written_when_a_file_level_error_occurs(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InputFileError, match="63.99"):
        run(tmp_path, fam=edited("good_keluarga.csv", 2, kode_kabupaten="63.99"),
            extra_pairs=[("desa_2023", None, None)])
    assert list(out.iterdir()) == []


def test_writes_are_atomic_and_leave_no_temporary_files(tmp_path, monkeypatch):
    run(tmp_path)
    out = tmp_path / "out"
    def files():
        return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    before = files()
    assert sorted({k.split("/")[0] for k in before}) == ["cleaning_log.json", "families", "members", "rejects.csv"]

    def broken(self, *a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(pd.DataFrame, "to_csv", broken)
    with pytest.raises(OSError, match="disk full"):
        run(tmp_path, fam=edited("good_keluarga.csv", 0, dusun="Dusun III"))
    assert files() == before and sorted(p.name for p in out.iterdir()) == [  # old outputs intact, no temp files
        "cleaning_log.json", "families", "members", "rejects.csv"]


def test_a_csv_round_and_an_xlsx_round_with_excel_headers(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    raw = tmp_path / "raw"
    raw.mkdir()
    write_csv(raw / "desa_2024_putaran1_keluarga.csv", rows("good_keluarga.csv"))
    write_csv(raw / "desa_2024_putaran1_anggota.csv", rows("good_anggota.csv"))
    excel = {"no_kk": "No. KK", "kode_kabupaten": "Kode Kabupaten/Kota", "luas_lantai_m2": "Luas Lantai (m²)",
             "tanggal_wawancara": "Tgl Wawancara", "nama_kepala": " NAMA KEPALA "}
    for table, name in (("keluarga", "good_keluarga.csv"), ("anggota", "good_anggota.csv")):
        records = [{k: v for k, v in r.items() if k != "dusun"} for r in rows(name)]  # no dusun column
        wb = openpyxl.Workbook()
        wb.active.append([excel.get(k, k) for k in records[0]])
        for r in records:
            r = dict(r, tanggal_wawancara="2025-06-14") if table == "keluarga" else r
            wb.active.append([(float(v.replace(",", ".")) if k == "luas_lantai_m2" else
                               2 if k == "putaran" else v or None) for k, v in r.items()])
        wb.save(raw / f"desa_2025_putaran2_{table}.xlsx")
    res = clean.clean(raw, tmp_path / "out", key=KEY, today="2025-12-31")
    assert res.rejects.empty, res.rejects.to_string()
    f = res.families.sort_values(["putaran", "tanggal_wawancara"])
    assert f.groupby("putaran").size().to_dict() == {1: 3, 2: 3}
    assert f[f.putaran == 2].dusun.isna().all() and f[f.putaran == 1].dusun.notna().all()
    assert f[f.putaran == 2].luas_lantai_m2.tolist() == [36.0, 24.0, 30.0]
    assert [x["format"] for x in res.log["inputs"]] == ["csv", "csv", "xlsx", "xlsx"]
