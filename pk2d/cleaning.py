"""Clean stage: raw exports -> validated, pseudonymised ``families``/``members`` tables.

Steps: read every families/members pair (:mod:`pk2d.rawio`), normalise values (vectorised
string ops), drop exact duplicates, validate with a pandera schema built from the contract
plus named row rules, reject conflicting duplicates and orphans, derive age, pseudonymise
No. KK / NIK with a keyed HMAC, and write the outputs atomically. Every raw row ends up
kept, rejected (``rejects.csv`` says why) or removed as an exact duplicate; the counts are
checked to add up. File-level problems raise :class:`~pk2d.errors.InputFileError` before
anything is written.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import hmac
import importlib.metadata
import json
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa

from . import io as pio
from . import paths, rawio
from .errors import InputFileError

CLEAN_VERSION = "1.0"
DTYPES = {"str": "str", "int": "Int64", "float": "float64", "date": "datetime64[ns]", "yesno": "boolean",
          "code": "str", "region": "str", "id16": "str", "rt": "Int64"}
TYPE_WORDS = {"int": "bilangan bulat [whole number]", "float": "angka [number]", "rt": "nomor RT [RT number]",
              "date": "tanggal [date]", "yesno": "ya/tidak [yes/no]", "code": "kode [code]",
              "region": "kode wilayah Kemendagri [region code]", "id16": "nomor 16 digit [16-digit number]"}
FAMILY_FRONT = ["id_keluarga", "putaran", "tahun", "kode_provinsi", "nama_provinsi", "kode_kabupaten",
                "nama_kabupaten", "kode_kecamatan", "nama_kecamatan", "kode_desa", "nama_desa", "dusun", "rt",
                "kode_rt", "jenis_kelamin_kepala", "tanggal_wawancara", "bobot", "strata", "psu", "ssu", "populasi_psu",
                "populasi_ssu", "populasi_keluarga"]
MEMBER_COLUMNS = ["id_keluarga", "id_anggota", "putaran", "hubungan", "jenis_kelamin", "umur", "status_kawin",
                  "usia_kawin_pertama", "akta_kelahiran", "status_sekolah", "bekerja", "disabilitas",
                  "jaminan_kesehatan", "imunisasi_lengkap"]
REJECT_COLUMNS = ["table", "file", "row", "column", "rule", "message"]
log = logging.getLogger(__name__)


# ------------------------------------------------------------ normalisers ---
# Each parser is vectorised (pandas string ops, RE2-friendly patterns so the pyarrow
# kernels run) and, except for the high-cardinality id16, applied to distinct values only.
def _key(s: pd.Series) -> pd.Series:
    """Matching key of a spelling: lower case, "_" as a space, single spaces."""
    return s.str.lower().str.replace(r"[ \t_]+", " ", regex=True)


@rawio.on_uniques
def parse_yesno(s: pd.Series, spec=None) -> pd.Series:
    """Contract yes/no spellings (any case) -> nullable boolean; anything else -> NA.

    >>> parse_yesno(pd.Series(["Ya", "TIDAK", "y", "0", "mungkin"])).tolist()
    [True, False, True, False, <NA>]
    """
    c = rawio.load_contract()
    table = {str(v): True for v in c["yes_values"]} | {str(v): False for v in c["no_values"]}
    return _key(s).map(table).astype("boolean")


@rawio.on_uniques
def parse_code(s: pd.Series, spec: dict) -> pd.Series:
    """Spellings of a code column -> canonical code ("Laki-laki" -> "L"); also the canonical
    value itself, leading zeros ("01") and numbered labels ("1. Kepala Keluarga").

    >>> parse_code(pd.Series(["Laki-laki", "P", "2", "x"]), {"codes": {"L": ["laki-laki", "1"], "P": ["2"]}}).tolist()
    ['L', 'P', 'P', nan]
    """
    table = {" ".join(str(v).lower().replace("_", " ").split()): str(canon)
             for canon, spelled in spec["codes"].items() for v in [canon, *spelled]}
    k = _key(s)
    out = k.map(table)
    for alt in (k.str.replace(r"^0+([0-9])", r"\1", regex=True), k.str.replace(r"^[0-9]+ ?[.)] ?", "", regex=True)):
        out = out.fillna(alt.map(table))
    return out.astype("str")


_NUMBER_FORMS = [  # (pattern, replace dots by, replace commas by): decided per value, first match wins
    (r"[+-]?[0-9]+", None, None),
    (r"[+-]?[0-9]{1,3}(?:\.[0-9]{3})+", "", None),                          # 1.500.000 -> 1500000
    (r"[+-]?(?:[0-9]{1,3}(?:\.[0-9]{3})+|[0-9]+),[0-9]+", "", "."),         # 1.234,5 / 12,5
    (r"[+-]?[0-9]*\.[0-9]+(?:[eE][+-]?[0-9]+)?|[+-]?[0-9]+[eE][+-]?[0-9]+", None, None),  # 12.5, 1.5E+06
    (r"[+-]?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?", None, ""),               # 1,500,000 / 1,234.5
]


@rawio.on_uniques
def parse_number(s: pd.Series, spec=None) -> pd.Series:
    """Numbers written the Indonesian or the English way -> float64 (NaN if not a number).
    A single comma is a decimal comma; dots in groups of three separate thousands.

    >>> parse_number(pd.Series(["1.500.000", "12,5", "1.234,5", "12.5", "Rp 2.000"])).tolist()
    [1500000.0, 12.5, 1234.5, 12.5, 2000.0]
    """
    t = s.str.replace(r"^[Rr][Pp]\.?|[ \t]|m2$|m²$", "", regex=True)
    clean = pd.Series(pd.NA, index=s.index, dtype="str")
    for pattern, dots, commas in _NUMBER_FORMS:
        m = t.str.fullmatch(pattern).fillna(False).astype(bool) & clean.isna()
        v = t[m]
        v = v if dots is None else v.str.replace(".", dots, regex=False)
        clean[m] = v if commas is None else v.str.replace(",", commas, regex=False)
    return pd.to_numeric(clean, errors="coerce").astype("float64")


def parse_int(s: pd.Series, spec=None) -> pd.Series:
    """Whole numbers -> Int64 ("12" and "12,0" ok; "12,5" -> NA).

    >>> parse_int(pd.Series(["12", "12,0", "12,5"])).tolist()
    [12, 12, <NA>]
    """
    x = parse_number(s)
    return x.where((x == np.floor(x)) & (x.abs() < 1e15)).astype("Int64")


@rawio.on_uniques
def parse_date(s: pd.Series, spec=None) -> pd.Series:
    """YYYY-MM-DD, DD/MM/YYYY, DD-MM-YYYY (any of - / . as separator, an optional time after)
    and 5-digit Excel serial numbers -> datetime64.

    >>> parse_date(pd.Series(["2024-06-14", "14/06/2024", "45457"])).dt.strftime("%Y-%m-%d").tolist()
    ['2024-06-14', '2024-06-14', '2024-06-14']
    """
    time = r"(?:[ T][0-9:.]*)?$"
    iso = s.str.extract(r"^(?P<year>[0-9]{4})[-/.](?P<month>[0-9]{1,2})[-/.](?P<day>[0-9]{1,2})" + time)
    dmy = s.str.extract(r"^(?P<day>[0-9]{1,2})[-/.](?P<month>[0-9]{1,2})[-/.](?P<year>[0-9]{4})" + time)
    out = pd.to_datetime(iso.combine_first(dmy)[["year", "month", "day"]].apply(pd.to_numeric), errors="coerce")
    serial = pd.to_numeric(s.where(s.str.fullmatch(r"[0-9]{5}(?:\.0+)?").fillna(False).astype(bool)), errors="coerce")
    return out.fillna(pd.Timestamp("1899-12-30") + pd.to_timedelta(serial, unit="D")).astype("datetime64[ns]")


@rawio.on_uniques
def parse_rt(s: pd.Series, spec=None) -> pd.Series:
    """RT number: "1", "001", "RT 01", "RT.001/RW.002" -> 1.

    >>> parse_rt(pd.Series(["001", "RT 01", "RT.001/RW.002", "satu"])).tolist()
    [1, 1, 1, <NA>]
    """
    m = s.str.extract(r"^(?:[Rr][Tt])?[ .:]*0*(?P<rt>[0-9]{1,3})(?: ?/ ?(?:[Rr][Ww])?[ .:]*[0-9]{1,3})?$")["rt"]
    return pd.to_numeric(m, errors="coerce").astype("Int64")


def parse_id16(s: pd.Series, spec=None) -> pd.Series:
    """16-digit NIK / No. KK; spaces, dashes, a leading apostrophe and a trailing ".0" are removed.

    >>> got = parse_id16(pd.Series(["'6302 0601 0124 0001", "6.30206E+15"]))
    >>> got.str.len().tolist()[0], got.isna().tolist()
    (16.0, [False, True])
    """
    s = s.astype("str")
    ok = (s.str.len() == 16) & s.str.isdigit().fillna(False).astype(bool)
    if ok.all():
        return s
    fixed = s[~ok].str.replace(r"\.0+$", "", regex=True).str.replace(r"[ \t'-]", "", regex=True)
    return s.where(ok, fixed.where(fixed.str.fullmatch(r"[0-9]{16}").fillna(False).astype(bool)))


@rawio.on_uniques
def parse_text(s: pd.Series, spec=None) -> pd.Series:
    return s.str.replace(r"[ \t]+", " ", regex=True)


PARSERS = {"str": parse_text, "int": parse_int, "float": parse_number, "date": parse_date, "yesno": parse_yesno,
           "code": parse_code, "rt": parse_rt, "id16": parse_id16,
           "region": lambda s, c: rawio.normalise_region(s, c["level"])}


def normalise(raw: pd.DataFrame, table: str) -> tuple[pd.DataFrame, dict[str, pd.Series]]:
    """Typed frame of ``raw`` (columns absent from the file become all-missing) and, per
    column, the mask of cells that held a value the parser did not understand.

    >>> typed, bad = normalise(rawio.read_table("x_anggota.csv", "anggota").data, "anggota")  # doctest: +SKIP
    """
    out, bad = {c: raw[c] for c in raw.columns if c.startswith("_")}, {}
    for col in rawio.columns(table):
        name, kind = col["name"], col["type"]
        if name not in raw:
            out[name] = pd.Series(None, index=raw.index, dtype=object).astype(DTYPES[kind])
            continue
        parser = (lambda s, c: s) if kind == "str" and col.get("personal") else PARSERS[kind]  # dropped later
        out[name] = parser(raw[name], col).astype(DTYPES[kind])
        unparsed = raw[name].notna() & out[name].isna()
        if unparsed.any():
            bad[name] = unparsed
    return pd.DataFrame(out, index=raw.index), bad


# ------------------------------------------------------------- validation ---
def build_schema(table: str) -> pa.DataFrameSchema:
    """pandera schema of a normalised table: dtype, nullable, min/max and codes from the contract.

    >>> build_schema("anggota").columns["umur"].checks
    [<Check in_range: in_range(0, 110)>]
    """
    cols = {}
    for c in rawio.columns(table):
        lo, hi, checks = c.get("min"), c.get("max"), []
        if lo is not None or hi is not None:
            checks.append(pa.Check.in_range(lo, hi) if lo is not None and hi is not None
                          else pa.Check.ge(lo) if lo is not None else pa.Check.le(hi))
        if c["type"] == "code":
            checks.append(pa.Check.isin([str(k) for k in c["codes"]]))
        cols[c["name"]] = pa.Column(DTYPES[c["type"]], checks=checks, nullable=c.get("nullable") is not False)
    return pa.DataFrameSchema(cols, strict=False, coerce=False)


_CHECK_RULES = {"not_nullable": "wajib_diisi", "in_range": "di_luar_rentang", "greater_than": "di_luar_rentang",
                "less_than": "di_luar_rentang", "isin": "kode_tidak_dikenal"}
_RULE_RENAMES = {("anggota", "no_kk", "wajib_diisi"): "anggota_tanpa_kk"}


def _records(df: pd.DataFrame, mask, column: str, rule: str, message) -> pd.DataFrame:
    """Reject records for the rows of ``df`` where ``mask`` holds; ``message`` is a text or a
    function of the failing rows (so values are formatted for those rows only)."""
    m = pd.Series(mask, index=df.index).fillna(False).astype(bool).to_numpy()
    rows = df.loc[m]
    msg = message(rows) if callable(message) else message
    return pd.DataFrame({"_idx": rows.index, "column": column, "rule": rule,
                         "message": msg.to_numpy() if isinstance(msg, pd.Series) else msg})


def _value_msg(spec: dict, column: str, text: str, en: str):
    if spec.get("personal"):
        return f"{text} (nilai tidak ditampilkan: data pribadi) [{en}; value hidden: personal data]"
    return lambda rows: "nilai '" + rows[column].astype("str") + f"' {text} [{en}]"


def validate(df: pd.DataFrame, table: str, bad: dict[str, pd.Series], raw: pd.DataFrame) -> list[pd.DataFrame]:
    """Reject records (_idx, column, rule, message) for unparsed cells and pandera failures
    (lazy validation: every failing row, column and check at once).

    >>> records = validate(typed, "anggota", bad, raw)  # doctest: +SKIP
    """
    specs = {c["name"]: c for c in rawio.columns(table)}
    out = []
    for name, mask in bad.items():
        sp = specs[name]
        rule = "kode_tidak_dikenal" if sp["type"] == "code" else "format_tidak_dikenal"
        text = (f"tidak dikenal; kode yang diterima: {', '.join(map(str, sp['codes']))}" if sp["type"] == "code"
                else f"tidak dikenali sebagai {TYPE_WORDS.get(sp['type'], sp['type'])}")
        rows = raw.loc[mask.index[mask.to_numpy()], [name]]
        out.append(_records(rows, True, name, rule, _value_msg(sp, name, text, "value not understood")))
    try:
        build_schema(table).validate(df, lazy=True)
        return out
    except pa.errors.SchemaErrors as exc:
        fc = exc.failure_cases
    if fc["index"].isna().any():  # dtype or schema-wide failure: the normalisers broke their promise
        wrong = fc.loc[fc["index"].isna(), ["column", "check"]].to_dict("records")  # no values: may be personal
        raise RuntimeError(f"pk2d bug: schema-level failure in {table}: {wrong}")
    for (column, check), grp in fc.groupby(["column", "check"], sort=False):
        rule = next((r for prefix, r in _CHECK_RULES.items() if check.startswith(prefix)), None)
        if rule is None:
            raise RuntimeError(f"pk2d bug: unexpected pandera check {check} on {table}.{column}")
        mask = df.index.isin(grp["index"].astype("int64"))
        if rule == "wajib_diisi" and column in bad:  # already reported as a value not understood
            mask &= ~bad[column].to_numpy()
        sp = specs[column]
        msg = {"wajib_diisi": f"kolom '{column}' kosong padahal wajib diisi [required value missing]",
               "di_luar_rentang": _value_msg(sp, column, f"di luar rentang {sp.get('min', '')}..{sp.get('max', '')}",
                                             "value out of range"),
               "kode_tidak_dikenal": _value_msg(sp, column, "bukan kode yang diterima", "unknown code")}[rule]
        out.append(_records(df, mask, column, _RULE_RENAMES.get((table, column, rule), rule), msg))
    return out


def _name_conflicts(f: pd.DataFrame, code: str, name: str) -> pd.Series:
    """Rows whose place name differs from the majority spelling of the same code (ties: all rows)."""
    key = pd.DataFrame({"c": f[code], "n": _key(f[name])}).dropna()
    cnt = key.groupby(["c", "n"])["n"].transform("size")
    top = cnt.groupby(key["c"]).transform("max")
    ties = key[cnt == top].groupby("c")["n"].transform("nunique")
    bad = (cnt < top) | ties.reindex(key.index, fill_value=1).gt(1)
    return bad.reindex(f.index, fill_value=False)


def row_rules(df: pd.DataFrame, table: str, today: pd.Timestamp) -> list[pd.DataFrame]:
    """Named consistency rules a per-column check cannot express (vectorised masks): region
    code prefixes, one name per code, interview date, survey year; birth date, age, marriage age.

    >>> records = row_rules(typed, "keluarga", pd.Timestamp("2024-12-31"))  # doctest: +SKIP
    """
    out = []
    if table == "keluarga":
        for child, parent, n in (("kode_kabupaten", "kode_provinsi", 2), ("kode_kecamatan", "kode_kabupaten", 5),
                                 ("kode_desa", "kode_kecamatan", 8)):
            out.append(_records(df, df[child].notna() & df[parent].notna() & (df[child].str[:n] != df[parent]),
                                child, "kode_wilayah_tidak_konsisten", lambda r, c=child, p=parent: f"{c} " + r[c] +
                                f" tidak diawali {p} " + r[p] + f" [{c} does not start with {p}]"))
        for code, name in (("kode_kecamatan", "nama_kecamatan"), ("kode_desa", "nama_desa")):
            out.append(_records(df, _name_conflicts(df, code, name), name, "nama_wilayah_tidak_konsisten",
                                lambda r, c=code, n=name: f"{c} " + r[c] + " memakai nama lain di baris lain "
                                "(di sini: '" + r[n] + "') [one code, several names]"))
        out.append(_records(df, df["tanggal_wawancara"] > today, "tanggal_wawancara", "tanggal_wawancara_di_masa_depan",
                            "tanggal wawancara setelah hari ini [interview date in the future]"))
        out.append(_records(df, (df["tanggal_wawancara"].dt.year - df["tahun"]).abs() > 1, "tahun", "tahun_tidak_cocok",
                            lambda r: "tahun survei " + r["tahun"].astype("str") + " jauh dari tanggal wawancara "
                            "[survey year and interview date more than a year apart]"))
    else:
        out.append(_records(df, df["tanggal_lahir"].isna() & df["_umur_diisi"].isna(), "umur", "umur_tidak_diketahui",
                            "tanggal lahir dan umur kosong [neither birth date nor age given]"))
        out.append(_records(df, df["tanggal_lahir"] > df["_tgl_wawancara"], "tanggal_lahir", "lahir_setelah_wawancara",
                            "tanggal lahir setelah tanggal wawancara keluarga [born after the interview date]"))
        out.append(_records(df, df["usia_kawin_pertama"] > df["umur"], "usia_kawin_pertama", "usia_kawin_melebihi_umur",
                            lambda r: "usia kawin pertama " + r["usia_kawin_pertama"].astype("str") + " > umur " +
                            r["umur"].astype("str") + " [age at first marriage above current age]"))
    return out


def age_years(born: pd.Series, at: pd.Series) -> pd.Series:
    """Completed years between two dates (Int64).

    >>> born = pd.Series(pd.to_datetime(["2000-06-15", "2000-06-15"]))
    >>> age_years(born, pd.Series(pd.to_datetime(["2024-06-14", "2024-06-15"]))).tolist()
    [23, 24]
    """
    before = (at.dt.month < born.dt.month) | ((at.dt.month == born.dt.month) & (at.dt.day < born.dt.day))
    return (at.dt.year - born.dt.year - before.astype("int64")).astype("Int64")


# --------------------------------------------------------- pseudonymising ---
def load_key(path=None) -> bytes:
    """Pseudonymisation key: ``PK2D_KEY`` (UTF-8) if set, else the key file, created with
    ``secrets.token_hex(32)`` (mode 0600) on first use. Keep it: a new key means new ids.

    >>> load_key()  # doctest: +SKIP
    b'3f1c...'
    """
    if os.environ.get(paths.KEY_ENV):
        return os.environ[paths.KEY_ENV].encode("utf-8")
    path = Path(path or paths.KEY_FILE)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text(encoding="utf-8").strip()
        if not key:
            raise InputFileError(path, "the pseudonymisation key file is empty.",
                                 fix="restore the key used before, or delete the file to create a new key "
                                 "(all id_keluarga/id_anggota will change).") from None
        return key.encode("utf-8")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secrets.token_hex(32) + "\n")
    log.warning("created a new pseudonymisation key file at %s (keep it; never commit it)", path)
    return load_key(path)


def pseudonymise(values: pd.Series, key: bytes, prefix: str) -> pd.Series:
    """Keyed HMAC-SHA256 of each value, first 16 hex characters, after a letter prefix
    ("K" for No. KK, "A" for NIK), so an id can never be mistaken for a 16-digit number.

    >>> pseudonymise(pd.Series(["63020101" "01010001"]), b"k", "K").str.len().tolist()
    [17]
    """
    if values.isna().any():
        raise ValueError("cannot pseudonymise missing identifiers")
    codes, uniques = pd.factorize(values)
    base = hmac.new(key, digestmod="sha256")

    def one(value: str) -> str:
        h = base.copy()
        h.update(value.encode("utf-8"))
        return prefix + h.hexdigest()[:16]
    ids = np.array([one(str(u)) for u in uniques.tolist()] or [""], dtype=object)
    return pd.Series(ids[codes], index=values.index, dtype="str")


# ----------------------------------------------------------------- stages ---
def _keys(col: str, *frames: pd.DataFrame) -> list[pd.Series]:
    """Integer key of (survey round, ``col``), comparable across ``frames``; -1 if the id is missing."""
    ids = pd.factorize(pd.concat([f[col] for f in frames], ignore_index=True))[0].astype("int64")
    rnd, uniq = pd.factorize(pd.concat([f["_round"] for f in frames], ignore_index=True))
    key, cuts = np.where(ids < 0, -1, ids * len(uniq) + rnd), np.cumsum([0] + [len(f) for f in frames])
    return [pd.Series(key[a:b], index=f.index) for f, a, b in zip(frames, cuts[:-1], cuts[1:])]


def _where(df: pd.DataFrame) -> pd.Series:
    return df["_file"].astype("str") + ":" + df["_row"].astype("str")


def _conflicts(df: pd.DataFrame, key: pd.Series, col: str, rule: str, what: str) -> pd.DataFrame:
    """All rows sharing an id within a round (exact duplicates are already gone)."""
    dup = (key >= 0) & key.duplicated(keep=False)
    rows = _where(df[dup]).groupby(key[dup]).agg(", ".join)
    return _records(df, dup, col, rule, lambda r: f"{what} yang sama muncul lagi dengan isian berbeda dalam satu "
                    "putaran (baris " + key[r.index].map(rows).astype("str") + f"); semua baris ditolak [same {what} "
                    "twice in one round with different answers; all rejected]")


def _pair_rounds(fam: pd.DataFrame, raws) -> dict[int, int]:
    """The survey round of each pair (one per families file; negative when unknown)."""
    rounds = {}
    for i, (f, _m) in enumerate(raws):
        found = sorted(fam.loc[fam["_pair"] == i, "putaran"].dropna().unique())
        if len(found) > 1:
            raise InputFileError(f.path, f"the file mixes survey rounds {', '.join(map(str, found))} (column "
                                 "'putaran'); members cannot be assigned to a round.", column="putaran",
                                 fix="split it into one families file and one members file per round.")
        rounds[i] = int(found[0]) if found else -(i + 1)
    return rounds


def _relations(F, M, fk: pd.Series, mk: pd.Series, rej_f: list, rej_m: list) -> None:
    """Members vs families both ways, head count, and the family -> members cascade."""
    rej_m.append(_records(M, (mk >= 0) & ~mk.isin(fk), "no_kk", "anggota_tanpa_keluarga",
                          "No. KK anggota tidak ada di file keluarga putaran ini [member's family not in families]"))
    m_bad = M.index.isin(pd.concat(rej_m)["_idx"])
    n = fk.map(((M["hubungan"] == "kepala") & ~m_bad).groupby(mk).sum()).fillna(0).astype("int64")
    f_bad = F.index.isin(pd.concat(rej_f)["_idx"])
    rej_f.append(_records(F, ~f_bad & (n != 1), "no_kk", "kepala_keluarga_tidak_satu",
                          lambda r: "keluarga punya " + n[r.index].astype("str") + " kepala keluarga yang sah di "
                          "file anggota, harus tepat 1 [family needs exactly one valid head member]"))
    f_bad = F.index.isin(pd.concat(rej_f)["_idx"])
    where = _where(F[f_bad]).groupby(fk[f_bad]).first()
    rej_m.append(_records(M, (mk >= 0) & mk.isin(fk[f_bad]) & ~m_bad, "no_kk", "keluarga_ditolak",
                          lambda r: "keluarganya ditolak (keluarga " + mk[r.index].map(where).astype("str") +
                          ") [the member's family was rejected]"))


def _drop_exact(df: pd.DataFrame, bad: dict, raw: pd.DataFrame, id_col: str):
    """Drop rows identical after normalisation (unparsed cells compared by their raw text).
    Only rows whose id occurs more than once can be duplicates, so only those are compared."""
    cand = df[id_col].duplicated(keep=False).to_numpy()
    sig = df.loc[cand].drop(columns=["_file", "_row", "_pair"])
    for c, m in bad.items():
        sig[c] = sig[c].astype(object).where(~m[cand], "\x00" + raw.loc[sig.index, c].astype(object))
    dup = np.zeros(len(df), dtype=bool)
    dup[cand] = sig.duplicated().to_numpy()
    return df.loc[~dup], {c: m.loc[~dup] for c, m in bad.items()}, int(dup.sum())


def _check_designs(families: pd.DataFrame, files: np.ndarray, rows: np.ndarray | None = None) -> None:
    """A sample's design columns must describe one consistent design per round (checked once, here)."""
    from .design import DESIGN_COLUMNS, DesignError, design_from_scores

    cols = [DESIGN_COLUMNS["weights"], DESIGN_COLUMNS["strata"], *DESIGN_COLUMNS["ids"], *DESIGN_COLUMNS["fpc"]]
    for rnd in sorted(families["putaran"].unique()):
        mask = (families["putaran"] == rnd).to_numpy()
        frame = families.loc[mask]
        if not any(c in frame and frame[c].notna().any() for c in cols):
            continue
        frame = frame.set_axis(rows[mask] if rows is not None else range(len(frame)))  # rows of the file
        try:
            design_from_scores(frame, "sample")
        except DesignError as err:
            names = ", ".join(sorted(set(files[mask])))
            raise InputFileError(names, f"round {int(rnd)}: {err.message}", column=err.column,
                                 fix=err.fix or "correct the design columns (bobot, strata, psu, ssu, "
                                                "populasi_psu, populasi_ssu, populasi_keluarga) so they "
                                                "describe one design") from None


