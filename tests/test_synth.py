"""Tests of the synthetic PK2D data generator (pk2d.synth).

The raw files are read back with pk2d.rawio and turned into the clean format by a small
reference parser below (yes/no and code spellings from the contract, ages from birth and
interview dates), then scored with the real engine (pk2d.score).
"""
from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
import yaml

from pk2d import paths, rawio
from pk2d.score import score_families
from pk2d.synth import SynthError, synthesize

DESIGN = ("bobot", "strata", "psu", "ssu", "populasi_psu", "populasi_ssu", "populasi_keluarga")  # the contract's design columns

#: the files of each kabupaten label: putaran -> "<tahun>_putaran<k>"
ROUNDS = {"kotabaru": {1: "2023_putaran1", 2: "2024_putaran2", 3: "2025_putaran3"},
          "tabalong": {1: "2023_putaran1", 2: "2024_putaran2"},
          "tanahbumbu": {3: "2025_putaran3", 4: "2026_putaran4"}}
#: the published figures of ikk-brief.md: (label, putaran, village, kecamatan, RT or None, KK, IKK or None)
PUBLISHED = [("kotabaru", 2, "Pondok Labu", "Pamukan Selatan", 11, 384, 73.98),
             ("kotabaru", 1, "Sangsang", "Kelumpang Tengah", 10, 786, 81.78),
             ("tabalong", 1, "Ampukung", "Kelua", None, None, 84.29),
             ("tanahbumbu", 3, "Pulau Tanjung", "Kusan Tengah", None, 212, None)]


# ------------------------------------------------------------------ helpers ---
def _config():
    return yaml.safe_load((paths.REFERENCE_DIR / "synth_villages.yaml").read_text(encoding="utf-8"))


def _files(out, k, label="kotabaru"):
    return (out / f"SINTETIS_{label}_{ROUNDS[label][k]}_keluarga.csv",
            out / f"SINTETIS_{label}_{ROUNDS[label][k]}_anggota.csv")


@functools.lru_cache(maxsize=None)
def _read(out, k, label):
    return tuple(rawio.read_table(p, t).data.drop(columns=["_row", "_file"]).astype("str")
                 for p, t in zip(_files(out, k, label), ("keluarga", "anggota")))


def _raw(out, k, label="kotabaru"):
    """Both tables of round k as strings with canonical column names (via pk2d.rawio)."""
    kel, ang = _read(out, k, label)
    return kel.copy(), ang.copy()  # copy-on-write: cheap


@functools.lru_cache(maxsize=None)
def _clean_of(out, k, label="kotabaru"):
    return _to_clean(*_raw(out, k, label))


def _clean(out, k, label="kotabaru"):
    fam, mem = _clean_of(out, k, label)
    return fam.copy(), mem.copy()


def _to_clean(kel: pd.DataFrame, ang: pd.DataFrame):
    """Reference parser: raw strings -> the clean format pk2d.score expects."""
    con = rawio.load_contract()
    yes, no = set(con["yes_values"]), set(con["no_values"])

    def convert(df, table):
        out = pd.DataFrame(index=df.index)
        for spec in rawio.columns(table):
            c = spec["name"]
            if c not in df:
                continue
            s = df[c]
            if spec["type"] == "yesno":
                low = s.str.lower()
                out[c] = pd.array(np.where(low.isin(yes), True, np.where(low.isin(no), False, None)), dtype="boolean")
            elif spec["type"] == "code":
                spell = {str(v).lower(): k for k, vals in spec["codes"].items() for v in [k, *vals]}
                out[c] = s.str.lower().map(spell)
            elif spec["type"] in ("float", "int", "rt"):
                out[c] = pd.to_numeric(s.str.replace(",", ".", regex=False), errors="coerce")
            elif spec["type"] == "date":
                iso = pd.to_datetime(s, format="%Y-%m-%d", errors="coerce")
                out[c] = iso.fillna(pd.to_datetime(s, format="%d/%m/%Y", errors="coerce"))
            else:
                out[c] = s
        return out

    f = convert(kel, "keluarga").rename(columns={"no_kk": "id_keluarga"})
    a = convert(ang, "anggota").rename(columns={"no_kk": "id_keluarga", "nik": "id_anggota"})
    a["putaran"] = int(f["putaran"].iloc[0])
    when = a["id_keluarga"].map(f.drop_duplicates("id_keluarga").set_index("id_keluarga")["tanggal_wawancara"])
    b = a["tanggal_lahir"]
    age = when.dt.year - b.dt.year - ((when.dt.month < b.dt.month) | ((when.dt.month == b.dt.month) & (when.dt.day < b.dt.day)))
    a["umur"] = age.fillna(a["umur"]).astype("Int64")
    return f, a


