"""The synthetic families written as the exports a district sends: spellings, formats, dirt, files.

Used by :mod:`pk2d.synth` after the model has drawn and calibrated every answer: it turns the
coded answers into the text of real exports (several spellings of yes/no, region codes with or
without dots, Indonesian dates), adds the dirt that the clean stage must reject or repair, and
writes the CSV files.
"""
from __future__ import annotations

import codecs
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from . import paths
from .io import atomic_path
from .rawio import columns as _contract


def _choice(probs: dict, u):
    """Index into ``list(probs)`` for uniforms ``u`` (shares need not sum exactly to 1)."""
    cum = np.cumsum(list(probs.values()))
    return np.minimum(np.searchsorted(cum / cum[-1], u, side="right"), len(cum) - 1)


def _date_text(days, fmt, null=None) -> pa.Array:
    """Dates as text; only the distinct days go through strftime (slow per value)."""
    u, inv = np.unique(np.asarray(days, dtype=np.int64), return_inverse=True)
    text = pc.strftime(pa.array(u.astype("datetime64[D]")), format=fmt)
    return text.take(pa.array(inv.astype(np.int32), mask=null))


def _regions() -> dict[str, str]:
    ref = pd.read_csv(paths.REGIONS_FILE, dtype=str, keep_default_na=False)
    return dict(zip(ref["kode"], ref["nama"]))


def _codes_of(values, names) -> np.ndarray:
    """Position of each string in ``names`` (inverse of :func:`_text`)."""
    return pc.index_in(pa.array(values), value_set=pa.array(names)).to_numpy(zero_copy_only=False)



# ------------------------------------------------------------- raw text ---
def _spelling(table, column, st) -> list[str]:
    """Text for each canonical code of ``column`` (in contract order) in export style ``st``."""
    codes = next(c for c in _contract(table) if c["name"] == column)["codes"]
    out = {k: (v[0].upper() if len(v[0]) == 1 else v[0].title()) for k, v in codes.items()}
    if column == "hubungan":
        out["pasangan"] = "Istri"
    extra = st.get("codes", {}).get(column.replace("_kepala", ""))
    if extra == "digits":
        extra = {k: next(s for s in v if s.isdigit()) for k, v in codes.items()}
    return list({**out, **(extra or {})}.values())


def _take(choices, idx, null=None) -> pa.Array:
    return pc.take(pa.array(list(choices), pa.string()), pa.array(np.asarray(idx, dtype=np.int32), mask=null))


def _num(x, null=None) -> pa.Array:
    return pc.cast(pa.array(np.asarray(x, dtype=np.int64), mask=null), pa.string())


def _yesno(arr, st, rng, variant=0.0):
    """Yes/no text; ``variant``: share of cells spelt ya/YA/Y/1 or tidak/T/tdk/0 instead (dirt)."""
    val, na = arr.to_numpy(dtype=bool, na_value=False), np.asarray(pd.isna(arr))
    yes, no = st["yes"], st["no"]
    iy, inn = ((_choice(w, rng.random(len(val))) if len(w) > 1 else np.zeros(len(val), int)) for w in (yes, no))
    words = list(yes) + list(no)
    idx = np.where(val, iy, len(yes) + inn)
    odd = (rng.random(len(val)) < variant) & ~na if variant else np.zeros(len(val), bool)
    idx = np.where(odd, len(words) + np.where(val, 0, 4) + rng.integers(0, 4, len(val)), idx)
    return _take(words + ["ya", "YA", "Y", "1", "tidak", "T", "tdk", "0"], idx, na), int(odd.sum())