# ---------------------------------------------------------------- outputs ---
def _families_out(F: pd.DataFrame, ids: pd.Series) -> pd.DataFrame:
    regions = rawio.load_regions().set_index("kode")["nama"]
    out = {c: F.get(c) for c in FAMILY_FRONT} | {
        "id_keluarga": ids, "putaran": F["putaran"].astype("int64"), "tahun": F["tahun"].astype("int64"),
        "nama_provinsi": F["kode_provinsi"].map(regions).astype("str"), "rt": F["rt"].astype("int64"),
        "nama_kabupaten": F["kode_kabupaten"].map(regions).astype("str"),
        "kode_rt": F["kode_desa"] + "." + F["rt"].astype("str").str.zfill(3)}
    for code, name in (("kode_kecamatan", "nama_kecamatan"), ("kode_desa", "nama_desa")):  # majority spelling
        spelled = F.groupby([code, name]).size().sort_values(ascending=False, kind="stable").reset_index()
        out[name] = F[code].map(spelled.drop_duplicates(code).set_index(code)[name])
    answers = [c["name"] for c in rawio.columns("keluarga") if c["name"] not in FAMILY_FRONT and not c.get("personal")]
    return pd.DataFrame(out | {c: F[c] for c in answers}).reset_index(drop=True)


