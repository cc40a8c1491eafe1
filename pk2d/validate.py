"""Row validation of the clean stage: a pandera schema built from the contract, and named row rules
a per-column check cannot express. Each produces *reject records* (``_idx``, column, rule, message).

A reject reason names the column, the rule and the row, never a raw value: in a shifted row the
value of a coded column may be a name, an identifier or a birth date (:func:`shape` says what a
value looks like instead).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa

from . import rawio
from .parse import DTYPES, TYPE_WORDS, _key

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


def records(df: pd.DataFrame, mask, column: str, rule: str, message) -> pd.DataFrame:
    """Reject records for the rows of ``df`` where ``mask`` holds; ``message`` is a text or a
    function of the failing rows (so values are formatted for those rows only)."""
    m = pd.Series(mask, index=df.index).fillna(False).astype(bool).to_numpy()
    rows = df.loc[m]
    msg = message(rows) if callable(message) else message
    return pd.DataFrame({"_idx": rows.index, "column": column, "rule": rule,
                         "message": msg.to_numpy() if isinstance(msg, pd.Series) else msg})


@rawio.on_uniques
def shape(values: pd.Series) -> pd.Series:
    """What a value looks like, never what it is: "kata-kata" (words), "angka 16 digit" (a 16-digit
    number)... A reject reason may name the column, the rule and the row, never a raw value: in a
    shifted row the value of a coded column may be a name, an identifier or a birth date."""
    digits = values.str.count(r"[0-9]")
    letters = values.str.count(r"[^\W\d_]")
    return pd.Series(np.select(
        [letters.ge(2) & values.str.contains(" ", regex=False), letters.ge(1), values.str.fullmatch(r"[0-9]+")],
        ["berisi kata-kata [holds words]", "berisi huruf [holds letters]",
         "berisi angka " + digits.astype("str") + " digit [a " + digits.astype("str") + "-digit number]"],
        "berisi angka/tanda lain [other digits or signs]"), index=values.index, dtype="str")


def _value_msg(spec: dict, column: str, text: str, en: str, raw: pd.DataFrame | None = None):
    hidden = f"kolom '{column}': {text} (nilai tidak ditampilkan) [{en}; value not shown]"
    if raw is None or spec.get("personal"):
        return hidden
    return lambda rows: hidden + "; " + shape(raw.loc[rows.index, column].astype("str"))


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
        out.append(records(rows, True, name, rule, _value_msg(sp, name, text, "value not understood", raw)))
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
        out.append(records(df, mask, column, _RULE_RENAMES.get((table, column, rule), rule), msg))
    return out


def _name_conflicts(f: pd.DataFrame, code: str, name: str) -> pd.Series:
    """Rows whose place name differs from the majority spelling of the same code (ties: all rows)."""
    key = pd.DataFrame({"c": f[code], "n": _key(f[name])}).dropna()
    cnt = key.groupby(["c", "n"])["n"].transform("size")
    top = cnt.groupby(key["c"]).transform("max")
    ties = key[cnt == top].groupby("c")["n"].transform("nunique")
    bad = (cnt < top) | ties.reindex(key.index, fill_value=1).gt(1)
    return bad.reindex(f.index, fill_value=False)


def _unknown_codes(df: pd.DataFrame, col: str, level: str, regions: pd.DataFrame) -> pd.Series:
    """Codes missing from a region list that does list this level for their kabupaten."""
    listed = regions.loc[regions["tingkat"] == level, "kode"]
    covered = set(listed.str[:5])
    return df[col].notna() & df[col].str[:5].isin(covered) & ~df[col].isin(set(listed))


def row_rules(df: pd.DataFrame, table: str, today: pd.Timestamp, regions: pd.DataFrame | None = None
              ) -> list[pd.DataFrame]:
    """Named consistency rules a per-column check cannot express (vectorised masks): region
    code prefixes, codes missing from the region list (``regions``, for the kabupaten it lists
    kecamatan/desa of), one name per code, interview date, survey year; birth date, age, marriage age.

    >>> records = row_rules(typed, "keluarga", pd.Timestamp("2024-12-31"))  # doctest: +SKIP
    """
    out = []
    if table == "keluarga":
        for child, parent, n in (("kode_kabupaten", "kode_provinsi", 2), ("kode_kecamatan", "kode_kabupaten", 5),
                                 ("kode_desa", "kode_kecamatan", 8)):
            out.append(records(df, df[child].notna() & df[parent].notna() & (df[child].str[:n] != df[parent]),
                                child, "kode_wilayah_tidak_konsisten", f"{child} tidak diawali {parent} di baris yang sama "
                                f"[{child} does not start with {parent}]"))
        for col, level in (("kode_kecamatan", "kecamatan"), ("kode_desa", "desa")):
            if regions is not None:
                out.append(records(df, _unknown_codes(df, col, level, regions), col, f"kode_{level}_tidak_dikenal",
                                    f"{col} tidak ada di daftar wilayah untuk kabupatennya [{col} is not in the "
                                    "region list of its kabupaten]"))
        for code, name in (("kode_kecamatan", "nama_kecamatan"), ("kode_desa", "nama_desa")):
            out.append(records(df, _name_conflicts(df, code, name), name, "nama_wilayah_tidak_konsisten",
                                f"{name} berbeda dengan nama yang dipakai {code} yang sama di "
                                "baris lain [one code, several names]"))
        out.append(records(df, df["tanggal_wawancara"] > today, "tanggal_wawancara", "tanggal_wawancara_di_masa_depan",
                            "tanggal wawancara setelah hari ini [interview date in the future]"))
        out.append(records(df, (df["tanggal_wawancara"].dt.year - df["tahun"]).abs() > 1, "tahun", "tahun_tidak_cocok",
                            "tahun survei dan tanggal wawancara berselisih lebih dari setahun "
                            "[survey year and interview date more than a year apart]"))
    else:
        out.append(records(df, df["tanggal_lahir"].isna() & df["_umur_diisi"].isna(), "umur", "umur_tidak_diketahui",
                            "tanggal lahir dan umur kosong [neither birth date nor age given]"))
        out.append(records(df, df["tanggal_lahir"] > df["_tgl_wawancara"], "tanggal_lahir", "lahir_setelah_wawancara",
                            "tanggal lahir setelah tanggal wawancara keluarga [born after the interview date]"))
        out.append(records(df, df["usia_kawin_pertama"] > df["umur"], "usia_kawin_pertama", "usia_kawin_melebihi_umur",
                            "usia kawin pertama lebih besar dari umur [age at first marriage above "
                            "current age]"))
    return out
