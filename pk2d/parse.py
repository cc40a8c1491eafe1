"""Values: the contract's types read from the text of an export, and how one file writes them.

Each parser is vectorised (pandas string ops, RE2-friendly patterns so the pyarrow kernels run)
and, except for the high-cardinality id16, applied to distinct values only
(:func:`pk2d.rawio.on_uniques`). A file writes its numbers and dates one way: the decimal comma
or the decimal dot, day-first or month-first dates. :func:`file_conventions` decides that from
*all* of a file's values, and refuses a file whose values prove two conventions at once (with
the evidence: how many values fit which reading, and where) instead of guessing value by value.

>>> parse_number(pd.Series(["2.333", "12,5"]), decimal=",").tolist()
[2333.0, 12.5]
>>> parse_number(pd.Series(["2.333", "1,500"]), decimal=".").tolist()
[2.333, 1500.0]
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import rawio
from .errors import InputFileError

DTYPES = {"str": "str", "int": "Int64", "float": "float64", "date": "datetime64[ns]", "yesno": "boolean",
          "code": "str", "region": "str", "id16": "str", "rt": "Int64"}
TYPE_WORDS = {"int": "bilangan bulat [whole number]", "float": "angka [number]", "rt": "nomor RT [RT number]",
              "date": "tanggal [date]", "yesno": "ya/tidak [yes/no]", "code": "kode [code]",
              "region": "kode wilayah Kemendagri [region code]", "id16": "nomor 16 digit [16-digit number]"}
NUMBER_TYPES = ("int", "float")


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
    value itself, leading zeros ("01"), integral floats ("1.0") and numbered labels ("1. Kepala Keluarga").

    >>> parse_code(pd.Series(["Laki-laki", "P", "2", "x"]), {"codes": {"L": ["laki-laki", "1"], "P": ["2"]}}).tolist()
    ['L', 'P', 'P', nan]
    """
    table = {" ".join(str(v).lower().replace("_", " ").split()): str(canon)
             for canon, spelled in spec["codes"].items() for v in [canon, *spelled]}
    k = _key(s)
    out = k.map(table)
    for alt in (k.str.replace(r"^0+([0-9])", r"\1", regex=True), k.str.replace(r"^[0-9]+ ?[.)] ?", "", regex=True),
                k.str.replace(r"^0*([0-9]+)[.,]0+$", r"\1", regex=True)):
        out = out.fillna(alt.map(table))
    return out.astype("str")


# ------------------------------------------------------------------- numbers ---
_CLEAN = r"^[Rr][Pp]\.?|[ \t]|m2$|m²$"
_INT = r"[+-]?[0-9]+"
_DOT_GROUPS = r"[+-]?[0-9]{1,3}(?:\.[0-9]{3})+"                   # 1.500.000 (or 2.333: a decimal?)
_COMMA_GROUPS = r"[+-]?[0-9]{1,3}(?:,[0-9]{3})+"                 # 1,500,000 (or 2,333: a decimal?)
_COMMA_DEC = r"[+-]?(?:[0-9]{1,3}(?:\.[0-9]{3})+|[0-9]+),[0-9]+"  # 1.234,5 / 12,5
_DOT_DEC = r"[+-]?[0-9]*\.[0-9]+(?:[eE][+-]?[0-9]+)?|[+-]?[0-9]+[eE][+-]?[0-9]+"  # 12.5, 1.5E+06
_ENGLISH = r"[+-]?[0-9]{1,3}(?:,[0-9]{3})+\.[0-9]+"              # 1,234.5
# (pattern, replace dots by, replace commas by): the first match wins
_FORMS = {
    "auto": [(_INT, None, None), (_DOT_GROUPS, "", None), (_COMMA_DEC, "", "."), (_DOT_DEC, None, None),
             (_COMMA_GROUPS + r"(?:\.[0-9]+)?", None, "")],
    ",": [(_INT, None, None), (_DOT_GROUPS, "", None), (_COMMA_DEC, "", ".")],
    ".": [(_INT, None, None), (_DOT_DEC, None, None), (_COMMA_GROUPS + r"(?:\.[0-9]+)?", None, "")],
}