def _village_ikk(fam, mem):
    s = score_families(fam, mem, "ikk")
    return s.groupby(fam["kode_desa"].to_numpy())["indeks"].mean()


def _small_villages(tmp_path, names=("Pondok Labu", "Serongga", "Gunung Batu Besar")):
    """The default villages file cut to Kotabaru and a few of its villages (faster runs)."""
    cfg = _config()
    kab = next(k for k in cfg["kabupaten"] if k["label"] == "kotabaru")
    kab["villages"] = [v for v in kab["villages"] if v["nama_desa"] in names]
    kept = {v["kode_desa"] for v in kab["villages"]}
    kab["lokus"] = [x for x in kab["lokus"] if x["kode_desa"] in kept]
    cfg["kabupaten"] = [kab]
    path = tmp_path / f"villages_{len(names)}.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    out = tmp_path_factory.mktemp("sample")
    return out, synthesize(out)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    base = tmp_path_factory.mktemp("small")
    one, three = _small_villages(base, ("Pondok Labu",)), _small_villages(base)
    runs = {}
    for name, seed, dirt, villages in (("a", 7, 1.0, one), ("a_again", 7, 1.0, one), ("b", 8, 1.0, one),
                                       ("clean", 7, 0.0, three)):
        out = base / name
        runs[name] = (out, synthesize(out, seed=seed, dirt=dirt, villages_file=villages, rounds=2))
    return runs


# -------------------------------------------------------------------- tests ---
def test_same_seed_same_bytes_other_seed_differs(small):
    (a, ra), (a2, _), (b, _) = small["a"], small["a_again"], small["b"]
    assert sorted(p.name for p in ra.files) == sorted(p.name for p in a.iterdir()) and len(ra.files) == 6
    for p in ra.files:
        assert p.read_bytes() == (a2 / p.name).read_bytes(), p.name
        if p.name not in ("SINTETIS_desa_lokus.csv", "SINTETIS_wilayah.csv"):  # the villages file's, not drawn
            assert p.read_bytes() != (b / p.name).read_bytes(), p.name