def _members_out(M: pd.DataFrame, kk_ids: pd.Series, nik_ids: pd.Series) -> pd.DataFrame:
    out = M.assign(id_keluarga=kk_ids, id_anggota=nik_ids, putaran=M["_round"].astype("int64"))
    return out[MEMBER_COLUMNS].reset_index(drop=True)


def _write_outputs(out_dir: Path, writers: dict) -> None:
    """Write every output to a temporary file next to its target; only when all of them are
    written are they renamed over the targets (on failure the temporary files are removed)."""
    with contextlib.ExitStack() as stack:
        for name, write in writers.items():
            write(stack.enter_context(pio.atomic_path(out_dir / name)))


def _accounting(raw: pd.DataFrame, kept: pd.Index, rej: pd.DataFrame, dups: int, table: str):
    """Per-table and per-file row accounting; raises if raw != kept + rejected + duplicates."""
    acc = {"raw": len(raw), "kept": len(kept), "rejected": rej["_idx"].nunique(), "exact_duplicates_removed": dups}
    if acc["raw"] != acc["kept"] + acc["rejected"] + dups:
        raise RuntimeError(f"pk2d bug: row accounting does not add up for {table}: {acc}")
    status = np.full(len(raw), 2)  # raw has a RangeIndex: labels are positions
    status[rej["_idx"].unique()], status[kept.to_numpy()] = 1, 0
    files, names = pd.factorize(raw["_file"])
    counts = np.bincount(files * 3 + status, minlength=3 * len(names)).reshape(-1, 3)
    keys = ("kept", "rejected", "exact_duplicates_removed")
    return acc, {str(n): dict(zip(keys, map(int, c))) for n, c in zip(names, counts)}