@rawio.on_uniques
def parse_number(s: pd.Series, spec=None, decimal: str = "auto") -> pd.Series:
    """Numbers -> float64 (NaN if not a number). ``decimal`` is the file's convention: ``","``
    (Indonesian: dots separate thousands), ``"."`` (English: commas separate thousands), or
    ``"auto"`` (each value on its own: a single comma is a decimal comma, dots in groups of three
    separate thousands) for values that come from no file.

    >>> parse_number(pd.Series(["1.500.000", "12,5", "1.234,5", "12.5", "Rp 2.000"])).tolist()
    [1500000.0, 12.5, 1234.5, 12.5, 2000.0]
    """
    t = s.str.replace(_CLEAN, "", regex=True)
    clean = pd.Series(pd.NA, index=s.index, dtype="str")
    for pattern, dots, commas in _FORMS[decimal]:
        m = t.str.fullmatch(pattern).fillna(False).astype(bool) & clean.isna()
        v = t[m]
        v = v if dots is None else v.str.replace(".", dots, regex=False)
        clean[m] = v if commas is None else v.str.replace(",", commas, regex=False)
    return pd.to_numeric(clean, errors="coerce").astype("float64")


def parse_int(s: pd.Series, spec=None, decimal: str = "auto") -> pd.Series:
    """Whole numbers -> Int64 ("12", "12,0" and "12.0" ok; "12,5" -> NA).

    >>> parse_int(pd.Series(["12", "12,0", "12,5"])).tolist()
    [12, 12, <NA>]
    """
    x = parse_number(s, spec, decimal)
    return x.where((x == np.floor(x)) & (x.abs() < 1e15)).astype("Int64")


def number_evidence(values: pd.Series) -> pd.DataFrame:
    """What each number text tells of its file's convention. ``proves``: ``","`` (12,5 /
    1.500.000 / 1.234,5), ``"."`` (12.5 / 1,500,000 / 1,234.5 / 1.5E+06) or ``""``; ``grouped``:
    the thousands separator a value shows beyond doubt (``"."`` in 1.500.000 and 1.234,5; ``","``
    in 1,500,000 and 1,234.5); ``ambiguous``: the separator of 2.333 or 2,333, which read either as
    a decimal or as thousands.

    >>> number_evidence(pd.Series(["12,5", "2.333", "1.500.000", "12.5", "36"])).to_dict("list")
    {'proves': [',', '', ',', '.', ''], 'grouped': ['', '', '.', '', ''], 'ambiguous': ['', '.', '', '', '']}
    """
    t = values.astype("str").str.replace(_CLEAN, "", regex=True)

    def match(pattern):
        return t.str.fullmatch(pattern).fillna(False).astype(bool)
    amb = match(r"[+-]?[1-9][0-9]{0,2}[.,][0-9]{3}")
    dot_groups = match(r"[+-]?[0-9]{1,3}(?:\.[0-9]{3}){2,}|[+-]?[0-9]{1,3}(?:\.[0-9]{3})+,[0-9]+")
    comma_groups = match(r"[+-]?[0-9]{1,3}(?:,[0-9]{3}){2,}|" + _ENGLISH)
    comma = (match(_COMMA_DEC) | dot_groups) & ~amb
    dot = (match(_DOT_DEC) | comma_groups) & ~amb & ~comma
    return pd.DataFrame({"proves": np.select([comma, dot], [",", "."], ""),
                         "grouped": np.select([dot_groups, comma_groups], [".", ","], ""),
                         "ambiguous": np.select([amb & t.str.contains(".", regex=False).fillna(False).astype(bool),
                                                 amb], [".", ","], "")}, index=values.index)


# --------------------------------------------------------------------- dates ---
_TIME = r"(?:[ T][0-9:.]*)?$"
_DMY = r"^(?P<a>[0-9]{1,2})[-/.](?P<b>[0-9]{1,2})[-/.](?P<year>[0-9]{4})" + _TIME