def test_files_follow_the_contract(sample):
    out, res = sample
    expected = {f"SINTETIS_{label}_{r}_{t}.csv" for label, rounds in ROUNDS.items() for r in rounds.values()
                for t in ("keluarga", "anggota")} | {"SINTETIS_desa_lokus.csv", "SINTETIS_wilayah.csv"}
    assert {p.name for p in res.files} == expected and all(p.exists() for p in res.files)
    for label, rounds in ROUNDS.items():
        for k in rounds:
            for path, table in zip(_files(out, k, label), ("keluarga", "anggota")):
                raw = rawio.read_table(path, table)  # raises when a required column is missing
                assert raw.extra_columns == []
                required = {c["name"] for c in rawio.columns(table) if c.get("required")}
                assert required <= set(raw.data.columns)
                assert res.counts[path.name] == len(raw.data)
                assert not set(DESIGN) & set(raw.data.columns)  # a census: no design columns
    k1, _ = _files(out, 1)
    head = k1.read_bytes().split(b"\n", 1)[0].decode()
    assert head.split(",") == [c["name"] for c in rawio.columns("keluarga") if c["name"] not in DESIGN]
    assert not k1.read_bytes().startswith(b"\xef\xbb\xbf")
    k2, _ = _files(out, 2)
    text = k2.read_bytes()
    assert text.startswith(b"\xef\xbb\xbf")
    header = text[3:].split(b"\r\n", 1)[0].decode().split(";")
    assert {"No. KK", "Nama Kepala Keluarga", "Tgl Wawancara"} <= set(header)
    kel2, _ = _raw(out, 2)
    assert kel2["tanggal_wawancara"].str.fullmatch(r"\d\d/\d\d/2024").all()
    assert kel2["luas_lantai_m2"].str.contains(",").any() and not kel2["luas_lantai_m2"].str.contains(r"\.").any()
    assert set(kel2["kdrt"].dropna()) >= {"Ya", "ya", "YA", "Y", "1", "Tidak", "tidak", "T", "tdk", "0"}
    kel1, ang1 = _raw(out, 1)
    assert kel1["tanggal_wawancara"].str.fullmatch(r"2023-\d\d-\d\d").all()
    # a few members have their age only, most a birth date
    only_age = ang1["tanggal_lahir"].isna() & ang1["umur"].notna()
    assert 0.005 < only_age.mean() < 0.08 and ang1["tanggal_lahir"].notna().mean() > 0.9
    kb, _ = _raw(out, 4, "tanahbumbu")
    assert (kb["putaran"] == "4").all() and kb["tanggal_wawancara"].str.contains("2026").all()


def test_each_kabupaten_in_its_own_files(sample):
    out, _ = sample
    codes = {k["label"]: (k["kode_kabupaten"], {v["kode_desa"] for v in k["villages"]}) for k in _config()["kabupaten"]}
    for label, rounds in ROUNDS.items():
        for k in rounds:
            kel, _ = _raw(out, k, label)
            kab, villages = codes[label]
            assert (kel["kode_kabupaten"] == kab).all() and (kel["putaran"] == str(k)).all()
            desa = rawio.normalise_region(kel["kode_desa"], "desa")
            assert (desa.str[:5] == kab).all()
            right_kecamatan = desa.str[:8] == kel["kode_kecamatan"]  # the others: the wrong-kecamatan dirt
            assert set(desa[right_kecamatan]) == villages and (~right_kecamatan).sum() <= 4
            assert kel["nama_kabupaten"].str.startswith("Kabupaten ").all()


def test_published_villages(sample):
    """Every published figure of the brief that names a village is in the raw files: KK, RT, kecamatan."""
    out, _ = sample
    for label, k, name, kec, n_rt, n_kk, _ in PUBLISHED:
        kel, _ = _raw(out, k, label)
        v = kel[kel["nama_desa"] == name].drop_duplicates()
        assert v["nama_kecamatan"].iloc[0] == kec, name
        if n_kk is not None:
            assert v["no_kk"].nunique() == n_kk, name
        if n_rt is not None:
            assert pd.to_numeric(v["rt"]).nunique() == n_rt, name