def _log(raws, rounds, rej, accounting, per_file, today, kabupaten: dict[int, list[str]]) -> dict:
    """The cleaning log: per input file its format, hash, accounting and the kabupaten its kept
    families belong to (so a report can show the files behind its own kabupaten). No wall-clock
    time: rerunning on the same files writes the same log."""
    inputs = []
    for i, pair in enumerate(raws):
        for t, rt in zip(rawio.TABLES, pair):
            inputs.append({"file": rt.path.name, "table": t, "putaran": rounds[i] if rounds[i] > 0 else None,
                           **rt.info, **per_file[t][rt.path.name], "kabupaten": kabupaten.get(i, []),
                           "unknown_columns": rt.extra_columns})
    try:
        pk2d_version = importlib.metadata.version("pk2d")
    except importlib.metadata.PackageNotFoundError:  # a checkout that is not installed
        pk2d_version = "unknown"
    return {"pk2d_clean_version": CLEAN_VERSION, "pk2d_version": pk2d_version,
            "contract_version": rawio.load_contract().get("version"),
            "today": today.date().isoformat(), "inputs": inputs,
            "rules": {t: {k: int(v) for k, v in r.drop_duplicates(["_idx", "rule"])["rule"].value_counts().items()}
                      for t, r in rej.items()},
            "accounting": accounting,
            "unknown_columns": {x["file"]: x["unknown_columns"] for x in inputs if x["unknown_columns"]}}