@rawio.on_uniques
def parse_date(s: pd.Series, spec=None, order: str = "dmy") -> pd.Series:
    """YYYY-MM-DD, DD/MM/YYYY (``order="dmy"``, the contract's) or MM/DD/YYYY (``order="mdy"``,
    decided per file by :func:`file_conventions`), any of - / . as separator, an optional time
    after; and 5-digit Excel serial numbers -> datetime64.

    >>> parse_date(pd.Series(["2024-06-14", "14/06/2024", "45457"])).dt.strftime("%Y-%m-%d").tolist()
    ['2024-06-14', '2024-06-14', '2024-06-14']
    >>> parse_date(pd.Series(["6/4/2024"]), order="mdy").dt.strftime("%Y-%m-%d").tolist()
    ['2024-06-04']
    """
    iso = s.str.extract(r"^(?P<year>[0-9]{4})[-/.](?P<month>[0-9]{1,2})[-/.](?P<day>[0-9]{1,2})" + _TIME)
    dmy = s.str.extract(_DMY).rename(columns={"a": "day", "b": "month"} if order == "dmy" else
                                     {"a": "month", "b": "day"})
    out = pd.to_datetime(iso.combine_first(dmy)[["year", "month", "day"]].apply(pd.to_numeric), errors="coerce")
    serial = pd.to_numeric(s.where(s.str.fullmatch(r"[0-9]{5}(?:\.0+)?").fillna(False).astype(bool)), errors="coerce")
    return out.fillna(pd.Timestamp("1899-12-30") + pd.to_timedelta(serial, unit="D")).astype("datetime64[ns]")


def date_evidence(values: pd.Series) -> pd.DataFrame:
    """Which order each date text proves: ``"dmy"`` (14/06/2024), ``"mdy"`` (06/14/2024) or ``""``
    (ISO dates, serials, and 06/04/2024 that reads either way).

    >>> date_evidence(pd.Series(["14/06/2024", "6/14/2024", "6/4/2024", "2024-06-14"]))["proves"].tolist()
    ['dmy', 'mdy', '', '']
    """
    parts = values.astype("str").str.extract(_DMY)
    a, b = pd.to_numeric(parts["a"]), pd.to_numeric(parts["b"])
    return pd.DataFrame({"proves": np.select([(a > 12) & (b <= 12), (b > 12) & (a <= 12)], ["dmy", "mdy"], "")},
                        index=values.index)


# ------------------------------------------------------------------ the rest ---
@rawio.on_uniques
def parse_rt(s: pd.Series, spec=None) -> pd.Series:
    """RT number: "1", "001", "1.0", "RT 01", "RT.001/RW.002" -> 1.

    >>> parse_rt(pd.Series(["001", "1.0", "RT 01", "RT.001/RW.002", "satu"])).tolist()
    [1, 1, 1, 1, <NA>]
    """
    m = s.str.extract(r"^(?:[Rr][Tt])?[ .:]*0*(?P<rt>[0-9]{1,3})(?:[.,]0+)?"
                      r"(?: ?/ ?(?:[Rr][Ww])?[ .:]*[0-9]{1,3})?$")["rt"]
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


# --------------------------------------------------------------- conventions ---
@dataclass(frozen=True)
class Conventions:
    """How one file writes numbers and dates, and the evidence it was decided from (value counts)."""

    decimal: str = ","
    dates: str = "dmy"
    evidence: tuple = ()

    def to_json(self) -> dict:
        return {"decimal": self.decimal, "dates": self.dates, "evidence": dict(self.evidence)}


def _first(raw: pd.DataFrame, masks: dict) -> tuple[str, int]:
    """(column, row) of the first value in ``masks`` (column -> boolean Series)."""
    rows = {c: int(raw.loc[m.index[m.to_numpy(dtype=bool)], "_row"].min()) for c, m in masks.items() if m.any()}
    col = min(rows, key=rows.get)
    return col, rows[col]


_READINGS = {"decimal": {",": "a decimal comma (12,5 or 1.500.000)", ".": "a decimal dot (12.5 or 1,500,000)"},
             "dates": {"dmy": "day first (31/12/2024)", "mdy": "month first (12/31/2024)"}}


def _evidence(frame: pd.DataFrame, cols: list[str], evidence) -> dict[str, pd.DataFrame]:
    out = {}
    for c in cols:
        values = frame[c].dropna()
        if not values.empty:
            out[c] = pd.DataFrame({k: rawio.on_uniques(lambda s, k=k: evidence(s)[k].astype("str"))(values)
                                   for k in evidence(pd.Series([], dtype="str")).columns})
    return out