def test_known_effects_are_data():
    """Targets = kabupaten trend each year + the planted effect from the year after a village became lokus."""
    for kab in _config()["kabupaten"]:
        years = [r["tahun"] for r in kab["rounds"]]
        lokus = {x["kode_desa"]: x for x in kab["lokus"]}
        for v in kab["villages"]:
            for i in range(1, len(years)):
                effect = 0.0
                if v["kode_desa"] in lokus and years[i - 1] <= lokus[v["kode_desa"]]["tahun"] < years[i]:
                    effect = lokus[v["kode_desa"]]["effect"]
                step = (years[i] - years[i - 1]) * kab["trend"] + effect
                assert v["targets"][i] - v["targets"][i - 1] == pytest.approx(step), (v["nama_desa"], i)
    cfg = {v["nama_desa"]: (kab, v) for kab in _config()["kabupaten"] for v in kab["villages"]}
    for label, k, name, _, n_rt, n_kk, ikk in PUBLISHED:
        kab, v = cfg[name]
        year = next(r["tahun"] for r in kab["rounds"] if r["putaran"] == k)
        assert v["published"] == year and v["kode_desa"] in {x["kode_desa"] for x in kab["lokus"]}
        i = [r["putaran"] for r in kab["rounds"]].index(k)
        assert (n_rt in (None, v["n_rt"]), n_kk in (None, v["n_kk"]), ikk in (None, v["targets"][i])) == (True,) * 3


def test_desa_lokus_list(sample):
    out, _ = sample
    lokus = pd.read_csv(out / "SINTETIS_desa_lokus.csv", dtype=str)
    assert list(lokus.columns) == ["kode_kabupaten", "kode_desa", "nama_desa", "tahun"]
    want = {(k["kode_kabupaten"], x["kode_desa"], x["tahun"]) for k in _config()["kabupaten"] for x in k["lokus"]}
    assert {(a, b, int(c)) for a, b, c in lokus[["kode_kabupaten", "kode_desa", "tahun"]].to_numpy()} == want
    assert len(want) >= 4 and len({k for k, _, _ in want}) >= 3
    assert (lokus.loc[lokus["kode_desa"] == "63.02.06.2012", "tahun"] == "2024").all()  # Pondok Labu, 2024


def test_calibration_meets_targets_with_the_real_scorer(sample, small):
    from pk2d.synth import CALIBRATION_TOL

    _, res = sample
    cal = res.calibration
    assert set(cal.columns) >= {"kode_kabupaten", "round", "tahun", "kode_desa", "nama_desa", "target", "achieved"}
    assert len(cal) == sum(len(k["villages"]) * len(k["rounds"]) for k in _config()["kabupaten"])
    err = (cal["achieved"] - cal["target"]).abs()
    assert (err <= np.maximum(CALIBRATION_TOL, 10 / cal["n_kk"])).all()
    for label, k, name, *_, ikk in PUBLISHED:  # the published figures to two decimals
        row = cal[(cal["nama_desa"] == name) & (cal["round"] == k)]
        if ikk is not None:
            assert round(float(row["achieved"].iloc[0]), 2) == ikk, name
    # independently: read the clean (dirt=0) files back, score them, compare with the targets
    out, res0 = small["clean"]
    for k in (1, 2):
        ikk = _village_ikk(*_clean(out, k))
        target = res0.calibration[res0.calibration["round"] == k].set_index("kode_desa")["target"]
        assert (ikk - target).abs().max() <= 0.05, (ikk - target)


def test_realistic_households(sample, small):
    out, _ = small["clean"]
    for k in (1, 2):
        fam, mem = _clean(out, k)
        size = mem.groupby("id_keluarga").size()
        assert 3.4 <= size.mean() <= 4.0 and size.min() >= 1 and size.max() <= 10
        heads = mem[mem["hubungan"] == "kepala"]
        assert heads["id_keluarga"].is_unique and len(heads) == len(fam)
        assert heads["umur"].between(20, 86).all()
        assert 0.08 <= (heads["jenis_kelamin"] == "P").mean() <= 0.22
        assert 0.005 <= mem["disabilitas"].mean() <= 0.04
        oldest = mem[mem["hubungan"].isin(["kepala", "pasangan"])].groupby("id_keluarga")["umur"].max()
        kids = mem[mem["hubungan"] == "anak"]
        assert (kids["id_keluarga"].map(oldest) - kids["umur"] >= 15).all()
        married = mem["status_kawin"] != "belum_kawin"
        assert (mem.loc[married, "usia_kawin_pertama"] <= mem.loc[married, "umur"]).all()
        assert (mem.loc[married & (mem["umur"] < 15)].empty)
        s = score_families(fam, mem, "ikk")
        assert 8 <= s.groupby(fam["kode_desa"].to_numpy())["indeks"].std().mean() <= 16