@dataclass(frozen=True)
class CleanResult:
    """What :func:`clean` produced (also written to ``out_dir``)."""
    families: pd.DataFrame
    members: pd.DataFrame
    rejects: pd.DataFrame
    log: dict

    def summary(self) -> str:
        """Row accounting as readable text (Bahasa Indonesia, English in brackets)."""
        return summary_text(self.log)


def summary_text(log: dict) -> str:
    """The cleaning log's row accounting as readable text (Bahasa Indonesia, English in brackets)."""
    names = {"keluarga": "Keluarga (families)", "anggota": "Anggota (members)"}

    def num(n):
        return f"{n:,}".replace(",", ".")
    lines = [f"pk2d clean {log['pk2d_clean_version']}: {len(log['inputs']) // 2} pasang file (file pairs)"]
    lines += [f"{names[t]}: {num(a['raw'])} baris mentah (raw rows) = {num(a['kept'])} disimpan (kept) + "
              f"{num(a['rejected'])} ditolak (rejected) + {num(a['exact_duplicates_removed'])} duplikat persis "
              "dihapus (exact duplicates removed)" for t, a in log["accounting"].items()]
    rules = [f"  {t:<9} {r:<32} {num(n):>9}" for t, counts in log["rules"].items() for r, n in counts.items()]
    lines += ["Alasan penolakan, jumlah baris (rejection reasons, rows):", *rules] if rules else []
    lines += [f"Kolom tak dikenal diabaikan (unknown columns ignored) di {f}: {', '.join(cols)}"
              for f, cols in log["unknown_columns"].items()]
    return "\n".join(lines + ["Rincian (details): rejects.csv, cleaning_log.json"])