def _decide(name: str, frame: pd.DataFrame, ev: dict[str, pd.DataFrame], kind: str) -> tuple[str | None, dict]:
    readings = _READINGS[kind]
    masks = {r: {c: e["proves"] == r for c, e in ev.items()} for r in readings}
    counts = {r: int(sum(m.sum() for m in masks[r].values())) for r in readings}
    if all(counts.values()):
        (a, b), where = readings, {r: _first(frame, masks[r]) for r in readings}
        raise InputFileError(
            name, f"{'numbers' if kind == 'decimal' else 'dates'} are written two ways in this file: {counts[a]} "
            f"values with {readings[a]}, first in column '{where[a][0]}' row {where[a][1]}, and {counts[b]} with "
            f"{readings[b]}, first in column '{where[b][0]}' row {where[b][1]}; pk2d does not guess which reading "
            "each value means.", column=where[b][0],
            fix=f"export the file again from one program with one regional setting, or correct the values written "
                f"the other way (pk2d reads {readings[a]} or {readings[b]}, one per file).")
    return next((r for r in readings if counts[r]), None), {r: n for r, n in counts.items() if n}


def _check_ambiguous(name: str, frame: pd.DataFrame, ev: dict[str, pd.DataFrame], decimal: str | None) -> str:
    """A value like 2.333 reads as a decimal only where the file's decimal mark is proven to be that
    separator; as thousands where its column shows that separator grouping thousands beyond doubt
    (1.500.000, 1.234,5), or where the file's other decimal mark is proven and the column itself has
    no decimals (a count 1.200 beside weights 12,5). A column holding both decimals and such values
    (2.333 beside 3,0) is refused with the counts, as is a file that proves no decimal mark."""
    for c, e in ev.items():
        for sep in (".", ","):
            amb = e["ambiguous"] == sep
            if not amb.any() or sep == decimal:
                continue
            if (e["grouped"] == sep).any():
                decimal = decimal or ("," if sep == "." else ".")
                continue
            if decimal is not None and not (e["proves"] == decimal).any():
                continue  # the file's decimal mark is proven elsewhere and this column has no decimals: thousands
            example = "2.333" if sep == "." else "2,333"
            read = "2333" if decimal is None or decimal != sep else "2.333"
            col, row = _first(frame, {c: amb})
            raise InputFileError(
                name, f"column '{c}': {int(amb.sum())} value(s) written like {example} (first at row {row}) read as "
                f"{read} with {'the decimal comma' if sep == '.' else 'the decimal dot'} "
                f"{'this file uses elsewhere' if decimal else 'of the contract'}, or as "
                f"{'2.333' if read == '2333' else '2333'} otherwise; nothing else in the column says which.",
                column=c, fix="write these numbers without a thousands separator (2333) or with the file's decimal "
                "mark and not exactly three decimals (2,33 / 2,3330), then export again.")
    return decimal or ","


def file_conventions(raw: pd.DataFrame, table: str, stated: dict[str, dict] | None = None) -> dict[str, Conventions]:
    """The number and date conventions of each file (``_file``) of ``raw``, from all its values; or,
    for a file in ``stated`` (file name -> ``{"decimal": "," | ".", "dates": "dmy" | "mdy"}``, from a
    mapping's ``formats``), as stated there (its evidence then says ``stated``).

    Raises :class:`~pk2d.errors.InputFileError` when a file's values prove both decimal
    conventions or both date orders (how many values fit each reading, and where the first of each
    is), or when values like 2.333 could be thousands or a decimal and nothing in the file says
    which. A file whose dates prove nothing keeps the contract's day-first order; numbers without
    any separator prove nothing and need nothing.

    >>> raw = pd.DataFrame({"_file": "a.csv", "_row": [2, 3], "bobot": ["2.333", "3,0"]})
    >>> file_conventions(raw, "keluarga")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    pk2d.errors.InputFileError: File a.csv: column 'bobot': 1 value(s) written like 2.333 ...
    """
    specs = rawio.columns(table)
    nums = [c["name"] for c in specs if c["type"] in NUMBER_TYPES and c["name"] in raw]
    dates = [c["name"] for c in specs if c["type"] == "date" and c["name"] in raw]
    out = {}
    for name, frame in raw.groupby("_file", observed=True, sort=False):
        ev_n, ev_d = _evidence(frame, nums, number_evidence), _evidence(frame, dates, date_evidence)
        given = (stated or {}).get(str(name), {})
        if "decimal" in given:
            decimal, n_counts = given["decimal"], "stated"
        else:
            decimal, n_counts = _decide(str(name), frame, ev_n, "decimal")
            decimal = _check_ambiguous(str(name), frame, ev_n, decimal)
        order, d_counts = (given["dates"], "stated") if "dates" in given else _decide(str(name), frame, ev_d, "dates")
        out[str(name)] = Conventions(decimal, order or "dmy",
                                     (("decimal_evidence", n_counts), ("date_evidence", d_counts)))
    return out