def test_blank_exactly_when_not_applicable(small):
    out, _ = small["clean"]
    for k in (1, 2):
        fam, mem = _clean(out, k)
        age = mem["umur"]

        def has(mask):  # per family: does any member satisfy mask?
            return mask.groupby(mem["id_keluarga"]).any()

        head_kawin = has((mem["hubungan"] == "kepala") & (mem["status_kawin"] == "kawin"))
        pus = head_kawin & has(mem["hubungan"].isin(["kepala", "pasangan"]) & (mem["jenis_kelamin"] == "P")
                               & age.between(15, 49))
        rules = {"buku_nikah": head_kawin, "pasangan_serumah": head_kawin, "keputusan_bersama": head_kawin,
                 "balita_stunting": has(age < 5), "kamar_tidur_terpisah": has(age < 18),
                 "ikut_parenting": has(age < 18), "mampu_biaya_sekolah": has(age.between(7, 17)),
                 "lansia_terawat": has(age >= 60), "disabilitas_terlayani": has(mem["disabilitas"].fillna(False)),
                 "pus_ber_kb": pus}
        f = fam.set_index("id_keluarga")
        for col, applies in rules.items():
            answered = f[col].notna()
            assert (answered == applies.reindex(answered.index, fill_value=False)).all(), col
        for col in ("makan_2x_sehari", "jamban_sehat", "kdrt", "punya_tabungan", "perempuan_berorganisasi"):
            assert f[col].notna().all(), col
        assert (mem["imunisasi_lengkap"].notna() == (age < 5)).all()
        assert (mem["usia_kawin_pertama"].notna() == (mem["status_kawin"] != "belum_kawin")).all()
        assert mem["akta_kelahiran"].notna().all() and mem["jaminan_kesehatan"].notna().all()


def _dirt_items(res):
    for key, d in res.dirt.items():
        label, k = key.split("/")
        yield label, int(k), d


def test_dirt_counts_match_the_files(sample):
    out, res = sample
    assert {(label, k) for label, k, _ in _dirt_items(res)} == {(lb, k) for lb, r in ROUNDS.items() for k in r}
    for label, k, d in _dirt_items(res):
        kel, ang = _raw(out, k, label)
        assert kel.duplicated().sum() == d["duplikat_persis_keluarga"] > 0
        assert ang.duplicated().sum() == d["duplikat_persis_anggota"] > 0
        kel, ang = kel.drop_duplicates(), ang.drop_duplicates()
        assert kel["no_kk"].duplicated().sum() == d["keluarga_ganda_berbeda"] >= 1
        assert ang["no_kk"].isna().sum() == d["anggota_tanpa_no_kk"] > 0
        assert (ang["no_kk"].notna() & ~ang["no_kk"].isin(kel["no_kk"])).sum() == d["anggota_no_kk_asing"] > 0
        dotted = kel["kode_desa"].str.fullmatch(r"\d\d\.\d\d\.\d\d\.\d{4}")
        assert (~dotted).sum() == d["kode_desa_format"] > 0
        norm = rawio.normalise_region(kel["kode_desa"], "desa")
        assert norm.notna().all()  # all normalisable
        assert (~(norm.str[:8] == kel["kode_kecamatan"])).sum() == d["kode_desa_salah_kecamatan"] > 0
        assert kel["rt"].isna().sum() == d["rt_kosong"] > 0
        assert (pd.to_numeric(ang["umur"]) > 110).sum() == d["umur_mustahil"] > 0
        fam, mem = _to_clean(kel, ang)
        interview = mem["id_keluarga"].map(fam.drop_duplicates("id_keluarga").set_index("id_keluarga")["tanggal_wawancara"])
        assert (mem["tanggal_lahir"] > interview).sum() == d["lahir_setelah_wawancara"] > 0
        heads = (mem["hubungan"] == "kepala").groupby(mem["id_keluarga"]).sum()
        assert (heads == 2).sum() == d["kepala_ganda"] == 1
    assert res.dirt["kotabaru/1"]["ejaan_ya_tidak"] > 0  # odd rounds also have Ya/Tidak spelling variants