def clean(raw_dir=paths.RAW_DIR, out_dir=paths.PROCESSED_DIR, *, key: bytes | None = None,
          today=None) -> CleanResult:
    """Run the clean stage: read ``raw_dir``, write families/members/rejects/log to ``out_dir``.

    Raises :class:`~pk2d.errors.InputFileError`, and writes nothing, if any file is unusable.
    ``today`` (default: the current date) bounds interview dates; ``key`` defaults to :func:`load_key`.

    >>> res = clean("data/raw", "data/processed", key=b"secret")  # doctest: +SKIP
    >>> print(res.summary())  # doctest: +SKIP
    """
    today = pd.Timestamp(today or dt.date.today()).normalize()
    raws = [rawio.read_pair(p) for p in rawio.discover(raw_dir)]
    raw = {t: rawio.combine([pair[j] for pair in raws]) for j, t in enumerate(rawio.TABLES)}
    F, f_bad = normalise(raw["keluarga"], "keluarga")
    M, m_bad = normalise(raw["anggota"], "anggota")
    rounds = _pair_rounds(F, raws)  # the last file-level check
    key = load_key() if key is None else key.encode() if isinstance(key, str) else bytes(key)
    F, f_bad, f_dup = _drop_exact(F.assign(_round=F["_pair"].map(rounds)), f_bad, raw["keluarga"], "no_kk")
    M, m_bad, m_dup = _drop_exact(M.assign(_round=M["_pair"].map(rounds)), m_bad, raw["anggota"], "nik")

    fk, mk = _keys("no_kk", F, M)  # age at the family's interview date
    dates = pd.Series(F["tanggal_wawancara"].to_numpy(), index=fk.to_numpy())
    M["_tgl_wawancara"] = mk.map(dates[~dates.index.duplicated() & (dates.index >= 0)]).astype("datetime64[ns]")
    M["_umur_diisi"] = M["umur"]
    born_after = M["tanggal_lahir"] > M["_tgl_wawancara"]
    M["umur"] = age_years(M["tanggal_lahir"], M["_tgl_wawancara"]).fillna(M["umur"]).mask(born_after)

    rej = {"keluarga": validate(F, "keluarga", f_bad, raw["keluarga"]) + row_rules(F, "keluarga", today)
           + [_conflicts(F, fk, "no_kk", "kk_ganda_bertentangan", "No. KK")],
           "anggota": validate(M, "anggota", m_bad, raw["anggota"]) + row_rules(M, "anggota", today)
           + [_conflicts(M, _keys("nik", M)[0], "nik", "nik_ganda_bertentangan", "NIK")]}
    _relations(F, M, fk, mk, rej["keluarga"], rej["anggota"])
    rej = {t: pd.concat(r, ignore_index=True) for t, r in rej.items()}
    F = F.loc[~F.index.isin(rej["keluarga"]["_idx"])]
    M = M.loc[~M.index.isin(rej["anggota"]["_idx"])]
    kk_ids = pseudonymise(pd.concat([F["no_kk"], M["no_kk"]], ignore_index=True), key, "K")
    families = _families_out(F, kk_ids.iloc[:len(F)].set_axis(F.index))
    members = _members_out(M, kk_ids.iloc[len(F):].set_axis(M.index), pseudonymise(M["nik"], key, "A"))
    if families.duplicated(["putaran", "id_keluarga"]).any():
        raise RuntimeError("pk2d bug: putaran + id_keluarga is not unique in the clean families table")

    _check_designs(families, raw["keluarga"].loc[F.index, "_file"].astype("str").to_numpy(),
                   raw["keluarga"].loc[F.index, "_row"].to_numpy())

    accounting, per_file = {}, {}
    for t, kept, dups in (("keluarga", F.index, f_dup), ("anggota", M.index, m_dup)):
        accounting[t], per_file[t] = _accounting(raw[t], kept, rej[t], dups, t)
    rejects = pd.concat([r.assign(table=t, file=raw[t].loc[r["_idx"], "_file"].astype("str").to_numpy(),
                                  row=raw[t].loc[r["_idx"], "_row"].to_numpy())[REJECT_COLUMNS]
                         for t, r in rej.items()], ignore_index=True).sort_values(REJECT_COLUMNS[:5], ignore_index=True)
    kab = {int(i): sorted(g.unique()) for i, g in F.groupby("_pair", observed=True)["kode_kabupaten"]}
    log_data = _log(raws, rounds, rej, accounting, per_file, today, kab)

    _write_outputs(Path(out_dir), {
        "families.parquet": lambda p: families.to_parquet(p, index=False),
        "members.parquet": lambda p: members.to_parquet(p, index=False),
        "rejects.csv": lambda p: rejects.to_csv(p, index=False, encoding="utf-8"),
        "cleaning_log.json": lambda p: Path(p).write_text(json.dumps(log_data, indent=2, ensure_ascii=False) + "\n",
                                                          encoding="utf-8")})
    return CleanResult(families, members, rejects, log_data)