# ------------------------------------------------------------ file-level checks ---
_SCIENTIFIC = r"[+-]?[0-9](?:[.,][0-9]+)?[eE]\+?[0-9]+"


def _refuse_ids(name: str, col: str, values: pd.Series, unparsed: pd.Series) -> None:
    """Identifiers Excel turned into numbers: shown in scientific notation, or cut to 15 significant
    digits (the 16th digit becomes 0). Neither can be undone from the file. ``unparsed``: the values
    that are not 16 digits (only they can be in scientific notation)."""
    fix = ("export the table again with the identifier columns formatted as text (in Excel: select the column, "
           "Format Cells > Text, before the numbers are typed or pasted, or Data > From Text/CSV with the column "
           "type Text); the identifiers cannot be recovered from this file.")
    sci = int(unparsed.str.fullmatch(_SCIENTIFIC).fillna(False).astype(bool).sum()) if len(unparsed) else 0
    if sci >= 3 and sci > len(values) / 2:
        raise InputFileError(name, f"column '{col}': {sci} of {len(values)} identifiers are numbers in "
                             "scientific notation (like 6,30206E+15): a spreadsheet stored them as numbers and kept "
                             "only their first digits.", column=col, fix=fix)
    if len(values) < 8 or (values.str.slice(-1) == "0").mean() < 0.9:  # cheap first look
        return
    ids = pd.Series(values.unique(), dtype="str")
    ids = ids[ids.str.fullmatch(r"[0-9]{16}").fillna(False).astype(bool)]
    zero = ids.str.endswith("0")
    if len(ids) >= 8 and zero.mean() >= 0.95:
        raise InputFileError(name, f"column '{col}': {int(zero.sum())} of {len(ids)} distinct 16-digit identifiers "
                             "end in 0, the mark of a spreadsheet that keeps only 15 significant digits (the 16th "
                             "digit of every NIK / No. KK was replaced by 0, so different people can share one "
                             "number).", column=col, fix=fix)


def check_columns(raw: pd.DataFrame, bad: dict[str, pd.Series], table: str) -> None:
    """File-level checks on the values of each file: identifiers damaged by a spreadsheet, and a
    column whose values are mostly not of its type (two headers swapped, a column inserted without
    its header): rejecting every row one by one would hide the real cause.

    Messages name the file, the column and the counts, never a value (it may be personal data).
    """
    specs = rawio.columns(table)
    for name, frame in raw.groupby("_file", observed=True, sort=False):
        for spec in specs:
            col = spec["name"]
            if col not in frame or spec["type"] == "str":
                continue
            values = frame[col].dropna()
            is_bad = bad[col].reindex(values.index).fillna(False).astype(bool) if col in bad else None
            if spec["type"] == "id16" and len(values):
                _refuse_ids(str(name), col, values.astype("str"),
                            values[is_bad].astype("str") if is_bad is not None else values.iloc[:0].astype("str"))
            n_bad = int(is_bad.sum()) if is_bad is not None else 0
            if len(values) >= 5 and n_bad > len(values) / 2:
                unparsed = values[is_bad].astype("str")
                words = unparsed.str.contains(r"[A-Za-z]{3,}", regex=True).mean() > 0.5 and spec["type"] != "code"
                first = int(frame.loc[unparsed.index, "_row"].min())
                raise InputFileError(
                    str(name), f"column '{col}': {n_bad} of {len(values)} values are not "
                    f"{TYPE_WORDS.get(spec['type'], spec['type'])} (first at row {first})"
                    + ("; most of them are words" if words else "") + ": the column holds other data than its "
                    "header says.", column=col,
                    fix="check the header row against the data: two headers swapped, a column added or deleted "
                        "without its header, or a separator missing in every row; correct the header (or the "
                        "export settings) and export again.")
