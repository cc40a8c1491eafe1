"""Two hand-made families in the clean format, shared by score/areas tests.

Family KA: married couple (40, 35) with children aged 8 and 3.
Family KB: a widow aged 70 living alone, with a disability.
Every indicator value and index in the tests is worked out by hand from
these answers (see the comments in tests/test_score.py).
"""
import pandas as pd

T, F, NA = True, False, pd.NA

FAMILY_ANSWERS = {
    #                    KA                 KB
    "buku_nikah": [T, NA], "pasangan_serumah": [T, NA], "makan_2x_sehari": [T, T],
    "makanan_beragam": [T, F], "balita_stunting": [F, NA], "kamar_tidur_terpisah": [F, NA],
    "jamban_sehat": [T, F], "sumber_air_minum": ["ledeng", "sungai"],
    "status_rumah": ["milik_sendiri", "milik_sendiri"], "jenis_lantai": ["semen", "tanah"],
    "luas_lantai_m2": [40.0, 20.0], "pendapatan_bulanan": [2_000_000.0, 300_000.0],
    "punya_tabungan": [F, F], "mampu_biaya_sekolah": [T, NA], "akses_internet": [T, F],
    "kdrt": [F, F], "konflik_keluarga": [F, F], "keputusan_bersama": [T, NA],
    "waktu_bersama": [T, T], "ikut_parenting": [F, NA], "masalah_hukum": [F, F],
    "kegiatan_sosial": [T, T], "ibadah_bersama": [T, T], "rekreasi_bersama": [F, F],
    "perempuan_berorganisasi": [F, T], "lansia_terawat": [NA, T],
    "disabilitas_terlayani": [NA, F], "pus_ber_kb": [T, NA],
}
YESNO = [k for k, v in FAMILY_ANSWERS.items() if any(isinstance(x, bool) for x in v)]


def families(rt=(1, 1), desa=("63.02.06.2001", "63.02.06.2001"), ids=("KA", "KB"), putaran=1):
    f = pd.DataFrame({
        "id_keluarga": list(ids), "putaran": putaran, "tahun": 2024,
        "kode_provinsi": "63", "nama_provinsi": "Kalimantan Selatan",
        "kode_kabupaten": "63.02", "nama_kabupaten": "Kotabaru",
        "kode_kecamatan": [d[:8] for d in desa], "nama_kecamatan": "Pamukan Selatan",
        "kode_desa": list(desa), "nama_desa": "Pondok Labu", "rt": list(rt),
        "kode_rt": [f"{d}.{r:03d}" for d, r in zip(desa, rt)], "jenis_kelamin_kepala": ["L", "P"],
        **FAMILY_ANSWERS,
    })
    return f.astype({c: "boolean" for c in YESNO})


def members(ids=("KA", "KB"), putaran=1):
    a, b = ids
    rows = [
        # id, rel, sex, age, status, ukp, akta, school, work, disab, jkn, imun
        (a, "kepala", "L", 40, "kawin", 22, T, "tidak_sekolah_lagi", T, F, T, NA),
        (a, "pasangan", "P", 35, "kawin", 20, T, "tidak_sekolah_lagi", F, F, F, NA),
        (a, "anak", "L", 8, "belum_kawin", NA, T, "masih_sekolah", F, F, T, NA),
        (a, "anak", "P", 3, "belum_kawin", NA, F, "belum_sekolah", F, F, T, T),
        (b, "kepala", "P", 70, "cerai_mati", 18, F, "tidak_sekolah_lagi", F, T, T, NA),
    ]
    cols = ["id_keluarga", "hubungan", "jenis_kelamin", "umur", "status_kawin", "usia_kawin_pertama",
            "akta_kelahiran", "status_sekolah", "bekerja", "disabilitas", "jaminan_kesehatan",
            "imunisasi_lengkap"]
    m = pd.DataFrame(rows, columns=cols)
    m.insert(1, "id_anggota", [f"A{i}" for i in range(len(m))])
    m.insert(2, "putaran", putaran)
    m = m.astype({"umur": "Int64", "usia_kawin_pertama": "Int64"})
    return m.astype({c: "boolean" for c in ["akta_kelahiran", "bekerja", "disabilitas",
                                             "jaminan_kesehatan", "imunisasi_lengkap"]})