def test_real_clean_stage_rejects_the_dirt_and_keeps_the_published_figures(sample, tmp_path):
    """pk2d.clean removes the duplicates and rejects the dirty rows; every target still holds within 0.3,
    and each published figure (KK, RT, IKK to two decimals) holds exactly on the cleaned data."""
    from pk2d.cleaning import clean

    out, res = sample
    cleaned = clean(out, tmp_path, key=b"test-key", today=pd.Timestamp("2027-01-01"))
    acc, d = cleaned.log["accounting"], res.dirt
    assert acc["keluarga"]["exact_duplicates_removed"] == sum(d[k]["duplikat_persis_keluarga"] for k in d)
    assert acc["anggota"]["exact_duplicates_removed"] == sum(d[k]["duplikat_persis_anggota"] for k in d)
    bad_families = sum(2 * d[k]["keluarga_ganda_berbeda"] + d[k]["rt_kosong"] + d[k]["kode_desa_salah_kecamatan"]
                       + d[k]["kepala_ganda"] for k in d)
    assert acc["keluarga"]["rejected"] == bad_families
    bad_members = sum(d[k][kind] for k in d for kind in ("anggota_tanpa_no_kk", "anggota_no_kk_asing",
                                                          "umur_mustahil", "lahir_setelah_wawancara"))
    assert bad_members <= acc["anggota"]["rejected"] <= bad_members + 12 * bad_families  # + members of bad families
    fam = cleaned.families
    s = score_families(fam, cleaned.members, "ikk")
    ikk = s.groupby([fam["putaran"].to_numpy(), fam["kode_desa"].to_numpy()])["indeks"].mean()
    target = res.calibration.set_index(["round", "kode_desa"])["target"]
    assert len(ikk) == len(target) == 56
    assert np.abs(ikk.to_numpy() - target.loc[list(ikk.index)].to_numpy()).max() <= 0.3
    names = res.calibration.drop_duplicates("kode_desa").set_index("nama_desa")["kode_desa"]
    for _, k, name, _, n_rt, n_kk, published in PUBLISHED:
        mine = fam[(fam["putaran"] == k) & (fam["kode_desa"] == names[name])]
        if n_kk is not None:
            assert len(mine) == n_kk, name
        if n_rt is not None:
            assert mine["kode_rt"].nunique() == n_rt, name
        if published is not None:
            assert round(float(ikk.loc[(k, names[name])]), 2) == published, name


def test_dirt_zero_is_clean(small):
    out, res = small["clean"]
    for label, k, d in _dirt_items(res):
        assert all(v == 0 for v in d.values())
        kel, ang = _raw(out, k, label)
        assert not kel.duplicated().any() and not ang.duplicated().any()
        assert kel["no_kk"].is_unique and ang["no_kk"].isin(kel["no_kk"]).all() and ang["nik"].is_unique
        assert kel["rt"].notna().all() and kel["kode_desa"].str.fullmatch(r"\d\d\.\d\d\.\d\d\.\d{4}").all()