def _raw_tables(fam, per, famc, memc, vil, names, putaran, tahun, st, rng, variant):
    """Families and members as text columns (canonical names) in export style ``st``."""
    v, F = fam["v"].to_numpy(), len(fam)
    regions = _regions()
    vcol = lambda c: pa.array(vil[c].astype(str).tolist()).take(pa.array(v))  # noqa: E731
    dusun = fam["dusun"].astype(object).where(fam["dusun"].notna(), None).tolist()
    kel = {"putaran": _num(np.full(F, putaran)), "tahun": _num(np.full(F, tahun)),
           "kode_provinsi": pa.repeat(vil["kode_kabupaten"].iloc[0][:2], F),
           "nama_provinsi": pa.repeat(regions[vil["kode_kabupaten"].iloc[0][:2]], F),
           "kode_kabupaten": vcol("kode_kabupaten"),
           "nama_kabupaten": pa.array([regions[k] for k in vil["kode_kabupaten"]]).take(pa.array(v)),
           "kode_kecamatan": vcol("kode_kecamatan"), "nama_kecamatan": vcol("nama_kecamatan"),
           "kode_desa": vcol("kode_desa"), "nama_desa": vcol("nama_desa"),
           "dusun": pa.array(dusun, pa.string()),
           "rt": pc.utf8_lpad(_num(fam["rt"]), st["rt_width"], "0"), "no_kk": _num(fam["kk"]),
           "nik_kepala": _num(per["nik"].to_numpy()[fam["head"].to_numpy()]),
           "nama_kepala": _take(names, per["nama"].to_numpy()[fam["head"].to_numpy()]),
           "jenis_kelamin_kepala": _take(_spelling("keluarga", "jenis_kelamin_kepala", st),
                                         per["sex"].to_numpy()[fam["head"].to_numpy()]),
           "tanggal_wawancara": _date_text(fam["date"], st["date"])}
    if not any(dusun):
        del kel["dusun"]
    n_variant = 0
    for spec in _contract("keluarga"):
        col = spec["name"]
        if spec["type"] == "yesno":
            kel[col], k = _yesno(famc[col].array, st, rng, variant)
            n_variant += k
        elif spec["type"] == "code" and col in famc:
            kel[col] = _take(_spelling("keluarga", col, st), _codes_of(famc[col], list(spec["codes"])))
    t = np.round(famc["luas_lantai_m2"].to_numpy() * 10).astype(np.int64)
    kel["luas_lantai_m2"] = pc.if_else(pa.array(t % 10 == 0), _num(t // 10),
                                       pc.binary_join_element_wise(_num(t // 10), _num(t % 10), st["dec"]))
    kel["pendapatan_bulanan"] = _num(famc["pendapatan_bulanan"])
    order = [c["name"] for c in _contract("keluarga") if c["name"] in kel]
    umur_saja = per["umur_saja"].to_numpy()
    ukp = memc["usia_kawin_pertama"].to_numpy(dtype=float, na_value=np.nan)
    ang = {"no_kk": _num(fam["kk"].to_numpy()[per["f"].to_numpy()]), "nik": _num(per["nik"]),
           "nama": _take(names, per["nama"]),
           "tanggal_lahir": _date_text(per["birth"], st["date"], umur_saja),
           "umur": _num(memc["umur"], ~umur_saja), "usia_kawin_pertama": _num(np.nan_to_num(ukp), np.isnan(ukp))}
    for spec in _contract("anggota"):
        col = spec["name"]
        if spec["type"] == "yesno":
            ang[col], k = _yesno(memc[col].array, st, rng, variant)
            n_variant += k
        elif spec["type"] == "code":
            words = _spelling("anggota", col, st)
            codes = _codes_of(memc[col], list(spec["codes"]))
            if col == "hubungan":  # the spouse of a female head is her husband
                husband = (codes == 1) & (memc["jenis_kelamin"] == "L").to_numpy()
                words, codes = words + ["Suami"], np.where(husband, len(words), codes)
            ang[col] = _take(words, codes)
    kel = pa.table({c: pa.array(kel[c], pa.string()) for c in order})
    ang = pa.table({c["name"]: pa.array(ang[c["name"]], pa.string()) for c in _contract("anggota")})
    return kel, ang, n_variant


# ------------------------------------------------------------------ dirt ---
def _set(table, col, rows, values):
    """Replace ``table[col]`` at ``rows`` with ``values`` (None = empty)."""
    arr = table.column(col).combine_chunks()
    mask = np.zeros(len(arr), bool)
    mask[rows] = True
    vals = pa.array(list(values) if not isinstance(values, pa.Array) else values, pa.string())
    new = pc.replace_with_mask(arr, pa.array(mask), vals.take(pa.array(np.argsort(rows))))
    return table.set_column(table.schema.get_field_index(col), col, new)


def _dirt(kel, ang, fam, per, st, rates, dirt, rng, protected=None):
    """Inject the dirt kinds of ``rates`` (villages file) on disjoint rows; tables and counts.

    ``protected`` (a mask of families): their rows get no dirt the cleaning would reject (a village
    with a published figure keeps its KK count and index); exact duplicates and the extra members
    with an empty or unknown No. KK (added rows, the original kept) still may copy them."""
    rows = {"keluarga": kel.num_rows, "anggota": ang.num_rows}
    n = {k: int(round(dirt * max(mn, rate * rows[t]))) for k, v in rates.items() if isinstance(v, list)
         for t, mn, rate in [v]}
    prot = np.zeros(len(fam), bool) if protected is None else np.asarray(protected, bool)
    pf = prot[per["f"].to_numpy()]
    fk = ["kode_desa_format", "kode_desa_salah_kecamatan", "rt_kosong", "keluarga_ganda_berbeda",
          "duplikat_persis_keluarga"]
    order = rng.permutation(len(fam))
    order = np.concatenate([order[~prot[order]], order[prot[order]]])  # damaging kinds first, off the protected
    pick = np.split(order[:sum(n[k] for k in fk)], np.cumsum([n[k] for k in fk])[:-1])
    fr = dict(zip(fk, pick))
    role = per["role"].to_numpy()
    spouses = rng.permutation(np.flatnonzero((role == 1) & ~pf))[:n["kepala_ganda"]]
    mk = ["umur_mustahil", "lahir_setelah_wawancara", "anggota_tanpa_no_kk", "anggota_no_kk_asing",
          "duplikat_persis_anggota"]
    cand = rng.permutation(np.setdiff1d(np.flatnonzero(role != 0), spouses))
    cand = np.concatenate([cand[~pf[cand]], cand[pf[cand]]])  # rejected members first, off the protected
    mr = dict(zip(mk, np.split(cand[:sum(n[k] for k in mk)], np.cumsum([n[k] for k in mk])[:-1])))
    n.update({k: len(r) for k, r in {**fr, **mr}.items()}, kepala_ganda=len(spouses))  # small tables: fewer
    # families: modified rows
    def cells(table, col, r):
        return table.column(col).take(pa.array(r, pa.int64())).to_pylist()

    r = fr["kode_desa_format"]
    kel = _set(kel, "kode_desa", r, [c.replace(".", "" if i % 2 else " ")
                                     for i, c in enumerate(cells(kel, "kode_desa", r))])
    r = fr["kode_desa_salah_kecamatan"]
    other = [f"{k[:-2]}{(int(k[-2:]) + 1 + i % 7) % 90 + 10:02d}"  # another kecamatan number
             for i, k in enumerate(cells(kel, "kode_kecamatan", r))]
    kel = _set(kel, "kode_desa", r, [o + c[-5:] for o, c in zip(other, cells(kel, "kode_desa", r))])
    kel = _set(kel, "rt", fr["rt_kosong"], [None] * len(fr["rt_kosong"]))
    # families: conflicting second entry (same No. KK, one answer differs), exact duplicates
    r = np.sort(fr["keluarga_ganda_berbeda"])
    twin = kel.take(pa.array(r))
    flip = [("Tidak" if str(x).lower() in ("ya", "y", "1") else "Ya") for x in twin.column("jamban_sehat").to_pylist()]
    dup = kel.take(pa.array(np.sort(fr["duplikat_persis_keluarga"])))
    kel = pa.concat_tables([kel, _set(twin, "jamban_sehat", np.arange(len(r)), flip), dup])  # entered again later
    # members: two heads, impossible ages
    ang = _set(ang, "hubungan", spouses, [_spelling("anggota", "hubungan", st)[0]] * len(spouses))
    r = mr["umur_mustahil"]
    ang = _set(_set(ang, "tanggal_lahir", r, [None] * len(r)), "umur", r, ["150"] * len(r))
    r = mr["lahir_setelah_wawancara"]
    late = fam["date"].to_numpy()[per["f"].to_numpy()[r]] + rng.integers(30, 400, len(r))
    ang = _set(_set(ang, "tanggal_lahir", r, _date_text(late, st["date"])), "umur", r, [None] * len(r))
    # members: extra people with an empty or unknown No. KK (new NIK: serial 9xxx), exact duplicates
    extra = []
    for j, (kind, kk) in enumerate([("anggota_tanpa_no_kk", None), ("anggota_no_kk_asing", "9")]):
        r = np.sort(mr[kind])
        t = ang.take(pa.array(r))
        nik = [s[:12] + str(9000 + (j * 500 + i) % 1000) for i, s in enumerate(t.column("nik").to_pylist())]
        no_kk = [None if kk is None else s[:12] + str(9000 + i % 1000)
                 for i, s in enumerate(t.column("no_kk").to_pylist())]
        extra.append((r, _set(_set(t, "nik", np.arange(len(r)), nik), "no_kk", np.arange(len(r)), no_kk)))
    r = np.sort(mr["duplikat_persis_anggota"])
    extra.append((r, ang.take(pa.array(r))))
    ang = pa.concat_tables([ang] + [e[1] for e in extra])
    return kel, ang, n


# ----------------------------------------------------------------- write ---
def _write(table, path, st):
    """CSV in export style ``st`` (headers: canonical, or the style's spellings)."""
    names = [st["headers"].get(c, c.replace("_", " ").title()) if "headers" in st else c for c in table.column_names]
    opts = pacsv.WriteOptions(delimiter=st["sep"], eol=st["eol"], quoting_style="none", quoting_header="none")
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        if st["bom"]:
            fh.write(codecs.BOM_UTF8)
        pacsv.write_csv(table.rename_columns(names), fh, write_options=opts)
    os.chmod(path, 0o644)  # atomic_path's temporary file is private (0600)
    return Path(path)


# ------------------------------------------------------------ lists ---
def write_lokus(out_dir: Path, kabs: list[dict]) -> Path:
    """``SINTETIS_desa_lokus.csv``: the desa lokus of every kabupaten and the year each became one."""
    rows = []
    for kab in kabs:
        names = {v["kode_desa"]: v["nama_desa"] for v in kab["villages"]}
        rows += [{"kode_kabupaten": kab["kode_kabupaten"], "kode_desa": x["kode_desa"],
                  "nama_desa": names[x["kode_desa"]], "tahun": int(x["tahun"])} for x in kab.get("lokus", [])]
    path = out_dir / "SINTETIS_desa_lokus.csv"
    with atomic_path(path) as tmp:
        pd.DataFrame(rows, columns=["kode_kabupaten", "kode_desa", "nama_desa", "tahun"]).to_csv(tmp, index=False)
    return path


def write_regions(out_dir: Path, kabs: list[dict]) -> Path:
    """``SINTETIS_wilayah.csv``: the team's region list (kecamatan and desa of the villages file), which
    the clean stage checks every kecamatan and desa code against."""
    rows = {}
    for kab in kabs:
        for v in kab["villages"]:
            rows[v["kode_kecamatan"]] = {"kode": v["kode_kecamatan"], "tingkat": "kecamatan",
                                         "nama": v["nama_kecamatan"], "kode_induk": kab["kode_kabupaten"]}
            rows[v["kode_desa"]] = {"kode": v["kode_desa"], "tingkat": "desa", "nama": v["nama_desa"],
                                    "kode_induk": v["kode_kecamatan"]}
    path = out_dir / "SINTETIS_wilayah.csv"
    with atomic_path(path) as tmp:
        pd.DataFrame(sorted(rows.values(), key=lambda r: r["kode"]),
                     columns=["kode", "tingkat", "nama", "kode_induk"]).assign(sumber="SINTETIS").to_csv(tmp, index=False)
    os.chmod(path, 0o644)
    return path