def test_nik_and_no_kk(sample):
    out, _ = sample
    people = {}
    for k in (1, 2):
        kel, ang = _raw(out, k)
        ang = ang.drop_duplicates()
        assert ang["nik"].str.fullmatch(r"\d{16}").all() and ang["nik"].is_unique
        assert kel["no_kk"].str.fullmatch(r"\d{16}").all()
        kec = (kel.drop_duplicates("no_kk").set_index("no_kk")["kode_kecamatan"].str.replace(".", "", regex=False))
        assert (kel["no_kk"].str[:6] == kel["kode_kecamatan"].str.replace(".", "", regex=False)).all()
        known = ang[ang["no_kk"].isin(kec.index)]
        assert (known["nik"].str[:6] == known["no_kk"].map(kec)).mean() > 0.95  # new members may come from elsewhere
        day = ang["nik"].str[6:8].astype(int)
        female = ang["jenis_kelamin"].str.lower().isin(["p", "perempuan"])
        assert ((day > 40) == female).all()
        born = pd.to_datetime(ang["tanggal_lahir"], format="ISO8601" if k == 1 else "%d/%m/%Y", errors="coerce")
        ok = born.notna() & (born.dt.year < 2030)
        ddmmyy = (day - 40 * female).map("{:02d}".format) + ang["nik"].str[8:12]
        assert (ddmmyy[ok] == born[ok].dt.strftime("%d%m%y")).mean() > 0.99
        people[k] = ang.set_index("nik")
    both = people[2].index.intersection(people[1].index)
    assert 0.9 < len(both) / len(people[2]) < 0.99  # the same people a year later, some new
    assert (people[1].loc[both, "nama"] == people[2].loc[both, "nama"]).all()
    nik = {lb: set(_raw(out, min(r), lb)[1]["nik"]) for lb, r in ROUNDS.items()}
    assert not (nik["kotabaru"] & nik["tabalong"]) and not (nik["kotabaru"] & nik["tanahbumbu"])


def test_round_two_is_a_year_later(small):
    out, _ = small["clean"]
    (f1, m1), (f2, m2) = (_clean(out, k) for k in (1, 2))
    kk = f1.set_index("id_keluarga")["tanggal_wawancara"]
    kk2 = f2.set_index("id_keluarga")["tanggal_wawancara"]
    same = kk.index.intersection(kk2.index)
    assert 0.9 < len(same) / len(kk) < 0.99
    gap = (kk2[same] - kk[same]).dt.days
    assert gap.between(355, 375).all()
    a1, a2 = m1.set_index("id_anggota")["umur"], m2.set_index("id_anggota")["umur"]
    both = a1.index.intersection(a2.index)
    step = a2[both] - a1[both]
    assert step.isin([0, 1, 2]).all() and (step == 1).mean() > 0.95
    assert (m2["umur"] == 0).sum() > 0  # babies born between the rounds


def test_scale_mode(tmp_path):
    res = synthesize(tmp_path, families=5000, rounds=1, seed=3)
    assert [p.name for p in res.files] == ["SINTETIS_skala5000_6302_2023_putaran1_keluarga.csv",
                                           "SINTETIS_skala5000_6302_2023_putaran1_anggota.csv"]
    kel = rawio.read_table(res.files[0], "keluarga").data.drop(columns=["_row", "_file"]).astype("str")
    assert rawio.read_table(res.files[1], "anggota").extra_columns == []
    assert kel.drop_duplicates()["no_kk"].nunique() == 5000
    cal = res.calibration
    assert cal["target"].between(55, 92).all() and len(cal) == round(5000 / 450)
    assert (cal["achieved"] - cal["target"]).abs().max() <= 0.05
    assert cal["n_kk"].sum() == 5000


def test_bad_arguments(tmp_path):
    with pytest.raises(SynthError):
        synthesize(tmp_path, rounds=3)  # Tabalong has two rounds: nothing is written for Kotabaru either
    with pytest.raises(SynthError):
        synthesize(tmp_path, rounds=0)
    with pytest.raises(SynthError):
        synthesize(tmp_path, dirt=-1)
    with pytest.raises(SynthError):
        synthesize(tmp_path, villages_file=tmp_path / "missing.yaml")
    assert not list(tmp_path.iterdir())
